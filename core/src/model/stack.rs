//! The stack model: a PyTorch-style list of layers (linear, conv, pooling, flatten, activation,
//! LayerNorm, GroupNorm, BatchNorm in inference mode) addressed by the user's own module names,
//! so that a PyTorch MLP or CNN `state_dict` loads as it is (see [`crate::infer`], which builds
//! such a list from a file's names and shapes).
//!
//! Each norm follows the linear or conv layer it normalises, and its parameters belong to that
//! layer (`ParamSpec::layer`): the layer's units, the norm's parameters and the next layer's
//! inputs are what one permutation moves together and what REPAIR corrects, as for the MLP and
//! the CNN. BatchNorm's running statistics are parameters of the layout (saved and permuted with
//! the rest) that training never changes: the forward detaches them. A merged model's are
//! re-estimated by running this forward with BatchNorm in training mode (`crate::batch_norm`).

use super::{Activation, BatchMoments, ParamRole, ParamSpec, Taps, activate, group_norm};
use crate::error::{Result, WsaError};
use burn::tensor::Tensor;
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use serde::{Deserialize, Serialize};

/// PyTorch's default `eps` of its norm layers, which every norm here uses.
const NORM_EPS: f64 = 1e-5;

/// One layer of a stack. Sizes of a layer's inputs are not written: they are what reaches it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum LayerSpec {
    /// `nn.Linear`: `{name}.weight` `[outputs, inputs]` and `{name}.bias`. An image reaching it
    /// is flattened first, as `nn.Flatten` would.
    Linear {
        name: String,
        outputs: usize,
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        bias: bool,
    },
    /// `nn.Conv2d` with a square kernel: `{name}.weight` `[channels, in, kernel, kernel]`.
    Conv2d {
        name: String,
        channels: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: usize,
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        bias: bool,
    },
    /// `nn.MaxPool2d(kernel, stride)`, no padding; the stride is the kernel when not given.
    MaxPool2d {
        kernel: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
    },
    /// `nn.AvgPool2d(kernel, stride)`, no padding.
    AvgPool2d {
        kernel: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
    },
    Flatten,
    Activation {
        function: Activation,
    },
    /// `nn.LayerNorm(features)` after a linear layer.
    LayerNorm {
        name: String,
    },
    /// `nn.GroupNorm(groups, channels)` after a linear or conv layer.
    GroupNorm {
        name: String,
        groups: usize,
    },
    /// `nn.BatchNorm1d` (after a linear layer) or `nn.BatchNorm2d` (after a conv) in inference
    /// mode: normalised by its running statistics.
    BatchNorm {
        name: String,
    },
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn is_true(value: &bool) -> bool {
    *value
}

impl LayerSpec {
    /// The layer in a word or two, for a model's label ("conv 16 3×3", "ReLU"); `None` for a
    /// flatten, which the shapes make plain.
    pub fn short_label(&self) -> Option<String> {
        Some(match self {
            LayerSpec::Linear { outputs, .. } => format!("linear {outputs}"),
            LayerSpec::Conv2d { channels, kernel, stride, .. } if *stride > 1 => {
                format!("conv {channels} {kernel}×{kernel}/{stride}")
            }
            LayerSpec::Conv2d { channels, kernel, .. } => format!("conv {channels} {kernel}×{kernel}"),
            LayerSpec::MaxPool2d { kernel, .. } => format!("max-pool {kernel}"),
            LayerSpec::AvgPool2d { kernel, .. } => format!("avg-pool {kernel}"),
            LayerSpec::Flatten => return None,
            LayerSpec::Activation { function } => function.label().to_string(),
            LayerSpec::LayerNorm { .. } => "LayerNorm".into(),
            LayerSpec::GroupNorm { groups, .. } => format!("GroupNorm {groups}"),
            LayerSpec::BatchNorm { .. } => "BatchNorm".into(),
        })
    }

    /// The module name of a layer with parameters.
    pub fn name(&self) -> Option<&str> {
        match self {
            LayerSpec::Linear { name, .. }
            | LayerSpec::Conv2d { name, .. }
            | LayerSpec::LayerNorm { name }
            | LayerSpec::GroupNorm { name, .. }
            | LayerSpec::BatchNorm { name } => Some(name),
            _ => None,
        }
    }

