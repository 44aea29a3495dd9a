//! Evaluating an aligned pair as one method: the merged models along the path (their BatchNorm
//! statistics re-estimated where they have BatchNorm, then repaired when the method uses REPAIR),
//! the barriers, per-layer scopes and histograms, and a warning for every
//! endpoint that never learned. A method whose A and B are another method's to the last bit
//! takes that method's path ([`EvaluatedPaths`]).

use super::alignment::AlignedPair;
use super::{ConnectConfig, Endpoint, Histograms, LayerComparison, MethodResult, TrainedPair};
use crate::batch_norm::{self, ResetData};
use crate::data::Dataset;
use crate::error::{Result, WsaError};
use crate::experiment::method::{Alignment, Method};
use crate::experiment::{Event, Observer};
use crate::merge::{PathPoint, barriers, evaluate_path};
use crate::model::{HostParams, Params};
use crate::repair::{self, LayerStats, RepairConfig};
use crate::scope::{self, Scope};
use crate::train::{DeviceData, Metrics, evaluate};
use burn::tensor::Tensor;

/// Evaluates an aligned pair on the test set: the path, both barriers, per-layer scopes and
/// histograms of A, B (before and after alignment) and their midpoint. Merged models have their
/// BatchNorm statistics reset over `reset`'s batches where it is given.
#[allow(clippy::too_many_arguments)]
pub(super) async fn evaluate_method(
    config: &ConnectConfig,
    layers: &[usize],
    test: &DeviceData,
    repair_data: Option<&DeviceData>,
    reset: Option<&ResetData>,
    method: Method,
    pair: AlignedPair,
    evaluated: &mut EvaluatedPaths,
    observer: &mut dyn Observer,
) -> Result<(MethodResult, TrainedPair)> {
    observer.on_event(&Event::Stage(format!("evaluating the {method} path")));
    let alphas = config.path.alphas()?;
    let host_a = pair.a.to_host().await?;
    let host_b = pair.b.to_host().await?;
    host_a.check_finite()?;
    host_b.check_finite()?;
    let found = match evaluated.find(&host_a, &host_b, method.repair) {
        Some(found) => {
            observer.on_event(&Event::Stage(format!(
                "{method}: A and B are {}'s to the last bit (the alignment moved nothing), so its path is taken",
                evaluated.entries[found].2.method
            )));
            for index in 0..alphas.len() {
                observer.on_event(&Event::PathPoint { method, index, total: alphas.len() });
            }
            found
        }
        None => {
            let done =
                evaluate_path_of(config, test, repair_data, reset, method, &pair, &host_a, &host_b, observer).await?;
            evaluated.entries.push((host_a.clone(), host_b.clone(), done));
            evaluated.entries.len() - 1
        }
    };
    let EvaluatedPath { endpoint_a, endpoint_b, ref path, midpoint: ref merged, .. } = evaluated.entries[found].2;
    let midpoint = merged.to_device(&pair.a.device());
    let (ra, rb, rm) = (
        scope::layer_reports(&host_a, layers),
        scope::layer_reports(&host_b, layers),
        scope::layer_reports(merged, layers),
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
        barriers: barriers(path, endpoint_a, endpoint_b),
        endpoint_a,
        endpoint_b,
        path: path.clone(),
        scope_distance: scope::scope_distance(&scopes_a, &scopes_b),
        layers: comparisons,
        alignment: pair.report,
        curve: None,
    };
    Ok((result, TrainedPair { method, a: host_a, b: host_b }))
}

/// Paths a seed's methods have evaluated, by the exact weights of their A and B: a method whose
/// alignment left both as another method had them (weight matching that finds the identity, as
/// it can for two models trained from one start) takes that method's endpoints, path and
/// midpoint instead of computing the same numbers again. It keeps a host copy of each method's
/// A, B and midpoint until the seed ends (beside the caller's copies of A and B): twice the
/// models' memory at most, where evaluating a path costs far more time.
#[derive(Default)]
pub(super) struct EvaluatedPaths {
    entries: Vec<(HostParams, HostParams, EvaluatedPath)>,
}

