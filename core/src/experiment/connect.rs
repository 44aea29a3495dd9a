//! The mode-connectivity experiment (method.md section 5): a pair A, B that differ in one
//! condition, trained plain (lambda = 0) and with WSA; both linear paths evaluated; barriers,
//! per-layer scopes, histograms and the scope distance reported.

use super::{CONFIG_VERSION, Event, Observer};
use crate::data::{self, DataConfig, DataSplit, Dataset};
use crate::device::ComputeDevice;
use crate::error::{Result, WsaError};
use crate::io;
use crate::kernels::MAX_HISTOGRAM_BINS;
use crate::merge::{Barriers, PathGrid, PathPoint, barriers, evaluate_path, interpolate};
use crate::model::{HostParams, ModelConfig, ModelLayout, Params};
use crate::rng::Rng;
use crate::scope::{self, FusionRule, LayerReport, Scope, device_scopes, fuse};
use crate::train::{DeviceData, Metrics, OptimizerKind, TrainConfig, Trainer, evaluate};
use crate::wsa::{TargetSource, WsaConfig, WsaTerm};
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
    LearningRate {
        a: f64,
        b: f64,
    },
    BatchSize {
        a: usize,
        b: usize,
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
        PairDifference::LearningRate { a: 0.01, b: 0.2 }
    }
}

impl PairDifference {
    pub fn describe(&self) -> String {
        match self {
            PairDifference::Seed { same_init: true } => "seed (same init, different data order)".into(),
            PairDifference::Seed { same_init: false } => "seed (different init and data order)".into(),
            PairDifference::LearningRate { a, b } => format!("learning rate {a} vs {b}"),
            PairDifference::BatchSize { a, b } => format!("batch size {a} vs {b}"),
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
    pub data: DataConfig,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub pair: PairDifference,
    pub wsa: WsaConfig,
    pub path: PathGrid,
    pub histogram_bins: usize,
}

impl Default for ConnectConfig {
    fn default() -> Self {
        Self {
            version: CONFIG_VERSION,
            seed: 0,
            data: DataConfig::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            pair: PairDifference::default(),
            wsa: WsaConfig::default(),
            path: PathGrid::default(),
            histogram_bins: 40,
        }
    }
}

impl ConnectConfig {
    pub fn from_json(text: &str) -> Result<Self> {
        let mut de = serde_json::Deserializer::from_str(text);
        let config: ConnectConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let field = e.path().to_string();
            WsaError::invalid(
                &format!("config field `{field}`"),
                "in the file",
                &format!("not a valid connect config: {}", e.inner()),
            )
        })?;
        if config.version != CONFIG_VERSION {
            return Err(WsaError::invalid(
                "config.version",
                config.version,
                &format!(
                    "this build reads version {CONFIG_VERSION}; re-create the config with `wsa-lab connect --print-config`"
                ),
            ));
        }
        Ok(config)
    }

    /// Work per training step of the smaller of A's and B's batches, for `device::select_for`.
    pub fn flops_per_step(&self) -> Option<f64> {
        let (a, b) = self.train_configs();
        super::flops_per_step(&self.model, &self.data.dataset, a.batch_size.min(b.batch_size))
    }