    /// Whether this is a linear or conv layer (one whose outputs are permutable units).
    pub fn has_units(&self) -> bool {
        matches!(self, LayerSpec::Linear { .. } | LayerSpec::Conv2d { .. })
    }

    fn is_norm(&self) -> bool {
        matches!(self, LayerSpec::LayerNorm { .. } | LayerSpec::GroupNorm { .. } | LayerSpec::BatchNorm { .. })
    }
}

/// What flows between layers for one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Features {
    Image { channels: usize, height: usize, width: usize },
    Flat(usize),
}

impl Features {
    pub fn from_sample_shape(shape: &[usize]) -> Option<Self> {
        match *shape {
            [channels, height, width] => Some(Features::Image { channels, height, width }),
            [n] => Some(Features::Flat(n)),
            _ => None,
        }
    }

    pub fn size(self) -> usize {
        match self {
            Features::Image { channels, height, width } => channels * height * width,
            Features::Flat(n) => n,
        }
    }

    /// Channels of an image, features of a flat vector: what a norm or a permutation addresses.
    pub fn units(self) -> usize {
        match self {
            Features::Image { channels, .. } => channels,
            Features::Flat(n) => n,
        }
    }

    fn positions(self) -> usize {
        self.size() / self.units().max(1)
    }
}

impl std::fmt::Display for Features {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Features::Image { channels, height, width } => write!(f, "{channels} x {height} x {width}"),
            Features::Flat(n) => write!(f, "{n} features"),
        }
    }
}

/// A stack's parameters in forward order and what each layer outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct StackPlan {
    pub params: Vec<ParamSpec>,
    /// What reaches each layer (`inputs[i]` for layer i).
    pub inputs: Vec<Features>,
    /// What leaves each layer.
    pub outputs: Vec<Features>,
}

/// A window of `kernel` at `stride` (after `padding` on both sides) over `size` positions.
fn window(size: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = size + 2 * padding;
    (kernel >= 1 && stride >= 1 && padded >= kernel).then(|| (padded - kernel) / stride + 1)
}

