//! The loss plane through the selected method's A and B and the control point of a curve trained
//! between them: test loss as a heat map (log scale), the line A-B, the curve, the three models;
//! hovering shows the loss and accuracy of the nearest grid point. Computed in a background job.

use super::{Action, View};
use egui::{Color32, Ui};
use egui_plot::{Heatmap, Legend, Line, LineStyle, Plot, PlotPoint, PlotPoints, Points, Text};
use wsa_core::experiment::plane::{MAX_GRID, Plane};

pub fn show(app: &mut View<'_>, ui: &mut Ui) {
    let Some(result) = &app.settings.last_result else {
        ui.label("No results yet: choose a preset and press Run, then compute the plane of a method's pair.");
        return;
    };
    let method = app.settings.method.min(result.methods.len().saturating_sub(1));
    let name = result.methods[method].name;
    ui.horizontal(|ui| {
        ui.label(format!("The plane through {name}'s A and B and a trained curve's control point θ"));
        ui.add(egui::DragValue::new(&mut app.settings.plane.grid).range(2..=MAX_GRID).prefix("grid "));
        let ready = !app.is_busy() && app.models.get(method).is_some();
        if ui
            .add_enabled(ready, egui::Button::new("Compute the plane"))
            .on_hover_text("grid² evaluations of the test set, in the background (Cancel stops it)")
            .clicked()
        {
            app.act(Action::RunPlane);
        }
    });
    ui.label(egui::RichText::new("The method is the one selected in the Weight scopes tab.").weak());
    if app.is_busy() {
        ui.label(&app.live.stage);
    }
    let Some((of, plane)) = &app.settings.plane_result else { return };
    let (best, worst) = plane.loss_range();
    ui.label(format!("{of}: test loss {best:.4} to {worst:.4} over {} points", plane.loss.len()));
    draw(ui, plane);
}

fn draw(ui: &mut Ui, plane: &Plane) {
    let (nx, ny) = (plane.xs.len(), plane.ys.len());
    if nx < 2 || ny < 2 || plane.loss.len() != nx * ny {
        return;
    }
    let (dx, dy) = (plane.xs[1] - plane.xs[0], plane.ys[1] - plane.ys[0]);
    let logs = plane.log_loss();
    // Dark blue (low loss) to yellow (high), as in plane.png.
    let palette = [
        Color32::from_rgb(68, 1, 84),
        Color32::from_rgb(59, 82, 139),
        Color32::from_rgb(33, 145, 140),
        Color32::from_rgb(94, 201, 98),
        Color32::from_rgb(253, 231, 37),
    ];
    let response = Plot::new("loss plane")
        .height(ui.available_height().clamp(300.0, 620.0) - 40.0)
        .legend(Legend::default())
        .x_axis_label("along B − A")
        .y_axis_label("toward θ")
        .show(ui, |plot| {
            plot.add(
                Heatmap::new(logs, nx)
                    .palette(&palette)
                    .show_labels(false)
                    .at(PlotPoint::new(plane.xs[0] - dx / 2.0, plane.ys[0] - dy / 2.0))
                    .tile_size(dx as f32, dy as f32)
                    .name("log test loss"),
            );
            let (a, b) = (&plane.models[0], &plane.models[1]);
            plot.line(
                Line::new("line A-B", PlotPoints::from(vec![[a.x, a.y], [b.x, b.y]])).color(Color32::WHITE).width(2.0),
            );
            if let Some((kind, path)) = &plane.curve {
                plot.line(
                    Line::new(format!("{} curve", kind.name()), PlotPoints::from(path.clone()))
                        .color(Color32::WHITE)
                        .width(2.0)
                        .style(LineStyle::dashed_dense()),
                );
            }
            for m in &plane.models {
                plot.points(
                    Points::new(m.label.clone(), PlotPoints::from(vec![[m.x, m.y]])).color(Color32::WHITE).radius(5.0),
                );
                plot.text(
                    Text::new(m.label.clone(), PlotPoint::new(m.x, m.y + dy * 0.8), m.label.clone())
                        .color(Color32::WHITE),
                );
            }
            plot.pointer_coordinate()
        });
    // The nearest grid point to the pointer, with its numbers.
    if let Some(at) = response.inner {
        let i = ((at.x - plane.xs[0]) / dx).round();
        let j = ((at.y - plane.ys[0]) / dy).round();
        if (0.0..nx as f64).contains(&i) && (0.0..ny as f64).contains(&j) {
            let k = j as usize * nx + i as usize;
            ui.label(format!(
                "at ({:.3}, {:.3}): test loss {:.4}, test accuracy {:.4}",
                plane.xs[i as usize], plane.ys[j as usize], plane.loss[k], plane.accuracy[k]
            ));
        }
    }
}
