//! Federated learning: settings, the clients' label distribution as stacked bars, global test
//! accuracy per round for the compared methods (live while training), and the target scope and
//! the client scopes of a layer across rounds.

use super::View;
use super::figure::{self, Size};
use super::{Action, png_button};
use egui::{DragValue, Ui};
use wsa_core::experiment::federated::{self, Aggregation, AggregationKind, ClientSplit, FedResult};
use wsa_core::experiment::seeds::mean_std;
use wsa_core::experiment::stats::summarize;
use wsa_figures::describe;

fn settings(app: &mut View<'_>, ui: &mut Ui) {
    let fed = &mut app.settings.fed;
    ui.label("Data, model, seed and number of seeds come from the Experiment panel.");
    ui.horizontal_wrapped(|ui| {
        ui.add(DragValue::new(&mut fed.clients).range(1..=1000).prefix("clients "));
        ui.add(DragValue::new(&mut fed.fraction).range(0.01..=1.0).speed(0.01).prefix("fraction per round "));
        ui.add(DragValue::new(&mut fed.local.epochs).range(0..=100).prefix("local epochs "));
        ui.add(DragValue::new(&mut fed.rounds).range(1..=1000).prefix("rounds "));
        let mut alpha = match fed.split {
            ClientSplit::Dirichlet { alpha } => alpha,
            _ => 0.5,
        };
        ui.add(DragValue::new(&mut alpha).range(0.01..=1000.0).speed(0.01).prefix("Dirichlet α "));
        fed.split = ClientSplit::Dirichlet { alpha };
    });
    ui.horizontal_wrapped(|ui| {
        ui.checkbox(&mut app.settings.fed_compare, "compare FedAvg, FedAvg+WSA, FedProx, FedProx+WSA");
        if !app.settings.fed_compare {
            let fed = &mut app.settings.fed;
            let current = fed.aggregation.kind();
            for kind in AggregationKind::ALL {
                // A click on the current rule keeps its settings (FedProx's mu).
                if ui.selectable_label(kind == current, kind.label()).clicked() && kind != current {
                    fed.aggregation = kind.with_mu(federated::DEFAULT_MU);
                }
            }
            ui.checkbox(&mut fed.use_wsa, "with WSA");
        }
        let fed = &mut app.settings.fed;
        if let Aggregation::FedProx { mu } = &mut fed.aggregation {
            ui.add(DragValue::new(mu).range(0.0..=10.0).speed(0.001).prefix("μ "));
        }
        ui.add(DragValue::new(&mut fed.wsa.lambda).range(0.0..=100.0).speed(0.05).prefix("λ "));
        super::setup::choice(ui, "WSA target", &mut fed.target);
    });
    let busy = app.is_busy();
    if ui.add_enabled(!busy, egui::Button::new("Run federated")).clicked() {
        app.act(Action::RunFederated);
    }
}

