//! The experiment setup: presets, data, model, what differs between A and B, the methods to
//! compare, the WSA and weight-matching switches, training and the seed. Edits change
//! `settings.config`, the same struct the CLI runs. In classroom mode the WSA switches and the
//! optimiser details are hidden: a projector shows what a lesson needs.

use super::View;
use crate::state::Preset;
use egui::{DragValue, Ui};
use wsa_core::choice::Choice;
use wsa_core::data::{DatasetSpec, SyntheticKind};
use wsa_core::experiment::connect::{DataDifference, PairDifference};
use wsa_core::experiment::curve::CurveConfig;
use wsa_core::experiment::method::{Alignment, Method, Training};
use wsa_core::model::{Activation, ModelConfig, Norm};
use wsa_core::wsa::TargetSource;

fn parse_widths(text: &str) -> Option<Vec<usize>> {
    let widths: Option<Vec<usize>> =
        text.split(',').map(|w| w.trim().parse().ok().filter(|&v| v > 0 && v <= 4096)).collect();
    widths.filter(|w| !w.is_empty())
}

pub fn show(app: &mut View<'_>, ui: &mut Ui) {
    // A tour step sets its own experiment: the setup shows it, read-only, until the last step.
    let set_by_tour = app.tour_step().is_some_and(|s| !matches!(s.run, crate::tour::StepRun::Free));
    if set_by_tour {
        ui.label(egui::RichText::new(&app.tour.tour().words.panel.set_by_tour).weak());
    }
    let enabled = !app.is_busy() && !set_by_tour;
    ui.add_enabled_ui(enabled, |ui| {
        ui.heading("Experiment");
        ui.label("Presets:");
        for preset in Preset::ALL {
            if ui.button(preset.label()).clicked() {
                app.settings.config = preset.config();
                app.state.widths_text = crate::state::widths_text(&app.settings.config.model);
            }
        }
        ui.separator();
        data(app, ui);
        ui.separator();
        model(app, ui);
        ui.separator();
        pair(app, ui);
        ui.separator();
        methods(app, ui);
        if !app.settings.classroom {
            ui.separator();
            wsa(app, ui);
        }
        ui.separator();
        training(app, ui);
    });
}

fn data(app: &mut View<'_>, ui: &mut Ui) {
    let missing = app.derived.missing_data().cloned();
    let config = &mut app.settings.config;
    ui.strong("Data");
    let current = config.data.dataset.label();
    egui::ComboBox::from_label("dataset").selected_text(&current).show_ui(ui, |ui| {
        for name in DatasetSpec::NAMES {
            let Ok(spec) = DatasetSpec::from_name(name) else { continue };
            // A web page has no file system: there the embedded subsets stand in for the
            // fetched sets.
            if !crate::platform::READS_FETCHED_DATA && spec.is_fetched() {
                continue;
            }
            if ui.selectable_label(current == name, name).clicked() {
                config.data.dataset = spec;
            }
        }
    });
    if let DatasetSpec::Synthetic { kind, samples, noise, classes } = &mut config.data.dataset {
        ui.horizontal(|ui| {
            ui.add(DragValue::new(samples).range(10..=100_000).prefix("points "));
            ui.add(DragValue::new(noise).range(0.0..=2.0).speed(0.01).prefix("noise "));
            if matches!(kind, SyntheticKind::Spirals | SyntheticKind::Blobs) {
                ui.add(DragValue::new(classes).range(2..=10).prefix("classes "));
            }
        });
    }
    if config.data.dataset.is_fetched() {
        if let Some(set_dir) = missing {
            ui.colored_label(
                super::figure::color(wsa_figures::palette::WARNING),
                format!("Not found in {}: run scripts/fetch-data.sh first.", set_dir.display()),
            );
        }
        let name = ui.label("Fetched by scripts/fetch-data.sh into:");
        let mut dir = config.data.data_dir.display().to_string();
        if ui.text_edit_singleline(&mut dir).labelled_by(name.id).changed() {
            config.data.data_dir = dir.into();
        }
        let mut limited = config.data.max_train.is_some();
        ui.horizontal(|ui| {
            ui.checkbox(&mut limited, "train on a subset");
            if limited {
                let mut n = config.data.max_train.unwrap_or(10_000);
                ui.add(DragValue::new(&mut n).range(100..=60_000).speed(100));
                config.data.max_train = Some(n);
            } else {
                config.data.max_train = None;
            }
        });
    }
}

