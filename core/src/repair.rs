//! REPAIR (Jordan et al., "REPAIR: REnormalizing Permuted Activations for Interpolation
//! Repair", ICLR 2023) for networks without batch norm. Averaging two models shrinks the spread
//! of each hidden unit's activations (the units of A and B are only partly correlated, so their
//! average varies less than either): the merged model's "variance collapse". REPAIR measures, on
//! training samples, every hidden unit's (channel's) pre-activation mean and std in A, in B and
//! in the merged model, and resets the merged model's to the α-interpolation of A's and B's by an
//! affine correction folded into the layer: into its weight rows and bias, or into its GroupNorm
//! or LayerNorm affine parameters where it has a norm. Layers are corrected in order, each measured
//! after the layers before it were: a correction changes what the next layer sees.
//!
//! In a residual network every linear or conv layer is corrected at its own output, as Jordan et
//! al. correct each layer of their ResNets: a layer that writes into a residual stream (the conv
//! before a block, the block's last conv) through its norm, before the add. The stream itself, a
//! sum of such outputs, is not measured and corrected as one: it has no parameters of its own,
//! and each of its addends already has its interpolated statistics.
//!
//! It addresses the symptom WSA addresses (scales that averaging destroys), at test time instead
//! of training time. A merged BatchNorm model reaches it with its running statistics already
//! re-estimated (`crate::batch_norm`, which sums its batches with this module's `batches` and
//! `LayerSums`); the correction then goes into the BatchNorm's affine parameters.

use crate::cancel::Cancel;
use crate::device::read_f64;
use crate::error::{Result, WsaError};
use crate::model::{HostParams, ModelLayout, ParamRole, Params, Taps, forward_tapped};
use crate::train::DeviceData;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// How many training samples REPAIR measures the units' statistics on (the first of the seeded
/// training split, the same for A, B and every merged model).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepairConfig {
    pub samples: usize,
}

impl Default for RepairConfig {
    fn default() -> Self {
        Self { samples: 2_000 }
    }
}

impl RepairConfig {
    pub fn validate(&self) -> Result<()> {
        if !(16..=1_000_000).contains(&self.samples) {
            return Err(WsaError::invalid("repair.samples", self.samples, "must be between 16 and 1000000"));
        }
        Ok(())
    }
}

/// Mean and standard deviation (over samples and positions) of each unit of one hidden layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerStats {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

/// Where a hidden layer's parameters sit in the layout: its weight and bias (a stack's layer may
/// have none), and its norm's affine parameters if it has a norm (the correction goes there then).
struct HiddenLayer {
    name: String,
    weight: usize,
    bias: Option<usize>,
    norm: Option<(usize, usize)>,
}

fn hidden_layers(layout: &ModelLayout) -> Vec<HiddenLayer> {
    let mut names: Vec<&str> = Vec::new();
    for spec in layout.params.iter().filter(|s| !s.classifier) {
        if !names.contains(&spec.layer.as_str()) {
            names.push(&spec.layer);
        }
    }
    names
        .into_iter()
        .filter_map(|name| {
            let find = |role: ParamRole| layout.params.iter().position(|s| s.layer == name && s.role == role);
            Some(HiddenLayer {
                name: name.to_string(),
                weight: find(ParamRole::Weight)?,
                bias: find(ParamRole::Bias),
                norm: find(ParamRole::NormWeight).zip(find(ParamRole::NormBias)),
            })
        })
        .collect()
}

/// The first `rows` rows of `data` in batches of `size` (the last may be smaller): REPAIR
/// measures in chunks small enough for any device, a BatchNorm reset in the training batches
/// it re-estimates over.
pub(crate) fn batches(data: &DeviceData, rows: usize, size: usize) -> Vec<Tensor<2>> {
    let total = rows.min(data.len);
    (0..total)
        .step_by(size.max(1))
        .map(|start| data.features.clone().narrow(0, start, size.min(total - start)))
        .collect()
}

