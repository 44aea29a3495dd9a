//! What the app remembers between sessions of the user's own making: the experiment being set
//! up, preferences and selections, in one plain serde struct stored by eframe. The results of
//! the runs are kept apart (`results`), saved when a run finishes; runtime handles (the job,
//! trained models, caches) live beside both in the app and are never stored.

use crate::results::{PlaneResult, Results};
use serde::{Deserialize, Serialize};
use wsa_core::data::{DataConfig, DatasetSpec, SyntheticKind};
use wsa_core::device::DeviceChoice;
use wsa_core::experiment::Versioned;
use wsa_core::experiment::connect::{ConnectConfig, ConnectResult, DataDifference, PairDifference};
use wsa_core::experiment::federated::FedConfig;
use wsa_core::experiment::method::Method;
use wsa_core::experiment::plane::{Plane, PlaneConfig};
use wsa_core::model::{LayerSpec, ModelConfig};
use wsa_core::train::OptimizerKind;

pub const STORAGE_KEY: &str = "wsa-lab/settings";

/// The app's tabs: the tour's crate names them, since a step says which one it opens.
pub use wsa_tour::Tab;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub config: ConnectConfig,
    pub device: DeviceChoice,
    pub tab: Tab,
    /// Index into the result's methods: the one the scopes, regions and files views show.
    pub method: usize,
    /// Index into the selected method's layers (the Weight scopes tab).
    pub layer: usize,
    /// Index into the federated result's layers (the Federated tab's scopes).
    pub fed_layer: usize,
    /// Index into the alpha grid: the merged model shown everywhere.
    pub alpha_index: usize,
    /// The seed (an index into the result's seeds) the path view shows alone; `None` shows the
    /// mean over all of them with their band.
    pub path_seed: Option<usize>,
    pub export_dir: String,
    pub model_path: String,
    /// The file or folder typed in the Your models tab (natively; the page picks in a dialog).
    pub given_path: String,
    /// How the values of a data set handed over in Your models are normalised: as the models
    /// were trained (a CSV of 0-255 pixels a PyTorch user divided by 255, say).
    pub given_normalisation: wsa_core::data::Normalisation,
    pub debug_overlay: bool,
    /// Federated settings; data, model and seed come from `config` when a run starts.
    pub fed: FedConfig,
    /// Run FedAvg, FedAvg+WSA, FedProx and FedProx+WSA side by side.
    pub fed_compare: bool,
    /// The Plane tab's grid.
    pub plane: PlaneConfig,
    /// The grid point (column, row) of the plane clicked in the Plane tab: while set, the
    /// Weight scopes tab shows that point's model in place of the path's merged model.
    pub plane_point: Option<(usize, usize)>,
    /// The tour step open (from 0), while the tour is: the app's tour guide holds it, and it is
    /// written here when the settings are saved, so that it survives a restart or a reload.
    pub tour: Option<usize>,
    /// Classroom mode: the setup shows only what a tour step needs (no WSA switches, optimiser
    /// details or files), for a projector.
    pub classroom: bool,
    /// Classroom mode asked for by the address (`?classroom=locked`) or the command line
    /// (`--classroom-locked`): students cannot switch it off. Never saved: it belongs to that
    /// opening of the page, not to the user's preferences.
    #[serde(skip)]
    pub classroom_locked: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            config: Preset::ALL[0].config(),
            device: DeviceChoice::Cpu,
            tab: Tab::Path,
            method: 1,
            layer: 0,
            fed_layer: 0,
            alpha_index: 10,
            path_seed: None,
            export_dir: "out/app".into(),
            model_path: String::new(),
            given_path: String::new(),
            given_normalisation: wsa_core::data::Normalisation::default(),
            debug_overlay: false,
            fed: FedConfig { use_wsa: true, ..FedConfig::default() },
            fed_compare: true,
            plane: PlaneConfig::default(),
            plane_point: None,
            tour: None,
            classroom: false,
            classroom_locked: false,
        }
    }
}

impl Settings {
    /// The defaults, keeping the device, classroom mode (and its lock), the tour's step and the
    /// folders typed in; the experiment, the open tab and what is selected in it start over.
    pub fn reset_experiment(&mut self) {
        *self = Settings {
            device: self.device,
            classroom: self.classroom,
            classroom_locked: self.classroom_locked,
            tour: self.tour,
            export_dir: std::mem::take(&mut self.export_dir),
            model_path: std::mem::take(&mut self.model_path),
            given_path: std::mem::take(&mut self.given_path),
            ..Settings::default()
        };
    }

    /// The selected plane point when `results`' plane is of the method at `method` (an index
    /// into the connect result's methods): then that point's model stands for the merged model.
    pub fn plane_point_of(&self, results: &Results, method: usize) -> Option<(usize, usize)> {
        results.plane_point_of(method, self.plane_point)
    }
}

