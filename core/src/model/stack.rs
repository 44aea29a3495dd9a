//! The stack model: a PyTorch-style list of layers (linear, conv, pooling, flatten, activation,
//! LayerNorm, GroupNorm, BatchNorm in inference mode, residual blocks) addressed by the user's
//! own module names, so that a PyTorch MLP or CNN `state_dict` loads as it is (see
//! [`crate::infer`], which builds such a list from a file's names and shapes).
//!
//! A residual block adds its input to what its own layers make of it (`x + block(x)`, a ResNet's
//! basic block without a projection shortcut), so its layers must keep the shape; stages change
//! width through plain (strided) convs between blocks. The layers that write into the sum and
//! those that read it share one channel order (see `crate::align::PermutationSpec`).
//!
//! Each norm follows the linear or conv layer it normalises, and its parameters belong to that
//! layer (`ParamSpec::layer`): the layer's units, the norm's parameters and the next layer's
//! inputs are what one permutation moves together and what REPAIR corrects, as for the MLP and
//! the CNN. BatchNorm's running statistics are parameters of the layout (saved and permuted with
//! the rest) that training never changes: the forward detaches them. A merged model's are
//! re-estimated by running this forward with BatchNorm in training mode (`crate::batch_norm`).

use super::{Activation, BatchMoments, ParamRole, ParamSpec, Taps, activate};
use crate::error::{Result, WsaError};
use crate::group_norm::group_norm_then;
use burn::tensor::Tensor;
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
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
    /// A residual block: its input plus what `layers` (run in order) make of it. The layers keep
    /// their own module names (PyTorch's for a module holding them, e.g. `stage1.0.conv1`) and
    /// must give back the shape they get.
    Residual {
        layers: Vec<LayerSpec>,
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
            LayerSpec::Residual { layers } => {
                let parts: Vec<String> = layers.iter().filter_map(LayerSpec::short_label).collect();
                format!("residual [{}]", parts.join(" → "))
            }
        })
    }

    /// Every layer of `layers` in forward order, a residual block's own layers in its place.
    pub fn unrolled(layers: &[LayerSpec]) -> Vec<&LayerSpec> {
        let mut all = Vec::with_capacity(layers.len());
        for layer in layers {
            match layer {
                LayerSpec::Residual { layers } => all.extend(LayerSpec::unrolled(layers)),
                other => all.push(other),
            }
        }
        all
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
    /// What reaches each layer (`inputs[i]` for layer i; a residual block counts as one).
    pub inputs: Vec<Features>,
    /// What leaves each layer.
    pub outputs: Vec<Features>,
    /// Multiply-adds of one sample's forward pass: each weight once per output position.
    pub macs_per_sample: usize,
}

/// A window of `kernel` at `stride` (after `padding` on both sides) over `size` positions.
fn window(size: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = size + 2 * padding;
    (kernel >= 1 && stride >= 1 && padded >= kernel).then(|| (padded - kernel) / stride + 1)
}

/// Checks `layers` on samples of `sample_shape` and lists their parameters; the last layer
/// must be the linear classifier with `num_classes` outputs.
pub fn plan(layers: &[LayerSpec], sample_shape: &[usize], num_classes: usize) -> Result<StackPlan> {
    let input = Features::from_sample_shape(sample_shape).ok_or_else(|| {
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
            &format!("model.layers[{}]", layers.len() - 1),
            format!("{last:?}"),
            "the last layer must be the linear classifier (the logits)",
        ));
    }
    let mut planner = Planner { names: Vec::new(), params: Vec::new(), macs: 0, num_classes };
    let outputs = planner.layers(layers, "model.layers", input, true)?;
    let inputs = std::iter::once(input).chain(outputs.iter().copied()).take(layers.len()).collect();
    Ok(StackPlan { params: planner.params, inputs, outputs, macs_per_sample: planner.macs })
}

/// What planning a stack has gathered so far, over its residual blocks too.
struct Planner<'a> {
    /// The module names taken (each layer with parameters needs its own, blocks included).
    names: Vec<&'a str>,
    params: Vec<ParamSpec>,
    macs: usize,
    num_classes: usize,
}

