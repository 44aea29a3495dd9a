//! Loss and accuracy along θ(α) = (1 − α) θ_A + α θ_B for every method, with the barriers.
//! Clicking a point (or moving the slider) selects that merged model for every other view.

use super::View;
use super::{method_color, png_button, swatch};
use egui::Ui;
use egui_plot::{Legend, Line, Plot, PlotPoints, Points, VLine};
use wsa_core::experiment::connect::ConnectResult;
use wsa_core::merge::PathPoint;

pub fn show(app: &mut View<'_>, ui: &mut Ui) {
    let Some(result) = &app.settings.last_result else {
        ui.label("No results yet: choose a preset and press Run.");
        return;
    };
    let points = result.methods.first().map_or(0, |v| v.path.len());
    if points == 0 {
        return;
    }
    let selected = app.settings.alpha_index.min(points - 1);
    ui.label(format!("{} · A and B differ in {} · {}", result.dataset, result.difference, result.device));
    barrier_table(ui, result);
    if let Some(note) = crate::NUMBERS_NOTE {
        ui.label(egui::RichText::new(note).weak());
    }
    let width = (ui.available_width() / 2.0 - 8.0).max(200.0);
    let mut clicked = None;
    let mut save = None;
    ui.horizontal(|ui| {
        for (title, value) in
            [("test loss", (|p: &PathPoint| p.loss) as fn(&PathPoint) -> f64), ("test accuracy", |p| p.accuracy)]
        {
            ui.vertical(|ui| {
                ui.label(title);
                let alpha = result.methods[0].path[selected].alpha;
                let response = Plot::new(title)
                    .width(width)
                    .height(280.0)
                    .legend(Legend::default())
                    .x_axis_label("α  (0 = A, 1 = B)")
                    .allow_scroll(false)
                    .show(ui, |plot| {
                        for v in &result.methods {
                            let color = method_color(v.name);
                            let pts: Vec<[f64; 2]> = v.path.iter().map(|p| [p.alpha, value(p)]).collect();
                            // One name for the line and its points: one legend entry, with the barrier.
                            let barrier = if title == "test loss" { v.barriers.loss } else { v.barriers.accuracy };
                            let name = format!("{} (λ = {}) barrier {barrier:.3}", v.name, v.lambda);
                            plot.line(Line::new(name.clone(), PlotPoints::from(pts.clone())).color(color).width(2.5));
                            plot.points(Points::new(name, PlotPoints::from(pts)).color(color).radius(3.0));
                        }
                        plot.vline(VLine::new("selected α", alpha).color(egui::Color32::GRAY));
                        (plot.response().clicked(), plot.pointer_coordinate())
                    });
                if let (true, Some(at)) = response.inner {
                    clicked = Some(at.x);
                }
                if let Some(request) = png_button(ui, &format!("path-{}", title.replace(' ', "-")), ui.min_rect()) {
                    save = Some(request);
                }
            });
        }
    });
    // The plot's save request; pushed as a field (the result above still borrows the settings).
    if let Some(action) = save {
        app.actions.push(action);
    }
    if let Some(x) = clicked {
        app.settings.alpha_index = nearest_index(&result.methods[0].path, x);
    }
    let mut index = app.settings.alpha_index.min(points - 1);
    ui.add(egui::Slider::new(&mut index, 0..=points - 1).text("selected point on the path").show_value(false));
    app.settings.alpha_index = index;
    selected_metrics(ui, result, index);
}

fn nearest_index(path: &[PathPoint], alpha: f64) -> usize {
    path.iter()
        .enumerate()
        .min_by(|(_, p), (_, q)| (p.alpha - alpha).abs().total_cmp(&(q.alpha - alpha).abs()))
        .map_or(0, |(i, _)| i)
}

fn barrier_table(ui: &mut Ui, result: &ConnectResult) {
    egui::Grid::new("barriers").striped(true).show(ui, |ui| {
        for header in ["method", "λ", "acc A", "acc B", "loss barrier", "accuracy barrier", "scope distance"] {
            ui.strong(header);
        }
        ui.end_row();
        for v in &result.methods {
            swatch(ui, method_color(v.name), v.name.name()).on_hover_text(v.name.describe());
            ui.label(format!("{}", v.lambda));
            ui.label(format!("{:.4}", v.endpoint_a.accuracy));
            ui.label(format!("{:.4}", v.endpoint_b.accuracy));
            ui.label(format!("{:.4}", v.barriers.loss));
            ui.label(format!("{:.4}", v.barriers.accuracy));
            ui.label(format!("{:.5}", v.scope_distance));
            ui.end_row();
        }
    });
}

fn selected_metrics(ui: &mut Ui, result: &ConnectResult, index: usize) {
    let alpha = result.methods[0].path[index].alpha;
    ui.label(format!("Selected merged model: α = {alpha:.3}"));
    for v in &result.methods {
        let p = v.path[index];
        ui.label(format!("  {}: test loss {:.4}, test accuracy {:.4}", v.name, p.loss, p.accuracy));
    }
}
