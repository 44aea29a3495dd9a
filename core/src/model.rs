//! Models built from a serde config: an MLP, a small CNN and a general stack of PyTorch-style
//! layers ([`stack`], what a user's own PyTorch model loads as), as *functional* forwards over a
//! list of path-addressed parameters.
//!
//! Why functional rather than burn `Module`s: every operation this product exists for (scopes,
//! merging, interpolation, permutation, federated averaging, safetensors I/O) works over
//! `(path, tensor)` pairs. Keeping the parameters as an ordered list of flat tensors with a
//! layout beside them makes those operations one loop each, with no mapping from burn's
//! internal parameter ids back to names. Names and shapes follow PyTorch (`[out, in]` linear
//! weights, `[out, in, kh, kw]` conv weights), so a PyTorch model with the same names loads.

use crate::error::{Result, WsaError};
use crate::group_norm::{group_norm, group_norm_then};
use crate::rng::Rng;
use burn::tensor::activation;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub mod stack;

pub use stack::{Features, LayerSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    #[default]
    Relu,
    Tanh,
    Gelu,
    LeakyRelu,
}

crate::choices!(Activation, "activation" {
    Relu => "relu", "ReLU",
    Tanh => "tanh", "tanh",
    Gelu => "gelu", "GELU",
    LeakyRelu => "leaky-relu", "leaky ReLU",
});

/// Normalisation after each hidden layer. BatchNorm is deliberately absent from the MLP and the
/// CNN: interpolated models need their statistics recomputed at every alpha (method.md section
/// 5). The `stack` has it, for the user's PyTorch models, and `crate::batch_norm` recomputes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Norm {
    #[default]
    None,
    /// Normalises each sample over all features of a layer (channels and pixels for a CNN).
    LayerNorm,
    /// Normalises each sample over groups of channels.
    GroupNorm { groups: usize },
}

/// How the weights are drawn before training (biases always as PyTorch's default, norm
/// parameters as 1 and 0). The Gaussianity claim (method.md) is that trained weights end
/// roughly Gaussian whichever of these they started from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Initializer {
    /// U(-b, b) with b = 1/sqrt(fan_in): PyTorch's default for linear and conv layers.
    #[default]
    Uniform,
    /// N(0, 2/fan_in): He (Kaiming) normal, for ReLU networks.
    Normal,
    /// A random orthogonal matrix (rows or columns orthonormal, whichever are fewer) times the
    /// ReLU gain sqrt(2) (Saxe et al. 2014); conv kernels as [out, in * kh * kw] matrices.
    Orthogonal,
}

crate::choices!(Initializer, "initialisation" {
    Uniform => "uniform", "uniform (PyTorch's default)",
    Normal => "normal", "He normal",
    Orthogonal => "orthogonal", "orthogonal",
});

impl Initializer {
    /// Standard deviation of a weight's initial distribution (for the fixed WSA target).
    fn weight_std(self, spec: &ParamSpec) -> f64 {
        let fan_in = spec.fan_in as f64;
        match self {
            Initializer::Uniform => 1.0 / fan_in.sqrt() / 3f64.sqrt(),
            Initializer::Normal => (2.0 / fan_in).sqrt(),
            // Unit-norm rows (out <= in) give entries of mean square 1/in; unit-norm columns
            // (out > in) 1/out.
            Initializer::Orthogonal => (2.0 / spec.shape[0].max(spec.fan_in) as f64).sqrt(),
        }
    }

    fn weights(self, spec: &ParamSpec, rng: &mut Rng) -> Vec<f32> {
        match self {
            Initializer::Uniform => uniform_fan_in(spec, rng),
            Initializer::Normal => {
                let std = self.weight_std(spec);
                (0..spec.numel()).map(|_| (std * rng.normal()) as f32).collect()
            }
            Initializer::Orthogonal => orthogonal(spec.shape[0], spec.fan_in, 2f64.sqrt(), rng),
        }
    }
}

/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for every value of `spec`.
fn uniform_fan_in(spec: &ParamSpec, rng: &mut Rng) -> Vec<f32> {
    let bound = 1.0 / (spec.fan_in as f64).sqrt();
    (0..spec.numel()).map(|_| rng.uniform_range(-bound, bound) as f32).collect()
}

