//! The mode-connectivity experiment (method.md section 5): a pair A, B that differ in one
//! condition, trained once for each training the configured methods need (plain, WSA), B
//! aligned to A as each method says (not at all, weight matching, rescaling), and each method's
//! linear path evaluated: barriers, per-layer scopes, histograms and the scope distance.

use super::curve::{self, CurveConfig, CurveResult};
use super::method::{self, Alignment, Method, Training};
use super::seeds::{MAX_SEEDS, SeedRun};
use super::versioned::{self, CONNECT_VERSION, Versioned};
use super::{Event, Observer};
use crate::align::{self, ParamDistance, PermutationReport, PermutationSpec, WeightMatchingConfig};
use crate::data::{self, DataConfig, DataSplit, Dataset};
use crate::device::ComputeDevice;
use crate::error::{Result, WsaError};
use crate::io;
use crate::kernels::MAX_HISTOGRAM_BINS;
use crate::merge::{Barriers, PathGrid, PathPoint, barriers, evaluate_path, interpolate};
use crate::model::{HostParams, ModelConfig, ModelLayout, Params};
use crate::repair::{self, LayerStats, RepairConfig};
use crate::rng::Rng;
use crate::scope::{self, FusionRule, LayerReport, Scope, device_scopes, fuse};
use crate::train::{DeviceData, Metrics, OptimizerKind, TrainConfig, Trainer, evaluate};
use crate::wsa::{TargetSource, WsaConfig};
use burn::tensor::Tensor;
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectConfig {
    pub version: u32,
    pub seed: u64,
    /// Run the whole experiment at `seed`, `seed + 1`, ... this many times: the result holds
    /// every seed's numbers and their spread (see `seeds.rs`). One is the default and is left
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

fn is_one_seed(seeds: &usize) -> bool {
    *seeds == 1
}

/// Config files and links; configs of older versions are migrated (version 1 ran the plain and
/// the WSA pair).
/// For `skip_serializing_if`: a switch left off is not written, so configs (and the keys of
/// reproduce cells) from before it existed read and hash as they did.
fn is_false(value: &bool) -> bool {
    !*value
}

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
        super::flops_per_step(&self.model, &self.data.dataset, a.batch_size.min(b.batch_size))
    }

    /// The training settings of A and B after applying the pair's difference.
    fn train_configs(&self) -> (TrainConfig, TrainConfig) {
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub model: String,
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
#[derive(Clone, Debug, PartialEq)]
pub struct TrainedPair {
    pub method: Method,
    pub a: HostParams,
    pub b: HostParams,
}

#[derive(Debug, PartialEq)]
pub struct ConnectOutcome {
    pub result: ConnectResult,
    pub models: Vec<TrainedPair>,
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
fn pair_data(config: &ConnectConfig, split: &DataSplit) -> Result<Option<(Dataset, Dataset)>> {
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

/// A trained pair on the device, with the target its training ended on.
struct PairRun {
    a: Params,
    b: Params,
    target: Vec<Scope>,
}

/// Everything fixed across the trained pairs.
struct Setup<'a> {
    config: &'a ConnectConfig,
    device: &'a ComputeDevice,
    layers: Vec<usize>,
    init_a: HostParams,
    init_b: HostParams,
    train_a: DeviceData,
    train_b: DeviceData,
    test: DeviceData,
    order_seeds: (u64, u64),
}

impl Setup<'_> {
    fn trainers(&self) -> Result<(Trainer, Trainer)> {
        let (ca, cb) = self.config.train_configs();
        let a = Trainer::new("A", ca, &self.init_a, self.train_a.len, &self.device.device, self.order_seeds.0)?;
        let b = Trainer::new("B", cb, &self.init_b, self.train_b.len, &self.device.device, self.order_seeds.1)?;
        Ok((a, b))
    }

    async fn fused(&self, a: &Trainer, b: &Trainer, rule: FusionRule) -> Result<Vec<Scope>> {
        let sa = device_scopes(&a.params, &self.layers).await?;
        let sb = device_scopes(&b.params, &self.layers).await?;
        fuse(&[sa, sb], &[1.0, 1.0], rule)
    }

    /// Trains A and B step by step together; `regularise` says which of them get the WSA term,
    /// `fixed_target` is a constant target (else the fused target is refreshed every k steps).
    /// `frozen_a` replaces A with an already trained model that takes no steps.
    async fn train_pair(
        &self,
        training: Training,
        regularise: (bool, bool),
        fixed_target: Option<Vec<Scope>>,
        frozen_a: Option<Params>,
        curves: &mut Vec<EpochRecord>,
        observer: &mut dyn Observer,
    ) -> Result<PairRun> {
        let (mut a, mut b) = self.trainers()?;
        if let Some(params) = &frozen_a {
            a.params = params.clone();
            a.step = a.total_steps();
        }
        let sync_every = match self.config.wsa.target {
            TargetSource::Fused { sync_every } => sync_every,
            _ => usize::MAX,
        };
        let rule = self.config.wsa.fusion;
        let mut target = match &fixed_target {
            Some(t) => t.clone(),
            None => self.fused(&a, &b, rule).await?,
        };
        let lambda = self.config.lambda(training);
        let mut step = 0usize;
        while !(a.finished() && b.finished()) {
            if observer.is_cancelled() {
                return Err(WsaError::Cancelled);
            }
            if fixed_target.is_none() && step > 0 && step.is_multiple_of(sync_every) {
                target = self.fused(&a, &b, rule).await?;
            }
            let term = self.config.wsa.term(lambda, &self.layers, &target);
            for (trainer, data, on) in [(&mut a, &self.train_a, regularise.0), (&mut b, &self.train_b, regularise.1)] {
                if trainer.finished() {
                    continue;
                }
                trainer.train_step(data, on.then_some(&term));
                if trainer.step % trainer.steps_per_epoch == 0 {
                    let train_loss = trainer.take_mean_loss().await?;
                    let test_accuracy =
                        evaluate(&trainer.params.layout, &trainer.params.tensors, &self.test).await?.accuracy;
                    let epoch = trainer.step / trainer.steps_per_epoch;
                    let record = EpochRecord {
                        model: trainer.name.clone(),
                        epoch,
                        train_loss,
                        test_accuracy,
                        scopes: device_scopes(&trainer.params, &self.layers).await?,
                    };
                    observer.on_event(&Event::Epoch {
                        pair: training,
                        epochs: trainer.config.epochs,
                        record: record.clone(),
                    });
                    curves.push(record);
                }
            }
            step += 1;
            observer.pause().await;
        }
        if fixed_target.is_none() {
            target = self.fused(&a, &b, rule).await?;
        }
        Ok(PairRun { a: a.params, b: b.params, target })
    }

    /// Trains the pair `training`; `plain` is the plain pair when it was trained already.
    async fn train(
        &self,
        training: Training,
        plain: Option<&PairRun>,
        reference: Option<Vec<Scope>>,
        curves: &mut Vec<EpochRecord>,
        observer: &mut dyn Observer,
    ) -> Result<PairRun> {
        let lambda = self.config.lambda(training);
        if training == Training::Plain {
            observer.on_event(&Event::Stage("training the plain pair (lambda = 0)".into()));
            return self.train_pair(training, (false, false), None, None, curves, observer).await;
        }
        observer.on_event(&Event::Stage(format!("training the WSA pair (lambda = {lambda})")));
        match &self.config.wsa.target {
            TargetSource::Fused { .. } => self.train_pair(training, (true, true), None, None, curves, observer).await,
            TargetSource::Fixed => {
                let layout = &self.init_a.layout;
                let target = self
                    .layers
                    .iter()
                    .map(|&i| Scope { mean: 0.0, std: layout.params[i].init_std(layout.config.initializer()) })
                    .collect();
                self.train_pair(training, (true, true), Some(target), None, curves, observer).await
            }
            TargetSource::Reference { model: Some(_) } => {
                self.train_pair(training, (true, true), reference, None, curves, observer).await
            }
            TargetSource::Reference { model: None } => {
                // A is the plain A, frozen; only B is trained, toward A's final scope.
                let plain = plain.ok_or_else(|| {
                    WsaError::invalid("wsa.target", "reference", "needs the plain pair, which was not trained")
                })?;
                let target = device_scopes(&plain.a, &self.layers).await?;
                self.train_pair(training, (false, true), Some(target), Some(plain.a.clone()), curves, observer).await
            }
        }
    }
}

/// A pair ready to merge: A and B after the method's alignment.
struct AlignedPair {
    a: Params,
    b: Params,
    /// B as trained, when the method moved it.
    b_unaligned: Option<Params>,
    target: Vec<Scope>,
    report: Option<AlignmentReport>,
}

/// Aligns B to A (or rescales both) as `method` says.
async fn align_pair(
    config: &ConnectConfig,
    layers: &[usize],
    method: Method,
    run: &PairRun,
    observer: &mut dyn Observer,
) -> Result<AlignedPair> {
    let report = |kind| AlignmentReport {
        kind,
        sweeps: 0,
        objective: Vec::new(),
        permutations: Vec::new(),
        distances: Vec::new(),
    };
    let (a, b, new_a, new_b, target, mut report) = match method.alignment {
        Alignment::None => {
            return Ok(AlignedPair {
                a: run.a.clone(),
                b: run.b.clone(),
                b_unaligned: None,
                target: run.target.clone(),
                report: None,
            });
        }
        Alignment::WeightMatching => {
            observer.on_event(&Event::Stage(format!("{method}: matching B's units to A's (weight matching)")));
            let (a, b) = (run.a.to_host().await?, run.b.to_host().await?);
            let mut rng = Rng::derive(config.seed, "weight-matching");
            let matching = align::weight_matching(&a, &b, &config.weight_matching, &mut rng, observer).await?;
            let aligned = align::permute(&b, &PermutationSpec::new(&a.layout)?, &matching.perms);
            let report = AlignmentReport {
                sweeps: matching.sweeps,
                objective: matching.objective,
                permutations: matching.permutations,
                ..report(Alignment::WeightMatching)
            };
            (a.clone(), b, a, aligned, run.target.clone(), report)
        }
        Alignment::Rescale => {
            observer.on_event(&Event::Stage(format!("{method}: rescaling A and B to the fused scope")));
            let (a, b) = (run.a.to_host().await?, run.b.to_host().await?);
            let (ra, rb, target) = align::rescale_pair(&a, &b, layers, config.wsa.fusion)?;
            (a, b, ra, rb, target, report(Alignment::Rescale))
        }
    };
    report.distances = align::distances(&a, &b, &new_a, &new_b);
    let device = run.a.device();
    Ok(AlignedPair {
        a: new_a.to_device(&device),
        b: new_b.to_device(&device),
        b_unaligned: Some(run.b.clone()),
        target,
        report: Some(report),
    })
}

/// Evaluates an aligned pair on the test set: the path, both barriers, per-layer scopes and
/// histograms of A, B (before and after alignment) and their midpoint.
async fn report(
    config: &ConnectConfig,
    layers: &[usize],
    test: &DeviceData,
    repair_data: Option<&DeviceData>,
    method: Method,
    pair: AlignedPair,
    observer: &mut dyn Observer,
) -> Result<(MethodResult, TrainedPair)> {
    observer.on_event(&Event::Stage(format!("evaluating the {method} path")));
    let alphas = config.path.alphas()?;
    let endpoint_a = evaluate(&pair.a.layout, &pair.a.tensors, test).await?;
    let endpoint_b = evaluate(&pair.b.layout, &pair.b.tensors, test).await?;
    let host_a = pair.a.to_host().await?;
    let host_b = pair.b.to_host().await?;
    host_a.check_finite()?;
    host_b.check_finite()?;
    let repairer = if let Some(repair_data) = repair_data.filter(|_| method.repair) {
        observer.on_event(&Event::Stage(format!("{method}: measuring A's and B's units for REPAIR")));
        let samples = config.repair.samples;
        Some(Repairer {
            a: repair::unit_stats(&pair.a, repair_data, samples).await?,
            b: repair::unit_stats(&pair.b, repair_data, samples).await?,
            data: repair_data,
            config: config.repair,
        })
    } else {
        None
    };
    let mut path = Vec::with_capacity(alphas.len());
    for (index, &alpha) in alphas.iter().enumerate() {
        if observer.is_cancelled() {
            return Err(WsaError::Cancelled);
        }
        match &repairer {
            None => path.extend(evaluate_path(&pair.a, &pair.b, &[alpha], test).await?),
            Some(r) => {
                let merged = r.merged(&host_a, &host_b, alpha, &pair.a.device(), observer).await?;
                let m = evaluate(&merged.layout, &merged.tensors, test).await?;
                path.push(PathPoint { alpha, loss: m.loss, accuracy: m.accuracy });
            }
        }
        observer.on_event(&Event::PathPoint { method, index, total: alphas.len() });
        observer.pause().await;
    }
    // The midpoint is made once, on the device, for the histograms there and the fit statistics
    // (kurtosis, KS) on the host.
    let midpoint = match &repairer {
        None => interpolate(&pair.a, &pair.b, 0.5)?,
        Some(r) => r.merged(&host_a, &host_b, 0.5, &pair.a.device(), observer).await?,
    };
    let merged = midpoint.to_host().await?;
    let (ra, rb, rm) = (
        scope::layer_reports(&host_a, layers),
        scope::layer_reports(&host_b, layers),
        scope::layer_reports(&merged, layers),
    );
    let mut histogrammed: Vec<&[Tensor<1>]> = vec![&pair.a.tensors, &pair.b.tensors, &midpoint.tensors];
    let mut unaligned_reports = None;
    if let Some(b) = &pair.b_unaligned {
        histogrammed.push(&b.tensors);
        unaligned_reports = Some(scope::layer_reports(&b.to_host().await?, layers));
    }
    let histograms = scope::device_histograms(&histogrammed, layers, config.histogram_bins).await?;
    let comparisons = histograms
        .into_iter()
        .enumerate()
        .map(|(k, h)| {
            let mut counts = h.counts.into_iter();
            let mut next = || counts.next().unwrap_or_default();
            let (a, b, merged) = (next(), next(), next());
            let b_unaligned = unaligned_reports.as_ref().map(|_| next());
            LayerComparison {
                path: ra[k].path.clone(),
                a: ra[k].clone(),
                b: rb[k].clone(),
                merged: rm[k].clone(),
                b_unaligned: unaligned_reports.as_ref().map(|r| r[k].clone()),
                target: pair.target[k],
                histogram: Histograms { low: h.low, high: h.high, a, b, merged, b_unaligned },
            }
        })
        .collect();
    let scopes_a: Vec<Scope> = ra.iter().map(|r| r.scope).collect();
    let scopes_b: Vec<Scope> = rb.iter().map(|r| r.scope).collect();
    let result = MethodResult {
        method,
        lambda: config.lambda(method.training),
        barriers: barriers(&path, endpoint_a, endpoint_b),
        endpoint_a,
        endpoint_b,
        path,
        scope_distance: scope::scope_distance(&scopes_a, &scopes_b),
        layers: comparisons,
        alignment: pair.report,
        curve: None,
    };
    Ok((result, TrainedPair { method, a: host_a, b: host_b }))
}

/// What REPAIR needs to correct a merged model: A's and B's unit statistics and the samples
/// they were measured on.
struct Repairer<'a> {
    a: Vec<LayerStats>,
    b: Vec<LayerStats>,
    data: &'a DeviceData,
    config: RepairConfig,
}

