//! The connect experiment's config: the pair, the methods, and the settings of every step; how
//! it applies the pair's difference to A's and B's training, and its checks.

use super::pair::{DataDifference, PairDifference};
use crate::align::WeightMatchingConfig;
use crate::batch_norm::{MAX_RESET_BATCHES, ResetData};
use crate::data::{DataConfig, Dataset};
use crate::error::{Result, WsaError};
use crate::experiment::curve::CurveConfig;
use crate::experiment::method::{self, Method, Training};
use crate::experiment::seeds::MAX_SEEDS;
use crate::experiment::versioned::{self, CONNECT_VERSION, Versioned};
use crate::kernels::MAX_HISTOGRAM_BINS;
use crate::merge::PathGrid;
use crate::model::{ModelConfig, ModelLayout};
use crate::repair::RepairConfig;
use crate::train::TrainConfig;
use crate::wsa::{TargetSource, WsaConfig};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectConfig {
    pub version: u32,
    pub seed: u64,
    /// Run the whole experiment at `seed`, `seed + 1`, ... this many times: the result holds
    /// every seed's numbers and their spread (see `experiment::seeds`). One is the default and is left
    /// out of files, so configs (and reproduce's cell keys) without the field stay as they were.
    #[serde(default = "one_seed", skip_serializing_if = "is_one_seed")]
    pub seeds: usize,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub pair: PairDifference,
    /// The methods to compare, in the order every table, file and plot shows them.
    pub methods: Vec<Method>,
    pub wsa: WsaConfig,
    pub weight_matching: WeightMatchingConfig,
    pub path: PathGrid,
    pub histogram_bins: usize,
    /// A mode-connecting curve for every method beside its straight line; off when `None` (the
    /// default, left out of files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<CurveConfig>,
    /// The samples REPAIR measures on, for the methods with REPAIR; left out of files at its
    /// default, so configs (and reproduce's cell keys) from before REPAIR stay as they were.
    #[serde(default, skip_serializing_if = "is_default_repair")]
    pub repair: RepairConfig,
}

fn is_default_repair(config: &RepairConfig) -> bool {
    *config == RepairConfig::default()
}

impl Default for ConnectConfig {
    fn default() -> Self {
        Self {
            version: CONNECT_VERSION,
            seed: 0,
            seeds: 1,
            data: DataConfig::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            pair: PairDifference::default(),
            methods: Method::DEFAULT.to_vec(),
            wsa: WsaConfig::default(),
            weight_matching: WeightMatchingConfig::default(),
            path: PathGrid::default(),
            histogram_bins: 40,
            curve: None,
            repair: RepairConfig::default(),
        }
    }
}

fn one_seed() -> usize {
    1
}

/// Whether `seeds` is the default, one (a config's `seeds` is then left out of its file, so that
/// older configs keep their keys): shared by the connect and federated configs.
pub(crate) fn is_one_seed(seeds: &usize) -> bool {
    *seeds == 1
}

/// Config files and links; configs of older versions are migrated (version 1 ran the plain and
/// the WSA pair).
impl Versioned for ConnectConfig {
    const KIND: &'static str = "connect config";
    const VERSION: u32 = CONNECT_VERSION;

    fn migrate(value: &mut serde_json::Value, from: u32) -> Result<()> {
        versioned::migrate_connect_config(value, from)
    }
}

impl ConnectConfig {
    /// Work per training step of the smaller of A's and B's batches, for `device::select_for`.
    pub fn flops_per_step(&self) -> Option<f64> {
        let (a, b) = self.train_configs();
        crate::experiment::flops_per_step(&self.model, &self.data.dataset, a.batch_size.min(b.batch_size))
    }

    /// The training batches over which the merged models of a pair with `layout` have their
    /// BatchNorm statistics re-estimated (`path.bn_reset_batches` of `train.batch_size`, drawn
    /// from `train` by the seed); `None` where the layout has no BatchNorm or the config asks
    /// for interpolated statistics.
    pub fn batch_norm_reset(&self, layout: &ModelLayout, train: &Dataset, device: &Device) -> Option<ResetData> {
        ResetData::new(layout, train, self.path.bn_reset_batches, self.train.batch_size, self.seed, device)
    }