/// A `rows` x `cols` matrix (row major) with orthonormal rows when rows <= cols, orthonormal
/// columns otherwise, times `gain`: Gram-Schmidt (twice, for stability) over Gaussian vectors,
/// in f64.
fn orthogonal(rows: usize, cols: usize, gain: f64, rng: &mut Rng) -> Vec<f32> {
    let (count, len) = (rows.min(cols), rows.max(cols));
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(count);
    for _ in 0..count {
        let mut v: Vec<f64> = (0..len).map(|_| rng.normal()).collect();
        for _ in 0..2 {
            for u in &basis {
                let dot: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(x, y)| *x -= dot * y);
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        basis.push(v);
    }
    let mut out = vec![0f32; rows * cols];
    for (k, v) in basis.iter().enumerate() {
        for (j, &x) in v.iter().enumerate() {
            // Rows <= cols: vector k is row k. Otherwise it is column k.
            let (r, c) = if rows <= cols { (k, j) } else { (j, k) };
            out[r * cols + c] = (gain * x) as f32;
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ModelConfig {
    Mlp {
        #[serde(default = "default_hidden")]
        hidden: Vec<usize>,
        #[serde(default)]
        activation: Activation,
        #[serde(default)]
        norm: Norm,
        #[serde(default)]
        init: Initializer,
    },
    /// Conv blocks (conv, norm, activation, 2x2 max-pool while the image is at least 2x2),
    /// then one linear classifier.
    Cnn {
        #[serde(default = "default_channels")]
        channels: Vec<usize>,
        #[serde(default = "default_kernel")]
        kernel_size: usize,
        #[serde(default)]
        activation: Activation,
        #[serde(default)]
        norm: Norm,
        #[serde(default)]
        init: Initializer,
    },
    /// Layers in forward order under the user's own module names (a PyTorch model's), e.g. as
    /// [`crate::infer`] reads them from a `state_dict`.
    Stack {
        layers: Vec<LayerSpec>,
        #[serde(default)]
        init: Initializer,
    },
}

fn default_hidden() -> Vec<usize> {
    vec![64, 64]
}
fn default_channels() -> Vec<usize> {
    vec![16, 32]
}
fn default_kernel() -> usize {
    3
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig::mlp(default_hidden())
    }
}

impl ModelConfig {
    /// An MLP with these hidden widths, ReLU, no normalisation, PyTorch's initialisation.
    pub fn mlp(hidden: Vec<usize>) -> Self {
        ModelConfig::Mlp { hidden, activation: Activation::Relu, norm: Norm::None, init: Initializer::Uniform }
    }

    /// A CNN with these channels, 3x3 kernels, ReLU, no normalisation, PyTorch's initialisation.
    pub fn cnn(channels: Vec<usize>) -> Self {
        ModelConfig::Cnn {
            channels,
            kernel_size: 3,
            activation: Activation::Relu,
            norm: Norm::None,
            init: Initializer::Uniform,
        }
    }

    pub fn initializer(&self) -> Initializer {
        match self {
            ModelConfig::Mlp { init, .. } | ModelConfig::Cnn { init, .. } | ModelConfig::Stack { init, .. } => *init,
        }
    }

    /// What the model is, in a few words: "MLP [64, 64]", "CNN [16, 32] (normal init)", "layers
    /// linear 32 → ReLU → linear 3".
    pub fn label(&self) -> String {
        let shape = match self {
            ModelConfig::Mlp { hidden, .. } => format!("MLP {hidden:?}"),
            ModelConfig::Cnn { channels, .. } => format!("CNN {channels:?}"),
            ModelConfig::Stack { layers, .. } => {
                let parts: Vec<String> = layers.iter().filter_map(LayerSpec::short_label).collect();
                format!("layers {}", parts.join(" → "))
            }
        };
        match self.initializer() {
            Initializer::Uniform => shape,
            other => format!("{shape} ({} init)", other.name()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamRole {
    Weight,
    Bias,
    NormWeight,
    NormBias,
    /// BatchNorm's running statistics: kept, saved and permuted with the model, never trained
    /// (the forward detaches them) and never part of a scope; a merged model's are re-estimated
    /// on training batches (`crate::batch_norm`), not interpolated.
    RunningMean,
    RunningVar,
}

/// One parameter: its path, shape and what it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    pub path: String,
    pub shape: Vec<usize>,
    pub role: ParamRole,
    /// The layer it belongs to, e.g. `hidden.0`.
    pub layer: String,
    pub classifier: bool,
    /// Inputs per output unit; sets the initialisation scale.
    pub fan_in: usize,
}

impl ParamSpec {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Standard deviation of the initial distribution under `init`: the initialiser's for
    /// weights, U(-b, b) with b = 1/sqrt(fan_in) for biases (PyTorch's default), zero for norm
    /// parameters (constants).
    pub fn init_std(&self, init: Initializer) -> f64 {
        match self.role {
            ParamRole::Weight => init.weight_std(self),
            ParamRole::Bias => Initializer::Uniform.weight_std(self),
            ParamRole::NormWeight | ParamRole::NormBias | ParamRole::RunningMean | ParamRole::RunningVar => 0.0,
        }
    }
}

/// The architecture: config, input and output sizes, and every parameter in forward order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelLayout {
    pub config: ModelConfig,
    pub sample_shape: Vec<usize>,
    pub num_classes: usize,
    pub params: Vec<ParamSpec>,
}

impl Norm {
    /// Channel groups normalised together (layer norm is one group).
    fn groups(self) -> usize {
        match self {
            Norm::GroupNorm { groups } => groups,
            Norm::None | Norm::LayerNorm => 1,
        }
    }
}

/// Height and width after a block's 2x2 max-pool, which is skipped once the image is 1 wide.
fn pooled((h, w): (usize, usize)) -> (usize, usize) {
    if h >= 2 && w >= 2 { (h / 2, w / 2) } else { (h, w) }
}

fn norm_groups(norm: Norm, channels: usize, field: &str) -> Result<Option<usize>> {
    match norm {
        Norm::None => Ok(None),
        Norm::LayerNorm => Ok(Some(1)),
        Norm::GroupNorm { groups } if groups >= 1 && channels.is_multiple_of(groups) => Ok(Some(groups)),
        Norm::GroupNorm { groups } => {
            Err(WsaError::invalid(field, groups, &format!("group count must divide the layer width {channels}")))
        }
    }
}

impl ModelLayout {
    pub fn new(config: &ModelConfig, sample_shape: &[usize], num_classes: usize) -> Result<Self> {
        if num_classes < 2 {
            return Err(WsaError::invalid("num_classes", num_classes, "need at least 2 classes"));
        }
        let mut params = Vec::new();
        let mut push_layer =
            |layer: String, shape: Vec<usize>, fan_in: usize, classifier: bool, groups: Option<usize>| {
                let out = shape[0];
                params.push(ParamSpec {
                    path: format!("{layer}.weight"),
                    shape,
                    role: ParamRole::Weight,
                    layer: layer.clone(),
                    classifier,
                    fan_in,
                });
                params.push(ParamSpec {
                    path: format!("{layer}.bias"),
                    shape: vec![out],
                    role: ParamRole::Bias,
                    layer: layer.clone(),
                    classifier,
                    fan_in,
                });
                if groups.is_some() {
                    for (name, role) in [("weight", ParamRole::NormWeight), ("bias", ParamRole::NormBias)] {
                        params.push(ParamSpec {
                            path: format!("{layer}.norm.{name}"),
                            shape: vec![out],
                            role,
                            layer: layer.clone(),
                            classifier,
                            fan_in: out,
                        });
                    }
                }
            };
        match config {
            ModelConfig::Mlp { hidden, norm, .. } => {
                if hidden.iter().any(|&w| w == 0 || w > 65_536) {
                    return Err(WsaError::invalid(
                        "model.hidden",
                        format!("{hidden:?}"),
                        "widths must be between 1 and 65536",
                    ));
                }
                let mut fan_in: usize = sample_shape.iter().product();
                for (i, &width) in hidden.iter().enumerate() {
                    let groups = norm_groups(*norm, width, "model.norm.groups")?;
                    push_layer(format!("hidden.{i}"), vec![width, fan_in], fan_in, false, groups);
                    fan_in = width;
                }
                push_layer("classifier".into(), vec![num_classes, fan_in], fan_in, true, None);
            }
            ModelConfig::Cnn { channels, kernel_size, norm, .. } => {
                let [c, h, w] = sample_shape else {
                    return Err(WsaError::invalid(
                        "model",
                        "cnn",
                        &format!(
                            "a CNN needs image samples [channels, height, width], this dataset has shape {sample_shape:?}; use an MLP"
                        ),
                    ));
                };
                if *kernel_size == 0 || kernel_size % 2 == 0 || *kernel_size > 11 {
                    return Err(WsaError::invalid("model.kernel_size", kernel_size, "must be odd, between 1 and 11"));
                }
                if channels.is_empty() || channels.iter().any(|&ch| ch == 0 || ch > 4096) {
                    return Err(WsaError::invalid(
                        "model.channels",
                        format!("{channels:?}"),
                        "need at least one block, each with 1..4096 channels",
                    ));
                }
                let (mut c_in, mut hh, mut ww) = (*c, *h, *w);
                for (i, &c_out) in channels.iter().enumerate() {
                    let groups = norm_groups(*norm, c_out, "model.norm.groups")?;
                    let fan_in = c_in * kernel_size * kernel_size;
                    push_layer(
                        format!("conv.{i}"),
                        vec![c_out, c_in, *kernel_size, *kernel_size],
                        fan_in,
                        false,
                        groups,
                    );
                    c_in = c_out;
                    (hh, ww) = pooled((hh, ww));
                }
                let flat = c_in * hh * ww;
                push_layer("classifier".into(), vec![num_classes, flat], flat, true, None);
            }
            ModelConfig::Stack { layers, .. } => params = stack::plan(layers, sample_shape, num_classes)?.params,
        }
        Ok(Self { config: config.clone(), sample_shape: sample_shape.to_vec(), num_classes, params })
    }

    /// Floating-point operations of one training step per sample: forward multiply-adds count
    /// 2, the backward pass twice the forward. A convolution's weights count once per output
    /// position (same padding, 2x2 pooling after each block, as built above).
    pub fn training_flops_per_sample(&self) -> f64 {
        if let ModelConfig::Stack { layers, .. } = &self.config {
            let macs = stack::plan(layers, &self.sample_shape, self.num_classes).map_or(0, |p| p.macs_per_sample);
            return 6.0 * macs as f64;
        }
        let mut positions = match (&self.config, self.sample_shape.as_slice()) {
            (ModelConfig::Cnn { .. }, [_, h, w]) => (*h, *w),
            _ => (1, 1),
        };
        let mut macs = 0usize;
        for p in self.params.iter().filter(|p| p.role == ParamRole::Weight) {
            let per_position = if p.shape.len() == 4 { positions.0 * positions.1 } else { 1 };
            macs += p.numel() * per_position;
            if p.shape.len() == 4 {
                positions = pooled(positions);
            }
        }
        6.0 * macs as f64
    }

    pub fn num_parameters(&self) -> usize {
        self.params.iter().map(ParamSpec::numel).sum()
    }

    /// What a model file was read as, in one line: "layers linear 32 → ReLU → linear 3 · input
    /// [8] · 3 classes · 387 parameters" (`wsa-lab pair` and the app's Your models tab).
    pub fn summary(&self) -> String {
        format!(
            "{} · input {:?} · {} classes · {} parameters",
            self.config.label(),
            self.sample_shape,
            self.num_classes,
            self.num_parameters()
        )
    }

    pub fn index_of(&self, path: &str) -> Option<usize> {
        self.params.iter().position(|p| p.path == path)
    }

    /// Refuses a pair of layouts that cannot be merged, naming the first differing parameter.
    pub fn check_compatible(&self, other: &ModelLayout) -> Result<()> {
        for (i, mine) in self.params.iter().enumerate() {
            let Some(theirs) = other.params.get(i) else {
                return Err(WsaError::ArchitectureMismatch {
                    path: mine.path.clone(),
                    detail: "missing in the second model".into(),
                });
            };
            if mine.path != theirs.path {
                return Err(WsaError::ArchitectureMismatch {
                    path: mine.path.clone(),
                    detail: format!("the second model has `{}` in its place", theirs.path),
                });
            }
            if mine.shape != theirs.shape {
                return Err(WsaError::ArchitectureMismatch {
                    path: mine.path.clone(),
                    detail: format!("shape {:?} vs {:?}", mine.shape, theirs.shape),
                });
            }
        }
        if let Some(extra) = other.params.get(self.params.len()) {
            return Err(WsaError::ArchitectureMismatch {
                path: extra.path.clone(),
                detail: "present only in the second model".into(),
            });
        }
        Ok(())
    }

    /// Fresh parameters on the host, seeded, drawn as the config's initialiser says.
    pub fn init(self: &Arc<Self>, rng: &mut Rng) -> HostParams {
        let init = self.config.initializer();
        let values = self
            .params
            .iter()
            .map(|spec| match spec.role {
                ParamRole::Weight => init.weights(spec, rng),
                ParamRole::Bias => uniform_fan_in(spec, rng),
                ParamRole::NormWeight => vec![1.0; spec.numel()],
                ParamRole::NormBias | ParamRole::RunningMean => vec![0.0; spec.numel()],
                ParamRole::RunningVar => vec![1.0; spec.numel()],
            })
            .collect();
        HostParams { layout: Arc::clone(self), values }
    }
}

/// Parameters on the host: one flat `Vec<f32>` per path, in layout order.
///
/// Serde, so that the page's worker can post models: each parameter's weights go as one block
/// of little-endian bytes (in JSON, a base64 string), so that they read back bit for bit, NaN
/// included, which JSON numbers could not carry; they read back only when every block fits its
/// parameter's shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostParams {
    #[serde(serialize_with = "shared::serialize")]
    pub layout: Arc<ModelLayout>,
    #[serde(serialize_with = "weight_blocks::serialize")]
    pub values: Vec<Vec<f32>>,
}

impl<'de> Deserialize<'de> for HostParams {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        /// What `HostParams` serialises, before its blocks are checked against the layout.
        #[derive(Deserialize)]
        struct Parts {
            layout: ModelLayout,
            #[serde(deserialize_with = "weight_blocks::deserialize")]
            values: Vec<Vec<f32>>,
        }
        let Parts { layout, values } = Parts::deserialize(deserializer)?;
        if values.len() != layout.params.len() {
            return Err(D::Error::custom(format!(
                "{} weight blocks for a model of {} parameters",
                values.len(),
                layout.params.len()
            )));
        }
        // A damaged shape's product can overflow: checked, so that it is refused, not wrapped.
        let fits = |spec: &ParamSpec, block: &Vec<f32>| {
            spec.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) == Some(block.len())
        };
        if let Some((spec, block)) = layout.params.iter().zip(&values).find(|(spec, block)| !fits(spec, block)) {
            return Err(D::Error::custom(format!(
                "parameter `{}` holds {} weights; its shape {:?} has {}",
                spec.path,
                block.len(),
                spec.shape,
                spec.numel()
            )));
        }
        Ok(HostParams { layout: Arc::new(layout), values })
    }
}

/// Serialises what an `Arc` holds (serde's `rc` feature would do it for every crate of the build).
mod shared {
    use serde::{Serialize, Serializer};
    use std::sync::Arc;

    pub fn serialize<T: Serialize, S: Serializer>(value: &Arc<T>, serializer: S) -> Result<S::Ok, S::Error> {
        value.as_ref().serialize(serializer)
    }
}

/// Weights as blocks of little-endian `f32` bytes: one block per parameter, as bytes where the
/// format has them and as base64 text where it is text (JSON).
mod weight_blocks {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::fmt;

    struct Block<'a>(&'a [f32]);

    impl Serialize for Block<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            // Written in place, a copy at memory speed where the target is little-endian.
            let mut bytes = vec![0; self.0.len() * 4];
            for (to, value) in bytes.chunks_exact_mut(4).zip(self.0) {
                to.copy_from_slice(&value.to_le_bytes());
            }
            if serializer.is_human_readable() {
                serializer.serialize_str(&BASE64.encode(&bytes))
            } else {
                serializer.serialize_bytes(&bytes)
            }
        }
    }

    pub fn serialize<S: Serializer>(values: &[Vec<f32>], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(values.iter().map(|block| Block(block)))
    }

    struct OwnedBlock(Vec<f32>);

    impl<'de> Deserialize<'de> for OwnedBlock {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            if deserializer.is_human_readable() {
                deserializer.deserialize_str(BlockVisitor).map(OwnedBlock)
            } else {
                deserializer.deserialize_bytes(BlockVisitor).map(OwnedBlock)
            }
        }
    }

    struct BlockVisitor;

    impl<'de> Visitor<'de> for BlockVisitor {
        type Value = Vec<f32>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a block of little-endian f32 bytes")
        }

        fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Vec<f32>, E> {
            if !bytes.len().is_multiple_of(4) {
                return Err(E::custom(format!("a weight block of {} bytes, not whole f32s", bytes.len())));
            }
            Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        }

        fn visit_str<E: Error>(self, text: &str) -> Result<Vec<f32>, E> {
            let bytes =
                BASE64.decode(text).map_err(|e| E::custom(format!("a weight block that is not base64: {e}")))?;
            self.visit_bytes(&bytes)
        }

        /// Formats whose byte type is a sequence of numbers.
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f32>, A::Error> {
            let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(byte) = seq.next_element::<u8>()? {
                bytes.push(byte);
            }
            self.visit_bytes(&bytes)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Vec<f32>>, D::Error> {
        Ok(Vec::<OwnedBlock>::deserialize(deserializer)?.into_iter().map(|block| block.0).collect())
    }
}