impl<'a> Planner<'a> {
    /// Plans `layers` (the list at `field`) on `current`, returning what leaves each of them;
    /// `top` for the stack itself, whose last layer is the classifier.
    fn layers(
        &mut self,
        layers: &'a [LayerSpec],
        field: &str,
        mut current: Features,
        top: bool,
    ) -> Result<Vec<Features>> {
        let mut outputs = Vec::with_capacity(layers.len());
        // The linear or conv layer a norm right after it normalises (its name and whether it is
        // the classifier). A block starts without one, and a norm after a block has none.
        let mut unit_layer: Option<(String, bool)> = None;
        for (i, layer) in layers.iter().enumerate() {
            let here = format!("{field}[{i}]");
            let bad = |reason: String| WsaError::invalid(&here, format!("{layer:?}"), &reason);
            if let Some(name) = layer.name() {
                if name.is_empty() || self.names.contains(&name) {
                    return Err(bad("each layer with parameters needs its own non-empty module name".into()));
                }
                self.names.push(name);
            }
            let classifier = top && i + 1 == layers.len();
            let params = &mut self.params;
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
                    if classifier && *outputs != self.num_classes {
                        return Err(bad(format!(
                            "the classifier has {outputs} outputs but the data has {} classes",
                            self.num_classes
                        )));
                    }
                    push(name, "weight", vec![*outputs, inputs], ParamRole::Weight, name, inputs);
                    if *bias {
                        push(name, "bias", vec![*outputs], ParamRole::Bias, name, inputs);
                    }
                    self.macs += outputs * inputs;
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
                    self.macs += channels * fan_in * h * w;
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
                    let (Some(h), Some(w)) = (window(height, *kernel, stride, 0), window(width, *kernel, stride, 0))
                    else {
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
                LayerSpec::Residual { layers: block } => {
                    let label = layer.short_label().unwrap_or_default();
                    if block.is_empty() {
                        return Err(WsaError::invalid(&here, label, "a residual block needs at least one layer"));
                    }
                    let made = self.layers(block, &format!("{here}.layers"), current, false)?;
                    let made = made.last().copied().unwrap_or(current);
                    if made != current {
                        return Err(WsaError::invalid(
                            &here,
                            label,
                            &format!(
                                "the residual block turns its {current} input into {made}, but its output is added to its input, so it must keep the shape (there is no projection shortcut): put the strided or widening conv before the block"
                            ),
                        ));
                    }
                    current
                }
            };
            outputs.push(current);
        }
        Ok(outputs)
    }
}

