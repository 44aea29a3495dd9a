//! Running the connect experiment: once per seed, each seed training the pairs the methods need,
//! aligning and evaluating every method (with its curve when the config asks for one); and
//! re-evaluating a given pair as one method.

use super::alignment::align_pair;
use super::checkpoints::{Kept, NoCheckpoints, PairCheckpoints, PairKey, SavedPair};
use super::evaluation::{EvaluatedPaths, chance_warnings, evaluate_method, repair_samples};
use super::pair::{PairDifference, initial_params, pair_data};
use super::training::{PairRun, Setup};
use super::{
    ConnectConfig, ConnectOutcome, ConnectResult, Endpoint, EpochRecord, MethodResult, PairCurves, TrainedPair,
};
use crate::batch_norm::ResetData;
use crate::data;
use crate::device::ComputeDevice;
use crate::error::{Result, WsaError};
use crate::experiment::curve::{self, CurveConfig, CurveResult};
use crate::experiment::method::{Method, Training};
use crate::experiment::seeds::SeedRun;
use crate::experiment::versioned::CONNECT_VERSION;
use crate::experiment::{Event, Observer};
use crate::io;
use crate::model::{HostParams, ModelLayout};
use crate::scope::{self, FusionRule, fuse};
use crate::train::DeviceData;
use crate::wsa::TargetSource;
use std::sync::Arc;

/// Runs the whole experiment on `device`, once per seed: the outcome is the first seed's,
/// models included, with every seed's numbers in `result.seeds`.
pub async fn run(
    config: &ConnectConfig,
    device: &ComputeDevice,
    observer: &mut dyn Observer,
) -> Result<ConnectOutcome> {
    run_resumable(config, device, observer, &NoCheckpoints).await
}