impl HostParams {
    pub fn to_device(&self, device: &Device) -> Params {
        let tensors =
            self.values.iter().map(|v| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), device)).collect();
        Params { layout: Arc::clone(&self.layout), tensors }
    }

    /// Refuses NaN or infinite weights, naming the parameter.
    pub fn check_finite(&self) -> Result<()> {
        for (spec, values) in self.layout.params.iter().zip(&self.values) {
            let count = values.iter().filter(|v| !v.is_finite()).count();
            if count > 0 {
                return Err(WsaError::NonFiniteWeights { path: spec.path.clone(), count });
            }
        }
        Ok(())
    }

    pub fn get(&self, path: &str) -> Option<&[f32]> {
        self.layout.index_of(path).map(|i| self.values[i].as_slice())
    }

    /// (1 - alpha) self + alpha other on the host, e.g. to inspect or save one merged model.
    pub fn interpolate(&self, other: &HostParams, alpha: f64) -> Result<HostParams> {
        self.layout.check_compatible(&other.layout)?;
        let values = self.values.iter().zip(&other.values).map(|(a, b)| lerp_values(a, b, alpha)).collect();
        Ok(HostParams { layout: Arc::clone(&self.layout), values })
    }
}

/// (1 - alpha) a + alpha b element-wise in f64, rounded to f32: the host twin of
/// [`crate::kernels::lerp`].
pub fn lerp_values(a: &[f32], b: &[f32], alpha: f64) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| ((1.0 - alpha) * f64::from(*x) + alpha * f64::from(*y)) as f32).collect()
}