impl EvaluatedPaths {
    /// The entry of the path evaluated for these very A and B with this REPAIR setting.
    fn find(&self, a: &HostParams, b: &HostParams, repair: bool) -> Option<usize> {
        self.entries.iter().position(|(done_a, done_b, done)| {
            done.method.repair == repair && same_bits(done_a, a) && same_bits(done_b, b)
        })
    }
}

/// Whether two models hold the same numbers, bit for bit.
fn same_bits(x: &HostParams, y: &HostParams) -> bool {
    x.layout == y.layout
        && x.values.len() == y.values.len()
        && x.values
            .iter()
            .zip(&y.values)
            .all(|(p, q)| p.len() == q.len() && p.iter().zip(q).all(|(u, v)| u.to_bits() == v.to_bits()))
}

/// What a method's models give along its path.
pub(super) struct EvaluatedPath {
    /// The method that evaluated it.
    method: Method,
    endpoint_a: Metrics,
    endpoint_b: Metrics,
    path: Vec<PathPoint>,
    /// The merged model at α = 0.5 (repaired where the method repairs).
    midpoint: HostParams,
}

/// The endpoints, the path and the midpoint of `pair` as `method` merges it.
#[allow(clippy::too_many_arguments)]
async fn evaluate_path_of(
    config: &ConnectConfig,
    test: &DeviceData,
    repair_data: Option<&DeviceData>,
    reset: Option<&ResetData>,
    method: Method,
    pair: &AlignedPair,
    host_a: &HostParams,
    host_b: &HostParams,
    observer: &mut dyn Observer,
) -> Result<EvaluatedPath> {
    let alphas = config.path.alphas()?;
    let endpoint_a = evaluate(&pair.a.layout, &pair.a.tensors, test).await?;
    let endpoint_b = evaluate(&pair.b.layout, &pair.b.tensors, test).await?;
    let repairer = if let Some(repair_data) = repair_data.filter(|_| method.repair) {
        observer.on_event(&Event::Stage(format!("{method}: measuring A's and B's units for REPAIR")));
        let samples = config.repair.samples;
        Some(Repairer {
            a: repair::unit_stats(&pair.a, repair_data, samples).await?,
            b: repair::unit_stats(&pair.b, repair_data, samples).await?,
            data: repair_data,
            config: config.repair,
            reset,
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
            None => path.extend(evaluate_path(&pair.a, &pair.b, &[alpha], test, reset).await?),
            Some(r) => {
                let merged = r.merged(host_a, host_b, alpha, &pair.a.device(), observer).await?;
                let m = evaluate(&merged.layout, &merged.tensors, test).await?;
                path.push(PathPoint { alpha, loss: m.loss, accuracy: m.accuracy });
            }
        }
        observer.on_event(&Event::PathPoint { method, index, total: alphas.len() });
        observer.pause().await;
    }
    // The midpoint is made once, on the device; the method's histograms and fit statistics
    // (kurtosis, KS) are taken of it.
    let midpoint = match &repairer {
        None => crate::merge::merged(&pair.a, &pair.b, 0.5, reset).await?,
        Some(r) => r.merged(host_a, host_b, 0.5, &pair.a.device(), observer).await?,
    };
    Ok(EvaluatedPath { method, endpoint_a, endpoint_b, path, midpoint: midpoint.to_host().await? })
}

/// What REPAIR needs to correct a merged model: A's and B's unit statistics, the samples they
/// were measured on, and the batches over which its BatchNorm statistics are reset first.
struct Repairer<'a> {
    a: Vec<LayerStats>,
    b: Vec<LayerStats>,
    data: &'a DeviceData,
    config: RepairConfig,
    reset: Option<&'a ResetData>,
}

