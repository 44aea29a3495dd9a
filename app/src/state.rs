//! What the app remembers between runs: one plain serde struct, stored by eframe. Runtime
//! handles (the job, trained models, caches) live beside it in the app and are never stored.

use serde::{Deserialize, Serialize};
use wsa_core::data::{DataConfig, DatasetSpec, SyntheticKind};
use wsa_core::device::DeviceChoice;
use wsa_core::experiment::Versioned;
use wsa_core::experiment::connect::{ConnectConfig, ConnectResult, DataDifference, PairDifference};
use wsa_core::experiment::federated::{FedConfig, FedResult};
use wsa_core::experiment::method::Method;
use wsa_core::experiment::plane::{Plane, PlaneConfig};
use wsa_core::model::ModelConfig;
use wsa_core::train::OptimizerKind;

pub const STORAGE_KEY: &str = "wsa-lab/settings";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Tab {
    #[default]
    Path,
    Scopes,
    Training,
    Regions,
    Federated,
    Plane,
    Files,
}

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
    pub debug_overlay: bool,
    pub last_result: Option<ConnectResult>,
    /// Federated settings; data, model and seed come from `config` when a run starts.
    pub fed: FedConfig,
    /// Run FedAvg, FedAvg+WSA, FedProx and FedProx+WSA side by side.
    pub fed_compare: bool,
    pub fed_result: Option<FedResult>,
    /// The Plane tab's grid, and its last plane (of the method named).
    pub plane: PlaneConfig,
    pub plane_result: Option<(Method, Plane)>,
    /// The grid point (column, row) of the plane clicked in the Plane tab: while set, the
    /// Weight scopes tab shows that point's model in place of the path's merged model.
    pub plane_point: Option<(usize, usize)>,
    /// The tour step open (from 0), while the tour is; it survives a restart or a reload.
    pub tour: Option<usize>,
    /// Classroom mode: the setup shows only what a tour step needs (no WSA switches, optimiser
    /// details or files), for a projector.
    pub classroom: bool,
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
            debug_overlay: false,
            last_result: None,
            fed: FedConfig { use_wsa: true, ..FedConfig::default() },
            fed_compare: true,
            fed_result: None,
            plane: PlaneConfig::default(),
            plane_result: None,
            plane_point: None,
            tour: None,
            classroom: false,
        }
    }
}

impl Settings {
    /// The selected plane point when the plane is of the method at `method` (an index into the
    /// last result's methods): then that point's model stands for the merged model.
    pub fn plane_point_of(&self, method: usize) -> Option<(usize, usize)> {
        let name = self.last_result.as_ref()?.methods.get(method)?.method;
        self.plane_result.as_ref().filter(|(of, _)| *of == name).and(self.plane_point)
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

/// The hidden widths (MLP) or conv channels (CNN) of `model` as the setup panel shows them.
pub fn widths_text(model: &ModelConfig) -> String {
    let widths = match model {
        ModelConfig::Mlp { hidden, .. } => hidden,
        ModelConfig::Cnn { channels, .. } => channels,
    };
    widths.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Reads stored settings; a missing store gives defaults, a corrupt one defaults and a notice.
/// The experiment and the last result inside are read through core's versioned loaders, so a
/// store written by an older build is migrated, not dropped.
pub fn load(stored: Option<String>) -> (Settings, Option<String>) {
    let Some(text) = stored else { return (Settings::default(), None) };
    match parse(&text) {
        Ok(settings) => (settings, None),
        Err(e) => {
            (Settings::default(), Some(format!("The saved settings could not be read ({e}); starting with defaults.")))
        }
    }
}

fn parse(text: &str) -> wsa_core::Result<Settings> {
    let unreadable =
        |e: serde_json::Error| wsa_core::WsaError::invalid("saved settings", "in the store", &e.to_string());
    let mut value: serde_json::Value = serde_json::from_str(text).map_err(unreadable)?;
    if let Some(config) = value.get_mut("config") {
        let migrated = ConnectConfig::from_json(&config.to_string())?;
        *config = serde_json::to_value(migrated).map_err(unreadable)?;
    }
    if let Some(result) = value.get_mut("last_result").filter(|r| !r.is_null()) {
        let migrated = ConnectResult::from_json(&result.to_string())?;
        *result = serde_json::to_value(migrated).map_err(unreadable)?;
    }
    serde_json::from_value(value).map_err(unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_a_corrupt_store_falls_back_to_defaults() {
        let mut settings = Settings { layer: 2, ..Settings::default() };
        settings.config.seed = 9;
        let text = serde_json::to_string(&settings).expect("json");
        let (back, notice) = load(Some(text));
        assert_eq!(back, settings);
        assert!(notice.is_none());
        let (fallback, notice) = load(Some("{ this is not json".into()));
        assert_eq!(fallback, Settings::default());
        assert!(notice.is_some_and(|n| n.contains("could not be read")));
        // A store from an older build with fields missing still loads what it has.
        let (partial, notice) = load(Some("{\"layer\": 1}".into()));
        assert_eq!(partial.layer, 1);
        assert!(notice.is_none());
    }

    #[test]
    fn every_preset_is_a_valid_config() {
        for preset in Preset::ALL {
            preset.config().validate().unwrap_or_else(|e| panic!("{preset:?}: {e}"));
        }
    }
}
