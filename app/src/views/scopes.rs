//! Weight scopes of one layer: histograms of A, B (before and after alignment, for methods that
//! align) and the selected merged model, with the target Gaussian where the method has one
//! (WSA, rescaling), a table of
//! mean, std and Gaussian fit, what the alignment did, and the scope trajectories over training.

use super::View;
use super::figure::{self, Size};
use super::png_button;
use crate::results::PlaneResult;
use egui::Ui;
use wsa_core::experiment::connect::{AlignmentReport, EpochRecord, LayerComparison};
use wsa_core::experiment::method::Alignment;
use wsa_core::scope::LayerReport;
use wsa_figures::describe::{self, MergedHistogram};

/// The layer of the model the scopes view compares with A and B, and its label: the selected
/// loss-plane point's model when one is selected for this method (needs the plane's models in
/// memory), otherwise the merged model at the selected α — computed by `derived` from the
/// trained models when they are in memory, else the stored midpoint (α = 0.5).
fn merged_layer(
    app: &View<'_>,
    method: usize,
    layer: &LayerComparison,
    alpha: f64,
) -> (LayerReport, Vec<u64>, f64, f64, String) {
    let point = app.settings.plane_point_of(app.results, method);
    let computed = app.derived.merged_layer(method, app.settings.alpha_index, app.settings.layer, point);
    if let (Some(m), Some((i, j)), Some(PlaneResult { plane, .. })) = (computed, point, app.results.plane()) {
        let (x, y) = (plane.xs[i], plane.ys[j]);
        return (m.report.clone(), m.counts.clone(), m.low, m.high, format!("plane point ({x:.2}, {y:.2})"));
    }
    match computed {
        Some(m) => (m.report.clone(), m.counts.clone(), m.low, m.high, format!("merged, α = {alpha:.2}")),
        None => (
            layer.merged.clone(),
            layer.histogram.merged.clone(),
            layer.histogram.low,
            layer.histogram.high,
            "merged, α = 0.5 (rerun for other α)".to_string(),
        ),
    }
}

/// Says which model stands for "merged" when a plane point is selected, with the way back to
/// the path's merged model.
fn plane_point_notice(app: &mut View<'_>, ui: &mut Ui, method: usize) {
    let Some((i, j)) = app.settings.plane_point_of(app.results, method) else { return };
    let in_memory =
        app.derived.merged_layer(method, app.settings.alpha_index, app.settings.layer, Some((i, j))).is_some();
    ui.horizontal(|ui| {
        if in_memory {
            ui.label("Showing the model of the point selected on the loss plane in place of the merged model.");
        } else {
            ui.label("The point selected on the loss plane needs the plane's models, which are not kept between sessions: compute the plane again.");
        }
        if ui.button("Show the path's merged model").clicked() {
            app.settings.plane_point = None;
        }
    });
}

pub fn show(app: &mut View<'_>, ui: &mut Ui) {
    let Some(result) = app.results.connect() else {
        ui.label("No results yet: press Run.");
        return;
    };
    ui.horizontal(|ui| {
        egui::ComboBox::from_label("method")
            .selected_text(result.methods.get(app.settings.method).map_or("?", |m| m.method.name()))
            .show_ui(ui, |ui| {
                for (i, m) in result.methods.iter().enumerate() {
                    ui.selectable_value(&mut app.settings.method, i, m.method.name());
                }
            });
        let Some(first) = result.methods.first() else { return };
        egui::ComboBox::from_label("layer")
            .selected_text(first.layers.get(app.settings.layer).map_or("?", |l| l.path.as_str()))
            .show_ui(ui, |ui| {
                for (i, layer) in first.layers.iter().enumerate() {
                    ui.selectable_value(&mut app.settings.layer, i, &layer.path);
                }
            });
    });
    let Some(method) = result.methods.get(app.settings.method) else { return };
    let Some(layer) = method.layers.get(app.settings.layer) else { return };
    let path = &method.path;
    let alpha = path.get(app.settings.alpha_index).map_or(0.5, |p| p.alpha);
    let (merged, merged_counts, low, high, merged_label) = merged_layer(app, app.settings.method, layer, alpha);

    ui.label(format!("{} of {} (λ = {}), {} weights", layer.path, method.method, method.lambda, layer.a.count));
    plane_point_notice(app, ui, app.settings.method);
    // An answered tour step that marks this layer of this method.
    let marked = app.answered_tour_step().is_some_and(|s| {
        s.highlight == crate::tour::Highlight::Layer { method: method.method, layer: app.settings.layer }
    });
    if marked {
        super::tour::mark_label(ui, &app.tour.tour().words.panel.look_here_layer);
    }
    if let Some(report) = &method.alignment {
        alignment_summary(ui, report, &layer.path);
    }
    let merged_histogram = MergedHistogram { counts: &merged_counts, low, high, label: merged_label.clone() };
    let panel = describe::histogram_panel(layer, &merged_histogram, method.method);
    let plot_response = ui.scope(|ui| figure::draw(ui, "histogram", &panel, Size::height(300.0), |_| ()));
    let save_histogram =
        png_button(ui, &format!("histogram-{}-{}", method.method, layer.path), plot_response.response.rect);
    scope_table(ui, layer, &merged, &merged_label, describe::has_target(method.method));
    let name = format!("trajectory-{}-{}", method.method, layer.path);
    let save_trajectory = trajectories(ui, result.curves(method.method.training), app.settings.layer, &name);
    for action in save_histogram.into_iter().chain(save_trajectory) {
        app.act(action);
    }
}