pub fn show(app: &mut View<'_>, ui: &mut Ui) {
    settings(app, ui);
    ui.separator();
    let mut saves = Vec::new();
    // Live accuracy while a federated job runs.
    if app.is_busy() && app.live.rounds_total > 0 {
        let panel = describe::live_rounds(&app.live.rounds);
        figure::draw(ui, "fed_live", &panel, Size::height(240.0), |_| ());
        return;
    }
    let Some(result) = app.results.federated() else {
        ui.label("No federated results yet: press Run federated.");
        return;
    };
    // What an answered tour step marks: one run's row and line.
    let marked = match app.answered_tour_step().map(|s| &s.highlight) {
        Some(crate::tour::Highlight::FedRun(name)) => Some(name.clone()),
        _ => None,
    };
    summary_table(ui, result, marked.as_deref(), &app.tour.tour().words.panel.look_here);
    if !result.seeds.is_empty() {
        seeds_table(ui, result);
    }
    for run in &result.runs {
        if let Some(divergence) = &run.diverged {
            let warning = super::figure::color(wsa_figures::palette::WARNING);
            let text = format!(
                "{} stopped in round {}: {}. Its numbers are those of its rounds before.",
                run.name, divergence.round, divergence.reason
            );
            ui.colored_label(warning, text);
        }
    }
    ui.label("Global test accuracy per round");
    let accuracy = describe::fed_accuracy(result, marked.as_deref());
    let r = ui.scope(|ui| {
        if let Some(panel) = accuracy.panels.first() {
            figure::draw(ui, "fed_accuracy", panel, Size::height(240.0), |_| ());
        }
    });
    saves.extend(png_button(ui, "fed-accuracy", r.response.rect));
    ui.label("Label distribution of the clients (stacked by class; faded: dropped)");
    let clients = describe::client_labels(result);
    let r = ui.scope(|ui| {
        if let Some(panel) = clients.panels.first() {
            figure::draw(ui, "fed_clients", panel, Size::height(220.0), |_| ());
        }
    });
    saves.extend(png_button(ui, "fed-clients", r.response.rect));
    let layers = result.layers.len();
    if layers > 0 {
        app.settings.fed_layer = app.settings.fed_layer.min(layers - 1);
        egui::ComboBox::from_label("layer").selected_text(&result.layers[app.settings.fed_layer]).show_ui(ui, |ui| {
            for (i, name) in result.layers.iter().enumerate() {
                ui.selectable_value(&mut app.settings.fed_layer, i, name);
            }
        });
        let layer = app.settings.fed_layer;
        ui.label("Scope std of this layer across rounds: the broadcast target (line) and the clients' (points)");
        let panel = describe::fed_scopes(result, layer);
        let r = ui.scope(|ui| figure::draw(ui, "fed_scopes", &panel, Size::height(240.0), |_| ()));
        saves.extend(png_button(ui, "fed-scopes", r.response.rect));
    }
    for action in saves {
        app.act(action);
    }
}

/// Every seed's final accuracies (a federation at several seeds), their mean ± std, and for each
/// run with WSA beside its run without: on how many seeds it ended higher.
fn seeds_table(ui: &mut Ui, result: &FedResult) {
    let seeds = result.seeds.len();
    ui.label(format!(
        "Final test accuracy at each of {seeds} seeds (the plots below show seed {})",
        result.config.seed
    ));
    super::table(ui, "fed_seeds_table", |ui| {
        ui.strong("seed");
        for run in &result.runs {
            ui.strong(&run.name);
        }
        ui.end_row();
        for seed in &result.seeds {
            ui.label(seed.seed.to_string());
            for run in &seed.runs {
                ui.label(run.final_text());
            }
            ui.end_row();
        }
        ui.strong("mean ± std");
        for k in 0..result.runs.len() {
            let values: Vec<f64> = result.seeds.iter().filter_map(|s| s.runs.get(k)?.final_accuracy_if_any()).collect();
            ui.label(summarize(&values).map_or("–".to_string(), |s| mean_std(&s, 4)));
        }
        ui.end_row();
    });
    for line in result.seed_comparisons() {
        ui.label(line);
    }
}

/// The runs' accuracies; the row of `marked` (a tour step's run) carries the mark.
fn summary_table(ui: &mut Ui, result: &FedResult, marked: Option<&str>, look_here: &str) {
    super::table(ui, "fed_table", |ui| {
        for header in ["method", "final accuracy", "best accuracy", "rounds to target"] {
            ui.strong(header);
        }
        ui.end_row();
        for run in &result.runs {
            ui.label(&run.name);
            let (last, best) = run.accuracies_text();
            ui.label(last);
            ui.label(best);
            ui.label(run.rounds_to_target.map_or("-".to_string(), |r| r.to_string()));
            if marked == Some(run.name.as_str()) {
                super::tour::mark_label(ui, look_here);
            }
            ui.end_row();
        }
    });
}