impl Repairer<'_> {
    /// The α-interpolation of A and B, repaired, on `device`.
    async fn merged(
        &self,
        a: &HostParams,
        b: &HostParams,
        alpha: f64,
        device: &burn::tensor::Device,
        observer: &mut dyn Observer,
    ) -> Result<Params> {
        let merged = a.interpolate(b, alpha)?;
        let target = repair::Target { a: &self.a, b: &self.b, alpha };
        let repaired = repair::repair(&merged, target, self.data, &self.config, device, observer).await?;
        Ok(repaired.to_device(device))
    }
}

/// The first training samples of the seeded split, where REPAIR measures (`None` when no
/// method uses REPAIR).
fn repair_samples(config: &ConnectConfig, train: &Dataset, device: &burn::tensor::Device) -> Option<DeviceData> {
    let rows: Vec<usize> = (0..config.repair.samples.min(train.len())).collect();
    config.methods.iter().any(|m| m.repair).then(|| DeviceData::upload(&train.subset(&rows), device))
}

/// Runs the whole experiment on `device`, once per seed: the outcome is the first seed's,
/// models included, with every seed's numbers in `result.seeds`.
pub async fn run(
    config: &ConnectConfig,
    device: &ComputeDevice,
    observer: &mut dyn Observer,
) -> Result<ConnectOutcome> {
    config.validate()?;
    if config.seeds == 1 {
        return run_seed(config, device, observer).await;
    }
    let mut first: Option<ConnectOutcome> = None;
    let mut seeds = Vec::with_capacity(config.seeds);
    let mut warnings = Vec::new();
    for index in 0..config.seeds {
        let seed = config.seed + index as u64;
        observer.on_event(&Event::Seed { index, total: config.seeds, seed });
        let single = ConnectConfig { seed, seeds: 1, ..config.clone() };
        let outcome = run_seed(&single, device, observer).await?;
        seeds.push(SeedRun::of(&outcome.result));
        warnings.extend(outcome.result.warnings.iter().map(|w| format!("seed {seed}: {w}")));
        let kept = first.get_or_insert(outcome);
        if index + 1 < config.seeds {
            // The answer so far, so that a viewer shows the first seed at once and the spread
            // as it grows, instead of waiting for the last seed.
            let so_far = over_seeds(kept.result.clone(), config, &warnings, &seeds);
            observer.on_event(&Event::SeedResult(Box::new(so_far)));
        }
    }
    let mut outcome = first.ok_or_else(|| WsaError::invalid("seeds", 0, "must be at least 1"))?;
    outcome.result = over_seeds(outcome.result, config, &warnings, &seeds);
    Ok(outcome)
}