fn scope_table(ui: &mut Ui, layer: &LayerComparison, merged: &LayerReport, merged_label: &str, has_target: bool) {
    super::table(ui, "scope_table", |ui| {
        for header in ["model", "mean", "std", "excess kurtosis", "KS distance to its Gaussian"] {
            ui.strong(header);
        }
        ui.end_row();
        let unaligned = layer.b_unaligned.as_ref().map(|r| ("B before alignment", r));
        for (name, r) in [("A", &layer.a), ("B", &layer.b)].into_iter().chain(unaligned).chain([(merged_label, merged)])
        {
            ui.label(name);
            ui.label(format!("{:+.5}", r.scope.mean));
            ui.label(format!("{:.5}", r.scope.std));
            ui.label(format!("{:+.3}", r.fit.excess_kurtosis));
            ui.label(format!("{:.4}", r.fit.ks_distance));
            ui.end_row();
        }
        // A plain pair was not trained toward this scope: it is only A's and B's fused.
        ui.label(if has_target { "target" } else { "fused scope (not a target here)" });
        ui.label(format!("{:+.5}", layer.target.mean));
        ui.label(format!("{:.5}", layer.target.std));
        ui.end_row();
    });
    ui.label("A Gaussian has excess kurtosis 0; a uniform −1.2. KS distance: the largest gap between the empirical CDF and the fitted Gaussian's.");
}

/// What aligning B to A did to this layer: a permutation changes no scope but brings the
/// weights themselves closer; rescaling changes the scopes.
fn alignment_summary(ui: &mut Ui, report: &AlignmentReport, path: &str) {
    let what = match report.kind {
        Alignment::WeightMatching => {
            let moved: Vec<String> =
                report.permutations.iter().map(|p| format!("{} of {} units of {}", p.moved, p.size, p.layer)).collect();
            format!(
                "B was aligned to A by weight matching ({} sweep(s); moved {}). A permutation leaves every scope as it was.",
                report.sweeps,
                moved.join(", ")
            )
        }
        Alignment::Rescale => {
            "A and B were rescaled, layer by layer, to the fused target scope after training (a baseline, not WSA)."
                .to_string()
        }
        Alignment::None => return,
    };
    ui.label(what);
    if let Some(d) = report.distances.iter().find(|d| d.path == path) {
        ui.label(format!("‖A − B‖ of {path}: {:.4} before alignment, {:.4} after", d.before, d.after));
    }
}

/// Draws the trajectories of one trained pair; returns a "Save PNG" request for them.
fn trajectories(ui: &mut Ui, curves: &[EpochRecord], layer: usize, name: &str) -> Option<super::Action> {
    if curves.is_empty() {
        return None;
    }
    ui.separator();
    ui.label("Scope trajectory over training (this layer's std; dashed: mean)");
    let panel = describe::trajectory_panel(curves, layer);
    let plot_response = ui.scope(|ui| figure::draw(ui, "trajectory", &panel, Size::height(200.0), |_| ()));
    png_button(ui, name, plot_response.response.rect)
}
