//! What A and B differ in ([`PairDifference`]), and what that makes of them before training:
//! their starting points and, for a data difference, their halves of the training set.

use super::ConnectConfig;
use crate::data::{DataSplit, Dataset};
use crate::error::{Result, WsaError};
use crate::model::{HostParams, ModelLayout};
use crate::rng::Rng;
use crate::train::OptimizerKind;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The one condition in which A and B differ.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum PairDifference {
    /// Different seeds for the data order; `same_init` keeps one initialisation for both.
    Seed {
        same_init: bool,
    },
    /// `different_init` also starts A and B from different initialisations: both sources of
    /// mismatch at once (permutations and scopes), where WM and WSA can combine.
    LearningRate {
        a: f64,
        b: f64,
        #[serde(default, skip_serializing_if = "is_false")]
        different_init: bool,
    },
    /// `scale_learning_rate` scales each model's learning rate with its batch (linear scaling
    /// from `train.learning_rate` at `train.batch_size`), so that both models train.
    BatchSize {
        a: usize,
        b: usize,
        #[serde(default, skip_serializing_if = "is_false")]
        scale_learning_rate: bool,
    },
    WeightDecay {
        a: f64,
        b: f64,
    },
    /// Different optimisers, each optionally with its own learning rate (Adam usually wants a
    /// smaller one than SGD); `None` keeps `train.learning_rate`.
    Optimizer {
        a: OptimizerKind,
        b: OptimizerKind,
        #[serde(default)]
        learning_rate_a: Option<f64>,
        #[serde(default)]
        learning_rate_b: Option<f64>,
    },
    /// A and B see different halves of the training set.
    Data {
        split: DataDifference,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum DataDifference {
    /// A seeded random half each.
    Disjoint,
    /// Each class split between A and B in Dirichlet(alpha) proportions (small alpha = skewed).
    NonIid { alpha: f64 },
}

impl Default for PairDifference {
    /// "Same start, different learning rates": the scopes drift apart (B's spreads more), which
    /// is the situation WSA addresses.
    fn default() -> Self {
        PairDifference::LearningRate { a: 0.01, b: 0.2, different_init: false }
    }
}

impl PairDifference {
    /// Named pairs for `wsa-lab connect --pair` and the app's menu, each with telling values.
    pub const NAMED: [(&'static str, PairDifference); 8] = [
        ("learning-rate", PairDifference::LearningRate { a: 0.01, b: 0.2, different_init: false }),
        // Where permutation alignment matters: the barrier is mostly a reordering of units.
        ("different-init", PairDifference::Seed { same_init: false }),
        ("same-init", PairDifference::Seed { same_init: true }),
        ("batch-size", PairDifference::BatchSize { a: 16, b: 256, scale_learning_rate: false }),
        ("weight-decay", PairDifference::WeightDecay { a: 0.0, b: 0.01 }),
        (
            "optimizer",
            PairDifference::Optimizer {
                a: OptimizerKind::Sgd,
                b: OptimizerKind::Adam,
                learning_rate_a: None,
                learning_rate_b: Some(0.01),
            },
        ),
        ("non-iid-data", PairDifference::Data { split: DataDifference::NonIid { alpha: 0.3 } }),
        ("disjoint-data", PairDifference::Data { split: DataDifference::Disjoint }),
    ];

    pub fn named(name: &str) -> Result<Self> {
        Self::NAMED.iter().find(|(n, _)| *n == name).map(|(_, p)| p.clone()).ok_or_else(|| {
            let names: Vec<&str> = Self::NAMED.iter().map(|(n, _)| *n).collect();
            WsaError::invalid("pair", format!("`{name}`"), &format!("unknown pair; choose from {}", names.join(", ")))
        })
    }

    /// What kind of difference this is, without its values.
    pub fn kind_label(&self) -> &'static str {
        match self {
            PairDifference::Seed { .. } => "seed",
            PairDifference::LearningRate { .. } => "learning rate",
            PairDifference::BatchSize { .. } => "batch size",
            PairDifference::WeightDecay { .. } => "weight decay",
            PairDifference::Optimizer { .. } => "optimiser",
            PairDifference::Data { .. } => "data",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            PairDifference::Seed { same_init: true } => "seed (same init, different data order)".into(),
            PairDifference::Seed { same_init: false } => "seed (different init and data order)".into(),
            PairDifference::LearningRate { a, b, different_init } => {
                format!("learning rate {a} vs {b}{}", if *different_init { ", different init" } else { "" })
            }
            PairDifference::BatchSize { a, b, scale_learning_rate } => {
                format!(
                    "batch size {a} vs {b}{}",
                    if *scale_learning_rate { ", learning rate scaled with it" } else { "" }
                )
            }
            PairDifference::WeightDecay { a, b } => format!("weight decay {a} vs {b}"),
            PairDifference::Optimizer { a, b, learning_rate_a, learning_rate_b } => {
                let lr = |l: &Option<f64>| l.map(|v| format!(" (lr {v})")).unwrap_or_default();
                format!("optimiser {a:?}{} vs {b:?}{}", lr(learning_rate_a), lr(learning_rate_b))
            }
            PairDifference::Data { split: DataDifference::Disjoint } => "data (disjoint halves)".into(),
            PairDifference::Data { split: DataDifference::NonIid { alpha } } => {
                format!("data (non-IID halves, Dirichlet {alpha})")
            }
        }
    }
}

/// For `skip_serializing_if`: a switch left off is not written, so configs (and the keys of
/// reproduce cells) from before it existed read and hash as they did.
fn is_false(value: &bool) -> bool {
    !*value
}

/// The starting points of A and B: one initialisation for both unless the pair differs in it.
pub fn initial_params(config: &ConnectConfig, layout: &Arc<ModelLayout>) -> (HostParams, HostParams) {
    let init_a = layout.init(&mut Rng::derive(config.seed, "init-a"));
    let same_init = !matches!(
        config.pair,
        PairDifference::Seed { same_init: false } | PairDifference::LearningRate { different_init: true, .. }
    );
    let init_b = if same_init { init_a.clone() } else { layout.init(&mut Rng::derive(config.seed, "init-b")) };
    (init_a, init_b)
}

/// Separate training data for A and B when the pair differs in data; `None` when both train on
/// the whole training set (which is then uploaded once and shared).
pub(super) fn pair_data(config: &ConnectConfig, split: &DataSplit) -> Result<Option<(Dataset, Dataset)>> {
    let PairDifference::Data { split: how } = config.pair else {
        return Ok(None);
    };
    let train = &split.train;
    let mut rng = Rng::derive(config.seed, "pair-data-split");
    let (mut ia, mut ib) = (Vec::new(), Vec::new());
    match how {
        DataDifference::Disjoint => {
            let mut order: Vec<usize> = (0..train.len()).collect();
            rng.shuffle(&mut order);
            let (x, y) = order.split_at(train.len() / 2);
            ia.extend_from_slice(x);
            ib.extend_from_slice(y);
        }
        DataDifference::NonIid { alpha } => {
            for class in 0..train.num_classes {
                let mut members: Vec<usize> = (0..train.len()).filter(|&i| train.labels[i] as usize == class).collect();
                rng.shuffle(&mut members);
                let share = rng.dirichlet(alpha, 2)[0];
                let cut = (share * members.len() as f64).round() as usize;
                ia.extend_from_slice(&members[..cut]);
                ib.extend_from_slice(&members[cut..]);
            }
        }
    }
    ia.sort_unstable();
    ib.sort_unstable();
    if ia.len() < 2 || ib.len() < 2 {
        return Err(WsaError::invalid(
            "pair.split",
            format!("{} / {} samples", ia.len(), ib.len()),
            "one side got almost no data; raise the Dirichlet alpha",
        ));
    }
    Ok(Some((train.subset(&ia), train.subset(&ib))))
}
