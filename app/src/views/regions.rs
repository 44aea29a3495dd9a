//! For the 2-D synthetic sets: the decision regions of the selected merged model as a heat map,
//! with the test points on top — the view that makes a barrier visible.

use super::{CLASS_COLORS, png_button};
use crate::app::WsaLabApp;
use egui::{Color32, Ui};
use egui_plot::{Heatmap, Plot, PlotPoint, PlotPoints, Points};
use wsa_core::data::{self, Dataset};
use wsa_core::model::HostParams;

const GRID: usize = 90;

/// The last computed map: predicted class per grid cell, its bounds, and the test points.
#[derive(Default)]
pub struct Cache {
    key: Option<(usize, usize, usize)>,
    map: Option<Result<RegionMap, String>>,
}

struct RegionMap {
    classes: Vec<f64>,
    low: [f64; 2],
    high: [f64; 2],
    accuracy: f64,
    test: Dataset,
}

fn compute(config: &wsa_core::experiment::connect::ConnectConfig, merged: &HostParams) -> Result<RegionMap, String> {
    let split = data::load(&config.data, config.seed).map_err(|e| e.to_string())?;
    let test = split.test;
    if test.sample_shape != [2] {
        return Err("decision regions are drawn for the 2-D sets (moons, circles, spirals, blobs)".into());
    }
    let (mut low, mut high) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for i in 0..test.len() {
        for d in 0..2 {
            low[d] = low[d].min(f64::from(test.sample(i)[d]));
            high[d] = high[d].max(f64::from(test.sample(i)[d]));
        }
    }
    for d in 0..2 {
        let pad = 0.1 * (high[d] - low[d]).max(1e-3);
        low[d] -= pad;
        high[d] += pad;
    }
    // Rows from the bottom (smallest y) up: egui_plot's heat map draws its first row at `at`,
    // the lower-left corner (checked against the test points in the app).
    let mut grid = Vec::with_capacity(GRID * GRID * 2);
    for row in 0..GRID {
        let y = low[1] + (row as f64 + 0.5) * (high[1] - low[1]) / GRID as f64;
        for col in 0..GRID {
            let x = low[0] + (col as f64 + 0.5) * (high[0] - low[0]) / GRID as f64;
            grid.extend_from_slice(&[x as f32, y as f32]);
        }
    }
    let params = merged.to_device(&wsa_core::device::cpu().device);
    let classes: Vec<f64> = wsa_core::wait(params.predict(&grid, GRID * GRID))
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(f64::from)
        .collect();
    let predicted = wsa_core::wait(params.predict(&test.features, test.len())).map_err(|e| e.to_string())?;
    let correct = predicted.iter().zip(&test.labels).filter(|(p, l)| p == l).count();
    Ok(RegionMap { classes, low, high, accuracy: correct as f64 / test.len().max(1) as f64, test })
}

pub fn show(app: &mut WsaLabApp, ui: &mut Ui) {
    let Some(result) = &app.settings.last_result else {
        ui.label("No results yet: choose the Moons preset and press Run.");
        return;
    };
    if !matches!(result.config.data.dataset, data::DatasetSpec::Synthetic { .. }) {
        ui.label("Decision regions are drawn for the 2-D sets (moons, circles, spirals, blobs): try the Moons preset.");
        return;
    }
    let method = app.settings.method.min(result.methods.len().saturating_sub(1));
    let Some(pair) = app.models.get(method) else {
        ui.label("The trained models are not in memory (they are not stored between sessions): press Run.");
        return;
    };
    let index = app.settings.alpha_index.min(result.methods[method].path.len().saturating_sub(1));
    let alpha = result.methods[method].path[index].alpha;
    let key = (method, index, app.models.len());
    if app.regions.key != Some(key) {
        let map = pair
            .a
            .interpolate(&pair.b, alpha)
            .map_err(|e| e.to_string())
            .and_then(|merged| compute(&result.config, &merged));
        app.regions = Cache { key: Some(key), map: Some(map) };
    }
    ui.horizontal(|ui| {
        for (i, m) in result.methods.iter().enumerate() {
            ui.selectable_value(&mut app.settings.method, i, m.name.name());
        }
        ui.label(format!("merged model at α = {alpha:.2} (select the point on the Interpolation path tab)"));
    });
    let mut save = None;
    match &app.regions.map {
        Some(Ok(map)) => {
            ui.label(format!("test accuracy of this model: {:.4}", map.accuracy));
            let (w, h) = ((map.high[0] - map.low[0]) as f32, (map.high[1] - map.low[1]) as f32);
            let plot_response = ui.scope(|ui| {
                Plot::new("regions").height(420.0).data_aspect(1.0).show(ui, |plot| {
                    plot.heatmap(
                        Heatmap::new(map.classes.clone(), GRID)
                            .at(PlotPoint::new(map.low[0], map.low[1]))
                            .size(w, h)
                            .show_labels(false)
                            .custom_mapping(Box::new(|v| {
                                CLASS_COLORS[(v.max(0.0) as usize) % 10].gamma_multiply(0.45)
                            })),
                    );
                    for class in 0..map.test.num_classes {
                        let pts: Vec<[f64; 2]> = (0..map.test.len())
                            .filter(|&i| map.test.labels[i] as usize == class)
                            .map(|i| [f64::from(map.test.sample(i)[0]), f64::from(map.test.sample(i)[1])])
                            .collect();
                        plot.points(
                            Points::new(format!("class {class}"), PlotPoints::from(pts))
                                .color(CLASS_COLORS[class % 10])
                                .radius(2.5),
                        );
                    }
                })
            });
            save = png_button(
                ui,
                &format!("regions-{}-alpha{alpha:.2}", result.methods[method].name),
                plot_response.response.rect,
            );
        }
        Some(Err(e)) => {
            ui.colored_label(Color32::from_rgb(200, 40, 40), e);
        }
        None => {}
    }
    if let Some((name, rect)) = save {
        app.save_plot_png(ui.ctx(), &name, rect);
    }
}
