//! Resetting a merged model's BatchNorm running statistics (issue 30). Interpolating two models
//! interpolates their running statistics too, but the merged model's channels do not have the
//! interpolated statistics (averaging partly correlated units shrinks their spread, the variance
//! collapse REPAIR measures): evaluated with stale statistics, a merged BatchNorm network
//! collapses (the classic "permuted ResNet" report). The standard practice, Git Re-Basin's
//! "reset BN" (Ainsworth et al., ICLR 2023) and REPAIR's baseline (Jordan et al., ICLR 2023), is
//! to re-estimate them from training batches, and that is what every merged model of the lab
//! gets before it is evaluated or repaired.
//!
//! The merged model runs with every BatchNorm in training mode (normalised by each batch's own
//! statistics, as one PyTorch forward in `train()`) over [`DEFAULT_RESET_BATCHES`] training
//! batches by default, and each running statistic becomes what PyTorch's `momentum=None`
//! (cumulative average) gives: the mean over the batches of each batch's per-channel mean, and
//! of its unbiased per-channel variance. Measured through the forward's [`Taps`] with REPAIR's
//! machinery (`repair::batches`, `repair::LayerSums`). Only layouts with running statistics
//! take this path: other models are untouched.

use crate::data::Dataset;
use crate::error::{Result, WsaError};
use crate::model::{BatchMoments, HostParams, ModelLayout, ParamRole, Params, Taps, forward_tapped};
use crate::repair::{self, LayerSums};
use crate::rng::Rng;
use crate::train::DeviceData;
use burn::tensor::{Device, Tensor, TensorData};

/// Training batches a reset runs over unless the config says otherwise: about what Git
/// Re-Basin's and REPAIR's code use (their loaders' few dozen batches), a few thousand samples
/// at the usual batch sizes.
pub const DEFAULT_RESET_BATCHES: usize = 20;

/// The most batches a config may ask a reset to run over.
pub const MAX_RESET_BATCHES: usize = 100_000;

/// Whether the model at `alpha` of a path from A (0) to B (1) is a merged one. A and B themselves
/// keep their own statistics: they are the user's (or the run's) models.
pub fn is_merged(alpha: f64) -> bool {
    alpha != 0.0 && alpha != 1.0
}

/// Whether `layout` has BatchNorm running statistics (the only models a reset changes).
pub fn has_running_stats(layout: &ModelLayout) -> bool {
    layout.params.iter().any(|p| p.role == ParamRole::RunningMean)
}

/// The training samples a reset runs over, on the device, in its batches: a seeded draw of
/// `batches` x `batch_size` samples from the training set (all of it when it is smaller), in the
/// drawn order, so that each batch is a random mix as a shuffling loader's.
#[derive(Clone, Debug)]
pub struct ResetData {
    data: DeviceData,
    batch_size: usize,
}

impl ResetData {
    /// `None` where nothing is reset: `layout` has no running statistics, or `batches` is 0 (the
    /// statistics are then interpolated with the weights, the lab's behaviour before issue 30).
    /// A batch needs two samples for a variance: a batch size of 1 counts as 2, and a last batch
    /// of one sample is left out.
    pub fn new(
        layout: &ModelLayout,
        train: &Dataset,
        batches: usize,
        batch_size: usize,
        seed: u64,
        device: &Device,
    ) -> Option<Self> {
        if batches == 0 || !has_running_stats(layout) {
            return None;
        }
        let batch_size = batch_size.max(2);
        let mut rows = batches.saturating_mul(batch_size).min(train.len());
        if rows % batch_size == 1 {
            rows -= 1;
        }
        let mut order: Vec<usize> = (0..train.len()).collect();
        Rng::derive(seed, "batch-norm-reset").shuffle(&mut order);
        (rows >= 2).then(|| Self { data: DeviceData::upload(&train.subset(&order[..rows]), device), batch_size })
    }

    /// The samples a reset runs over.
    pub fn len(&self) -> usize {
        self.data.len
    }

    pub fn is_empty(&self) -> bool {
        self.data.len == 0
    }
}

/// One BatchNorm layer's re-estimated running statistics, per channel.
#[derive(Clone, Debug, PartialEq)]
pub struct RunningStats {
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
}