/// Per layer, a running sum of per-unit values on the device and how many values it adds up;
/// read back as their means in one read per layer.
#[derive(Default)]
pub(crate) struct LayerSums {
    totals: Vec<Option<Tensor<1>>>,
    counts: Vec<usize>,
}

impl LayerSums {
    /// Adds `sum` (per unit, over `count` values) to layer `layer`'s.
    pub(crate) fn add(&mut self, layer: usize, sum: Tensor<1>, count: usize) {
        if self.totals.len() <= layer {
            self.totals.resize(layer + 1, None);
            self.counts.resize(layer + 1, 0);
        }
        self.totals[layer] = Some(match self.totals[layer].take() {
            Some(t) => t + sum,
            None => sum,
        });
        self.counts[layer] += count;
    }

    /// Each layer's per-unit mean (`None` for a layer nothing was added to).
    pub(crate) async fn means(self) -> Result<Vec<Option<Vec<f64>>>> {
        let mut per_layer = Vec::with_capacity(self.totals.len());
        for (total, count) in self.totals.into_iter().zip(self.counts) {
            per_layer.push(match total {
                Some(t) => Some(read_f64(t).await?.into_iter().map(|s| s / count.max(1) as f64).collect::<Vec<f64>>()),
                None => None,
            });
        }
        Ok(per_layer)
    }
}

/// The statistics of hidden layer `layer` of `params` (or of every hidden layer, for `None`),
/// in two passes over the samples (means, then squared deviations from them: no cancellation).
async fn measure(params: &Params, data: &DeviceData, samples: usize, layer: Option<usize>) -> Result<Vec<LayerStats>> {
    /// Rows per forward: small enough for any device.
    const CHUNK: usize = 1024;
    let chunks = batches(data, samples, CHUNK);
    if chunks.is_empty() {
        return Err(WsaError::invalid("REPAIR's training samples", 0, "there are none"));
    }
    let wanted = |l: usize| layer.is_none_or(|w| w == l);
    // Per layer: the sum over samples and positions of each unit (or of its squared deviation
    // from `centre`).
    let sums = |centre: Option<&[Option<Tensor<3>>]>| {
        let mut sums = LayerSums::default();
        for x in &chunks {
            let mut tap = |l: usize, h: Tensor<3>| {
                if !wanted(l) {
                    return;
                }
                let [b, units, positions] = h.dims();
                let values = match centre.and_then(|means| means.get(l)?.clone()) {
                    None => h,
                    Some(mean) => (h - mean).square(),
                };
                sums.add(l, values.sum_dim(2).sum_dim(0).reshape([units]), b * positions);
            };
            let taps = Taps { hidden: Some(&mut tap), ..Taps::default() };
            forward_tapped(&params.layout, &params.tensors, x.clone(), taps);
        }
        sums
    };
    let means = sums(None).means().await?;
    let device = params.device();
    let centres: Vec<Option<Tensor<3>>> = means
        .iter()
        .map(|m| {
            let m: Vec<f32> = m.as_ref()?.iter().map(|&v| v as f32).collect();
            let units = m.len();
            Some(Tensor::<1>::from_data(TensorData::new(m, [units]), &device).reshape([1, units, 1]))
        })
        .collect();
    let variances = sums(Some(&centres)).means().await?;
    Ok(means
        .into_iter()
        .zip(variances)
        .filter_map(|(m, v)| Some(LayerStats { mean: m?, std: v?.into_iter().map(f64::sqrt).collect() }))
        .collect())
}

/// Every hidden layer's unit statistics of `params` on the first `samples` rows of `data`.
pub async fn unit_stats(params: &Params, data: &DeviceData, samples: usize) -> Result<Vec<LayerStats>> {
    measure(params, data, samples, None).await
}

/// What a merged model's statistics are reset to: the α-interpolation of A's and B's, layer by
/// layer (each from [`unit_stats`] on the same samples).
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub a: &'a [LayerStats],
    pub b: &'a [LayerStats],
    pub alpha: f64,
}

