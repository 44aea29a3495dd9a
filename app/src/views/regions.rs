//! For the 2-D synthetic sets: the decision regions of the selected merged model as a heat map,
//! with the test points on top — the view that makes a barrier visible.

use super::View;
use super::figure::color;
use super::png_button;
use egui::Ui;
use egui_plot::{Plot, PlotImage, PlotPoint, PlotPoints, Points};
use wsa_core::data;
use wsa_figures::palette;

pub fn show(app: &mut View<'_>, ui: &mut Ui) {
    let Some(result) = app.results.connect() else {
        ui.label("No results yet: choose the Moons preset and press Run.");
        return;
    };
    if !matches!(result.config.data.dataset, data::DatasetSpec::Synthetic { .. }) {
        ui.label("Decision regions are drawn for the 2-D sets (moons, circles, spirals, blobs): try the Moons preset.");
        return;
    }
    let method = app.settings.method.min(result.methods.len().saturating_sub(1));
    if app.models.get(method).is_none() {
        ui.label(if app.is_busy() {
            "The trained models arrive when the run ends (the path shows the seeds finished so far)."
        } else {
            "The trained models are not in memory (they are not stored between sessions): press Run."
        });
        return;
    }
    let index = app.settings.alpha_index.min(result.methods[method].path.len().saturating_sub(1));
    let alpha = result.methods[method].path[index].alpha;
    ui.horizontal(|ui| {
        for (i, m) in result.methods.iter().enumerate() {
            ui.selectable_value(&mut app.settings.method, i, m.method.name());
        }
        ui.label(format!("merged model at α = {alpha:.2} (select the point on the Interpolation path tab)"));
    });
    let mut save = None;
    match app.derived.regions(method, index) {
        Some(Ok(map)) => {
            ui.label(format!("test accuracy of this model: {:.4}", map.accuracy));
            let (w, h) = ((map.high[0] - map.low[0]) as f32, (map.high[1] - map.low[1]) as f32);
            let plot_response = ui.scope(|ui| {
                Plot::new("regions").height(420.0).data_aspect(1.0).show(ui, |plot| {
                    if let Some(texture) = app.derived.regions_image(method, index) {
                        let centre = PlotPoint::new((map.low[0] + map.high[0]) / 2.0, (map.low[1] + map.high[1]) / 2.0);
                        plot.image(PlotImage::new("regions", texture.id(), centre, egui::vec2(w, h)));
                    }
                    for class in 0..map.test.num_classes {
                        let pts: Vec<[f64; 2]> = (0..map.test.len())
                            .filter(|&i| map.test.labels[i] as usize == class)
                            .map(|i| [f64::from(map.test.sample(i)[0]), f64::from(map.test.sample(i)[1])])
                            .collect();
                        plot.points(
                            Points::new(format!("class {class}"), PlotPoints::from(pts))
                                .color(color(palette::CLASSES[class % palette::CLASSES.len()]))
                                .radius(2.5),
                        );
                    }
                })
            });
            save = png_button(
                ui,
                &format!("regions-{}-alpha{alpha:.2}", result.methods[method].method),
                plot_response.response.rect,
            );
        }
        Some(Err(e)) => {
            ui.colored_label(super::figure::color(wsa_figures::palette::ERROR), e.to_string());
        }
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("computing the regions…");
            });
        }
    }
    if let Some(action) = save {
        app.act(action);
    }
}