/// The running statistics of every BatchNorm layer of `params` (in forward order) as PyTorch's
/// `momentum=None` reset over `data`'s batches leaves them.
pub async fn running_stats(params: &Params, data: &ResetData) -> Result<Vec<RunningStats>> {
    let (mut means, mut variances) = (LayerSums::default(), LayerSums::default());
    for x in repair::batches(&data.data, data.data.len, data.batch_size) {
        let mut report = |layer: usize, moments: BatchMoments| {
            // Each batch weighs one, as in PyTorch's cumulative average; its variance unbiased.
            let n = moments.count as f64;
            means.add(layer, moments.mean, 1);
            variances.add(layer, moments.variance * (n / (n - 1.0).max(1.0)) as f32, 1);
        };
        let taps = Taps { batch_norm: Some(&mut report), ..Taps::default() };
        forward_tapped(&params.layout, &params.tensors, x, taps);
    }
    let (means, variances) = (means.means().await?, variances.means().await?);
    means
        .into_iter()
        .zip(variances)
        .map(|(mean, var)| match (mean, var) {
            (Some(mean), Some(var)) => Ok(RunningStats { mean, var }),
            _ => Err(WsaError::Device("a BatchNorm layer reported no statistics".into())),
        })
        .collect()
}

/// Where each BatchNorm layer's running mean and variance sit in `layout` (forward order).
fn running_slots(layout: &ModelLayout) -> Vec<(usize, usize)> {
    let at = |role: ParamRole| layout.params.iter().enumerate().filter(move |(_, p)| p.role == role).map(|(i, _)| i);
    at(ParamRole::RunningMean).zip(at(ParamRole::RunningVar)).collect()
}

/// The running statistics of a reset over `data`, as `(slot, values)` per running parameter.
async fn reset_values(params: &Params, data: &ResetData) -> Result<Vec<(usize, Vec<f32>)>> {
    let stats = running_stats(params, data).await?;
    let slots = running_slots(&params.layout);
    if stats.len() != slots.len() {
        return Err(WsaError::Device(format!(
            "{} BatchNorm layers measured for {} in the layout",
            stats.len(),
            slots.len()
        )));
    }
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    Ok(slots.into_iter().zip(stats).flat_map(|((m, v), s)| [(m, f32s(&s.mean)), (v, f32s(&s.var))]).collect())
}

/// `params` (a merged model, on the device) with every BatchNorm's running statistics
/// re-estimated over `data`; the other parameters as they were.
pub async fn reset(params: &Params, data: &ResetData) -> Result<Params> {
    let device = params.device();
    let mut reset = params.clone();
    for (slot, values) in reset_values(params, data).await? {
        let len = values.len();
        reset.tensors[slot] = Tensor::<1>::from_data(TensorData::new(values, [len]), &device);
    }
    Ok(reset)
}