/// The α-interpolation of two layers' statistics: REPAIR's target for one layer.
fn target(a: &LayerStats, b: &LayerStats, alpha: f64) -> LayerStats {
    let lerp = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(x, y)| (1.0 - alpha) * x + alpha * y).collect();
    LayerStats { mean: lerp(&a.mean, &b.mean), std: lerp(&a.std, &b.std) }
}

/// A unit whose activations barely vary (a dead unit) has nothing to rescale: left as it is.
const DEAD_UNIT_STD: f64 = 1e-6;

/// Folds the affine map taking `measured` to `wanted` into hidden layer `layer` of `params`:
/// each unit's output z becomes (z - mean) · std* / std + mean*.
fn fold(params: &mut HostParams, layer: &HiddenLayer, measured: &LayerStats, wanted: &LayerStats) -> Result<()> {
    let Some((scale_at, shift_at)) = layer.norm.or(layer.bias.map(|bias| (layer.weight, bias))) else {
        return Err(WsaError::invalid(
            "REPAIR",
            &layer.name,
            "the layer has neither a bias nor a norm to take the correction's shift",
        ));
    };
    let units = measured.mean.len();
    let row = params.values[scale_at].len() / units.max(1);
    for u in 0..units {
        if measured.std[u] < DEAD_UNIT_STD {
            continue;
        }
        let scale = wanted.std[u] / measured.std[u];
        for w in &mut params.values[scale_at][u * row..(u + 1) * row] {
            *w = (f64::from(*w) * scale) as f32;
        }
        let shift = &mut params.values[shift_at][u];
        *shift = ((f64::from(*shift) - measured.mean[u]) * scale + wanted.mean[u]) as f32;
    }
    Ok(())
}