/// What flows through the forward: an image batch or a flat one.
#[derive(Clone)]
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

    /// `f` of this as `[batch, units, positions]` (a norm's view), back in this shape.
    fn per_unit(self, f: impl FnOnce(Tensor<3>) -> Tensor<3>) -> Hidden {
        match self {
            Hidden::Image(x) => {
                let [b, c, h, w] = x.dims();
                Hidden::Image(f(x.reshape([b, c, h * w])).reshape([b, c, h, w]))
            }
            Hidden::Flat(x) => {
                let [b, n] = x.dims();
                Hidden::Flat(f(x.reshape([b, n, 1])).reshape([b, n]))
            }
        }
    }

    /// The sum of two of the same shape (a residual block's input and output; the plan checked
    /// that they match), with `rectify` its ReLU in the same operation.
    fn add(self, other: Hidden, rectify: bool) -> Hidden {
        fn sum<const D: usize>(x: Tensor<D>, y: Tensor<D>, rectify: bool) -> Tensor<D> {
            if rectify { crate::conv::add_relu(x, y) } else { x + y }
        }
        match (self, other) {
            (Hidden::Image(x), Hidden::Image(y)) => Hidden::Image(sum(x, y, rectify)),
            (Hidden::Flat(x), Hidden::Flat(y)) => Hidden::Flat(sum(x, y, rectify)),
            _ => unreachable!("plan checked that a residual block keeps its input's shape"),
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
/// conv layer's output (after its norm, before its activation; inside a residual block, before
/// the add) as `[batch, units, positions]`, and running BatchNorm in training mode when
/// `taps.batch_norm` is given (see [`Taps`]).
pub(super) fn forward(
    layers: &[LayerSpec],
    plan: &StackPlan,
    params: &[Tensor<1>],
    x: Tensor<2>,
    taps: Taps<'_>,
) -> Tensor<2> {
    let [batch, _] = x.dims();
    let h = match plan.inputs.first() {
        Some(Features::Image { channels, height, width }) => {
            Hidden::Image(x.reshape([batch, *channels, *height, *width]))
        }
        _ => Hidden::Flat(x),
    };
    let mut run = Forward { params, next: 0, taps, tapped: 0, batch_norms: 0 };
    run.layers(layers, h, true).flat()
}

/// Where a forward is: the parameters taken so far and the hidden layers and BatchNorms met
/// (which the taps count).
struct Forward<'p, 't> {
    params: &'p [Tensor<1>],
    next: usize,
    taps: Taps<'t>,
    tapped: usize,
    batch_norms: usize,
}

impl Forward<'_, '_> {
    fn take(&mut self, count: usize) -> &[Tensor<1>] {
        let taken = &self.params[self.next..self.next + count];
        self.next += count;
        taken
    }

    /// `layers` run on `h`; `top` for the stack itself, whose last layer is the classifier.
    fn layers(&mut self, layers: &[LayerSpec], mut h: Hidden, top: bool) -> Hidden {
        let mut i = 0;
        while i < layers.len() {
            let layer = &layers[i];
            // A GroupNorm or LayerNorm followed by ReLU runs as one operation, unless a tap wants
            // the norm's output before the ReLU; so does a residual block's sum followed by ReLU.
            let relu_next = matches!(layers.get(i + 1), Some(LayerSpec::Activation { function: Activation::Relu }));
            let rectified = relu_next
                && match layer {
                    LayerSpec::LayerNorm { .. } | LayerSpec::GroupNorm { .. } => self.taps.hidden.is_none(),
                    LayerSpec::Residual { .. } => true,
                    _ => false,
                };
            h = match layer {
                LayerSpec::Residual { layers } => self.residual(layers, h, rectified),
                _ if rectified => self.norm(layer, h, true),
                _ => self.layer(layer, h),
            };
            // A hidden layer's output is complete once its norm (if any) has run.
            let completes_hidden_layer = (layer.has_units() || layer.is_norm())
                && !(top && i + 1 == layers.len())
                && !layers.get(i + 1).is_some_and(LayerSpec::is_norm);
            if completes_hidden_layer {
                if let Some(tap) = self.taps.hidden.as_mut() {
                    tap(self.tapped, h.clone().grouped());
                }
                self.tapped += 1;
            }
            // The ReLU that ran with the norm or the residual sum (an activation completes no
            // hidden layer).
            i += if rectified { 2 } else { 1 };
        }
        h
    }

    /// A residual block of `layers` on `h`: its output added to `h`, then ReLU if `rectify`.
    fn residual(&mut self, layers: &[LayerSpec], h: Hidden, rectify: bool) -> Hidden {
        let block = self.layers(layers, h.clone(), false);
        h.add(block, rectify)
    }

    /// A GroupNorm or LayerNorm (`layer`) on `h`, then ReLU if `rectify`.
    fn norm(&mut self, layer: &LayerSpec, h: Hidden, rectify: bool) -> Hidden {
        let groups = match layer {
            LayerSpec::GroupNorm { groups, .. } => *groups,
            _ => 1,
        };
        let p = self.take(2);
        let (gamma, beta) = (p[0].clone(), p[1].clone());
        h.per_unit(|x| group_norm_then(x, groups, gamma, beta, rectify))
    }

    fn layer(&mut self, layer: &LayerSpec, h: Hidden) -> Hidden {
        match layer {
            LayerSpec::Linear { outputs, bias, .. } => {
                let x = h.flat();
                let [_, inputs] = x.dims();
                let p = self.take(1 + usize::from(*bias));
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
                let p = self.take(1 + usize::from(*bias));
                let w = p[0].clone().reshape([*channels, c, *kernel, *kernel]);
                // Our convolution (`conv.rs`; on the CPU our kernels, at any stride). A layer
                // without a bias (a ResNet's, before a norm) adds a constant zero one, which
                // changes no value and takes no gradient (docs/benchmarks.md: ResNet-GN trained
                // 1.25x faster this way than on burn's generic convolution).
                let b = p.get(1).cloned().unwrap_or_else(|| Tensor::zeros([*channels], &w.device()));
                Hidden::Image(crate::conv::conv(x, w, b, *stride, *padding))
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
            LayerSpec::LayerNorm { .. } | LayerSpec::GroupNorm { .. } => self.norm(layer, h, false),
            LayerSpec::BatchNorm { .. } => {
                let p = self.take(4).to_vec();
                let index = self.batch_norms;
                self.batch_norms += 1;
                let report = self.taps.batch_norm.as_mut();
                h.per_unit(|x| match report {
                    None => batch_norm(x, p[0].clone(), p[1].clone(), p[2].clone(), p[3].clone()),
                    Some(report) => {
                        let (normed, moments) = batch_norm_training(x, p[0].clone(), p[1].clone());
                        report(index, moments);
                        normed
                    }
                })
            }
            LayerSpec::Residual { layers } => self.residual(layers, h, false),
        }
    }
}

/// A three-stage GroupNorm ResNet as a stack (tests): a stem conv, then per stage a residual
/// block of two convs, with a strided conv into each later stage, an average pool of `pool` and
/// the classifier. Names as a PyTorch module with `stem`, `stage{k}.0.conv1`, ... would give.
#[cfg(test)]
pub(crate) fn residual_stack(widths: [usize; 3], groups: usize, pool: usize, classes: usize) -> Vec<LayerSpec> {
    use super::Activation;
    let relu = || LayerSpec::Activation { function: Activation::Relu };
    let conv = |name: String, channels: usize, stride: usize| LayerSpec::Conv2d {
        name,
        channels,
        kernel: 3,
        stride,
        padding: 1,
        bias: false,
    };
    let norm = |name: String| LayerSpec::GroupNorm { name, groups };
    let mut layers = Vec::new();
    for (k, &width) in widths.iter().enumerate() {
        let (into, stride) = if k == 0 { ("stem".to_string(), 1) } else { (format!("down{}", k + 1), 2) };
        layers.extend([conv(format!("{into}.0"), width, stride), norm(format!("{into}.1")), relu()]);
        let block = |leaf: &str| format!("stage{}.0.{leaf}", k + 1);
        layers.push(LayerSpec::Residual {
            layers: vec![
                conv(block("conv1"), width, 1),
                norm(block("gn1")),
                relu(),
                conv(block("conv2"), width, 1),
                norm(block("gn2")),
            ],
        });
        layers.push(relu());
    }
    layers.extend([
        LayerSpec::AvgPool2d { kernel: pool, stride: None },
        LayerSpec::Flatten,
        LayerSpec::Linear { name: "fc".into(), outputs: classes, bias: true },
    ]);
    layers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::tests::bits;
    use crate::model::{ModelConfig, ModelLayout};
    use crate::rng::Rng;
    use burn::tensor::TensorData;
    use std::sync::Arc;

    fn layout(layers: Vec<LayerSpec>, shape: &[usize]) -> Result<Arc<ModelLayout>> {
        ModelLayout::new(&ModelConfig::Stack { layers, init: Default::default() }, shape, 3).map(Arc::new)
    }

    fn logits(params: &crate::model::HostParams, x: &[f32]) -> Vec<f32> {
        let device = crate::device::cpu().device;
        let dim: usize = params.layout.sample_shape.iter().product();
        let x = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [x.len() / dim, dim]), &device);
        params.to_device(&device).logits(x).into_data().try_to_vec::<f32>().expect("f32 logits")
    }

    fn relu() -> LayerSpec {
        LayerSpec::Activation { function: super::super::Activation::Relu }
    }

    fn conv(name: &str, channels: usize) -> LayerSpec {
        LayerSpec::Conv2d { name: name.into(), channels, kernel: 3, stride: 1, padding: 1, bias: true }
    }

    /// conv, ReLU, `block`, ReLU, flatten, linear.
    fn around(block: Option<Vec<LayerSpec>>) -> Vec<LayerSpec> {
        let mut layers = vec![conv("stem", 4), relu()];
        layers.extend(block.map(|layers| LayerSpec::Residual { layers }));
        layers.extend([relu(), LayerSpec::Flatten, LayerSpec::Linear { name: "fc".into(), outputs: 3, bias: true }]);
        layers
    }

    fn block() -> Vec<LayerSpec> {
        vec![
            conv("block.conv1", 4),
            LayerSpec::GroupNorm { name: "block.gn1".into(), groups: 2 },
            relu(),
            conv("block.conv2", 4),
            LayerSpec::GroupNorm { name: "block.gn2".into(), groups: 2 },
        ]
    }

    #[test]
    fn a_residual_block_adds_its_layers_output_to_its_input() {
        let with = layout(around(Some(block())), &[2, 5, 5]).expect("layout");
        let without = layout(around(None), &[2, 5, 5]).expect("layout");
        let paths: Vec<&str> = with.params.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "stem.weight",
                "stem.bias",
                "block.conv1.weight",
                "block.conv1.bias",
                "block.gn1.weight",
                "block.gn1.bias",
                "block.conv2.weight",
                "block.conv2.bias",
                "block.gn2.weight",
                "block.gn2.bias",
                "fc.weight",
                "fc.bias"
            ],
            "the block's layers under their own names, in forward order"
        );
        let mut rng = Rng::new(4);
        let mut params = with.init(&mut rng);
        for v in params.values.iter_mut().flatten() {
            *v += (0.2 * rng.normal()) as f32;
        }
        let x: Vec<f32> = (0..3 * 50).map(|_| rng.normal() as f32).collect();
        // The same stem and classifier without the block.
        let keep = |p: &&crate::model::ParamSpec| !p.path.starts_with("block.");
        let outside: Vec<Vec<f32>> =
            with.params.iter().zip(&params.values).filter(|(p, _)| keep(p)).map(|(_, v)| v.clone()).collect();
        let plain = crate::model::HostParams { layout: Arc::clone(&without), values: outside };
        let (full, skipped) = (logits(&params, &x), logits(&plain, &x));
        assert!(full.iter().zip(&skipped).any(|(p, q)| (p - q).abs() > 1e-3), "the block changes the logits");
        // With its last conv and norm zeroed the block adds nothing: the stack without it.
        for (spec, values) in with.params.iter().zip(&mut params.values) {
            if spec.path.starts_with("block.conv2.") || spec.path.starts_with("block.gn2.") {
                values.fill(0.0);
            }
        }
        for (p, q) in logits(&params, &x).iter().zip(&skipped) {
            assert!((p - q).abs() <= 1e-5 * (1.0 + q.abs()), "{p} vs {q}");
        }
    }

    /// The stack runs a norm and its ReLU, and a residual sum and its ReLU, as one operation
    /// each (`Forward::layers`). The logits and every parameter's gradient are those of the
    /// layers run one by one, to the bit: the norms run apart when a hidden tap wants their
    /// output, the sum when its ReLU comes after the flatten instead (the same values).
    #[test]
    fn a_stack_with_fused_relus_gives_the_numbers_of_its_layers_one_by_one() {
        let norm = |name: &str| LayerSpec::GroupNorm { name: name.into(), groups: 2 };
        let head = [LayerSpec::Flatten, LayerSpec::Linear { name: "fc".into(), outputs: 3, bias: true }];
        let mut fused = vec![conv("stem", 4), norm("stem.gn"), relu(), LayerSpec::Residual { layers: block() }, relu()];
        fused.extend(head.clone());
        let mut apart = fused.clone();
        apart.swap(4, 5);
        let (fused, apart) = (layout(fused, &[2, 5, 5]).expect("layout"), layout(apart, &[2, 5, 5]).expect("layout"));
        let mut rng = Rng::new(9);
        let mut params = fused.init(&mut rng);
        for v in params.values.iter_mut().flatten() {
            *v += (0.3 * rng.normal()) as f32;
        }
        let x: Vec<f32> = (0..3 * 50).map(|_| rng.normal() as f32).collect();
        let weights: Vec<f32> = (0..3 * 3).map(|_| rng.normal() as f32).collect();
        let run = |layout: &ModelLayout, tapped: bool| -> Vec<Vec<u32>> {
            let device = crate::device::cpu().device.autodiff();
            let tensor = |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [v.len()]), &device);
            let leaves: Vec<Tensor<1>> = params.values.iter().map(|v| tensor(v).require_grad()).collect();
            let mut taken = 0;
            let mut tap = |_: usize, _: Tensor<3>| taken += 1;
            let taps = crate::model::Taps {
                hidden: tapped.then_some(&mut tap as &mut dyn FnMut(usize, Tensor<3>)),
                batch_norm: None,
            };
            let logits = crate::model::forward_tapped(layout, &leaves, tensor(&x).reshape([3, 50]), taps);
            let grads = (logits.clone() * tensor(&weights).reshape([3, 3])).sum().backward();
            assert_eq!(taken, if tapped { 3 } else { 0 }, "the outputs of the stem's and the block's norms");
            let mut out = vec![bits(logits.reshape([9]))];
            out.extend(leaves.iter().map(|leaf| bits(leaf.grad(&grads).expect("a gradient"))));
            out
        };
        let all_fused = run(&fused, false);
        assert!(all_fused[0].iter().all(|&b| f32::from_bits(b).is_finite()), "finite logits");
        assert_eq!(all_fused, run(&fused, true), "the norms fused against run apart for a tap");
        assert_eq!(all_fused, run(&apart, false), "the residual sum fused against its ReLU after the flatten");
        assert_eq!(all_fused, run(&apart, true), "everything fused against nothing fused");
        // Not vacuous: every parameter's gradient has an entry that is not zero.
        assert!(all_fused[1..].iter().all(|g| g.iter().any(|&b| f32::from_bits(b) != 0.0)), "every gradient non-zero");
    }

    #[test]
    fn a_block_that_changes_the_shape_is_refused_when_planned() {
        let mut wider = block();
        wider[3] = conv("block.conv2", 8);
        wider[4] = LayerSpec::GroupNorm { name: "block.gn2".into(), groups: 2 };
        let err = layout(around(Some(wider)), &[2, 5, 5]).expect_err("shape changes").to_string();
        assert_eq!(
            err,
            "invalid config: model.layers[2] = residual [conv 4 3×3 → GroupNorm 2 → ReLU → conv 8 3×3 → GroupNorm 2]: \
             the residual block turns its 4 x 5 x 5 input into 8 x 5 x 5, but its output is added to its input, so it \
             must keep the shape (there is no projection shortcut): put the strided or widening conv before the block"
        );
        let pooled = vec![conv("block.conv1", 4), LayerSpec::MaxPool2d { kernel: 2, stride: None }];
        let err = layout(around(Some(pooled)), &[2, 5, 5]).expect_err("pooled").to_string();
        assert!(err.contains("turns its 4 x 5 x 5 input into 4 x 2 x 2"), "{err}");
        let err = layout(around(Some(Vec::new())), &[2, 5, 5]).expect_err("empty").to_string();
        assert!(err.contains("needs at least one layer"), "{err}");
        // A norm after a block normalises no layer; a block's names are the stack's.
        let mut normed = around(Some(block()));
        normed.insert(3, LayerSpec::GroupNorm { name: "after".into(), groups: 2 });
        let err = layout(normed, &[2, 5, 5]).expect_err("norm after a block").to_string();
        assert!(err.contains("model.layers[3]") && err.contains("right after"), "{err}");
        let mut twice = block();
        twice[0] = conv("stem", 4);
        let err = layout(around(Some(twice)), &[2, 5, 5]).expect_err("name taken").to_string();
        assert!(err.contains("model.layers[2].layers[0]") && err.contains("own non-empty module name"), "{err}");
    }

    #[test]
    fn a_residual_stack_reads_back_from_json_and_counts_its_blocks_work() {
        let layers = residual_stack([32, 64, 128], 8, 7, 10);
        let config = ModelConfig::Stack { layers: layers.clone(), init: Default::default() };
        let json = serde_json::to_string(&config).expect("json");
        assert!(json.contains(r#"{"type":"residual","layers":[{"type":"conv2d","name":"stage1.0.conv1""#), "{json}");
        assert_eq!(serde_json::from_str::<ModelConfig>(&json).expect("back"), config);
        let layout = ModelLayout::new(&config, &[1, 28, 28], 10).expect("layout");
        let plan = plan(&layers, &[1, 28, 28], 10).expect("plan");
        let stages = [(32, 1, 28), (64, 32, 14), (128, 64, 7)];
        // Each stage: its entry conv and the block's two convs, at the stage's resolution.
        let convs: usize = stages.iter().map(|&(c, c_in, side)| (c * c_in + 2 * c * c) * 9 * side * side).sum();
        assert_eq!(plan.macs_per_sample, convs + 128 * 10);
        assert_eq!(layout.training_flops_per_sample(), 6.0 * plan.macs_per_sample as f64);
        assert!(config.label().starts_with(
            "layers conv 32 3×3 → GroupNorm 8 → ReLU → residual [conv 32 3×3 → GroupNorm 8 → ReLU → conv 32 3×3 → GroupNorm 8] → ReLU → conv 64 3×3/2"
        ), "{}", config.label());
        // The preset for experiments (docs/layout-file.md) is this network.
        let preset =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/models/resnet-gn-32-64-128.json");
        let preset = std::fs::read_to_string(preset).expect("the preset");
        assert_eq!(serde_json::from_str::<ModelConfig>(&preset).expect("a model config"), config);
        let unrolled: Vec<&str> =
            LayerSpec::unrolled(&layers).into_iter().filter_map(LayerSpec::name).take(6).collect();
        assert_eq!(unrolled, ["stem.0", "stem.1", "stage1.0.conv1", "stage1.0.gn1", "stage1.0.conv2", "stage1.0.gn2"]);
    }
}