/// [`reset`] for a model on the host, measured on `data`'s device.
pub async fn reset_host(params: &HostParams, data: &ResetData) -> Result<HostParams> {
    let on_device = params.to_device(&data.data.features.device());
    let mut reset = params.clone();
    for (slot, values) in reset_values(&on_device, data).await? {
        reset.values[slot] = values;
    }
    reset.check_finite()?;
    Ok(reset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{self, DataConfig, DatasetSpec};
    use crate::device::{self, read_f64};
    use crate::merge::PathGrid;
    use crate::model::{Activation, Initializer, LayerSpec, ModelConfig};
    use std::sync::Arc;

    /// conv (no bias) → BatchNorm2d → ReLU → max-pool → linear → BatchNorm1d → ReLU → linear.
    fn batch_norm_stack() -> ModelConfig {
        let relu = || LayerSpec::Activation { function: Activation::Relu };
        ModelConfig::Stack {
            layers: vec![
                LayerSpec::Conv2d { name: "conv".into(), channels: 3, kernel: 3, stride: 1, padding: 1, bias: false },
                LayerSpec::BatchNorm { name: "bn1".into() },
                relu(),
                LayerSpec::MaxPool2d { kernel: 2, stride: None },
                LayerSpec::Flatten,
                LayerSpec::Linear { name: "fc".into(), outputs: 5, bias: true },
                LayerSpec::BatchNorm { name: "bn2".into() },
                relu(),
                LayerSpec::Linear { name: "out".into(), outputs: 10, bias: true },
            ],
            init: Initializer::Uniform,
        }
    }

    /// Training-mode BatchNorm on the host, in f64, over `x: [n][channel][position]`: the
    /// normalised values and the batch's per-channel mean and unbiased variance.
    fn host_batch_norm(x: &mut [Vec<Vec<f64>>], gamma: &[f32], beta: &[f32]) -> RunningStats {
        let channels = gamma.len();
        let count = (x.len() * x[0][0].len()) as f64;
        let mut means = vec![0.0; channels];
        let mut unbiased = vec![0.0; channels];
        for c in 0..channels {
            let mean = x.iter().flat_map(|s| &s[c]).sum::<f64>() / count;
            let squares = x.iter().flat_map(|s| &s[c]).map(|v| (v - mean).powi(2)).sum::<f64>();
            let scale = f64::from(gamma[c]) / (squares / count + 1e-5).sqrt();
            for sample in x.iter_mut() {
                sample[c].iter_mut().for_each(|v| *v = (*v - mean) * scale + f64::from(beta[c]));
            }
            (means[c], unbiased[c]) = (mean, squares / (count - 1.0));
        }
        RunningStats { mean: means, var: unbiased }
    }

    /// Per BatchNorm layer, each batch's (mean, unbiased variance) per channel, computed layer by
    /// layer on the host: conv, BatchNorm, ReLU, 2x2 max-pool, linear, BatchNorm.
    fn host_batch_statistics(params: &HostParams, batch: &[Vec<f64>]) -> [RunningStats; 2] {
        let get = |path: &str| params.get(path).expect(path);
        let (conv, fc, fc_bias) = (get("conv.weight"), get("fc.weight"), get("fc.bias"));
        let side = 8;
        // conv: 3 channels of 3x3 over the padded 8x8 image.
        let mut h: Vec<Vec<Vec<f64>>> = batch
            .iter()
            .map(|image| {
                (0..3)
                    .map(|c| {
                        let mut out = vec![0.0; side * side];
                        for (y, x) in (0..side).flat_map(|y| (0..side).map(move |x| (y, x))) {
                            for (ky, kx) in (0..3).flat_map(|ky| (0..3).map(move |kx| (ky, kx))) {
                                let (iy, ix) = ((y + ky) as isize - 1, (x + kx) as isize - 1);
                                if (0..side as isize).contains(&iy) && (0..side as isize).contains(&ix) {
                                    let pixel = image[iy as usize * side + ix as usize];
                                    out[y * side + x] += f64::from(conv[c * 9 + ky * 3 + kx]) * pixel;
                                }
                            }
                        }
                        out
                    })
                    .collect()
            })
            .collect();
        let first = host_batch_norm(&mut h, get("bn1.weight"), get("bn1.bias"));
        // ReLU, 2x2 max-pool and flatten (channel-major), then the linear layer.
        let half = side / 2;
        let mut z: Vec<Vec<Vec<f64>>> = h
            .iter()
            .map(|sample| {
                let flat: Vec<f64> = sample
                    .iter()
                    .flat_map(|map| {
                        (0..half * half).map(move |p| {
                            let (y, x) = (2 * (p / half), 2 * (p % half));
                            [
                                map[y * side + x],
                                map[y * side + x + 1],
                                map[(y + 1) * side + x],
                                map[(y + 1) * side + x + 1],
                            ]
                            .into_iter()
                            .fold(0.0, f64::max)
                        })
                    })
                    .collect();
                (0..5)
                    .map(|o| {
                        let row = &fc[o * flat.len()..(o + 1) * flat.len()];
                        vec![f64::from(fc_bias[o]) + row.iter().zip(&flat).map(|(w, v)| f64::from(*w) * v).sum::<f64>()]
                    })
                    .collect()
            })
            .collect();
        let second = host_batch_norm(&mut z, get("bn2.weight"), get("bn2.bias"));
        [first, second]
    }

    /// A merged BatchNorm stack's reset statistics are, per BatchNorm, the mean over the batches
    /// of each batch's per-channel mean and unbiased variance of that BatchNorm's input, with
    /// every BatchNorm before it normalising by its batch (PyTorch's `momentum=None` reset in
    /// `train()`): computed independently on the host, layer by layer, to 1e-5; a last, smaller
    /// batch weighs as the others. The reset model carries them; nothing else changes.
    #[test]
    fn the_reset_statistics_are_the_batch_average_of_each_batch_norms_input_moments() {
        let split =
            data::load(&DataConfig { dataset: DatasetSpec::Digits, ..DataConfig::default() }, 0).expect("digits");
        let train = split.train.subset(&(0..40).collect::<Vec<_>>());
        let layout =
            Arc::new(ModelLayout::new(&batch_norm_stack(), &train.sample_shape, train.num_classes).expect("layout"));
        let endpoint = |seed: u64| {
            let mut p = layout.init(&mut Rng::new(seed));
            let mut rng = Rng::derive(seed, "norms");
            for (spec, values) in layout.params.iter().zip(&mut p.values) {
                if matches!(spec.role, ParamRole::NormWeight | ParamRole::NormBias) {
                    values.iter_mut().for_each(|v| *v = rng.uniform_range(0.5, 1.5) as f32);
                }
            }
            p
        };
        let merged = endpoint(1).interpolate(&endpoint(2), 0.4).expect("merged");
        let device = device::cpu().device;
        // 3 batches of 16 asked for, 40 samples there: batches of 16, 16 and 8.
        let data = ResetData::new(&layout, &train, 3, 16, 7, &device).expect("a reset");
        assert_eq!(data.len(), 40);
        let stats = crate::wait(running_stats(&merged.to_device(&device), &data)).expect("stats");

        let features = crate::wait(read_f64(data.data.features.clone().reshape([40 * 64]))).expect("read");
        let samples: Vec<Vec<f64>> = features.chunks(64).map(<[f64]>::to_vec).collect();
        let per_batch: Vec<[RunningStats; 2]> =
            samples.chunks(16).map(|batch| host_batch_statistics(&merged, batch)).collect();
        assert_eq!(stats.len(), 2);
        for (layer, measured) in stats.iter().enumerate() {
            let channels = measured.mean.len();
            for c in 0..channels {
                let batches = per_batch.len() as f64;
                let mean = per_batch.iter().map(|b| b[layer].mean[c]).sum::<f64>() / batches;
                let var = per_batch.iter().map(|b| b[layer].var[c]).sum::<f64>() / batches;
                assert!((measured.mean[c] - mean).abs() <= 1e-5 * mean.abs().max(1.0), "bn{layer} {c} mean");
                assert!(
                    (measured.var[c] - var).abs() <= 1e-5 * var.max(1.0),
                    "bn{layer} {c}: {} vs {var}",
                    measured.var[c]
                );
            }
        }

        let on_host = crate::wait(reset_host(&merged, &data)).expect("reset");
        for ((spec, after), before) in layout.params.iter().zip(&on_host.values).zip(&merged.values) {
            let written = match (spec.path.as_str(), spec.role) {
                ("bn1.running_mean", _) => Some(&stats[0].mean),
                ("bn1.running_var", _) => Some(&stats[0].var),
                ("bn2.running_mean", _) => Some(&stats[1].mean),
                ("bn2.running_var", _) => Some(&stats[1].var),
                _ => None,
            };
            match written {
                Some(values) => {
                    assert_eq!(after, &values.iter().map(|&v| v as f32).collect::<Vec<_>>(), "{}", spec.path)
                }
                None => assert_eq!(after, before, "{}", spec.path),
            }
        }
        let on_device = crate::wait(reset(&merged.to_device(&device), &data)).expect("reset on the device");
        assert_eq!(crate::wait(on_device.to_host()).expect("read"), on_host);
    }

    /// Nothing is reset for a model without BatchNorm or with 0 batches, and the draw is the
    /// seed's; configs without the field read with the default and write without it.
    #[test]
    fn only_batch_norm_models_are_reset_and_the_config_field_is_optional() {
        let split =
            data::load(&DataConfig { dataset: DatasetSpec::Digits, ..DataConfig::default() }, 0).expect("digits");
        let device = device::cpu().device;
        let layout_of = |config: &ModelConfig| {
            ModelLayout::new(config, &split.train.sample_shape, split.train.num_classes).expect("layout")
        };
        let (plain, with_bn) = (layout_of(&ModelConfig::cnn(vec![4])), layout_of(&batch_norm_stack()));
        assert!(!has_running_stats(&plain) && has_running_stats(&with_bn));
        assert!(ResetData::new(&plain, &split.train, 20, 32, 0, &device).is_none());
        assert!(ResetData::new(&with_bn, &split.train, 0, 32, 0, &device).is_none());
        let rows = |seed: u64| {
            let data = ResetData::new(&with_bn, &split.train, 2, 8, seed, &device).expect("a reset");
            crate::wait(read_f64(data.data.features.clone().reshape([16 * 64]))).expect("read")
        };
        assert_eq!(rows(3), rows(3));
        assert_ne!(rows(3), rows(4));
        assert!(is_merged(0.5) && is_merged(-0.25) && !is_merged(0.0) && !is_merged(1.0));

        let old: PathGrid = serde_json::from_str(r#"{"points": 5, "start": 0.0, "end": 1.0}"#).expect("old config");
        assert_eq!(old.bn_reset_batches, DEFAULT_RESET_BATCHES);
        assert_eq!(serde_json::to_string(&old).expect("json"), r#"{"points":5,"start":0.0,"end":1.0}"#);
        let off = PathGrid { bn_reset_batches: 0, ..old };
        assert!(serde_json::to_string(&off).expect("json").contains(r#""bn_reset_batches":0"#));
    }
}