/// Parameters on a compute device: one flat tensor per path, in layout order.
#[derive(Clone, Debug)]
pub struct Params {
    pub layout: Arc<ModelLayout>,
    pub tensors: Vec<Tensor<1>>,
}

impl Params {
    /// All parameters on the host, in one read.
    pub async fn to_host(&self) -> Result<HostParams> {
        let flat: Vec<Tensor<1>> = self.tensors.to_vec();
        let all = crate::device::read_data(Tensor::cat(flat, 0).into_data_async().await)?
            .try_to_vec::<f32>()
            .map_err(|e| WsaError::Device(format!("{e:?}")))?;
        let mut rest = all.as_slice();
        let mut values = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let (head, tail) = rest.split_at(t.dims()[0].min(rest.len()));
            values.push(head.to_vec());
            rest = tail;
        }
        Ok(HostParams { layout: Arc::clone(&self.layout), values })
    }

    pub fn device(&self) -> Device {
        self.tensors[0].device()
    }

    pub fn logits(&self, x: Tensor<2>) -> Tensor<2> {
        forward(&self.layout, &self.tensors, x)
    }

    /// The predicted class of each of the `rows` samples in `features` (row major).
    pub async fn predict(&self, features: &[f32], rows: usize) -> Result<Vec<u32>> {
        let dim: usize = self.layout.sample_shape.iter().product();
        if features.len() != rows * dim {
            return Err(WsaError::invalid("features", features.len(), &format!("need {rows} rows of {dim} values")));
        }
        let x = Tensor::<2>::from_data(TensorData::new(features.to_vec(), [rows, dim]), &self.device());
        let classes = crate::device::read_data(self.logits(x).argmax(1).into_data_async().await)?.convert::<i64>();
        let classes = classes.try_to_vec::<i64>().map_err(|e| WsaError::Device(format!("{e:?}")))?;
        Ok(classes.into_iter().map(|c| c as u32).collect())
    }
}

