//! Loss and accuracy along θ(α) = (1 − α) θ_A + α θ_B for every method, with the barriers.
//! A run over several seeds shows the mean line with the band from the lowest to the highest
//! seed and the table as mean ± std; each seed is one click away. Clicking a point (or moving
//! the slider) selects that merged model for every other view (those show the first seed).

use super::View;
use super::figure::{self, Size};
use super::tour::mark_label;
use super::{method_color, png_button, swatch};
use crate::tour::Highlight;
use egui::Ui;
use egui_plot::VLine;
use wsa_core::experiment::connect::ConnectResult;
use wsa_core::experiment::curve::CurveResult;
use wsa_core::experiment::method::Method;
use wsa_core::experiment::seeds::{MethodSpread, mean_std};
use wsa_core::merge::PathPoint;
use wsa_figures::describe::{self, Marked, Measure};
use wsa_figures::palette;

pub fn show(app: &mut View<'_>, ui: &mut Ui) {
    let Some(result) = app.results.connect() else {
        ui.label("No results yet: choose a preset and press Run.");
        return;
    };
    let points = result.methods.first().map_or(0, |v| v.path.len());
    if points == 0 {
        return;
    }
    let selected = app.settings.alpha_index.min(points - 1);
    ui.label(format!("{} · A and B differ in {} · {}", result.dataset, result.difference, result.device));
    let mut path_seed = app.settings.path_seed.filter(|&k| k < result.seeds.len());
    seed_choice(ui, result, &mut path_seed);
    let shown = result.shown(path_seed);
    let curves = result.curves_shown(path_seed);
    // What an answered tour step marks: a method's line and row, or its curve.
    let marked = app.answered_tour_step().map(|s| s.highlight.clone());
    let marked_line = match marked {
        Some(Highlight::Method(m)) => Some(m),
        _ => None,
    };
    let marked_curve = match marked {
        Some(Highlight::Curve(m)) => Some(m),
        _ => None,
    };
    let words = &app.tour.tour().words.panel;
    barrier_table(ui, &shown, marked_line, &words.look_here);
    curve_table(ui, &shown, &curves, marked_curve, &words.look_here_curve);
    if curves.is_empty() && result.methods.iter().any(|m| m.curve.is_some()) {
        ui.label("Curves are drawn per seed: pick one above to see its curves.");
    }
    if let Some(note) = crate::NUMBERS_NOTE {
        ui.label(egui::RichText::new(note).weak());
    }
    let width = (ui.available_width() / 2.0 - 8.0).max(200.0);
    let marked = marked_line.map(Marked::Line).or(marked_curve.map(Marked::Curve));
    let mut clicked = None;
    let mut save = None;
    ui.horizontal(|ui| {
        for measure in Measure::ALL {
            ui.vertical(|ui| {
                let alpha = result.methods[0].path[selected].alpha;
                let panel = describe::path_panel(result, path_seed, measure, marked);
                ui.label(&panel.title);
                let selected =
                    figure::WindowEntry { name: "selected α", color: figure::color(palette::SELECTED_ALPHA) };
                let size = Size { height: 280.0, width: Some(width) };
                let response =
                    figure::draw_with_window_entries(ui, measure.name(), &panel, size, &[selected], |plot| {
                        plot.vline(VLine::new("selected α", alpha).color(figure::color(palette::SELECTED_ALPHA)));
                        (plot.response().clicked(), plot.pointer_coordinate())
                    });
                if let (true, Some(at)) = response.inner {
                    clicked = Some(at.x);
                }
                if let Some(request) =
                    png_button(ui, &format!("path-{}", measure.name().replace(' ', "-")), ui.min_rect())
                {
                    save = Some(request);
                }
            });
        }
    });
    app.settings.path_seed = path_seed;
    if let Some(action) = save {
        app.act(action);
    }
    if let Some(x) = clicked {
        app.settings.alpha_index = nearest_index(&result.methods[0].path, x);
    }
    let mut index = app.settings.alpha_index.min(points - 1);
    ui.add(egui::Slider::new(&mut index, 0..=points - 1).text("selected point on the path").show_value(false));
    // Choosing a point on the path makes the merged model the one the scopes show again.
    if clicked.is_some() || index != app.settings.alpha_index {
        app.settings.plane_point = None;
    }
    app.settings.alpha_index = index;
    selected_metrics(ui, result, &shown, index);
}