impl Repairer<'_> {
    /// The α-interpolation of A and B, its BatchNorm statistics reset, repaired, on `device`.
    async fn merged(
        &self,
        a: &HostParams,
        b: &HostParams,
        alpha: f64,
        device: &burn::tensor::Device,
        observer: &mut dyn Observer,
    ) -> Result<Params> {
        let mut merged = a.interpolate(b, alpha)?;
        if let Some(data) = self.reset.filter(|_| batch_norm::is_merged(alpha)) {
            merged = batch_norm::reset_host(&merged, data).await?;
        }
        let target = repair::Target { a: &self.a, b: &self.b, alpha };
        let repaired = repair::repair(&merged, target, self.data, &self.config, device, observer).await?;
        Ok(repaired.to_device(device))
    }
}

/// The first training samples of the seeded split, where REPAIR measures (`None` when no
/// method uses REPAIR).
pub(super) fn repair_samples(
    config: &ConnectConfig,
    train: &Dataset,
    device: &burn::tensor::Device,
) -> Option<DeviceData> {
    let rows: Vec<usize> = (0..config.repair.samples.min(train.len())).collect();
    config.methods.iter().any(|m| m.repair).then(|| DeviceData::upload(&train.subset(&rows), device))
}

/// A warning for every endpoint that ended near chance accuracy: its barriers say little.
/// Methods sharing a pair share the warning (weight matching does not change what B computes).
pub(super) fn chance_warnings(methods: &[MethodResult], classes: usize) -> Vec<String> {
    let chance = 1.0 / classes as f64;
    let mut warnings = Vec::new();
    for m in methods {
        for (model, metrics) in [(Endpoint::A, m.endpoint_a), (Endpoint::B, m.endpoint_b)] {
            let model = model.label();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, ModelConfig, ModelLayout, Norm};
    use crate::rng::Rng;
    use std::sync::Arc;

    /// A path is taken only for the very weights of A and B and the same REPAIR setting: one
    /// unit in the last place of one weight of either model, another layout, or the other
    /// setting finds nothing.
    #[test]
    fn a_path_is_found_only_for_the_same_bits_and_repair_setting() {
        let mlp = |hidden| {
            let config =
                ModelConfig::Mlp { hidden, activation: Activation::Relu, norm: Norm::None, init: Default::default() };
            Arc::new(ModelLayout::new(&config, &[4], 3).expect("layout"))
        };
        let layout = mlp(vec![6]);
        let (a, b) = (layout.init(&mut Rng::new(1)), layout.init(&mut Rng::new(2)));
        let metrics = Metrics { loss: 1.0, accuracy: 0.5 };
        let path = EvaluatedPath {
            method: Method::PLAIN,
            endpoint_a: metrics,
            endpoint_b: metrics,
            path: vec![PathPoint { alpha: 0.0, loss: 1.0, accuracy: 0.5 }],
            midpoint: a.clone(),
        };
        let evaluated = EvaluatedPaths { entries: vec![(a.clone(), b.clone(), path)] };
        assert_eq!(evaluated.find(&a, &b, false).map(|found| evaluated.entries[found].2.method), Some(Method::PLAIN));
        assert!(evaluated.find(&a, &b, true).is_none(), "another REPAIR setting");
        assert!(evaluated.find(&b, &a, false).is_none(), "A and B swapped");
        let next_up = |p: &HostParams| {
            let mut moved = p.clone();
            let last = moved.values.len() - 1;
            moved.values[last][2] = f32::from_bits(moved.values[last][2].to_bits() + 1);
            moved
        };
        assert!(evaluated.find(&next_up(&a), &b, false).is_none(), "A one unit in the last place off");
        assert!(evaluated.find(&a, &next_up(&b), false).is_none(), "B one unit in the last place off");
        let wider = mlp(vec![7]);
        assert!(evaluated.find(&wider.init(&mut Rng::new(1)), &b, false).is_none(), "another layout");
    }
}
