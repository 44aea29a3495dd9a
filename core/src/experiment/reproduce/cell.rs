//! A cell, one experiment of a spec at one seed, with its key (the hash of its config), and what
//! a finished cell records: a few numbers per variant.

use super::{Family, REPRODUCE_VERSION};
use crate::error::Result;
use crate::experiment::Versioned;
use crate::experiment::connect::ConnectConfig;
use crate::experiment::federated::FedConfig;
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

    /// FedProx's mu for the comparison when the base config names FedAvg.
    pub(super) const DEFAULT_MU: f64 = 0.01;
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
    pub variant: String,
    /// Metric name to value; a metric that does not apply (a target accuracy never reached)
    /// is absent.
    pub metrics: BTreeMap<String, f64>,
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
}

impl Versioned for CellRecord {
    const KIND: &'static str = "reproduce cell";
    const VERSION: u32 = REPRODUCE_VERSION;
}

impl CellRecord {
    pub fn variant(&self, name: &str) -> Option<&VariantOutcome> {
        self.variants.iter().find(|v| v.variant == name)
    }
}

/// Metric names, shared by the runs that write them and the report that reads them.
pub mod metric {
    pub const ACCURACY_A: &str = "accuracy_a";
    pub const ACCURACY_B: &str = "accuracy_b";
    pub const LOSS_BARRIER: &str = "loss_barrier";
    pub const ACCURACY_BARRIER: &str = "accuracy_barrier";
    pub const SCOPE_DISTANCE: &str = "scope_distance";
    /// The merged model itself at α = 0.5 (the path point nearest it), and what it is judged
    /// against where A and B saw different data (a barrier is floored at 0 there): the mean of
    /// the endpoints and the better endpoint.
    pub const MIDPOINT_LOSS: &str = "midpoint_loss";
    pub const MIDPOINT_ACCURACY: &str = "midpoint_accuracy";
    pub const MIDPOINT_OVER_ENDPOINTS_ACCURACY: &str = "midpoint_over_endpoints_accuracy";
    pub const MIDPOINT_OVER_BEST_ACCURACY: &str = "midpoint_over_best_accuracy";
    pub const FINAL_ACCURACY: &str = "final_accuracy";
    pub const BEST_ACCURACY: &str = "best_accuracy";
    pub const LAST10_ACCURACY: &str = "last10_accuracy";
    pub const ROUNDS_TO_TARGET: &str = "rounds_to_target";
    /// Mean over the scoped layers of |excess kurtosis| and of the KS distance to the fitted
    /// Gaussian; per layer as `kurtosis:<path>` and `ks:<path>`.
    pub const MEAN_ABS_KURTOSIS: &str = "mean_abs_kurtosis";
    pub const MEAN_KS: &str = "mean_ks";
}