/// Checks `layers` on samples of `sample_shape` and lists their parameters; the last layer
/// must be the linear classifier with `num_classes` outputs.
pub fn plan(layers: &[LayerSpec], sample_shape: &[usize], num_classes: usize) -> Result<StackPlan> {
    let field = |i: usize| format!("model.layers[{i}]");
    let mut current = Features::from_sample_shape(sample_shape).ok_or_else(|| {
        WsaError::invalid(
            "model",
            "stack",
            &format!("samples must be [features] or [channels, height, width], not {sample_shape:?}"),
        )
    })?;
    let dims_ok = sample_shape.iter().all(|d| (1..=65_536).contains(d))
        && sample_shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).is_some_and(|n| n <= 1 << 28);
    if !dims_ok {
        return Err(WsaError::invalid(
            "model",
            "stack",
            &format!("samples of shape {sample_shape:?}: each side must be 1..65536 and a sample at most 2^28 values"),
        ));
    }
    let Some(last) = layers.last() else {
        return Err(WsaError::invalid("model.layers", "[]", "a stack needs at least its linear classifier"));
    };
    if !matches!(last, LayerSpec::Linear { .. }) {
        return Err(WsaError::invalid(
            &field(layers.len() - 1),
            format!("{last:?}"),
            "the last layer must be the linear classifier (the logits)",
        ));
    }
    let mut names: Vec<&str> = Vec::new();
    let mut params = Vec::new();
    let (mut inputs, mut outputs) = (Vec::with_capacity(layers.len()), Vec::with_capacity(layers.len()));
    // The linear or conv layer a norm right after it normalises (its name and whether it is the
    // classifier).
    let mut unit_layer: Option<(String, bool)> = None;
    for (i, layer) in layers.iter().enumerate() {
        let bad = |reason: String| WsaError::invalid(&field(i), format!("{layer:?}"), &reason);
        if let Some(name) = layer.name() {
            if name.is_empty() || names.contains(&name) {
                return Err(bad("each layer with parameters needs its own non-empty module name".into()));
            }
            names.push(name);
        }
        let classifier = i + 1 == layers.len();
        inputs.push(current);
        let mut push = |name: &str, leaf: &str, shape: Vec<usize>, role: ParamRole, layer: &str, fan_in: usize| {
            params.push(ParamSpec {
                path: format!("{name}.{leaf}"),
                shape,
                role,
                layer: layer.to_string(),
                classifier,
                fan_in,
            });
        };
        let follows = unit_layer.take();
        current = match layer {
            LayerSpec::Linear { name, outputs, bias } => {
                let inputs = current.size();
                if !(1..=65_536).contains(outputs) {
                    return Err(bad("outputs must be between 1 and 65536".into()));
                }
                if classifier && *outputs != num_classes {
                    return Err(bad(format!(
                        "the classifier has {outputs} outputs but the data has {num_classes} classes"
                    )));
                }
                push(name, "weight", vec![*outputs, inputs], ParamRole::Weight, name, inputs);
                if *bias {
                    push(name, "bias", vec![*outputs], ParamRole::Bias, name, inputs);
                }
                unit_layer = Some((name.clone(), classifier));
                Features::Flat(*outputs)
            }
            LayerSpec::Conv2d { name, channels, kernel, stride, padding, bias } => {
                let Features::Image { channels: c, height, width } = current else {
                    return Err(bad(format!("a conv2d needs an image but gets {current}")));
                };
                if !(1..=4096).contains(channels)
                    || !(1..=31).contains(kernel)
                    || !(1..=64).contains(stride)
                    || *padding > 64
                {
                    return Err(bad(
                        "channels must be 1..4096, the kernel 1..31, the stride 1..64 and the padding 0..64".into(),
                    ));
                }
                let (Some(h), Some(w)) =
                    (window(height, *kernel, *stride, *padding), window(width, *kernel, *stride, *padding))
                else {
                    return Err(bad(format!(
                        "a {kernel}x{kernel} kernel (stride {stride}, padding {padding}) does not fit a {current} image"
                    )));
                };
                let fan_in = c * kernel * kernel;
                push(name, "weight", vec![*channels, c, *kernel, *kernel], ParamRole::Weight, name, fan_in);
                if *bias {
                    push(name, "bias", vec![*channels], ParamRole::Bias, name, fan_in);
                }
                unit_layer = Some((name.clone(), false));
                Features::Image { channels: *channels, height: h, width: w }
            }
            LayerSpec::MaxPool2d { kernel, stride } | LayerSpec::AvgPool2d { kernel, stride } => {
                let Features::Image { channels, height, width } = current else {
                    return Err(bad(format!("pooling needs an image but gets {current}")));
                };
                let stride = stride.unwrap_or(*kernel);
                if !(1..=64).contains(kernel) || !(1..=64).contains(&stride) {
                    return Err(bad("a pooling window's kernel and stride must be 1..64".into()));
                }
                let (Some(h), Some(w)) = (window(height, *kernel, stride, 0), window(width, *kernel, stride, 0)) else {
                    return Err(bad(format!(
                        "a {kernel}x{kernel} window at stride {stride} does not fit a {current} image"
                    )));
                };
                Features::Image { channels, height: h, width: w }
            }
            LayerSpec::Flatten => Features::Flat(current.size()),
            LayerSpec::Activation { .. } => current,
            LayerSpec::LayerNorm { name } | LayerSpec::GroupNorm { name, .. } | LayerSpec::BatchNorm { name } => {
                let Some((owner, owner_is_classifier)) = follows else {
                    return Err(bad("a norm must come right after the linear or conv layer it normalises".into()));
                };
                if owner_is_classifier {
                    return Err(bad("the classifier's outputs are the logits; nothing may follow it".into()));
                }
                let units = current.units();
                match layer {
                    LayerSpec::LayerNorm { .. } if matches!(current, Features::Image { .. }) => {
                        return Err(bad("a LayerNorm over a conv's channels and pixels is not supported; use GroupNorm with 1 group for per-channel affine parameters".into()));
                    }
                    LayerSpec::GroupNorm { groups, .. } if *groups == 0 || !units.is_multiple_of(*groups) => {
                        return Err(bad(format!("the group count must divide the {units} channels")));
                    }
                    _ => {}
                }
                push(name, "weight", vec![units], ParamRole::NormWeight, &owner, units);
                push(name, "bias", vec![units], ParamRole::NormBias, &owner, units);
                if matches!(layer, LayerSpec::BatchNorm { .. }) {
                    push(name, "running_mean", vec![units], ParamRole::RunningMean, &owner, units);
                    push(name, "running_var", vec![units], ParamRole::RunningVar, &owner, units);
                }
                current
            }
        };
        outputs.push(current);
    }
    Ok(StackPlan { params, inputs, outputs })
}

