//! The loss plane through the selected method's A and B and the control point of a curve trained
//! between them: test loss as a heat map (log scale), the line A-B, the curve, the three models;
//! hovering shows the loss and accuracy of the nearest grid point, a click selects that point's
//! model (the Weight scopes tab then shows its histograms). Computed in a background job.

use super::figure::{self, Size};
use super::{Action, View, publish_target};
use crate::results::PlaneResult;
use crate::state::Tab;
use egui::Ui;
use wsa_core::experiment::plane::{MAX_GRID, Plane};

pub fn show(app: &mut View<'_>, ui: &mut Ui) {
    let Some(result) = app.results.connect() else {
        ui.label("No results yet: choose a preset and press Run, then compute the plane of a method's pair.");
        return;
    };
    let method = app.settings.method.min(result.methods.len().saturating_sub(1));
    let name = result.methods[method].method;
    let methods: Vec<_> = result.methods.iter().map(|m| m.method).collect();
    ui.horizontal(|ui| {
        ui.label(format!("The plane through {name}'s A and B and a trained curve's control point θ"));
        ui.add(egui::DragValue::new(&mut app.settings.plane.grid).range(2..=MAX_GRID).prefix("grid "));
        let ready = !app.is_busy() && app.models.get(method).is_some();
        let compute = ui
            .add_enabled(ready, egui::Button::new("Compute the plane"))
            .on_hover_text("grid² evaluations of the test set, in the background (Cancel stops it)");
        publish_target("compute-plane", &compute);
        if compute.clicked() {
            app.act(Action::RunPlane);
        }
    });
    ui.label(egui::RichText::new("The method is the one selected in the Weight scopes tab.").weak());
    if app.is_busy() {
        ui.label(&app.live.stage);
    }
    let Some(PlaneResult { method: of, plane, .. }) = app.results.plane() else { return };
    let (best, worst) = plane.loss_range();
    ui.label(format!(
        "{of}: test loss {best:.4} to {worst:.4} over {} points. Click a point to look at its model's weight scopes.",
        plane.loss.len()
    ));
    let of = *of;
    if app.answered_tour_step().is_some_and(|s| s.view == Tab::Plane) {
        super::tour::mark_label(ui, &app.tour.tour().words.panel.look_here_plane);
    }
    // The selected point's line stays above the plot (a line appearing under it would move the
    // plot under the pointer).
    let selected = app.settings.plane_point.and_then(|(i, j)| {
        let k = plane.index(i, j)?;
        Some((plane.xs[i], plane.ys[j], plane.loss[k], plane.accuracy[k]))
    });
    let mut show_scopes = false;
    ui.horizontal(|ui| {
        let Some((x, y, loss, accuracy)) = selected else {
            ui.label(egui::RichText::new("No point selected.").weak());
            return;
        };
        ui.label(format!("selected ({x:.3}, {y:.3}): test loss {loss:.4}, test accuracy {accuracy:.4}"));
        let show = ui.button("Show its weight scopes");
        publish_target("plane-point-scopes", &show);
        show_scopes = show.clicked();
    });
    let clicked = draw(ui, plane, app.settings.plane_point);
    if clicked.is_some() {
        app.settings.plane_point = clicked;
    }
    if show_scopes {
        // The scopes view shows the plane point of the method the plane is of.
        if let Some(index) = methods.iter().position(|m| *m == of) {
            app.settings.method = index;
        }
        app.settings.tab = Tab::Scopes;
    }
}

/// Draws the plane with the selected grid point (column, row) marked; returns the grid point
/// clicked, if any.
fn draw(ui: &mut Ui, plane: &Plane, selected: Option<(usize, usize)>) -> Option<(usize, usize)> {
    let (nx, ny) = (plane.xs.len(), plane.ys.len());
    if nx < 2 || ny < 2 || plane.loss.len() != nx * ny {
        return None;
    }
    let described = wsa_figures::describe::plane(plane, selected);
    let panel = described.panels.first()?;
    let height = ui.available_height().clamp(300.0, 620.0) - 40.0;
    if let Some(heatmap) = &panel.heatmap {
        figure::colour_bar(ui, heatmap);
    }
    let response = figure::draw(ui, "loss plane", panel, Size::height(height), |plot| plot.pointer_coordinate());
    publish_target("plane-plot", &response.response);
    // The nearest grid point to the pointer, with its numbers; a click selects it.
    let hovered = response.inner.and_then(|at| plane.nearest(at.x, at.y));
    if let Some((i, j)) = hovered {
        let k = j * nx + i;
        ui.label(format!(
            "at ({:.3}, {:.3}): test loss {:.4}, test accuracy {:.4}",
            plane.xs[i], plane.ys[j], plane.loss[k], plane.accuracy[k]
        ));
    }
    hovered.filter(|_| response.response.clicked())
}
