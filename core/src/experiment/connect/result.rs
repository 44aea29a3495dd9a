//! What the connect experiment returns: per method the path, barriers, alignment and per-layer
//! scopes and histograms, per trained pair its training curves, and the models merged; the result
//! is versioned (summary.json), older versions migrated.

use super::ConnectConfig;
use crate::align::{ParamDistance, PermutationReport};
use crate::error::Result;
use crate::experiment::curve::CurveResult;
use crate::experiment::method::{Alignment, Method, Training};
use crate::experiment::seeds::SeedRun;
use crate::experiment::versioned::{self, CONNECT_VERSION, Versioned};
use crate::merge::{Barriers, PathPoint};
use crate::model::HostParams;
use crate::scope::{LayerReport, Scope};
use crate::train::Metrics;
use serde::{Deserialize, Serialize};

/// Scopes and histograms of one layer for A, B, their midpoint and the target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerComparison {
    pub path: String,
    /// A and B as merged, i.e. after the method's alignment.
    pub a: LayerReport,
    pub b: LayerReport,
    /// The model at alpha = 0.5.
    pub merged: LayerReport,
    /// B as trained, before alignment; only for methods that align. Weight matching leaves it
    /// equal to `b` (a scope does not see the order of the units).
    #[serde(default)]
    pub b_unaligned: Option<LayerReport>,
    /// The target scope at the end of training (for plain training: the fused scope of A and
    /// B, i.e. what WSA would have aimed at; for rescaling: the scope both were mapped to).
    pub target: Scope,
    pub histogram: Histograms,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    pub low: f64,
    pub high: f64,
    pub a: Vec<u64>,
    pub b: Vec<u64>,
    pub merged: Vec<u64>,
    #[serde(default)]
    pub b_unaligned: Option<Vec<u64>>,
}

/// One of the two models of a pair: A, the reference, or B, the one aligned to it (the slot a
/// loaded model goes into).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Endpoint {
    A,
    B,
}

crate::choices!(Endpoint, "model of the pair" {
    A => "A", "A",
    B => "B", "B",
});

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub model: Endpoint,
    pub epoch: usize,
    pub train_loss: f64,
    pub test_accuracy: f64,
    /// The scope of every reported layer at the end of this epoch: the scope trajectory.
    pub scopes: Vec<Scope>,
}

/// What aligning B to A did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlignmentReport {
    pub kind: Alignment,
    /// Weight matching: full sweeps over the permutations (the last one improved nothing,
    /// unless `weight_matching.max_sweeps` ended it).
    #[serde(default)]
    pub sweeps: usize,
    /// Weight matching: sum over parameters of <A, P(B)> before the first step and after each.
    #[serde(default)]
    pub objective: Vec<f64>,
    #[serde(default)]
    pub permutations: Vec<PermutationReport>,
    /// ||A - B|| per parameter before and after the alignment.
    pub distances: Vec<ParamDistance>,
}

/// One method's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    /// Written as `name`, the field's name before it said what it holds: result files users
    /// saved and the app's store carry that key, and must read back (and be written) as they were.
    #[serde(rename = "name")]
    pub method: Method,
    /// The WSA strength its pair was trained with (0 for plain training).
    pub lambda: f64,
    pub endpoint_a: Metrics,
    pub endpoint_b: Metrics,
    pub path: Vec<PathPoint>,
    pub barriers: Barriers,
    /// Mean over layers of the symmetric KL between A's and B's scopes.
    pub scope_distance: f64,
    pub layers: Vec<LayerComparison>,
    #[serde(default)]
    pub alignment: Option<AlignmentReport>,
    /// The trained curve between the same A and B (`ConnectConfig::curve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<CurveResult>,
}

/// The training curves of one trained pair, shared by the methods that use it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairCurves {
    pub training: Training,
    pub lambda: f64,
    pub curves: Vec<EpochRecord>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnectResult {
    pub version: u32,
    pub config: ConnectConfig,
    pub dataset: String,
    pub train_samples: usize,
    pub test_samples: usize,
    pub parameters: usize,
    pub device: String,
    pub difference: String,
    /// One per trained pair, plain first.
    pub pairs: Vec<PairCurves>,
    /// One per configured method, in the config's order.
    pub methods: Vec<MethodResult>,
    /// Things a reader of the numbers must know, e.g. an endpoint that never learned.
    pub warnings: Vec<String>,
    /// Every seed's numbers when the config ran more than one (the first is the seed the rest
    /// of the result shows); empty for one seed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seeds: Vec<SeedRun>,
}

/// summary.json; results of older versions are migrated.
impl Versioned for ConnectResult {
    const KIND: &'static str = "connect result";
    const VERSION: u32 = CONNECT_VERSION;

    fn migrate(value: &mut serde_json::Value, from: u32) -> Result<()> {
        versioned::migrate_connect_result(value, from)
    }
}

impl ConnectResult {
    /// The training curves of the pair `training` (empty when it was not trained).
    pub fn curves(&self, training: Training) -> &[EpochRecord] {
        self.pairs.iter().find(|p| p.training == training).map_or(&[], |p| p.curves.as_slice())
    }
}

/// The models a method merged (B after alignment), for saving.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainedPair {
    pub method: Method,
    pub a: HostParams,
    pub b: HostParams,
}

impl TrainedPair {
    pub fn model(&self, endpoint: Endpoint) -> &HostParams {
        match endpoint {
            Endpoint::A => &self.a,
            Endpoint::B => &self.b,
        }
    }

    /// This pair with `params` in the place of its model `endpoint`.
    pub fn replaced(&self, endpoint: Endpoint, params: HostParams) -> TrainedPair {
        let mut pair = self.clone();
        match endpoint {
            Endpoint::A => pair.a = params,
            Endpoint::B => pair.b = params,
        }
        pair
    }
}

/// The result and the models it merged. Serde, so that the page's worker can post it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnectOutcome {
    pub result: ConnectResult,
    pub models: Vec<TrainedPair>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_methods_result_keeps_its_key_name_in_json() {
        let metrics = Metrics { loss: 0.5, accuracy: 0.9 };
        let result = MethodResult {
            method: Method::PLAIN,
            lambda: 0.0,
            endpoint_a: metrics,
            endpoint_b: metrics,
            path: Vec::new(),
            barriers: Barriers { loss: 0.1, accuracy: 0.0 },
            scope_distance: 0.0,
            layers: Vec::new(),
            alignment: None,
            curve: None,
        };
        let json = serde_json::to_value(&result).expect("serialise");
        assert_eq!(json["name"], "plain", "{json}");
        assert!(json.get("method").is_none(), "{json}");
        assert_eq!(serde_json::from_value::<MethodResult>(json).expect("read back"), result);
    }
}