/// `merged` (the α-interpolation of A and B, B aligned) with every hidden unit's activation
/// statistics reset to `target`, measured on the first samples of `data`. Yields to the caller
/// between layers (the page stays responsive) and stops when it is cancelled.
pub async fn repair(
    merged: &HostParams,
    target: Target<'_>,
    data: &DeviceData,
    config: &RepairConfig,
    device: &Device,
    cancel: &mut dyn Cancel,
) -> Result<HostParams> {
    let Target { a, b, alpha } = target;
    let layers = hidden_layers(&merged.layout);
    if a.len() != layers.len() || b.len() != layers.len() {
        return Err(WsaError::invalid(
            "REPAIR statistics",
            format!("{} and {} layers", a.len(), b.len()),
            &format!("the model has {} hidden layers; measure A and B with this model", layers.len()),
        ));
    }
    let mut repaired = merged.clone();
    for (l, layer) in layers.iter().enumerate() {
        if cancel.is_cancelled() {
            return Err(WsaError::Cancelled);
        }
        let on_device = repaired.to_device(device);
        let measured = measure(&on_device, data, config.samples, Some(l)).await?;
        let measured = measured.into_iter().next().ok_or_else(|| WsaError::Device("no statistics".into()))?;
        fold(&mut repaired, layer, &measured, &self::target(&a[l], &b[l], alpha))?;
        cancel.pause().await;
    }
    repaired.check_finite()?;
    Ok(repaired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::Silent;
    use crate::data::{self, DataConfig, DatasetSpec};
    use crate::device;
    use crate::model::{Activation, Initializer, LayerSpec, ModelConfig, Norm};
    use crate::rng::Rng;
    use std::sync::Arc;

    fn pair(config: ModelConfig) -> (HostParams, HostParams, DeviceData, Device) {
        let split =
            data::load(&DataConfig { dataset: DatasetSpec::Digits, ..DataConfig::default() }, 0).expect("digits");
        let layout =
            Arc::new(ModelLayout::new(&config, &split.train.sample_shape, split.train.num_classes).expect("layout"));
        let a = layout.init(&mut Rng::derive(1, "a"));
        let b = layout.init(&mut Rng::derive(2, "b"));
        let device = device::cpu().device;
        (a, b, DeviceData::upload(&split.train, &device), device)
    }

    /// The midpoint of two different initialisations of a wide MLP: after REPAIR, each hidden
    /// unit's activation std (and mean) is the interpolation of A's and B's, to 1e-4; and at
    /// α = 0 and 1 REPAIR leaves the function as it was.
    #[test]
    fn the_repaired_midpoint_has_the_interpolated_statistics_and_the_ends_are_unchanged() {
        for (config, tolerance) in [
            (ModelConfig::mlp(vec![512, 512]), 1e-4),
            (
                ModelConfig::Mlp {
                    hidden: vec![64, 64],
                    activation: Activation::Relu,
                    norm: Norm::LayerNorm,
                    init: Initializer::Uniform,
                },
                1e-4,
            ),
            (ModelConfig::cnn(vec![8, 16]), 1e-4),
            // A stack as a PyTorch model reads: a bias-free conv whose BatchNorm takes the
            // correction, and a GroupNorm after a linear layer.
            (
                ModelConfig::Stack {
                    layers: vec![
                        LayerSpec::Conv2d {
                            name: "conv1".into(),
                            channels: 8,
                            kernel: 3,
                            stride: 1,
                            padding: 1,
                            bias: false,
                        },
                        LayerSpec::BatchNorm { name: "bn1".into() },
                        LayerSpec::Activation { function: Activation::Relu },
                        LayerSpec::MaxPool2d { kernel: 2, stride: None },
                        LayerSpec::Flatten,
                        LayerSpec::Linear { name: "fc1".into(), outputs: 32, bias: true },
                        LayerSpec::GroupNorm { name: "gn1".into(), groups: 4 },
                        LayerSpec::Activation { function: Activation::Relu },
                        LayerSpec::Linear { name: "fc2".into(), outputs: 10, bias: true },
                    ],
                    init: Initializer::Uniform,
                },
                1e-4,
            ),
            // A GroupNorm ResNet: each layer writing into a residual stream is corrected at its
            // own output, the block's last one before the add.
            (
                ModelConfig::Stack {
                    layers: crate::model::stack::residual_stack([8, 16, 32], 4, 2, 10),
                    init: Initializer::Uniform,
                },
                1e-4,
            ),
        ] {
            let (a, b, data, device) = pair(config.clone());
            let samples = 600;
            let stats = |p: &HostParams| crate::wait(unit_stats(&p.to_device(&device), &data, samples)).expect("stats");
            let (sa, sb) = (stats(&a), stats(&b));
            let merged = a.interpolate(&b, 0.5).expect("merged");
            let before = stats(&merged);
            let halfway = Target { a: &sa, b: &sb, alpha: 0.5 };
            let repaired =
                crate::wait(repair(&merged, halfway, &data, &RepairConfig { samples }, &device, &mut Silent))
                    .expect("repair");
            let after = stats(&repaired);
            let mut collapsed = 0.0;
            for l in 0..sa.len() {
                for u in 0..sa[l].std.len() {
                    let want = 0.5 * (sa[l].std[u] + sb[l].std[u]);
                    let want_mean = 0.5 * (sa[l].mean[u] + sb[l].mean[u]);
                    assert!(
                        (after[l].std[u] - want).abs() <= tolerance * want.max(1.0),
                        "{config:?} layer {l} unit {u}: std {} for {want}",
                        after[l].std[u]
                    );
                    assert!(
                        (after[l].mean[u] - want_mean).abs() <= tolerance * want.max(1.0),
                        "{config:?} layer {l} unit {u} mean"
                    );
                    collapsed += want - before[l].std[u];
                }
            }
            assert!(collapsed > 0.0, "{config:?}: averaging two initialisations shrinks the activations' spread");

            for (alpha, end) in [(0.0, &a), (1.0, &b)] {
                let at = Target { a: &sa, b: &sb, alpha };
                let at_end = crate::wait(repair(end, at, &data, &RepairConfig { samples }, &device, &mut Silent))
                    .expect("repair");
                for (x, y) in at_end.values.iter().flatten().zip(end.values.iter().flatten()) {
                    assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "{config:?} α = {alpha}: {x} vs {y}");
                }
            }
        }
    }
}