fn model(app: &mut View<'_>, ui: &mut Ui) {
    ui.strong("Model");
    let config = &mut app.settings.config;
    let is_cnn = matches!(config.model, ModelConfig::Cnn { .. });
    let is_mlp = matches!(config.model, ModelConfig::Mlp { .. });
    ui.horizontal(|ui| {
        if ui.selectable_label(is_mlp, "MLP").clicked() && !is_mlp {
            let init = config.model.initializer();
            config.model = ModelConfig::default();
            if let ModelConfig::Mlp { init: kept, .. } = &mut config.model {
                *kept = init;
            }
            app.state.widths_text = crate::state::widths_text(&config.model);
        }
        if ui.selectable_label(is_cnn, "CNN").clicked() && !is_cnn {
            config.model = ModelConfig::Cnn {
                channels: vec![16, 32],
                kernel_size: 3,
                activation: Activation::Relu,
                norm: Norm::None,
                init: config.model.initializer(),
            };
            app.state.widths_text = crate::state::widths_text(&config.model);
        }
        if let ModelConfig::Stack { .. } = &config.model {
            let _ = ui.selectable_label(true, config.model.label());
        }
    });
    // A PyTorch model's own layers (docs/layout-file.md) are shown, not edited here.
    if let ModelConfig::Stack { init, .. } = &mut config.model {
        choice(ui, "initialisation", init);
        return;
    }
    let label = if is_cnn { "conv channels" } else { "hidden widths" };
    ui.horizontal(|ui| {
        let name = ui.label(label);
        if ui.text_edit_singleline(&mut app.state.widths_text).labelled_by(name.id).changed()
            && let Some(widths) = parse_widths(&app.state.widths_text)
        {
            match &mut config.model {
                ModelConfig::Mlp { hidden, .. } => *hidden = widths,
                ModelConfig::Cnn { channels, .. } => *channels = widths,
                ModelConfig::Stack { .. } => {}
            }
        }
    });
    let (activation, norm, init) = match &mut config.model {
        ModelConfig::Mlp { activation, norm, init, .. } | ModelConfig::Cnn { activation, norm, init, .. } => {
            (activation, norm, init)
        }
        ModelConfig::Stack { .. } => return,
    };
    choice(ui, "initialisation", init);
    choice(ui, "activation", activation);
    egui::ComboBox::from_label("normalisation").selected_text(norm_label(*norm)).show_ui(ui, |ui| {
        for n in [Norm::None, Norm::LayerNorm, Norm::GroupNorm { groups: 4 }] {
            ui.selectable_value(norm, n, norm_label(n));
        }
    });
    if let Norm::GroupNorm { groups } = norm {
        ui.add(DragValue::new(groups).range(1..=64).prefix("groups "));
    }
}

fn norm_label(norm: Norm) -> String {
    match norm {
        Norm::None => "none".into(),
        Norm::LayerNorm => "layer norm".into(),
        Norm::GroupNorm { groups } => format!("group norm ({groups})"),
    }
}

