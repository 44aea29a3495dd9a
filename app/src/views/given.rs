//! Your models: two models the user trained and, optionally, their data, handed over by dropping
//! files on the window or picking them. Shows what was read (each model's layers, shapes and
//! parameters; the data's samples and classes) before anything runs, then compares the pair with
//! every method that needs no training; the result opens in the path, scopes and plane views
//! like a run's. A pair the lab cannot run as models (another architecture, a checkpoint of
//! gigabytes) gets the scopes of its tensors instead.

use super::figure::{self, Size};
use super::{Action, View};
use crate::app::{DataSummary, GivenFiles, Reading};
use crate::platform;
use egui::{RichText, Ui};
use wsa_core::checkpoint::Comparison;
use wsa_core::experiment::connect::GIVEN_PAIR_METHODS;
use wsa_core::io::LoadedModel;
use wsa_figures::palette;

/// Tensors listed and drawn in the checkpoint view, those whose scopes differ most first.
const TOP_TENSORS: usize = 9;

pub fn show(app: &mut View<'_>, ui: &mut Ui) {
    ui.heading("Your models");
    ui.label(
        "Compare two models you trained: drop two model files (PyTorch state_dicts saved as .safetensors, or models this lab saved) \
         and, if they were not trained on one of the lab's data sets, your data (.csv, .npz, CIFAR .bin; natively also a folder of class folders) \
         anywhere on this window, or pick them. A layout file (model.layout.json, docs/layout-file.md) says what names and shapes cannot: \
         the activation, pooling, input shape.",
    );
    match platform::HANDED_FILE_LIMIT {
        Some(limit) => ui.label(format!(
            "Your files stay in this browser: nothing is uploaded. Up to {} MiB per file.",
            limit >> 20
        )),
        None => ui.label("Files are read where they are; large checkpoints are streamed from the disk."),
    };
    pick_row(app, ui);
    let given = app.given;
    if given.is_empty() {
        return;
    }
    for refusal in &given.refused {
        error_line(ui, refusal);
    }
    if given.is_reading() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Reading the files…");
        });
        return;
    }
    let Some(reading) = given.reading() else { return };
    ui.separator();
    models(ui, given, reading);
    data(app, ui, reading);
    ui.separator();
    compare(app, ui, reading);
    if let Some(checkpoints) = &reading.checkpoints {
        ui.separator();
        match checkpoints {
            Ok(comparison) => checkpoint_scopes(ui, comparison),
            Err(e) => error_line(ui, &format!("Their tensors could not be compared either: {e}")),
        }
    }
}

/// Picking files (a dialog in the page, a typed path natively) and forgetting them.
fn pick_row(app: &mut View<'_>, ui: &mut Ui) {
    ui.horizontal_wrapped(|ui| {
        if !platform::PICKS_FILES_IN_DIALOG {
            let label = ui.label("File or folder:");
            ui.text_edit_singleline(&mut app.settings.given_path).labelled_by(label.id);
        }
        let label = if platform::PICKS_FILES_IN_DIALOG { "Pick files…" } else { "Add" };
        let pick = ui.button(label).on_hover_text("Two model files, layout files, a data set");
        super::publish_target("pick-given", &pick);
        if pick.clicked() {
            app.act(Action::PickGivenFiles);
        }
        if !app.given.is_empty() && ui.button("Forget these files").clicked() {
            app.act(Action::ClearGivenFiles);
        }
    });
}

fn error_line(ui: &mut Ui, text: &str) {
    ui.label(RichText::new(text).color(figure::color(palette::ERROR)));
}

/// Each model file and what was read from it: the architecture, then its parameters.
fn models(ui: &mut Ui, given: &GivenFiles, reading: &Reading) {
    for (slot, (name, read)) in ["A", "B"].iter().zip(&reading.models) {
        match read {
            Ok(LoadedModel { params, report }) => {
                let layout = &params.layout;
                ui.label(RichText::new(format!("Model {slot}: {name} · {}", layout.summary())).strong());
                if let Some(notice) = report.notice() {
                    ui.label(notice);
                }
                egui::CollapsingHeader::new(format!("{name}: {} tensors", layout.params.len()))
                    .id_salt(("given-layers", *slot))
                    .show(ui, |ui| {
                        super::table(ui, &format!("given-layers-{slot}"), |ui| {
                            ui.strong("parameter");
                            ui.strong("shape");
                            ui.end_row();
                            for p in &layout.params {
                                ui.monospace(&p.path);
                                ui.monospace(format!("{:?}", p.shape));
                                ui.end_row();
                            }
                        });
                    });
            }
            Err(e) => error_line(ui, &format!("Model {slot}: {e}")),
        }
    }
    if reading.models.len() < 2 {
        ui.label("Drop or pick a second model file to make a pair.");
    }
    let layouts: Vec<String> = given.layout_files().iter().map(|f| f.name()).collect();
    if !layouts.is_empty() {
        ui.label(format!("Layout files: {}", layouts.join(", ")));
    }
}