/// Seeds of the presets on the small sets (digits, 2-D).
pub const SMALL_SET_SEEDS: usize = 3;

/// Ready-made experiments for teaching and exploring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    DifferentLearningRates,
    DifferentRandomStarts,
    SgdVersusAdam,
    DifferentWeightDecay,
    NonIidHalves,
    MoonsDifferentStarts,
    FashionDifferentStarts,
}

impl Preset {
    pub const ALL: [Preset; 7] = [
        Preset::DifferentLearningRates,
        Preset::DifferentRandomStarts,
        Preset::SgdVersusAdam,
        Preset::DifferentWeightDecay,
        Preset::NonIidHalves,
        Preset::MoonsDifferentStarts,
        Preset::FashionDifferentStarts,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Preset::DifferentLearningRates => "Same start, different learning rates",
            Preset::DifferentRandomStarts => "Different random starts",
            Preset::SgdVersusAdam => "SGD vs Adam",
            Preset::DifferentWeightDecay => "Same start, different weight decay",
            Preset::NonIidHalves => "Non-IID halves of the data",
            Preset::MoonsDifferentStarts => "Moons (2-D): different random starts",
            Preset::FashionDifferentStarts => "Fashion-MNIST (5000 real images): different random starts",
        }
    }

    /// The preset's experiment. On the small sets it runs over three seeds (about a second
    /// natively): the first thing a visitor sees is the mean with its spread, not one lucky or
    /// unlucky draw.
    pub fn config(self) -> ConnectConfig {
        let mut c = ConnectConfig { seeds: SMALL_SET_SEEDS, ..ConnectConfig::default() };
        match self {
            Preset::DifferentLearningRates => {
                c.pair = PairDifference::LearningRate { a: 0.01, b: 0.2, different_init: false }
            }
            Preset::DifferentRandomStarts => c.pair = PairDifference::Seed { same_init: false },
            Preset::SgdVersusAdam => {
                c.pair = PairDifference::Optimizer {
                    a: OptimizerKind::Sgd,
                    b: OptimizerKind::Adam,
                    learning_rate_a: None,
                    learning_rate_b: Some(0.01),
                }
            }
            Preset::DifferentWeightDecay => c.pair = PairDifference::WeightDecay { a: 0.0, b: 0.01 },
            Preset::NonIidHalves => c.pair = PairDifference::Data { split: DataDifference::NonIid { alpha: 0.3 } },
            Preset::MoonsDifferentStarts => {
                c.data = DataConfig {
                    dataset: DatasetSpec::Synthetic {
                        kind: SyntheticKind::Moons,
                        samples: 1000,
                        noise: 0.15,
                        classes: 2,
                    },
                    ..DataConfig::default()
                };
                c.model = ModelConfig::mlp(vec![32, 32]);
                c.train.epochs = 30;
                c.pair = PairDifference::Seed { same_init: false };
            }
            Preset::FashionDifferentStarts => {
                // The embedded subset, so that it runs in the browser too.
                c.data.dataset = DatasetSpec::FashionMnistSmall;
                c.pair = PairDifference::Seed { same_init: false };
                // Real images take seconds per seed: one, with more a setting away.
                c.seeds = 1;
            }
        }
        c
    }
}