    /// The training settings of A and B after applying the pair's difference.
    fn train_configs(&self) -> (TrainConfig, TrainConfig) {
        let (mut a, mut b) = (self.train.clone(), self.train.clone());
        match &self.pair {
            PairDifference::LearningRate { a: la, b: lb } => (a.learning_rate, b.learning_rate) = (*la, *lb),
            PairDifference::BatchSize { a: ba, b: bb } => (a.batch_size, b.batch_size) = (*ba, *bb),
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

    pub fn validate(&self) -> Result<()> {
        self.wsa.validate()?;
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
    pub a: LayerReport,
    pub b: LayerReport,
    /// The model at alpha = 0.5.
    pub merged: LayerReport,
    /// The target scope at the end of training (for the plain variant: the fused scope of A and
    /// B, i.e. what WSA would have aimed at).
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    /// "plain" or "wsa".
    pub name: String,
    pub lambda: f64,
    pub endpoint_a: Metrics,
    pub endpoint_b: Metrics,
    pub path: Vec<PathPoint>,
    pub barriers: Barriers,
    /// Mean over layers of the symmetric KL between A's and B's scopes.
    pub scope_distance: f64,
    pub layers: Vec<LayerComparison>,
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
    pub variants: Vec<VariantResult>,
    /// Things a reader of the numbers must know, e.g. an endpoint that never learned.
    pub warnings: Vec<String>,
}

/// The trained models, for saving.
pub struct TrainedPair {
    pub variant: String,
    pub a: HostParams,
    pub b: HostParams,
}

pub struct ConnectOutcome {
    pub result: ConnectResult,
    pub models: Vec<TrainedPair>,
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

struct PairRun {
    a: Params,
    b: Params,
    target: Vec<Scope>,
    curves: Vec<EpochRecord>,
}

/// Everything fixed across the two variants.
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

    fn term(&self, target: &[Scope], lambda: f64) -> WsaTerm {
        let wsa = &self.config.wsa;
        WsaTerm {
            lambda,
            direction: wsa.direction,
            reduction: wsa.reduction,
            layers: self.layers.clone(),
            target: target.to_vec(),
        }
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
        variant: &str,
        lambda: f64,
        regularise: (bool, bool),
        fixed_target: Option<Vec<Scope>>,
        frozen_a: Option<Params>,
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
        let mut curves = Vec::new();
        let mut step = 0usize;
        while !(a.finished() && b.finished()) {
            if observer.is_cancelled() {
                return Err(WsaError::Cancelled);
            }
            if fixed_target.is_none() && step > 0 && step.is_multiple_of(sync_every) {
                target = self.fused(&a, &b, rule).await?;
            }
            let term = self.term(&target, lambda);
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
                        variant: variant.into(),
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
        Ok(PairRun { a: a.params, b: b.params, target, curves })
    }
}

/// Evaluates a trained (or loaded) pair on the test set: the path, both barriers, per-layer
/// scopes and histograms of A, B and their midpoint.
async fn report(
    config: &ConnectConfig,
    layers: &[usize],
    test: &DeviceData,
    name: &str,
    lambda: f64,
    run: PairRun,
    observer: &mut dyn Observer,
) -> Result<(VariantResult, TrainedPair)> {
    observer.on_event(&Event::Stage(format!("evaluating the {name} path")));
    let alphas = config.path.alphas()?;
    let endpoint_a = evaluate(&run.a.layout, &run.a.tensors, test).await?;
    let endpoint_b = evaluate(&run.b.layout, &run.b.tensors, test).await?;
    let mut path = Vec::with_capacity(alphas.len());
    for (index, &alpha) in alphas.iter().enumerate() {
        if observer.is_cancelled() {
            return Err(WsaError::Cancelled);
        }
        path.extend(evaluate_path(&run.a, &run.b, &[alpha], test).await?);
        observer.on_event(&Event::PathPoint { variant: name.into(), index, total: alphas.len() });
        observer.pause().await;
    }
    // The midpoint is made once, on the device, for the histograms there and the fit statistics
    // (kurtosis, KS) on the host.
    let midpoint = interpolate(&run.a, &run.b, 0.5)?;
    let host_a = run.a.to_host().await?;
    let host_b = run.b.to_host().await?;
    host_a.check_finite()?;
    host_b.check_finite()?;
    let merged = midpoint.to_host().await?;
    let (ra, rb, rm) = (
        scope::layer_reports(&host_a, layers),
        scope::layer_reports(&host_b, layers),
        scope::layer_reports(&merged, layers),
    );
    let histograms =
        scope::device_histograms(&[&run.a.tensors, &run.b.tensors, &midpoint.tensors], layers, config.histogram_bins)
            .await?;
    let comparisons = histograms
        .into_iter()
        .enumerate()
        .map(|(k, h)| {
            let [a, b, merged]: [Vec<u64>; 3] = h.counts.try_into().expect("three models histogrammed");
            LayerComparison {
                path: ra[k].path.clone(),
                a: ra[k].clone(),
                b: rb[k].clone(),
                merged: rm[k].clone(),
                target: run.target[k],
                histogram: Histograms { low: h.low, high: h.high, a, b, merged },
            }
        })
        .collect();
    let scopes_a: Vec<Scope> = ra.iter().map(|r| r.scope).collect();
    let scopes_b: Vec<Scope> = rb.iter().map(|r| r.scope).collect();
    let result = VariantResult {
        name: name.into(),
        lambda,
        barriers: barriers(&path, endpoint_a, endpoint_b),
        endpoint_a,
        endpoint_b,
        path,
        scope_distance: scope::scope_distance(&scopes_a, &scopes_b),
        layers: comparisons,
        curves: run.curves,
    };
    Ok((result, TrainedPair { variant: name.into(), a: host_a, b: host_b }))
}

/// Runs the whole experiment on `device`.
pub async fn run(
    config: &ConnectConfig,
    device: &ComputeDevice,
    observer: &mut dyn Observer,
) -> Result<ConnectOutcome> {
    config.validate()?;
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
    let same_init = !matches!(config.pair, PairDifference::Seed { same_init: false });
    let init_a = layout.init(&mut Rng::derive(config.seed, "init-a"));
    let init_b = if same_init { init_a.clone() } else { layout.init(&mut Rng::derive(config.seed, "init-b")) };
    let order_seeds = match config.pair {
        PairDifference::Seed { .. } => (config.seed.wrapping_mul(2), config.seed.wrapping_mul(2).wrapping_add(1)),
        _ => (config.seed, config.seed),
    };
    let reference = match &config.wsa.target {
        TargetSource::Reference { model: Some(path) } => {
            let model = io::load_model_for(path, &layout)?;
            Some(layers.iter().map(|&i| scope::scope_of(&model.values[i])).collect::<Vec<_>>())
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

    observer.on_event(&Event::Stage("training the plain pair (lambda = 0)".into()));
    let plain = setup.train_pair("plain", 0.0, (false, false), None, None, observer).await?;

    let lambda = config.wsa.lambda;
    observer.on_event(&Event::Stage(format!("training the WSA pair (lambda = {lambda})")));
    let wsa = match &config.wsa.target {
        TargetSource::Fused { .. } => setup.train_pair("wsa", lambda, (true, true), None, None, observer).await?,
        TargetSource::Fixed => {
            let target = layers.iter().map(|&i| Scope { mean: 0.0, std: layout.params[i].init_std() }).collect();
            setup.train_pair("wsa", lambda, (true, true), Some(target), None, observer).await?
        }
        TargetSource::Reference { model: Some(_) } => {
            setup.train_pair("wsa", lambda, (true, true), reference, None, observer).await?
        }
        TargetSource::Reference { model: None } => {
            // A is the plain A, frozen; only B is trained, toward A's final scope.
            let target = device_scopes(&plain.a, &layers).await?;
            let mut run =
                setup.train_pair("wsa", lambda, (false, true), Some(target), Some(plain.a.clone()), observer).await?;
            run.curves.extend(plain.curves.iter().filter(|c| c.model == "A").cloned());
            run
        }
    };
    let (plain_result, plain_models) = report(config, &layers, &setup.test, "plain", 0.0, plain, observer).await?;
    let (wsa_result, wsa_models) = report(config, &layers, &setup.test, "wsa", lambda, wsa, observer).await?;
    let chance = 1.0 / split.train.num_classes as f64;
    let mut warnings = Vec::new();
    for v in [&plain_result, &wsa_result] {
        for (model, m) in [("A", v.endpoint_a), ("B", v.endpoint_b)] {
            if m.accuracy < 1.5 * chance {
                warnings.push(format!(
                    "{} model {model} ended near chance accuracy ({:.3}): it did not learn (learning rate too high or too low?), so this variant's barriers say little",
                    v.name, m.accuracy
                ));
            }
        }
    }
    let result = ConnectResult {
        version: CONFIG_VERSION,
        config: config.clone(),
        dataset: split.name.clone(),
        train_samples: split.train.len(),
        test_samples: split.test.len(),
        parameters: layout.num_parameters(),
        device: device.description.clone(),
        difference: config.pair.describe(),
        variants: vec![plain_result, wsa_result],
        warnings,
    };
    Ok(ConnectOutcome { result, models: vec![plain_models, wsa_models] })
}

/// Re-evaluates a pair that did not come out of [`run`] (e.g. a model loaded into slot A or B):
/// the path, barriers and scopes on the config's test set, with the fused scope of A and B as the
/// reported target. The pair must fit the config's architecture.
pub async fn evaluate_pair(
    config: &ConnectConfig,
    device: &ComputeDevice,
    name: &str,
    lambda: f64,
    a: &HostParams,
    b: &HostParams,
    observer: &mut dyn Observer,
) -> Result<(VariantResult, TrainedPair)> {
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
    let run = PairRun { a: a.to_device(&device.device), b: b.to_device(&device.device), target, curves: Vec::new() };
    report(config, &layers, &test, name, lambda, run, observer).await
}