fn activate<const D: usize>(x: Tensor<D>, activation: Activation) -> Tensor<D> {
    match activation {
        Activation::Relu => crate::conv::relu(x),
        Activation::Tanh => activation::tanh(x),
        Activation::Gelu => activation::gelu(x),
        Activation::LeakyRelu => activation::leaky_relu(x, 0.01),
    }
}

/// Logits for a batch `x: [batch, features]`, with `params` in layout order. `params` may live
/// on an autodiff device; the forward is then differentiable with respect to them.
pub fn forward(layout: &ModelLayout, params: &[Tensor<1>], x: Tensor<2>) -> Tensor<2> {
    forward_tapped(layout, params, x, Taps::default())
}

/// One batch's per-channel statistics at a BatchNorm's input, over the samples and positions
/// of the batch: what training-mode BatchNorm normalises by.
#[derive(Clone, Debug)]
pub struct BatchMoments {
    pub mean: Tensor<1>,
    /// The biased variance (divided by `count`), as training-mode BatchNorm normalises by.
    pub variance: Tensor<1>,
    /// The values per channel: samples times positions.
    pub count: usize,
}

/// What a [`forward_tapped`] hands out besides the logits.
#[derive(Default)]
pub struct Taps<'a> {
    /// Each hidden layer's output before its activation (after its norm, where it has one) as
    /// `[batch, units, positions]` (positions 1 for a dense layer): what REPAIR measures and
    /// corrects. Layers are counted from 0, the classifier not among them.
    pub hidden: Option<&'a mut dyn FnMut(usize, Tensor<3>)>,
    /// When given, BatchNorm runs in training mode: each BatchNorm layer (counted from 0)
    /// normalises by its batch's own statistics instead of its running ones and hands them here.
    /// What resetting a merged model's running statistics measures (`crate::batch_norm`).
    pub batch_norm: Option<&'a mut dyn FnMut(usize, BatchMoments)>,
}

