//! What the views show that has to be computed from the results and the models: the decision
//! regions of the selected merged model, the selected layer of the merged model (scope and
//! histogram), whether a fetched data set is on disk. `WsaLabApp::logic` brings it up to date
//! when the selection changes; the views only read it, so no frame waits on it. The regions (a
//! data set generated again and ~8,000 predictions) are computed off the UI thread
//! (`platform::compute`).

use crate::app::Models;
use crate::platform::{self, Pending};
use crate::results::Results;
use crate::state::{Settings, Tab};
use crate::{AppError, AppResult};
use std::path::PathBuf;
use wsa_core::data::{self, Dataset};
use wsa_core::experiment::connect::ConnectConfig;
use wsa_core::model::HostParams;
use wsa_core::scope::{self, LayerReport};

/// Cells per side of the decision-region grid.
pub const GRID: usize = 90;

/// The predicted class per grid cell of a 2-D model, its bounds, and the test points.
pub struct RegionMap {
    pub classes: Vec<f64>,
    pub low: [f64; 2],
    pub high: [f64; 2],
    pub accuracy: f64,
    pub test: Dataset,
}

/// One layer of the merged model at the selected α, or of the selected loss-plane point's model.
#[derive(Clone)]
pub struct MergedLayer {
    pub report: LayerReport,
    pub counts: Vec<u64>,
    pub low: f64,
    pub high: f64,
}

/// (method, point on the path): what a derived value was computed for.
type Selection = (usize, usize);

/// (method, point on the path, layer, plane grid point): what the scopes view's model is.
type MergedKey = (usize, usize, usize, Option<(usize, usize)>);

#[derive(Default)]
pub struct Derived {
    /// The decision regions of the selected merged model, while the Regions tab is open.
    regions: Option<(Selection, Pending<AppResult<RegionMap>>)>,
    /// The regions as a texture of one pixel per grid cell in its class's colour: one image
    /// for the plot to draw, not 8,100 cells every frame.
    regions_image: Option<(Selection, egui::TextureHandle)>,
    /// The selected layer of the selected merged model or plane point.
    merged: Option<(MergedKey, Option<MergedLayer>)>,
    /// The fetched data set's folder when it is not on disk, for the data set and folder chosen.
    missing_data: Option<((data::DatasetSpec, PathBuf), Option<PathBuf>)>,
}

impl Derived {
    /// Brings everything the open view shows up to date with `settings`, `results` and the
    /// trained `models` in memory; cheap when nothing changed. `wake` repaints when a background
    /// result arrives.
    pub fn update(&mut self, settings: &Settings, results: &Results, models: &Models, wake: &egui::Context) {
        self.update_missing_data(&settings.config);
        let Some(result) = results.connect() else { return };
        let (plane_third, models) = (models.plane_third.as_ref(), &models.pairs);
        let method = settings.method.min(result.methods.len().saturating_sub(1));
        let Some(path) = result.methods.get(method).map(|m| &m.path) else { return };
        let index = settings.alpha_index.min(path.len().saturating_sub(1));
        let alpha = path.get(index).map_or(0.5, |p| p.alpha);
        let selection = (method, index);
        if settings.tab == Tab::Regions
            && self.regions.as_ref().is_none_or(|(key, _)| *key != selection)
            && matches!(result.config.data.dataset, data::DatasetSpec::Synthetic { .. })
            && let Some(pair) = models.get(method)
            && let Some(shared) = results.shared_connect()
        {
            let pair = pair.clone();
            let pending = platform::compute(wake, move || {
                pair.a.interpolate(&pair.b, alpha).map_err(AppError::from).and_then(|m| regions(&shared.config, &m))
            });
            self.regions = Some((selection, pending));
        }
        if let Some((key, pending)) = &self.regions
            && let Some(Ok(map)) = pending.get()
            && self.regions_image.as_ref().is_none_or(|(k, _)| k != key)
        {
            let texture = wake.load_texture("decision-regions", region_image(map), egui::TextureOptions::NEAREST);
            self.regions_image = Some((*key, texture));
        }
        // Keyed as the scopes view asks (the stored selection; the values above are clamped).
        let point = settings.plane_point_of(results, method);
        let key = (settings.method, settings.alpha_index, settings.layer, point);
        if settings.tab == Tab::Scopes && self.merged.as_ref().is_none_or(|(k, _)| *k != key) {
            let layer = result.methods[method].layers.get(settings.layer);
            let merged = layer.zip(models.get(method)).and_then(|(layer, pair)| match point {
                None => {
                    let (a, b) = (pair.a.get(&layer.path)?, pair.b.get(&layer.path)?);
                    Some(layer_summary(layer, &wsa_core::model::lerp_values(a, b, alpha)))
                }
                Some((i, j)) => {
                    let plane = &results.plane()?.plane;
                    let (x, y) = (*plane.xs.get(i)?, *plane.ys.get(j)?);
                    let model = plane.model_at((&pair.a, &pair.b, plane_third?), x, y).ok()?;
                    Some(layer_summary(layer, model.get(&layer.path)?))
                }
            });
            self.merged = Some((key, merged));
        }
    }