fn pair(app: &mut View<'_>, ui: &mut Ui) {
    ui.strong("A and B differ in");
    let pair = &mut app.settings.config.pair;
    let current = pair.kind_label();
    egui::ComboBox::from_label("what differs").selected_text(current).show_ui(ui, |ui| {
        // One entry per kind, with the values of its first named pair.
        let mut shown = Vec::new();
        for (_, named) in &PairDifference::NAMED {
            let kind = named.kind_label();
            if shown.contains(&kind) {
                continue;
            }
            shown.push(kind);
            if ui.selectable_label(current == kind, kind).clicked() && current != kind {
                *pair = named.clone();
            }
        }
    });
    match pair {
        PairDifference::Seed { same_init } => {
            ui.checkbox(same_init, "same initialisation");
        }
        PairDifference::LearningRate { a, b, .. } | PairDifference::WeightDecay { a, b } => {
            ui.horizontal(|ui| {
                ui.add(DragValue::new(a).speed(0.001).range(0.0..=10.0).prefix("A "));
                ui.add(DragValue::new(b).speed(0.001).range(0.0..=10.0).prefix("B "));
            });
        }
        PairDifference::BatchSize { a, b, .. } => {
            ui.horizontal(|ui| {
                ui.add(DragValue::new(a).range(1..=4096).prefix("A "));
                ui.add(DragValue::new(b).range(1..=4096).prefix("B "));
            });
        }
        PairDifference::Optimizer { a, b, learning_rate_b, .. } => {
            ui.label(format!("A: {}, B: {}", a.label(), b.label()));
            let mut lr = learning_rate_b.unwrap_or(0.01);
            ui.add(DragValue::new(&mut lr).speed(0.001).range(0.0001..=1.0).prefix("B learning rate "));
            *learning_rate_b = Some(lr);
        }
        PairDifference::Data { split } => {
            let mut non_iid = matches!(split, DataDifference::NonIid { .. });
            ui.checkbox(&mut non_iid, "non-IID (Dirichlet) instead of random halves");
            *split = match (non_iid, *split) {
                (true, DataDifference::NonIid { mut alpha }) => {
                    ui.add(DragValue::new(&mut alpha).speed(0.01).range(0.01..=100.0).prefix("alpha "));
                    DataDifference::NonIid { alpha }
                }
                (true, DataDifference::Disjoint) => DataDifference::NonIid { alpha: 0.3 },
                (false, _) => DataDifference::Disjoint,
            };
        }
    }
}

/// A method's checkbox; the last method left cannot be switched off.
fn method_toggle(ui: &mut Ui, methods: &mut Vec<Method>, method: Method) {
    let mut on = methods.contains(&method);
    let only = on && methods.len() == 1;
    let response = ui.add_enabled(!only, egui::Checkbox::new(&mut on, method.name())).on_hover_text(method.describe());
    if response.changed() {
        set_method(methods, method, on);
    }
}

/// The methods to compare: how the pair is trained (rows) by how B is aligned to A (columns).
fn methods(app: &mut View<'_>, ui: &mut Ui) {
    ui.strong("Methods to compare");
    let config = &mut app.settings.config;
    egui::Grid::new("methods").show(ui, |ui| {
        ui.label("");
        for alignment in Alignment::ALL {
            ui.label(alignment.label());
        }
        ui.end_row();
        for training in Training::ALL {
            ui.label(training.label());
            for alignment in Alignment::ALL {
                method_toggle(ui, &mut config.methods, Method::of(training, alignment, false));
            }
            ui.end_row();
        }
    });
    // REPAIR on a line of its own, so that the grid stays as narrow as the panel.
    ui.horizontal_wrapped(|ui| {
        ui.label("with REPAIR:").on_hover_text(
            "REPAIR (Jordan et al. 2023): each merged unit's activation mean and std reset to A's and B's interpolation",
        );
        for method in [Method::REPAIR, Method::WSA_REPAIR, Method::WM_REPAIR, Method::WM_WSA_REPAIR] {
            method_toggle(ui, &mut config.methods, method);
        }
    });
    if config.methods.iter().any(|m| m.alignment == Alignment::WeightMatching) {
        ui.add(
            DragValue::new(&mut config.weight_matching.max_sweeps)
                .range(1..=10_000)
                .prefix("weight matching: at most ")
                .suffix(" sweeps"),
        );
    }
    let mut with_curve = config.curve.is_some();
    ui.checkbox(&mut with_curve, "a trained curve beside each line").on_hover_text(
        "A mode-connecting curve shaped by a control point θ trained with A and B frozen (Garipov et al. 2018): a Bezier curve bends toward θ, a polygonal chain passes through it",
    );
    if with_curve != config.curve.is_some() {
        config.curve = with_curve.then(CurveConfig::default);
    }
    if let Some(curve) = &mut config.curve {
        ui.horizontal(|ui| choice_buttons(ui, &mut curve.kind));
        ui.add(DragValue::new(&mut curve.epochs).range(1..=1000).prefix("curve epochs "));
        ui.add(
            DragValue::new(&mut curve.learning_rate).speed(0.001).range(0.0001..=10.0).prefix("curve learning rate "),
        );
    }
}