/// "All seeds (mean, band)" or one seed, for a run over several.
fn seed_choice(ui: &mut Ui, result: &ConnectResult, path_seed: &mut Option<usize>) {
    if result.seeds.len() < 2 {
        return;
    }
    ui.horizontal_wrapped(|ui| {
        ui.label("Show:");
        ui.selectable_value(path_seed, None, format!("mean of {} (band: lowest to highest)", result.seeds_label()))
            .on_hover_text("Each line is the mean over the seeds; the shaded band spans the lowest to the highest seed; the table shows mean ± sample std");
        for (k, run) in result.seeds.iter().enumerate() {
            ui.selectable_value(path_seed, Some(k), format!("seed {}", run.seed));
        }
    });
}

fn nearest_index(path: &[PathPoint], alpha: f64) -> usize {
    path.iter()
        .enumerate()
        .min_by(|(_, p), (_, q)| (p.alpha - alpha).abs().total_cmp(&(q.alpha - alpha).abs()))
        .map_or(0, |(i, _)| i)
}

/// The barrier table; the row of `marked` (a tour step's method) carries the mark.
fn barrier_table(ui: &mut Ui, shown: &[MethodSpread], marked: Option<Method>, look_here: &str) {
    super::table(ui, "barriers", |ui| {
        for header in ["method", "λ", "acc A", "acc B", "loss barrier", "accuracy barrier", "scope distance"] {
            ui.strong(header);
        }
        ui.end_row();
        for v in shown {
            swatch(ui, method_color(v.method), v.method.name()).on_hover_text(v.method.describe());
            ui.label(format!("{}", v.lambda));
            for (summary, digits) in [
                (&v.accuracy_a, 4),
                (&v.accuracy_b, 4),
                (&v.loss_barrier, 4),
                (&v.accuracy_barrier, 4),
                (&v.scope_distance, 5),
            ] {
                ui.label(mean_std(summary, digits));
            }
            if marked == Some(v.method) {
                mark_label(ui, look_here);
            }
            ui.end_row();
        }
    });
}

/// Line against curve for every method with a curve: barriers and the mean loss along each;
/// the row of `marked` (a tour step's curve) carries the mark.
fn curve_table(
    ui: &mut Ui,
    shown: &[MethodSpread],
    curves: &[(Method, &CurveResult)],
    marked: Option<Method>,
    look_here: &str,
) {
    if curves.is_empty() {
        return;
    }
    ui.add_space(4.0);
    super::table(ui, "curves", |ui| {
        for header in [
            "method",
            "curve",
            "loss barrier: line → curve",
            "accuracy barrier: line → curve",
            "mean loss: line → curve",
        ] {
            ui.strong(header);
        }
        ui.end_row();
        for (name, curve) in curves {
            let Some(line) = shown.iter().find(|v| v.method == *name) else { continue };
            swatch(ui, method_color(*name), name.name());
            ui.label(curve.kind.name());
            ui.label(format!("{:.4} → {:.4}", line.loss_barrier.mean, curve.barriers.loss));
            ui.label(format!("{:.4} → {:.4}", line.accuracy_barrier.mean, curve.barriers.accuracy));
            ui.label(format!("{:.4} → {:.4}", curve.line_mean_loss, curve.mean_loss));
            if marked == Some(*name) {
                mark_label(ui, look_here);
            }
            ui.end_row();
        }
    });
}

fn selected_metrics(ui: &mut Ui, result: &ConnectResult, shown: &[MethodSpread], index: usize) {
    let alpha = result.methods[0].path[index].alpha;
    let whose = if result.seeds.len() > 1 {
        format!(" (the other tabs show seed {}, the first)", result.config.seed)
    } else {
        String::new()
    };
    ui.label(format!("Selected merged model: α = {alpha:.3}{whose}"));
    for v in shown {
        if let Some(p) = v.path.get(index) {
            ui.label(format!(
                "  {}: test loss {}, test accuracy {}",
                v.method,
                mean_std(&p.loss, 4),
                mean_std(&p.accuracy, 4)
            ));
        }
    }
}