/// The hidden widths (MLP), conv channels (CNN) or every linear and conv layer's outputs (a
/// stack, residual blocks' layers included) of `model` as the setup panel shows them.
pub fn widths_text(model: &ModelConfig) -> String {
    let widths = match model {
        ModelConfig::Mlp { hidden, .. } => hidden.clone(),
        ModelConfig::Cnn { channels, .. } => channels.clone(),
        ModelConfig::Stack { layers, .. } => LayerSpec::unrolled(layers)
            .into_iter()
            .filter_map(|layer| match layer {
                LayerSpec::Linear { outputs, .. } => Some(*outputs),
                LayerSpec::Conv2d { channels, .. } => Some(*channels),
                _ => None,
            })
            .collect(),
    };
    widths.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// What [`load`] read.
pub struct Loaded {
    pub settings: Settings,
    /// The results a store written by an older build held inside the settings (the last
    /// connect result, federation and plane): the app takes them over into its results store
    /// once, and the settings are saved without them from then on.
    pub results: Results,
    /// Why the store could not be read, for the user.
    pub notice: Option<String>,
}

/// Reads stored settings; a missing store gives defaults, a corrupt one defaults and a notice.
/// The experiment and the results of an older build inside are read through core's versioned
/// loaders, so a store written by an older build is migrated, not dropped.
pub fn load(stored: Option<String>) -> Loaded {
    let Some(text) = stored else {
        return Loaded { settings: Settings::default(), results: Results::default(), notice: None };
    };
    match parse(&text) {
        Ok((settings, results)) => Loaded { settings, results, notice: None },
        Err(e) => Loaded {
            settings: Settings::default(),
            results: Results::default(),
            notice: Some(format!("The saved settings could not be read ({e}); starting with defaults.")),
        },
    }
}

fn parse(text: &str) -> wsa_core::Result<(Settings, Results)> {
    let unreadable =
        |e: serde_json::Error| wsa_core::WsaError::invalid("saved settings", "in the store", &e.to_string());
    let mut value: serde_json::Value = serde_json::from_str(text).map_err(unreadable)?;
    if let Some(config) = value.get_mut("config") {
        let migrated = ConnectConfig::from_json(&config.to_string())?;
        *config = serde_json::to_value(migrated).map_err(unreadable)?;
    }
    let results = match value.as_object_mut() {
        Some(fields) => older_results(fields)?,
        None => Results::default(),
    };
    Ok((serde_json::from_value(value).map_err(unreadable)?, results))
}

/// Takes the results an older build stored among the settings (`last_result`, `fed_result`,
/// `plane_result`) out of `settings`, read as that build read them.
fn older_results(settings: &mut serde_json::Map<String, serde_json::Value>) -> wsa_core::Result<Results> {
    let unreadable = |field: &str, e: serde_json::Error| {
        wsa_core::WsaError::invalid(&format!("saved settings field `{field}`"), "in the store", &e.to_string())
    };
    let mut take = |field: &str| settings.remove(field).filter(|v| !v.is_null());
    let mut results = Results::default();
    if let Some(value) = take("last_result") {
        results.set_connect(ConnectResult::from_json(&value.to_string())?);
    }
    if let Some(value) = take("fed_result") {
        results.set_federated(serde_json::from_value(value).map_err(|e| unreadable("fed_result", e))?);
    }
    if let Some(value) = take("plane_result") {
        let (method, plane): (Method, Plane) =
            serde_json::from_value(value).map_err(|e| unreadable("plane_result", e))?;
        results.set_plane(Some(PlaneResult::new(method, plane)));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsa_core::experiment::federated::FedResult;

    #[test]
    fn settings_round_trip_and_a_corrupt_store_falls_back_to_defaults() {
        let mut settings = Settings { layer: 2, ..Settings::default() };
        settings.config.seed = 9;
        let text = serde_json::to_string(&settings).expect("json");
        let loaded = load(Some(text));
        assert_eq!(loaded.settings, settings);
        assert!(loaded.notice.is_none());
        let fallback = load(Some("{ this is not json".into()));
        assert_eq!(fallback.settings, Settings::default());
        assert!(fallback.notice.is_some_and(|n| n.contains("could not be read")));
        // A store from an older build with fields missing still loads what it has.
        let partial = load(Some("{\"layer\": 1}".into()));
        assert_eq!(partial.settings.layer, 1);
        assert!(partial.notice.is_none());
    }

    /// Settings stored by a build that kept the results inside them still load: the results
    /// come out of them, to be saved apart once.
    #[test]
    fn settings_holding_results_of_an_older_build_load_and_hand_them_over() {
        let plane = Plane {
            xs: vec![0.0],
            ys: vec![0.0],
            loss: vec![f64::NAN],
            accuracy: vec![0.5],
            models: Vec::new(),
            curve: None,
        };
        let fed = FedResult {
            version: FedResult::VERSION,
            config: FedConfig::default(),
            dataset: "digits".into(),
            device: "cpu".into(),
            layers: Vec::new(),
            clients: Vec::new(),
            runs: Vec::new(),
            seeds: Vec::new(),
        };
        let mut stored = serde_json::to_value(Settings { layer: 2, ..Settings::default() }).expect("json");
        stored["fed_result"] = serde_json::to_value(&fed).expect("json");
        stored["plane_result"] = serde_json::to_value((Method::WSA, &plane)).expect("json");
        stored["last_result"] = serde_json::Value::Null;
        let loaded = load(Some(stored.to_string()));
        assert_eq!(loaded.settings.layer, 2);
        assert!(loaded.notice.is_none(), "{:?}", loaded.notice);
        assert_eq!(loaded.results.federated(), Some(&fed));
        assert!(loaded.results.connect().is_none());
        assert_eq!(loaded.results.plane().map(|p| p.method), Some(Method::WSA));
        assert!(!serde_json::to_string(&loaded.settings).expect("json").contains("fed_result"));

        // As before, a result in them that does not read makes the store unreadable.
        stored["last_result"] = serde_json::json!({ "version": 2, "config": 7 });
        let loaded = load(Some(stored.to_string()));
        assert_eq!(loaded.settings, Settings::default());
        assert!(loaded.notice.is_some_and(|n| n.contains("starting with defaults")));
    }

    #[test]
    fn every_preset_is_a_valid_config() {
        for preset in Preset::ALL {
            preset.config().validate().unwrap_or_else(|e| panic!("{preset:?}: {e}"));
        }
    }
}
