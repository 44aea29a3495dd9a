//! Federated learning: settings, the clients' label distribution as stacked bars, global test
//! accuracy per round for the compared methods (live while training), and the target scope and
//! the client scopes of a layer across rounds.

use super::View;
use super::{Action, CLASS_COLORS, RUN_COLORS, png_button};
use egui::{DragValue, Ui};
use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotPoints, Points};
use wsa_core::experiment::federated::{Aggregation, ClientSplit, FedResult};

fn settings(app: &mut View<'_>, ui: &mut Ui) {
    let fed = &mut app.settings.fed;
    ui.label("Data, model and seed come from the Experiment panel.");
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
            let is_prox = matches!(fed.aggregation, Aggregation::FedProx { .. });
            if ui.selectable_label(!is_prox, "FedAvg").clicked() {
                fed.aggregation = Aggregation::FedAvg;
            }
            if ui.selectable_label(is_prox, "FedProx").clicked() && !is_prox {
                fed.aggregation = Aggregation::FedProx { mu: 0.01 };
            }
            ui.checkbox(&mut fed.use_wsa, "with WSA");
        }
        let fed = &mut app.settings.fed;
        if let Aggregation::FedProx { mu } = &mut fed.aggregation {
            ui.add(DragValue::new(mu).range(0.0..=10.0).speed(0.001).prefix("μ "));
        }
        ui.add(DragValue::new(&mut fed.wsa.lambda).range(0.0..=100.0).speed(0.05).prefix("λ "));
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
        let r = Plot::new("fed_live").height(240.0).legend(Legend::default()).x_axis_label("round").show(ui, |plot| {
            let mut names: Vec<&String> = app.live.rounds.iter().map(|(n, _, _)| n).collect();
            names.dedup();
            for (i, name) in names.into_iter().enumerate() {
                let pts: Vec<[f64; 2]> =
                    app.live.rounds.iter().filter(|(n, _, _)| n == name).map(|(_, r, a)| [*r as f64, *a]).collect();
                plot.line(Line::new(name.clone(), PlotPoints::from(pts)).color(RUN_COLORS[i % 4]).width(2.0));
            }
        });
        let _ = r;
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
    summary_table(ui, result, marked.as_deref());
    ui.label("Global test accuracy per round");
    let r = ui.scope(|ui| {
        Plot::new("fed_accuracy").height(240.0).legend(Legend::default()).x_axis_label("round").show(ui, |plot| {
            for (i, run) in result.runs.iter().enumerate() {
                let pts: Vec<[f64; 2]> = run.rounds.iter().map(|r| [r.round as f64, r.test_accuracy]).collect();
                let width = if marked.as_deref() == Some(run.name.as_str()) { 4.5 } else { 2.0 };
                plot.line(Line::new(run.name.clone(), PlotPoints::from(pts)).color(RUN_COLORS[i % 4]).width(width));
            }
        })
    });
    saves.extend(png_button(ui, "fed-accuracy", r.response.rect));
    ui.label("Label distribution of the clients (stacked by class; faded: dropped)");
    let r = ui.scope(|ui| client_bars(ui, result));
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
        ui.label("Scope std of this layer across rounds: the fused target (line) and the clients' (points)");
        let r = ui.scope(|ui| {
            Plot::new("fed_scopes").height(240.0).legend(Legend::default()).x_axis_label("round").show(ui, |plot| {
                for (i, run) in result.runs.iter().enumerate() {
                    let color = RUN_COLORS[i % 4];
                    let target: Vec<[f64; 2]> =
                        run.rounds.iter().map(|r| [r.round as f64, r.target[layer].std]).collect();
                    plot.line(
                        Line::new(format!("{} target", run.name), PlotPoints::from(target)).color(color).width(2.0),
                    );
                    let clients: Vec<[f64; 2]> = run
                        .rounds
                        .iter()
                        .flat_map(|r| r.client_scopes.iter().map(move |s| [r.round as f64, s[layer].std]))
                        .collect();
                    plot.points(
                        Points::new(format!("{} clients", run.name), PlotPoints::from(clients))
                            .color(color)
                            .radius(2.0),
                    );
                }
            })
        });
        saves.extend(png_button(ui, "fed-scopes", r.response.rect));
    }
    for action in saves {
        app.act(action);
    }
}

/// The runs' accuracies; the row of `marked` (a tour step's run) carries the mark.
fn summary_table(ui: &mut Ui, result: &FedResult, marked: Option<&str>) {
    egui::Grid::new("fed_table").striped(true).show(ui, |ui| {
        for header in ["method", "final accuracy", "best accuracy", "rounds to target"] {
            ui.strong(header);
        }
        ui.end_row();
        for run in &result.runs {
            ui.label(&run.name);
            ui.label(format!("{:.4}", run.final_accuracy));
            ui.label(format!("{:.4}", run.best_accuracy));
            ui.label(run.rounds_to_target.map_or("-".to_string(), |r| r.to_string()));
            if marked == Some(run.name.as_str()) {
                super::tour::mark_label(ui, "look here");
            }
            ui.end_row();
        }
    });
}

fn client_bars(ui: &mut Ui, result: &FedResult) {
    let classes = result.clients.first().map_or(0, |c| c.label_counts.len());
    Plot::new("fed_clients").height(220.0).legend(Legend::default()).x_axis_label("client").show(ui, |plot| {
        let mut charts: Vec<BarChart> = Vec::new();
        for class in 0..classes {
            let bars = result
                .clients
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    let color = CLASS_COLORS[class % 10];
                    Bar::new(k as f64, c.label_counts[class] as f64).width(0.8).fill(if c.participates {
                        color
                    } else {
                        color.gamma_multiply(0.3)
                    })
                })
                .collect();
            let chart = BarChart::new(format!("class {class}"), bars).color(CLASS_COLORS[class % 10]);
            let below: Vec<&BarChart> = charts.iter().collect();
            let chart = chart.stack_on(&below);
            charts.push(chart);
        }
        for chart in charts {
            plot.bar_chart(chart);
        }
    });
}