/// Adds or removes `method`, keeping the order of `Method::ALL`.
fn set_method(methods: &mut Vec<Method>, method: Method, on: bool) {
    if on && !methods.contains(&method) {
        methods.push(method);
        methods.sort_by_key(|m| Method::ALL.iter().position(|x| x == m));
    } else if !on {
        methods.retain(|m| *m != method);
    }
}

fn wsa(app: &mut View<'_>, ui: &mut Ui) {
    let w = &mut app.settings.config.wsa;
    ui.strong("Weight Scope Alignment");
    ui.add(DragValue::new(&mut w.lambda).speed(0.05).range(0.0..=100.0).prefix("λ "));
    let target_label = match &w.target {
        TargetSource::Fused { .. } => "fused from A and B",
        TargetSource::Fixed => "fixed: initialisation scope",
        TargetSource::Reference { .. } => "reference: A trained plain",
    };
    egui::ComboBox::from_label("target").selected_text(target_label).show_ui(ui, |ui| {
        if ui.selectable_label(matches!(w.target, TargetSource::Fused { .. }), "fused from A and B").clicked() {
            w.target = TargetSource::default();
        }
        if ui.selectable_label(w.target == TargetSource::Fixed, "fixed: initialisation scope").clicked() {
            w.target = TargetSource::Fixed;
        }
        if ui
            .selectable_label(matches!(w.target, TargetSource::Reference { .. }), "reference: A trained plain")
            .clicked()
        {
            w.target = TargetSource::Reference { model: None };
        }
    });
    if let TargetSource::Fused { sync_every } = &mut w.target {
        ui.add(DragValue::new(sync_every).range(1..=10_000).prefix("refresh every ").suffix(" steps"));
    }
    choice(ui, "KL direction", &mut w.direction);
    choice(ui, "over layers", &mut w.reduction);
    choice(ui, "fusion", &mut w.fusion);
    ui.checkbox(&mut w.layers.include_biases, "biases as scopes");
    ui.checkbox(&mut w.layers.include_norm, "norm parameters as scopes");
    ui.checkbox(&mut w.layers.exclude_classifier, "leave out the classifier");
}

fn training(app: &mut View<'_>, ui: &mut Ui) {
    let classroom = app.settings.classroom;
    let config = &mut app.settings.config;
    let t = &mut config.train;
    ui.strong("Training");
    if !classroom {
        ui.horizontal(|ui| choice_buttons(ui, &mut t.optimizer));
        ui.add(DragValue::new(&mut t.learning_rate).speed(0.001).range(0.0001..=10.0).prefix("learning rate "));
        ui.add(DragValue::new(&mut t.momentum).speed(0.01).range(0.0..=0.99).prefix("momentum "));
        ui.add(DragValue::new(&mut t.weight_decay).speed(0.0001).range(0.0..=1.0).prefix("weight decay "));
        ui.add(DragValue::new(&mut t.batch_size).range(1..=4096).prefix("batch "));
    }
    ui.add(DragValue::new(&mut t.epochs).range(1..=1000).prefix("epochs "));
    ui.horizontal(|ui| {
        ui.add(DragValue::new(&mut config.seed).prefix("seed "));
        ui.add(DragValue::new(&mut config.seeds).range(1..=20).prefix("× seeds "))
            .on_hover_text("Run the experiment at this many seeds (seed, seed + 1, ...): the path shows their mean with a band, the table mean ± std");
    });
    ui.add(DragValue::new(&mut config.path.points).range(2..=201).prefix("path points "));
}

/// A drop-down of every value of a choice, by its label.
pub(super) fn choice<T: Choice>(ui: &mut Ui, label: &str, value: &mut T) {
    egui::ComboBox::from_label(label).selected_text(value.label()).show_ui(ui, |ui| choice_buttons(ui, value));
}

/// One button per value of a choice, by its label.
fn choice_buttons<T: Choice>(ui: &mut Ui, value: &mut T) {
    for &option in T::ALL {
        ui.selectable_value(value, option, option.label());
    }
}