/// The first seed's result as the result over `seeds`.
fn over_seeds(first: ConnectResult, config: &ConnectConfig, warnings: &[String], seeds: &[SeedRun]) -> ConnectResult {
    ConnectResult { config: config.clone(), warnings: warnings.to_vec(), seeds: seeds.to_vec(), ..first }
}

/// Runs the experiment at `config.seed` alone.
async fn run_seed(
    config: &ConnectConfig,
    device: &ComputeDevice,
    observer: &mut dyn Observer,
) -> Result<ConnectOutcome> {
    observer.on_event(&Event::Stage(format!("loading {}", config.data.dataset.label())));
    let split = data::load(&config.data, config.seed)?;
    let layout = Arc::new(ModelLayout::new(&config.model, &split.train.sample_shape, split.train.num_classes)?);
    let layers = config.wsa.layers.select(&layout);
    if layers.is_empty() {
        return Err(WsaError::invalid("wsa.layers", "selection", "selects no parameter; include at least the weights"));
    }
    let dev = &device.device;
    let (train_a, train_b) = match pair_data(config, &split)? {
        None => {
            let shared = DeviceData::upload(&split.train, dev);
            (shared.clone(), shared)
        }
        Some((a, b)) => (DeviceData::upload(&a, dev), DeviceData::upload(&b, dev)),
    };
    let (ca, cb) = config.train_configs();
    ca.validate(train_a.len)?;
    cb.validate(train_b.len)?;
    let (init_a, init_b) = initial_params(config, &layout);
    let order_seeds = match config.pair {
        PairDifference::Seed { .. } => (config.seed.wrapping_mul(2), config.seed.wrapping_mul(2).wrapping_add(1)),
        _ => (config.seed, config.seed),
    };
    let mut warnings = Vec::new();
    let reference = match &config.wsa.target {
        TargetSource::Reference { model: Some(path) } => {
            let loaded = io::load_model_for(path, &layout)?;
            if let Some(notice) = loaded.report.notice() {
                warnings.push(format!("reference model {}: {notice}", path.display()));
            }
            Some(layers.iter().map(|&i| scope::scope_of(&loaded.params.values[i])).collect::<Vec<_>>())
        }
        _ => None,
    };
    let setup = Setup {
        config,
        device,
        layers: layers.clone(),
        init_a,
        init_b,
        train_a,
        train_b,
        test: DeviceData::upload(&split.test, dev),
        order_seeds,
    };
    let repair_data = repair_samples(config, &split.train, dev);

    let mut runs: Vec<(Training, PairRun)> = Vec::new();
    let mut pairs = Vec::new();
    for training in config.trainings() {
        let mut curves = Vec::new();
        let plain = runs.iter().find(|(t, _)| *t == Training::Plain).map(|(_, r)| r);
        let run = setup.train(training, plain, reference.clone(), &mut curves, observer).await?;
        if training == Training::Wsa && matches!(config.wsa.target, TargetSource::Reference { model: None }) {
            // The frozen A's curves are the plain A's.
            let plain_curves: &[EpochRecord] =
                pairs.iter().find(|p: &&PairCurves| p.training == Training::Plain).map_or(&[], |p| &p.curves);
            curves.extend(plain_curves.iter().filter(|c| c.model == "A").cloned());
        }
        pairs.push(PairCurves { training, lambda: config.lambda(training), curves });
        runs.push((training, run));
    }

    let mut methods = Vec::with_capacity(config.methods.len());
    let mut models = Vec::with_capacity(config.methods.len());
    for &method in &config.methods {
        let Some((_, run)) = runs.iter().find(|(t, _)| *t == method.training) else {
            return Err(WsaError::invalid("methods", method, "its pair was not trained"));
        };
        let aligned = align_pair(config, &layers, method, run, observer).await?;
        let (mut result, trained) =
            report(config, &layers, &setup.test, repair_data.as_ref(), method, aligned, observer).await?;
        if let Some(curve) = &config.curve {
            result.curve = Some(method_curve(config, curve, &setup, &result, &trained, observer).await?);
        }
        methods.push(result);
        models.push(trained);
    }
    // Only the pairs some method uses are reported (a plain pair trained as WSA's reference
    // stays in the WSA pair's curves).
    pairs.retain(|p| config.methods.iter().any(|m| m.training == p.training));
    warnings.extend(chance_warnings(&methods, split.train.num_classes));
    let result = ConnectResult {
        version: CONNECT_VERSION,
        config: config.clone(),
        dataset: split.name.clone(),
        train_samples: split.train.len(),
        test_samples: split.test.len(),
        parameters: layout.num_parameters(),
        device: device.description.clone(),
        difference: config.pair.describe(),
        pairs,
        warnings,
        methods,
        seeds: Vec::new(),
    };
    Ok(ConnectOutcome { result, models })
}