/// [`forward`], handing out what `taps` asks for.
pub fn forward_tapped(layout: &ModelLayout, params: &[Tensor<1>], x: Tensor<2>, taps: Taps<'_>) -> Tensor<2> {
    let Taps { hidden: mut tap, batch_norm } = taps;
    let [batch, _] = x.dims();
    let mut i = 0;
    // Takes the parameters of the next layer: weight, bias and, with a norm, its gamma and beta.
    let mut next_layer = |with_norm: bool| {
        let spec = &layout.params[i];
        let weight = params[i].clone();
        let bias = params[i + 1].clone();
        let norm = with_norm.then(|| (params[i + 2].clone(), params[i + 3].clone()));
        i += if with_norm { 4 } else { 2 };
        (spec.shape.clone(), weight, bias, norm)
    };
    let linear = |h: Tensor<2>, shape: &[usize], w: Tensor<1>, b: Tensor<1>| {
        let w = w.reshape([shape[0], shape[1]]);
        h.matmul(w.transpose()) + b.reshape([1, shape[0]])
    };
    match &layout.config {
        ModelConfig::Mlp { hidden, activation, norm, .. } => {
            let mut h = x;
            for layer in 0..hidden.len() {
                let (shape, w, b, n) = next_layer(*norm != Norm::None);
                h = linear(h, &shape, w, b);
                let width = shape[0];
                // A norm and ReLU run as one operation, unless a tap wants the norm's output.
                let rectified = n.is_some() && *activation == Activation::Relu && tap.is_none();
                if let Some((gamma, beta)) = n {
                    h = group_norm_then(h.reshape([batch, width, 1]), norm.groups(), gamma, beta, rectified)
                        .reshape([batch, width]);
                }
                if let Some(tap) = tap.as_mut() {
                    tap(layer, h.clone().reshape([batch, width, 1]));
                }
                if !rectified {
                    h = activate(h, *activation);
                }
            }
            let (shape, w, b, _) = next_layer(false);
            linear(h, &shape, w, b)
        }
        ModelConfig::Stack { layers, .. } => {
            // The layout was built from this plan, so it cannot fail here.
            let plan = stack::plan(layers, &layout.sample_shape, layout.num_classes)
                .expect("a stack layout is only built from a valid plan");
            stack::forward(layers, &plan, params, x, Taps { hidden: tap, batch_norm })
        }
        ModelConfig::Cnn { channels, kernel_size, activation, norm, .. } => {
            let [c, hh, ww] = [layout.sample_shape[0], layout.sample_shape[1], layout.sample_shape[2]];
            let mut h = x.reshape([batch, c, hh, ww]);
            let pad = kernel_size / 2;
            for layer in 0..channels.len() {
                let (shape, w, b, n) = next_layer(*norm != Norm::None);
                let w = w.reshape([shape[0], shape[1], shape[2], shape[3]]);
                h = crate::conv::conv(h, w, b, 1, pad);
                if let Some((gamma, beta)) = n {
                    let [bb, cc, y, x] = h.dims();
                    h = group_norm(h.reshape([bb, cc, y * x]), norm.groups(), gamma, beta).reshape([bb, cc, y, x]);
                }
                let [bb, cc, y, x] = h.dims();
                if let Some(tap) = tap.as_mut() {
                    tap(layer, h.clone().reshape([bb, cc, y * x]));
                }
                let pooled = y >= 2 && x >= 2;
                if pooled && *activation == Activation::Relu {
                    // relu(max(window)) = max(relu(window)), and the gradients agree too (the
                    // maximum's when it is positive, else none): pooling first gives the same
                    // numbers with the activation on a quarter of the values.
                    h = activate(crate::conv::max_pool_2x2(h), *activation);
                } else {
                    h = activate(h, *activation);
                    if pooled {
                        h = crate::conv::max_pool_2x2(h);
                    }
                }
            }
            let [bb, cc, y, x] = h.dims();
            let flat = h.reshape([bb, cc * y * x]);
            let (shape, w, b, _) = next_layer(false);
            linear(flat, &shape, w, b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(init: Initializer, hidden: Vec<usize>, inputs: usize) -> Arc<ModelLayout> {
        let config = ModelConfig::Mlp { hidden, activation: Activation::Relu, norm: Norm::None, init };
        Arc::new(ModelLayout::new(&config, &[inputs], 10).expect("layout"))
    }

    #[test]
    fn each_initializer_draws_with_the_spread_it_reports() {
        for init in Initializer::ALL {
            let l = layout(init, vec![256, 700], 500);
            let params = l.init(&mut Rng::new(7));
            // Biases of the 10-unit classifier are too few to estimate a spread from.
            for (spec, values) in l.params.iter().zip(&params.values).filter(|(_, v)| v.len() >= 256) {
                let n = values.len() as f64;
                let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
                let std = (values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n).sqrt();
                let expected = spec.init_std(init);
                let tolerance = if spec.role == ParamRole::Bias { 0.12 } else { 0.03 };
                assert!(
                    (std / expected - 1.0).abs() < tolerance,
                    "{init:?} {}: std {std} vs reported {expected}",
                    spec.path
                );
            }
        }
    }

    /// Models cross serde bit for bit, NaN included (here through JSON, which writes the
    /// weight blocks as base64 text), and weights that do not fit the layout are refused, saying
    /// which parameter.
    #[test]
    fn host_params_cross_serde_unchanged_and_misfits_are_refused() {
        let mut params = layout(Initializer::default(), vec![6], 4).init(&mut Rng::new(3));
        params.values[0][2] = f32::NAN;
        params.values[1][0] = -0.0;
        let json = serde_json::to_string(&params).expect("serialises");
        let back: HostParams = serde_json::from_str(&json).expect("reads back");
        let bits = |p: &HostParams| p.values.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!((bits(&back), &back.layout), (bits(&params), &params.layout));
        let mut short = params.clone();
        short.values[1].pop();
        let error =
            serde_json::from_str::<HostParams>(&serde_json::to_string(&short).expect("json")).expect_err("short");
        assert!(
            error.to_string().contains("parameter `hidden.0.bias` holds 5 weights; its shape [6] has 6"),
            "{error}"
        );
        let mut fewer = params;
        fewer.values.pop();
        let error =
            serde_json::from_str::<HostParams>(&serde_json::to_string(&fewer).expect("json")).expect_err("fewer");
        assert!(error.to_string().contains("3 weight blocks for a model of 4 parameters"), "{error}");
    }

    #[test]
    fn orthogonal_weights_have_orthonormal_rows_or_columns_times_the_gain() {
        let gain2: f64 = 2.0;
        for (rows, cols) in [(8, 20), (20, 8), (12, 12)] {
            let w = orthogonal(rows, cols, gain2.sqrt(), &mut Rng::new(3));
            let (count, by_rows) = if rows <= cols { (rows, true) } else { (cols, false) };
            let get = |k: usize, j: usize| f64::from(if by_rows { w[k * cols + j] } else { w[j * cols + k] });
            let len = rows.max(cols);
            for a in 0..count {
                for b in 0..count {
                    let dot: f64 = (0..len).map(|j| get(a, j) * get(b, j)).sum();
                    let want = if a == b { gain2 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-5, "{rows}x{cols}: <{a},{b}> = {dot}");
                }
            }
        }
    }

    #[test]
    fn the_default_initializer_draws_the_stream_it_always_drew() {
        // Before initialisers were configurable, weights and biases were U(-b, b) drawn in
        // layout order from one stream; seeds keep reproducing the same models.
        let l = layout(Initializer::Uniform, vec![5], 4);
        let params = l.init(&mut Rng::new(11));
        let mut rng = Rng::new(11);
        for (spec, values) in l.params.iter().zip(&params.values) {
            let bound = 1.0 / (spec.fan_in as f64).sqrt();
            let expected: Vec<f32> = (0..spec.numel()).map(|_| rng.uniform_range(-bound, bound) as f32).collect();
            assert_eq!(values, &expected, "{}", spec.path);
        }
    }
}