    /// The training settings of A and B after applying the pair's difference.
    pub(super) fn train_configs(&self) -> (TrainConfig, TrainConfig) {
        let (mut a, mut b) = (self.train.clone(), self.train.clone());
        match &self.pair {
            PairDifference::LearningRate { a: la, b: lb, .. } => (a.learning_rate, b.learning_rate) = (*la, *lb),
            PairDifference::BatchSize { a: ba, b: bb, scale_learning_rate } => {
                if *scale_learning_rate {
                    let per_sample = self.train.learning_rate / self.train.batch_size.max(1) as f64;
                    (a.learning_rate, b.learning_rate) = (per_sample * *ba as f64, per_sample * *bb as f64);
                }
                (a.batch_size, b.batch_size) = (*ba, *bb);
            }
            PairDifference::WeightDecay { a: wa, b: wb } => (a.weight_decay, b.weight_decay) = (*wa, *wb),
            PairDifference::Optimizer { a: oa, b: ob, learning_rate_a, learning_rate_b } => {
                (a.optimizer, b.optimizer) = (*oa, *ob);
                a.learning_rate = learning_rate_a.unwrap_or(a.learning_rate);
                b.learning_rate = learning_rate_b.unwrap_or(b.learning_rate);
            }
            PairDifference::Seed { .. } | PairDifference::Data { .. } => {}
        }
        (a, b)
    }

    /// The pairs to train, plain first: one per training the methods use, plus the plain pair
    /// when WSA's target is plain-trained A.
    pub fn trainings(&self) -> Vec<Training> {
        let uses = |t: Training| self.methods.iter().any(|m| m.training == t);
        let reference_needs_plain =
            uses(Training::Wsa) && matches!(self.wsa.target, TargetSource::Reference { model: None });
        Training::ALL.into_iter().filter(|&t| uses(t) || (t == Training::Plain && reference_needs_plain)).collect()
    }

    /// The WSA strength a training uses.
    pub fn lambda(&self, training: Training) -> f64 {
        match training {
            Training::Plain => 0.0,
            Training::Wsa => self.wsa.lambda,
        }
    }

    /// The run's progress events in all (model epochs and path points), for a progress bar.
    pub fn progress_total(&self) -> usize {
        let models: usize = self
            .trainings()
            .iter()
            .map(|&t| {
                // With plain-trained A as the reference, the WSA pair trains only B.
                let frozen_a = t == Training::Wsa && matches!(self.wsa.target, TargetSource::Reference { model: None });
                if frozen_a { 1 } else { 2 }
            })
            .sum();
        let paths = if self.curve.is_some() { 2 } else { 1 };
        (models * self.train.epochs + paths * self.methods.len() * self.path.points) * self.seeds
    }

    pub fn validate(&self) -> Result<()> {
        method::validate_list(&self.methods)?;
        if !(1..=MAX_SEEDS).contains(&self.seeds) {
            return Err(WsaError::invalid(
                "seeds",
                self.seeds,
                &format!("must be between 1 and {MAX_SEEDS} (`wsa-lab reproduce` runs larger studies, resumably)"),
            ));
        }
        if self.seed.checked_add(self.seeds as u64 - 1).is_none() {
            return Err(WsaError::invalid(
                "seed",
                self.seed,
                "leaves no room for the other seeds; choose a smaller one",
            ));
        }
        self.wsa.validate()?;
        self.weight_matching.validate()?;
        if let Some(curve) = &self.curve {
            curve.validate()?;
        }
        self.repair.validate()?;
        self.path.alphas()?;
        if self.path.bn_reset_batches > MAX_RESET_BATCHES {
            return Err(WsaError::invalid(
                "path.bn_reset_batches",
                self.path.bn_reset_batches,
                &format!("must be at most {MAX_RESET_BATCHES} (0 interpolates the statistics instead)"),
            ));
        }
        if !(1..=MAX_HISTOGRAM_BINS).contains(&self.histogram_bins) {
            return Err(WsaError::invalid(
                "histogram_bins",
                self.histogram_bins,
                &format!("must be between 1 and {MAX_HISTOGRAM_BINS}"),
            ));
        }
        if let PairDifference::Data { split: DataDifference::NonIid { alpha } } = self.pair
            && !(alpha.is_finite() && alpha > 0.0)
        {
            return Err(WsaError::invalid("pair.split.alpha", alpha, "the Dirichlet concentration must be > 0"));
        }
        Ok(())
    }
}