/// [`run`], keeping each trained pair in `checkpoints` and taking up the pairs kept there by an
/// earlier run of the same config that was stopped: the same numbers as a run never stopped.
pub async fn run_resumable(
    config: &ConnectConfig,
    device: &ComputeDevice,
    observer: &mut dyn Observer,
    checkpoints: &dyn PairCheckpoints,
) -> Result<ConnectOutcome> {
    config.validate()?;
    if config.seeds == 1 {
        return run_seed(config, device, observer, checkpoints).await;
    }
    let mut first: Option<ConnectOutcome> = None;
    let mut seeds = Vec::with_capacity(config.seeds);
    let mut warnings = Vec::new();
    for index in 0..config.seeds {
        let seed = config.seed + index as u64;
        observer.on_event(&Event::Seed { index, total: config.seeds, seed });
        let single = ConnectConfig { seed, seeds: 1, ..config.clone() };
        let outcome = run_seed(&single, device, observer, checkpoints).await?;
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
    checkpoints: &dyn PairCheckpoints,
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
    let reset = config.batch_norm_reset(&layout, &split.train, dev);

    let mut runs: Vec<(Training, PairRun)> = Vec::new();
    let mut pairs = Vec::new();
    for training in config.trainings() {
        let plain = runs.iter().find(|(t, _)| *t == Training::Plain).map(|(_, r)| r);
        let key = PairKey {
            seed: config.seed,
            training,
            layout: &layout,
            scoped_layers: layers.len(),
            device: &device.description,
        };
        let (run, mut curves) = match checkpoints.load(&key) {
            Kept::Pair(saved) => {
                observer
                    .on_event(&Event::Stage(format!("the {} pair: read back from its checkpoint", training.label())));
                let (a, b) = (saved.a.to_device(dev), saved.b.to_device(dev));
                (PairRun { a, b, target: saved.target }, saved.curves)
            }
            kept => {
                if let Kept::Discarded(reason) = kept {
                    observer.on_event(&Event::Stage(format!(
                        "the {} pair's checkpoint is not taken up ({reason}): training it again",
                        training.label()
                    )));
                }
                let mut curves = Vec::new();
                let run = setup.train(training, plain, reference.clone(), &mut curves, observer).await?;
                if checkpoints.keeps() {
                    let (a, b) = (run.a.to_host().await?, run.b.to_host().await?);
                    let saved = SavedPair { a, b, target: run.target.clone(), curves: curves.clone() };
                    if let Err(e) = checkpoints.save(&key, &saved) {
                        // Keeping a pair only spares a rerun: the run goes on without it.
                        observer.on_event(&Event::Stage(format!(
                            "the {} pair could not be kept ({e}): a stop from here on trains it again",
                            training.label()
                        )));
                    }
                }
                (run, curves)
            }
        };
        if training == Training::Wsa && matches!(config.wsa.target, TargetSource::Reference { model: None }) {
            // The frozen A's curves are the plain A's.
            let plain_curves: &[EpochRecord] =
                pairs.iter().find(|p: &&PairCurves| p.training == Training::Plain).map_or(&[], |p| &p.curves);
            curves.extend(plain_curves.iter().filter(|c| c.model == Endpoint::A).cloned());
        }
        pairs.push(PairCurves { training, lambda: config.lambda(training), curves });
        runs.push((training, run));
    }

    let mut methods = Vec::with_capacity(config.methods.len());
    let mut models = Vec::with_capacity(config.methods.len());
    let mut evaluated = EvaluatedPaths::default();
    for &method in &config.methods {
        let Some((_, run)) = runs.iter().find(|(t, _)| *t == method.training) else {
            return Err(WsaError::invalid("methods", method, "its pair was not trained"));
        };
        let aligned = align_pair(config, &layers, method, run, observer).await?;
        let (mut result, trained) = evaluate_method(
            config,
            &layers,
            &setup.test,
            repair_data.as_ref(),
            reset.as_ref(),
            method,
            aligned,
            &mut evaluated,
            observer,
        )
        .await?;
        if let Some(curve) = &config.curve {
            result.curve =
                Some(method_curve(config, curve, &setup, &result, &trained, reset.as_ref(), observer).await?);
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

/// The curve between a method's A and B (B as the method aligned it), trained on A's data; its
/// points' BatchNorm statistics reset over `reset`'s batches where it is given.
async fn method_curve(
    config: &ConnectConfig,
    curve: &CurveConfig,
    setup: &Setup<'_>,
    result: &MethodResult,
    pair: &TrainedPair,
    reset: Option<&ResetData>,
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
    let curve_points = (&a, &theta, &b);
    curve::evaluate_curve(
        result.method,
        curve.kind,
        curve_points,
        &result.path,
        endpoints,
        &setup.test,
        reset,
        observer,
    )
    .await
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
    let split = data::load(&config.data, config.seed)?;
    evaluate_pair_on(config, device, method, a, b, &split, &mut EvaluatedPaths::default(), observer).await
}

/// The model at `alpha` on `pair`'s straight path: the interpolation of A and B (B aligned as
/// the pair's method said), with its BatchNorm statistics re-estimated on the config's training
/// data (its files read from `files`) where the model has any, as the path evaluated it. REPAIR's
/// correction of the units, which the `repair` methods' paths evaluate, is not applied: what the
/// app saves as "the merged model" is the merge itself.
pub async fn merged_model(
    config: &ConnectConfig,
    device: &ComputeDevice,
    pair: &TrainedPair,
    alpha: f64,
    files: &dyn data::FileSource,
) -> Result<HostParams> {
    let merged = pair.a.interpolate(&pair.b, alpha)?;
    if !crate::batch_norm::has_running_stats(&merged.layout) || !crate::batch_norm::is_merged(alpha) {
        return Ok(merged);
    }
    let split = data::load_from(&config.data, config.seed, files)?;
    match config.batch_norm_reset(&merged.layout, &split.train, &device.device) {
        Some(reset) => crate::batch_norm::reset_host(&merged, &reset).await,
        None => Ok(merged),
    }
}

/// [`evaluate_pair`] on the config's data already loaded (`split`), which a caller evaluating
/// one pair with several methods loads once, as it keeps `evaluated` for them.
#[allow(clippy::too_many_arguments)]
pub(super) async fn evaluate_pair_on(
    config: &ConnectConfig,
    device: &ComputeDevice,
    method: Method,
    a: &HostParams,
    b: &HostParams,
    split: &data::DataSplit,
    evaluated: &mut EvaluatedPaths,
    observer: &mut dyn Observer,
) -> Result<(MethodResult, TrainedPair)> {
    a.layout.check_compatible(&b.layout)?;
    a.check_finite()?;
    b.check_finite()?;
    let expected = ModelLayout::new(&config.model, &split.train.sample_shape, split.train.num_classes)?;
    expected.check_compatible(&a.layout)?;
    let layers = config.wsa.layers.select(&a.layout);
    let scopes = |p: &HostParams| layers.iter().map(|&i| scope::scope_of(&p.values[i])).collect::<Vec<_>>();
    let target = fuse(&[scopes(a), scopes(b)], &[1.0, 1.0], FusionRule::MomentMatching)?;
    let test = DeviceData::upload(&split.test, &device.device);
    let run = PairRun { a: a.to_device(&device.device), b: b.to_device(&device.device), target };
    let aligned = align_pair(config, &layers, method, &run, observer).await?;
    let repair_data = repair_samples(config, &split.train, &device.device);
    let reset = config.batch_norm_reset(&a.layout, &split.train, &device.device);
    evaluate_method(config, &layers, &test, repair_data.as_ref(), reset.as_ref(), method, aligned, evaluated, observer)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::Silent;
    use crate::data::DataConfig;
    use crate::experiment::Stages;
    use crate::model::ModelConfig;

    /// Two models trained from one start for a few steps: weight matching finds the identity, so
    /// the weight-matched methods take the path of the methods evaluated before them, and
    /// what they report is what evaluating them alone reports, to the last bit.
    #[test]
    fn a_method_whose_models_another_evaluated_takes_its_path_with_the_same_numbers() {
        let mut config = ConnectConfig {
            data: DataConfig { max_train: Some(200), max_test: Some(120), ..DataConfig::default() },
            pair: PairDifference::Seed { same_init: true },
            methods: vec![Method::PLAIN, Method::REPAIR, Method::WM, Method::WM_REPAIR],
            ..ConnectConfig::default()
        };
        config.train.epochs = 1;
        config.path.points = 5;
        config.repair.samples = 64;
        let mut stages = Stages::default();
        let together = crate::wait(run(&config, &crate::device::cpu(), &mut stages)).expect("connect runs").result;
        for matched in &together.methods[2..] {
            let report = matched.alignment.as_ref().expect("weight matching's report");
            assert!(report.permutations.iter().all(|p| p.moved == 0), "not the identity: {:?}", report.permutations);
        }
        let taken: Vec<&String> = stages.0.iter().filter(|s| s.contains("to the last bit")).collect();
        assert_eq!(taken.len(), 2, "{:?}", stages.0);
        assert!(taken[0].starts_with("wm: A and B are plain's"), "{taken:?}");
        assert!(taken[1].starts_with("wm+repair: A and B are repair's"), "{taken:?}");
        for (index, method) in [(2, Method::WM), (3, Method::WM_REPAIR)] {
            let alone_config = ConnectConfig { methods: vec![method], ..config.clone() };
            let alone =
                crate::wait(run(&alone_config, &crate::device::cpu(), &mut Silent)).expect("connect runs").result;
            assert_eq!(together.methods[index], alone.methods[0], "{method}");
        }
        // REPAIR's path is not plain's: taking a path needs the same correction as well.
        assert_ne!(together.methods[0].path, together.methods[1].path);
    }

    /// A three-stage GroupNorm ResNet (8-16-32 channels) through one epoch of the experiment on
    /// the digits, plain, weight-matched and weight-matched with REPAIR: every number finite,
    /// and weight matching permuting the residual streams.
    #[test]
    fn a_residual_network_runs_through_connect() {
        let mut config = ConnectConfig {
            data: DataConfig { max_train: Some(300), max_test: Some(150), ..DataConfig::default() },
            model: ModelConfig::Stack {
                layers: crate::model::stack::residual_stack([8, 16, 32], 4, 2, 10),
                init: Default::default(),
            },
            // Two starts, so that there is a permutation to find.
            pair: PairDifference::Seed { same_init: false },
            methods: vec![Method::PLAIN, Method::WM, Method::WM_REPAIR],
            ..ConnectConfig::default()
        };
        config.train.epochs = 1;
        config.path.points = 5;
        config.repair.samples = 64;
        let result = crate::wait(run(&config, &crate::device::cpu(), &mut Silent)).expect("connect runs").result;
        assert_eq!(result.methods.iter().map(|m| m.method).collect::<Vec<_>>(), config.methods);
        for method in &result.methods {
            let numbers = [method.endpoint_a.loss, method.endpoint_b.loss, method.barriers.loss, method.scope_distance]
                .into_iter()
                .chain(method.path.iter().flat_map(|p| [p.loss, p.accuracy]));
            assert!(numbers.clone().all(f64::is_finite), "{}: {:?}", method.method, numbers.collect::<Vec<_>>());
        }
        let matched = result.methods[1].alignment.as_ref().expect("weight matching's report");
        let layers: Vec<&str> = matched.permutations.iter().map(|p| p.layer.as_str()).collect();
        assert_eq!(layers, ["stem.0", "stage1.0.conv1", "down2.0", "stage2.0.conv1", "down3.0", "stage3.0.conv1"]);
        assert!(matched.permutations.iter().any(|p| p.moved > 0), "{:?}", matched.permutations);
    }
}