impl StackPlan {
    /// Multiply-adds of one sample's forward pass: each weight once per output position.
    pub fn macs_per_sample(&self, layers: &[LayerSpec]) -> usize {
        let mut params = self.params.iter();
        let mut macs = 0;
        for (layer, output) in layers.iter().zip(&self.outputs) {
            if layer.has_units() {
                let weight = params.find(|p| p.role == ParamRole::Weight).map_or(0, ParamSpec::numel);
                macs += weight * output.positions();
            }
        }
        macs
    }
}

/// What flows through the forward: an image batch or a flat one.
enum Hidden {
    Image(Tensor<4>),
    Flat(Tensor<2>),
}

impl Hidden {
    fn flat(self) -> Tensor<2> {
        match self {
            Hidden::Image(x) => {
                let [b, c, h, w] = x.dims();
                x.reshape([b, c * h * w])
            }
            Hidden::Flat(x) => x,
        }
    }

    /// `[batch, units, positions]`.
    fn grouped(self) -> Tensor<3> {
        match self {
            Hidden::Image(x) => {
                let [b, c, h, w] = x.dims();
                x.reshape([b, c, h * w])
            }
            Hidden::Flat(x) => {
                let [b, f] = x.dims();
                x.reshape([b, f, 1])
            }
        }
    }

    fn grouped_copy(&self) -> Tensor<3> {
        match self {
            Hidden::Image(x) => Hidden::Image(x.clone()),
            Hidden::Flat(x) => Hidden::Flat(x.clone()),
        }
        .grouped()
    }

    /// `x: [batch, units, positions]` back in the shape `like` had.
    fn ungrouped(x: Tensor<3>, like: Features) -> Hidden {
        let [b, _, _] = x.dims();
        match like {
            Features::Image { channels, height, width } => Hidden::Image(x.reshape([b, channels, height, width])),
            Features::Flat(n) => Hidden::Flat(x.reshape([b, n])),
        }
    }

    fn map(self, f: impl FnOnce(Tensor<4>) -> Tensor<4>, g: impl FnOnce(Tensor<2>) -> Tensor<2>) -> Hidden {
        match self {
            Hidden::Image(x) => Hidden::Image(f(x)),
            Hidden::Flat(x) => Hidden::Flat(g(x)),
        }
    }
}

/// BatchNorm in inference mode over `x: [batch, units, positions]`; the running statistics are
/// detached, so that no gradient reaches them.
fn batch_norm(x: Tensor<3>, gamma: Tensor<1>, beta: Tensor<1>, mean: Tensor<1>, var: Tensor<1>) -> Tensor<3> {
    let [_, c, _] = x.dims();
    let scale = gamma / (var.detach() + NORM_EPS).sqrt();
    let shift = beta - mean.detach() * scale.clone();
    x * scale.reshape([1, c, 1]) + shift.reshape([1, c, 1])
}

/// BatchNorm in training mode over `x: [batch, units, positions]`: normalised by the batch's own
/// per-channel mean and biased variance (as PyTorch's `BatchNorm` in `train()`), which are
/// returned beside the output.
fn batch_norm_training(x: Tensor<3>, gamma: Tensor<1>, beta: Tensor<1>) -> (Tensor<3>, BatchMoments) {
    let [b, c, positions] = x.dims();
    let mean = x.clone().mean_dim(2).mean_dim(0);
    let centred = x - mean.clone();
    let variance = centred.clone().square().mean_dim(2).mean_dim(0);
    let scale = gamma.reshape([1, c, 1]) / (variance.clone() + NORM_EPS).sqrt();
    let normed = centred * scale + beta.reshape([1, c, 1]);
    let moments = BatchMoments { mean: mean.reshape([c]), variance: variance.reshape([c]), count: b * positions };
    (normed, moments)
}