    /// Forgets everything: the results or the models changed.
    pub fn clear(&mut self) {
        *self = Self { missing_data: self.missing_data.take(), ..Self::default() };
    }

    /// The decision regions for (`method`, `index`): `None` while they are computed (or not
    /// asked for).
    pub fn regions(&self, method: usize, index: usize) -> Option<&AppResult<RegionMap>> {
        self.regions.as_ref().filter(|(key, _)| *key == (method, index)).and_then(|(_, pending)| pending.get())
    }

    /// The decision regions of (`method`, `index`) as an image, once they are computed.
    pub fn regions_image(&self, method: usize, index: usize) -> Option<&egui::TextureHandle> {
        self.regions_image.as_ref().filter(|(key, _)| *key == (method, index)).map(|(_, texture)| texture)
    }

    /// The layer of the merged model (or the plane point's model) for the stored selection
    /// (`method`, `index`, `layer`, `plane_point`), when the models are in memory.
    pub fn merged_layer(
        &self,
        method: usize,
        index: usize,
        layer: usize,
        plane_point: Option<(usize, usize)>,
    ) -> Option<&MergedLayer> {
        self.merged
            .as_ref()
            .filter(|(key, _)| *key == (method, index, layer, plane_point))
            .and_then(|(_, m)| m.as_ref())
    }

    /// Where the chosen fetched data set should be, when it is not there.
    pub fn missing_data(&self) -> Option<&PathBuf> {
        self.missing_data.as_ref().and_then(|(_, missing)| missing.as_ref())
    }

    /// Runs every frame: compares the choice in place and looks at the disk only when it changed.
    fn update_missing_data(&mut self, config: &ConnectConfig) {
        let data = &config.data;
        if self.missing_data.as_ref().is_some_and(|((set, dir), _)| *set == data.dataset && *dir == data.data_dir) {
            return;
        }
        let label = data.dataset.label();
        let missing = (data.dataset.is_fetched() && !data::is_on_disk(&data.data_dir, &label))
            .then(|| data::dataset_dir(&data.data_dir, &label));
        self.missing_data = Some(((data.dataset.clone(), data.data_dir.clone()), missing));
    }
}

/// The scope, fit and histogram of `values`, a model's weights of `layer` (over the stored
/// histogram's range, widened to hold every weight).
fn layer_summary(layer: &wsa_core::experiment::connect::LayerComparison, values: &[f32]) -> MergedLayer {
    let (low, high) = values
        .iter()
        .fold((layer.histogram.low, layer.histogram.high), |(lo, hi), &v| (lo.min(f64::from(v)), hi.max(f64::from(v))));
    let counts = scope::histogram(values, low, high, layer.histogram.a.len());
    let report = LayerReport {
        path: layer.path.clone(),
        count: values.len(),
        scope: scope::scope_of(values),
        fit: scope::gaussian_fit(values),
    };
    MergedLayer { report, counts, low, high }
}

/// How much of a class's colour a region shows, so that the test points stand out on it.
pub const REGION_OPACITY: f32 = 0.45;

/// The class map as an image: one pixel per cell, the top row first (the map's first row is
/// the bottom one).
fn region_image(map: &RegionMap) -> egui::ColorImage {
    let pixels = (0..GRID)
        .rev()
        .flat_map(|row| &map.classes[row * GRID..(row + 1) * GRID])
        .map(|&class| {
            let [r, g, b] =
                wsa_figures::palette::CLASSES[(class.max(0.0) as usize) % wsa_figures::palette::CLASSES.len()];
            crate::views::figure::color([r, g, b]).gamma_multiply(REGION_OPACITY)
        })
        .collect();
    egui::ColorImage::new([GRID, GRID], pixels)
}

/// The decision regions of `merged` over the test set of `config` (a 2-D set), on the CPU.
fn regions(config: &ConnectConfig, merged: &HostParams) -> AppResult<RegionMap> {
    let test = data::load(&config.data, config.seed)?.test;
    if test.sample_shape != [2] {
        return Err(AppError::Usage(
            "decision regions are drawn for the 2-D sets (moons, circles, spirals, blobs)".into(),
        ));
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
    // Rows from the bottom (smallest y) up; `region_image` turns them over for the texture,
    // whose first row is drawn at the top (checked against the test points in the app).
    let mut grid = Vec::with_capacity(GRID * GRID * 2);
    for row in 0..GRID {
        let y = low[1] + (row as f64 + 0.5) * (high[1] - low[1]) / GRID as f64;
        for col in 0..GRID {
            let x = low[0] + (col as f64 + 0.5) * (high[0] - low[0]) / GRID as f64;
            grid.extend_from_slice(&[x as f32, y as f32]);
        }
    }
    let params = merged.to_device(&wsa_core::device::cpu().device);
    let classes: Vec<f64> = wsa_core::wait(params.predict(&grid, GRID * GRID))?.into_iter().map(f64::from).collect();
    let predicted = wsa_core::wait(params.predict(&test.features, test.len()))?;
    let correct = predicted.iter().zip(&test.labels).filter(|(p, l)| p == l).count();
    Ok(RegionMap { classes, low, high, accuracy: correct as f64 / test.len().max(1) as f64, test })
}