/// The data set handed over, or which of the lab's is used.
fn data(app: &mut View<'_>, ui: &mut Ui, reading: &Reading) {
    match &reading.data {
        Some((name, Ok(DataSummary { train, test, sample_shape, classes, config, .. }))) => {
            let normalisation = match &config.dataset {
                wsa_core::data::DatasetSpec::File(set) => set.normalisation.label(),
                _ => String::new(),
            };
            let shown = ui.label(
                RichText::new(format!(
                    "Data: {name} · {train} training and {test} test samples · {} values per sample {sample_shape:?} · {classes} classes · {normalisation}",
                    sample_shape.iter().product::<usize>()
                ))
                .strong(),
            );
            super::publish_target("given-data", &shown);
            normalisation_controls(app, ui);
        }
        Some((name, Err(e))) => {
            error_line(ui, &format!("Data {name}: {e}"));
            normalisation_controls(app, ui);
        }
        None => {
            ui.label(format!(
                "Data: none handed over; the Experiment panel's data set ({}) is used.",
                app.settings.config.data.dataset.label()
            ));
        }
    }
}

/// How the data's values are normalised: as the models were trained. The data is read again
/// when this changes.
fn normalisation_controls(app: &mut View<'_>, ui: &mut Ui) {
    let normalisation = &mut app.settings.given_normalisation;
    ui.horizontal_wrapped(|ui| {
        let mut divide = normalisation.divide_by.is_some();
        ui.checkbox(&mut divide, "divide every value by")
            .on_hover_text("Off: 8-bit pixels (images, uint8 arrays, CIFAR) are divided by 255, other values are kept");
        let mut by = normalisation.divide_by.unwrap_or(255.0);
        ui.add_enabled(divide, egui::DragValue::new(&mut by).range(1e-6..=1e9).speed(1.0));
        normalisation.divide_by = divide.then_some(by);
        ui.checkbox(&mut normalisation.standardise, "then standardise").on_hover_text(
            "Mean 0 and std 1 on the training split: per feature for a table, over all values for images",
        );
        ui.label("— as your models were trained.");
    });
}

/// What comparing the pair does, and the button that does it.
fn compare(app: &mut View<'_>, ui: &mut Ui, reading: &Reading) {
    let methods: Vec<&str> = GIVEN_PAIR_METHODS.iter().map(|m| m.name()).collect();
    ui.label(format!(
        "Methods that apply to a given pair: {}. The WSA methods train the pair, which needs its training: run them from the Experiment panel.",
        methods.join(", ")
    ));
    match &reading.pair {
        Some(Ok(_)) => {
            let data_ok = !matches!(reading.data, Some((_, Err(_))));
            let button = ui.add_enabled(!app.is_busy() && data_ok, egui::Button::new("Compare the pair"));
            super::publish_target("compare-given", &button);
            if button.clicked() {
                app.act(Action::CompareGivenPair);
            }
        }
        Some(Err(e)) => {
            error_line(ui, &format!("The pair cannot be compared as models: {e}"));
            if matches!(reading.checkpoints, Some(Ok(_))) {
                ui.label("Below, the scopes of their tensors, which need no model.");
            }
        }
        None => {}
    }
}

/// The checkpoint view: the tensors whose scopes differ most, in a table and drawn.
fn checkpoint_scopes(ui: &mut Ui, comparison: &Comparison) {
    ui.strong(format!(
        "Scopes of {} float tensors ({} values per checkpoint), those that differ most first",
        comparison.tensors.len(),
        comparison.values
    ));
    ui.label(
        "The symmetric KL between the two Gaussian scopes: where it is large, averaging these checkpoints mixes weights of different scales. \
         `wsa-lab scopes A B --out DIR` writes the table, the figure and the merged checkpoint.",
    );
    let shown = comparison.by_difference();
    super::table(ui, "given-tensors", |ui| {
        for heading in ["tensor", "shape", "mean A", "mean B", "std A", "std B", "kurtosis A", "KS A", "sym. KL"] {
            ui.strong(heading);
        }
        ui.end_row();
        for t in shown.iter().take(TOP_TENSORS) {
            ui.monospace(&t.name);
            ui.monospace(format!("{:?}", t.shape));
            for value in [t.a.mean, t.b.mean, t.a.std, t.b.std, t.a.excess_kurtosis, t.a.ks_distance, t.symmetric_kl] {
                ui.monospace(format!("{value:.4}"));
            }
            ui.end_row();
        }
    });
    if !comparison.skipped.is_empty() {
        ui.label(format!("{} tensors that are not floats were listed and skipped.", comparison.skipped.len()));
    }
    let described = wsa_figures::describe::checkpoint_scopes(comparison, TOP_TENSORS);
    ui.label(RichText::new(&described.title).strong());
    let columns = described.columns.max(1);
    let width = (ui.available_width() / columns as f32 - 8.0).max(120.0);
    for (row, panels) in described.panels.chunks(columns).enumerate() {
        ui.horizontal(|ui| {
            for (column, panel) in panels.iter().enumerate() {
                ui.vertical(|ui| {
                    ui.label(&panel.title);
                    let size = Size { height: 180.0, width: Some(width) };
                    figure::draw(ui, &format!("given-tensor-{row}-{column}"), panel, size, |_| ());
                });
            }
        });
    }
}