/// The stack's logits for `x: [batch, features]`, handing `taps.hidden` each hidden linear or
/// conv layer's output (after its norm, before its activation) as `[batch, units, positions]`,
/// and running BatchNorm in training mode when `taps.batch_norm` is given (see [`Taps`]).
pub(super) fn forward(
    layers: &[LayerSpec],
    plan: &StackPlan,
    params: &[Tensor<1>],
    x: Tensor<2>,
    taps: Taps<'_>,
) -> Tensor<2> {
    let Taps { hidden: mut tap, batch_norm: mut batch_stats } = taps;
    let mut batch_norms = 0;
    let [batch, _] = x.dims();
    let mut h = match plan.inputs.first() {
        Some(Features::Image { channels, height, width }) => {
            Hidden::Image(x.reshape([batch, *channels, *height, *width]))
        }
        _ => Hidden::Flat(x),
    };
    let mut next = 0;
    let mut take = |count: usize| {
        let taken = params[next..next + count].to_vec();
        next += count;
        taken
    };
    let mut tapped = 0;
    for (i, layer) in layers.iter().enumerate() {
        let output = plan.outputs[i];
        h = match layer {
            LayerSpec::Linear { outputs, bias, .. } => {
                let x = h.flat();
                let [_, inputs] = x.dims();
                let p = take(1 + usize::from(*bias));
                let w = p[0].clone().reshape([*outputs, inputs]);
                let y = x.matmul(w.transpose());
                Hidden::Flat(match p.get(1) {
                    Some(b) => y + b.clone().reshape([1, *outputs]),
                    None => y,
                })
            }
            LayerSpec::Conv2d { channels, kernel, stride, padding, bias, .. } => {
                let Hidden::Image(x) = h else { unreachable!("plan checked that a conv gets an image") };
                let [_, c, _, _] = x.dims();
                let p = take(1 + usize::from(*bias));
                let w = p[0].clone().reshape([*channels, c, *kernel, *kernel]);
                Hidden::Image(match p.get(1) {
                    // The CNN's own convolution where it applies: our CPU kernels.
                    Some(b) if *stride == 1 => crate::conv::conv_stride1(x, w, b.clone(), *padding),
                    b => conv2d(x, w, b.cloned(), ConvOptions::new([*stride; 2], [*padding; 2], [1, 1], 1)),
                })
            }
            LayerSpec::MaxPool2d { kernel, stride } => {
                let stride = stride.unwrap_or(*kernel);
                h.map(
                    |x| match (kernel, stride) {
                        (2, 2) => crate::conv::max_pool_2x2(x),
                        _ => max_pool2d(x, MaxPoolOptions::new([*kernel; 2]).with_stride([stride; 2])),
                    },
                    |x| x,
                )
            }
            LayerSpec::AvgPool2d { kernel, stride } => {
                let stride = stride.unwrap_or(*kernel);
                h.map(|x| avg_pool2d(x, AvgPoolOptions::new([*kernel; 2]).with_stride([stride; 2])), |x| x)
            }
            LayerSpec::Flatten => Hidden::Flat(h.flat()),
            LayerSpec::Activation { function } => h.map(|x| activate(x, *function), |x| activate(x, *function)),
            LayerSpec::LayerNorm { .. } | LayerSpec::GroupNorm { .. } => {
                let groups = match layer {
                    LayerSpec::GroupNorm { groups, .. } => *groups,
                    _ => 1,
                };
                let p = take(2);
                Hidden::ungrouped(group_norm(h.grouped(), groups, p[0].clone(), p[1].clone()), output)
            }
            LayerSpec::BatchNorm { .. } => {
                let p = take(4);
                let normed = match batch_stats.as_mut() {
                    None => batch_norm(h.grouped(), p[0].clone(), p[1].clone(), p[2].clone(), p[3].clone()),
                    Some(report) => {
                        let (normed, moments) = batch_norm_training(h.grouped(), p[0].clone(), p[1].clone());
                        report(batch_norms, moments);
                        normed
                    }
                };
                batch_norms += 1;
                Hidden::ungrouped(normed, output)
            }
        };
        // A hidden layer's output is complete once its norm (if any) has run.
        let completes_hidden_layer = (layer.has_units() || layer.is_norm())
            && i + 1 < layers.len()
            && !layers.get(i + 1).is_some_and(LayerSpec::is_norm);
        if completes_hidden_layer {
            if let Some(tap) = tap.as_mut() {
                tap(tapped, h.grouped_copy());
            }
            tapped += 1;
        }
    }
    h.flat()
}
