//! A cell, one experiment of a spec at one seed, with its key (the hash of its config), and what
//! a finished cell records: a few numbers per variant.

use super::{Family, Metric, REPRODUCE_VERSION, Variant};
use crate::error::Result;
use crate::experiment::Versioned;
use crate::experiment::connect::ConnectConfig;
use crate::experiment::federated::{Divergence, FedConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The experiment a cell runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "config")]
pub enum CellExperiment {
    Connect(ConnectConfig),
    /// All four variants (FedAvg, FedProx, each with and without WSA) on one split and start.
    Fed(FedConfig),
}

impl CellExperiment {
    pub(super) fn from_json(family: Family, config: &Value) -> Result<Self> {
        let text = config.to_string();
        if family.is_federated() {
            let config = FedConfig::from_json(&text)?;
            config.validate()?;
            Ok(CellExperiment::Fed(config))
        } else {
            let config = ConnectConfig::from_json(&text)?;
            config.validate()?;
            Ok(CellExperiment::Connect(config))
        }
    }
}

/// One experiment at one seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub family: Family,
    pub group: String,
    pub row: String,
    pub seed: u64,
    pub experiment: CellExperiment,
}

impl Cell {
    /// The cell's key: a 64-bit FNV-1a hash of its family and full config as JSON (every field,
    /// defaults included), in hex. Two cells with the same key run the same computation; where
    /// the data files live (`data.data_dir`) is left out, so a moved data folder reuses them.
    pub fn hash(&self) -> String {
        let mut experiment = self.experiment.clone();
        match &mut experiment {
            CellExperiment::Connect(c) => c.data.data_dir = PathBuf::new(),
            CellExperiment::Fed(c) => c.data.data_dir = PathBuf::new(),
        }
        let text = serde_json::to_string(&(self.family, &experiment)).unwrap_or_default();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in text.bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// "family · group · row · seed N", for progress lines and errors.
    pub fn label(&self) -> String {
        format!("{} · {} · {} · seed {}", self.family.name(), self.group, self.row, self.seed)
    }
}

/// The numbers of one variant (a method, a federated run, or a model's state) of a cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantOutcome {
    pub variant: Variant,
    /// Metric name to value: a [`Metric`]'s name, or a per-layer key of the Gaussianity family
    /// (`metric::kurtosis_of`); the keys stay text, so that the files list them in the order
    /// they always had. A metric that does not apply (a target accuracy never reached) is absent.
    pub metrics: BTreeMap<String, f64>,
    /// Per-round series of a federated run (`runner::SERIES_ACCURACY` or a [`Metric`]'s name to
    /// one value per round: the test accuracy, the global model's std, the clients' spread), for the report's figures;
    /// absent elsewhere and in cells written before it was recorded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub series: BTreeMap<String, Vec<f64>>,
    /// Why the variant's run stopped before its end (a federated run whose loss became NaN or
    /// infinite); such a variant records no metrics and no series. Absent for a run that finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged: Option<Divergence>,
}

impl VariantOutcome {
    pub fn new(variant: Variant) -> Self {
        Self { variant, metrics: BTreeMap::new(), series: BTreeMap::new(), diverged: None }
    }

    pub fn metric(&self, metric: Metric) -> Option<f64> {
        self.metrics.get(metric.name()).copied()
    }

    pub fn set(&mut self, metric: Metric, value: f64) {
        self.metrics.insert(metric.name().to_string(), value);
    }
}

/// A finished cell, as written to `cells/<hash>.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    pub version: u32,
    pub hash: String,
    pub cell: Cell,
    pub device: String,
    pub seconds: f64,
    pub variants: Vec<VariantOutcome>,
    /// The run's warnings (an endpoint that never learned, ...).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Trained pairs taken up from a stopped run of this cell (`Store::pair_checkpoints`):
    /// `seconds` then counts only what followed the stop. Absent from the file when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pairs_resumed: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Versioned for CellRecord {
    const KIND: &'static str = "reproduce cell";
    const VERSION: u32 = REPRODUCE_VERSION;
}

impl CellRecord {
    pub fn variant(&self, variant: Variant) -> Option<&VariantOutcome> {
        self.variants.iter().find(|v| v.variant == variant)
    }
}