/// The curve between a method's A and B (B as the method aligned it), trained on A's data.
async fn method_curve(
    config: &ConnectConfig,
    curve: &CurveConfig,
    setup: &Setup<'_>,
    result: &MethodResult,
    pair: &TrainedPair,
    observer: &mut dyn Observer,
) -> Result<CurveResult> {
    observer.on_event(&Event::Stage(format!("{}: training a {} curve", result.method, curve.kind.name())));
    let dev = &setup.device.device;
    let (a, b) = (pair.a.to_device(dev), pair.b.to_device(dev));
    let theta =
        curve::train_control_point(curve, config.train.batch_size, &a, &b, &setup.train_a, config.seed, observer)
            .await?;
    observer.on_event(&Event::Stage(format!("{}: evaluating the {} curve", result.method, curve.kind.name())));
    let endpoints = (result.endpoint_a, result.endpoint_b);
    curve::evaluate_curve(result.method, curve.kind, (&a, &theta, &b), &result.path, endpoints, &setup.test, observer)
        .await
}

/// A warning for every endpoint that ended near chance accuracy: its barriers say little.
/// Methods sharing a pair share the warning (weight matching does not change what B computes).
fn chance_warnings(methods: &[MethodResult], classes: usize) -> Vec<String> {
    let chance = 1.0 / classes as f64;
    let mut warnings = Vec::new();
    for m in methods {
        for (model, metrics) in [("A", m.endpoint_a), ("B", m.endpoint_b)] {
            if metrics.accuracy >= 1.5 * chance {
                continue;
            }
            let whose = match m.method.alignment {
                Alignment::Rescale => format!("{} model {model} (after rescaling)", m.method),
                Alignment::None | Alignment::WeightMatching => format!("{} model {model}", m.method.training.name()),
            };
            let warning = format!(
                "{whose} ended near chance accuracy ({:.3}): it did not learn (learning rate too high or too low?), so the barriers of the methods using it say little",
                metrics.accuracy
            );
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
    }
    warnings
}

/// Re-evaluates a pair that did not come out of [`run`] (e.g. a model loaded into slot A or B)
/// with `method`'s alignment: the path, barriers and scopes on the config's test set, with the
/// fused scope of A and B as the reported target. The pair must fit the config's architecture.
pub async fn evaluate_pair(
    config: &ConnectConfig,
    device: &ComputeDevice,
    method: Method,
    a: &HostParams,
    b: &HostParams,
    observer: &mut dyn Observer,
) -> Result<(MethodResult, TrainedPair)> {
    config.validate()?;
    a.layout.check_compatible(&b.layout)?;
    a.check_finite()?;
    b.check_finite()?;
    let split = data::load(&config.data, config.seed)?;
    let expected = ModelLayout::new(&config.model, &split.train.sample_shape, split.train.num_classes)?;
    expected.check_compatible(&a.layout)?;
    let layers = config.wsa.layers.select(&a.layout);
    let scopes = |p: &HostParams| layers.iter().map(|&i| scope::scope_of(&p.values[i])).collect::<Vec<_>>();
    let target = fuse(&[scopes(a), scopes(b)], &[1.0, 1.0], FusionRule::MomentMatching)?;
    let test = DeviceData::upload(&split.test, &device.device);
    let run = PairRun { a: a.to_device(&device.device), b: b.to_device(&device.device), target };
    let aligned = align_pair(config, &layers, method, &run, observer).await?;
    let repair_data = repair_samples(config, &split.train, &device.device);
    report(config, &layers, &test, repair_data.as_ref(), method, aligned, observer).await
}
