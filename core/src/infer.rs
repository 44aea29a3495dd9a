//! A user's PyTorch MLP or CNN read from a safetensors `state_dict` by its names and shapes:
//! the layers of a [`ModelConfig::Stack`] under the model's own module names.
//!
//! What the names and shapes say: which modules there are (`fc1`, `conv2`, `net.3`,
//! `features.0`), which are linear (2-D weight), conv (4-D) or norm layers (1-D weight and bias;
//! BatchNorm also has `running_mean`, `running_var` and `num_batches_tracked`), and the forward
//! order: the modules' names in natural order (`net.2` before `net.10`) when each layer's inputs
//! are the previous one's outputs, else the one order in which they are. A linear layer after a
//! conv reads its flattened output. What they cannot say (the activation, pooling, a conv's
//! stride and padding, the input's height and width, LayerNorm against GroupNorm and its groups)
//! comes from a layout file beside the model, `<model>.layout.json` ([`LayoutHints`],
//! docs/layout-file.md), which may also list the layers outright. Without one, the defaults
//! are PyTorch's (ReLU between layers, stride 1, no padding, no pooling); whatever the defaults
//! do not settle is an error that lists the candidates and the lines to add.

use crate::error::{Result, WsaError};
use crate::experiment::Versioned;
use crate::io::{self, LoadedModel};
use crate::model::{Activation, LayerSpec, ModelConfig, ModelLayout};
use safetensors::tensor::SafeTensors;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a layout file holds: what a model's names and shapes cannot say.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutHints {
    pub version: u32,
    /// One sample's shape, `[channels, height, width]` for a CNN (needed: a conv's weights do
    /// not say the image size) or `[features]`; for an MLP the first layer's inputs by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_shape: Option<Vec<usize>>,
    /// After every linear or conv layer but the last (after its norm).
    #[serde(default)]
    pub activation: Activation,
    /// Stride and padding per conv module (PyTorch's defaults, 1 and 0, for those not listed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conv: BTreeMap<String, ConvHint>,
    /// The kind of each norm module without running statistics (those are BatchNorm).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub norm: BTreeMap<String, NormHint>,
    /// Parameter-free layers (pooling, flatten, activation) after a module's activation, e.g.
    /// `"conv2": [{"type": "max-pool2d", "kernel": 2}]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub after: BTreeMap<String, Vec<LayerSpec>>,
    /// Every layer in forward order, instead of inferring them (the names must be the file's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerSpec>>,
}

impl Versioned for LayoutHints {
    const KIND: &'static str = "layout file";
    const VERSION: u32 = 1;
}

impl Default for LayoutHints {
    fn default() -> Self {
        Self {
            version: Self::VERSION,
            input_shape: None,
            activation: Activation::Relu,
            conv: BTreeMap::new(),
            norm: BTreeMap::new(),
            after: BTreeMap::new(),
            layers: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvHint {
    #[serde(default = "one")]
    pub stride: usize,
    #[serde(default)]
    pub padding: usize,
}

fn one() -> usize {
    1
}

impl Default for ConvHint {
    fn default() -> Self {
        Self { stride: 1, padding: 0 }
    }
}

/// Which norm a module without running statistics is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type", deny_unknown_fields)]
pub enum NormHint {
    LayerNorm,
    GroupNorm { groups: usize },
}

/// Where the layout file of `model` lives: `net.safetensors` -> `net.layout.json`.
pub fn layout_file_for(model: &Path) -> PathBuf {
    model.with_extension("layout.json")
}

/// The layout file beside `model`, if there is one.
pub fn read_hints(model: &Path) -> Result<Option<LayoutHints>> {
    let path = layout_file_for(model);
    if !path.is_file() {
        return Ok(None);
    }
    LayoutHints::read_file(&path).map(Some)
}

/// A PyTorch model file with the layout its names, shapes and layout file (if any) give.
pub fn load_inferred(path: &Path) -> Result<LoadedModel> {
    let bytes = std::fs::read(path).map_err(|e| WsaError::io(path, e))?;
    read_inferred(&bytes, read_hints(path)?.as_ref(), path)
}

/// A model file a user brings: one WSA Lab saved (its layout in its metadata) or a PyTorch
/// state_dict (its layout inferred, with the layout file beside it if there is one: read only
/// then, so a stray layout file never stops a model the lab saved from loading).
pub fn load_user_model(path: &Path) -> Result<LoadedModel> {
    let bytes = std::fs::read(path).map_err(|e| WsaError::io(path, e))?;
    if is_lab_model(&bytes, path)? {
        return Ok(LoadedModel { params: io::model_from_bytes(&bytes, path)?, report: Default::default() });
    }
    read_inferred(&bytes, read_hints(path)?.as_ref(), path)
}

/// [`load_user_model`] of a file already read (`bytes`, called `origin` in messages), with the
/// layout file's `hints` where the user gave one: how the app reads a dropped model.
pub fn read_user_model(bytes: &[u8], hints: Option<&LayoutHints>, origin: &Path) -> Result<LoadedModel> {
    if is_lab_model(bytes, origin)? {
        return Ok(LoadedModel { params: io::model_from_bytes(bytes, origin)?, report: Default::default() });
    }
    read_inferred(bytes, hints, origin)
}

/// A PyTorch state_dict's bytes as the model its names, shapes and `hints` describe.
fn read_inferred(bytes: &[u8], hints: Option<&LayoutHints>, origin: &Path) -> Result<LoadedModel> {
    let layout = infer_layout(bytes, hints, origin)?;
    io::params_from_safetensors(bytes, &Arc::new(layout), origin)
}

/// Whether `bytes` is a model WSA Lab saved (its layout in the metadata); a pickle or a file
/// that is no safetensors is an error that says so.
fn is_lab_model(bytes: &[u8], origin: &Path) -> Result<bool> {
    let header = crate::checkpoint::Header::read(&mut std::io::Cursor::new(bytes), origin)?;
    Ok(header.metadata.contains_key(io::LAYOUT_KEY))
}

/// What a module's tensors say it is.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Linear { inputs: usize, outputs: usize, bias: bool },
    Conv { inputs: usize, channels: usize, kernel: usize, bias: bool },
    Norm { size: usize, batch: bool },
}

#[derive(Clone, Debug, PartialEq)]
struct Module {
    name: String,
    kind: Kind,
}

impl Module {
    /// Outputs of a linear layer, channels of a conv.
    fn outputs(&self) -> usize {
        match self.kind {
            Kind::Linear { outputs, .. } => outputs,
            Kind::Conv { channels, .. } => channels,
            Kind::Norm { size, .. } => size,
        }
    }

    fn inputs(&self) -> usize {
        match self.kind {
            Kind::Linear { inputs, .. } | Kind::Conv { inputs, .. } => inputs,
            Kind::Norm { size, .. } => size,
        }
    }

    /// Whether `next` can follow this layer: a conv takes the previous conv's channels, a
    /// linear layer the previous linear layer's outputs or a whole number of channels' pixels.
    fn feeds(&self, next: &Module) -> bool {
        match (&self.kind, &next.kind) {
            (Kind::Conv { .. }, Kind::Conv { .. }) | (Kind::Linear { .. }, Kind::Linear { .. }) => {
                self.outputs() == next.inputs()
            }
            (Kind::Conv { .. }, Kind::Linear { .. }) => next.inputs().is_multiple_of(self.outputs()),
            _ => false,
        }
    }
}

/// A name as chunks of text and numbers, so that `net.2` sorts before `net.10`.
fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut digits = c.to_string();
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                digits.push(d);
            }
            key.push((std::mem::take(&mut text), digits.parse().unwrap_or(u64::MAX)));
        } else {
            text.push(c);
        }
    }
    key.push((text, 0));
    key
}

/// The number a name ends in (`bn1` -> 1, `features.5` -> 5).
fn trailing_number(name: &str) -> Option<u64> {
    let digits: String = name.chars().rev().take_while(char::is_ascii_digit).collect();
    digits.chars().rev().collect::<String>().parse().ok()
}

/// The module a dotted name belongs to (`features.0` -> `features`, `fc1` -> ``).
fn parent(name: &str) -> &str {
    name.rsplit_once('.').map_or("", |(parent, _)| parent)
}

/// The names and shapes of a file, and what it is being read as.
struct Reading<'a> {
    origin: &'a Path,
    /// Every tensor's shape, by name.
    shapes: BTreeMap<String, Vec<usize>>,
}

impl Reading<'_> {
    fn fail(&self, reason: String) -> WsaError {
        WsaError::UninferableLayout { path: self.origin.to_path_buf(), reason }
    }

    fn layout_file(&self) -> String {
        layout_file_for(self.origin).display().to_string()
    }

    /// The modules in natural order of their names, each with what its tensors say it is.
    fn modules(&self) -> Result<Vec<Module>> {
        let mut leaves: BTreeMap<&str, BTreeMap<&str, &Vec<usize>>> = BTreeMap::new();
        for (name, shape) in &self.shapes {
            let Some((module, leaf)) = name.rsplit_once('.') else {
                return Err(self.fail(format!(
                    "tensor `{name}` has no module name; a state_dict names each tensor `<module>.<weight|bias>`"
                )));
            };
            if !["weight", "bias", "running_mean", "running_var", "num_batches_tracked"].contains(&leaf) {
                return Err(self.fail(format!(
                    "tensor `{name}` is not a weight, a bias or a BatchNorm statistic; only MLPs and CNNs made of linear, conv and norm layers are read"
                )));
            }
            leaves.entry(module).or_default().insert(leaf, shape);
        }
        let mut modules = Vec::new();
        for (name, tensors) in leaves {
            let bias = tensors.get("bias").copied();
            let Some(weight) = tensors.get("weight").copied() else {
                let reason = if tensors.contains_key("running_mean") {
                    format!("`{name}` is a BatchNorm without affine parameters (affine=False), which is not supported")
                } else {
                    format!("`{name}` has a bias but no `{name}.weight`")
                };
                return Err(self.fail(reason));
            };
            let kind = match weight.as_slice() {
                &[outputs, inputs] => Kind::Linear { inputs, outputs, bias: bias.is_some() },
                &[channels, inputs, kh, kw] if kh == kw => {
                    Kind::Conv { inputs, channels, kernel: kh, bias: bias.is_some() }
                }
                [_, _, kh, kw] => {
                    return Err(
                        self.fail(format!("`{name}.weight` has a {kh}x{kw} kernel; only square conv kernels are read"))
                    );
                }
                &[size] => {
                    if bias.is_none() {
                        return Err(self.fail(format!(
                            "`{name}.weight` is a norm without a bias (elementwise_affine without bias), which is not supported"
                        )));
                    }
                    let batch = tensors.contains_key("running_mean");
                    for stat in ["running_mean", "running_var"] {
                        if batch && tensors.get(stat).map(|s| s.as_slice()) != Some(&[size][..]) {
                            return Err(
                                self.fail(format!("`{name}.{stat}` must be a vector of {size}, like `{name}.weight`"))
                            );
                        }
                    }
                    Kind::Norm { size, batch }
                }
                other => {
                    return Err(self.fail(format!(
                        "`{name}.weight` is {}-D ({other:?}); only Linear (2-D), Conv2d (4-D) and 1-D norm weights are read (a 3-D weight is a Conv1d or a LayerNorm over several dimensions)",
                        other.len()
                    )));
                }
            };
            if let Some(bias) = bias {
                let outputs = Module { name: name.to_string(), kind: kind.clone() }.outputs();
                if bias.as_slice() != [outputs] {
                    return Err(self
                        .fail(format!("`{name}.bias` has shape {bias:?} but `{name}.weight` has {outputs} outputs")));
                }
            }
            modules.push(Module { name: name.to_string(), kind });
        }
        modules.sort_by_key(|m| natural_key(&m.name));
        Ok(modules)
    }

    /// The linear and conv layers in forward order: natural order if it chains, else the one
    /// order that does.
    fn order(&self, units: &[Module]) -> Result<Vec<Module>> {
        let chains = |order: &[&Module]| order.windows(2).all(|w| w[0].feeds(w[1]));
        let natural: Vec<&Module> = units.iter().collect();
        if chains(&natural) {
            return Ok(units.to_vec());
        }
        let mut found = Vec::new();
        let mut steps = 0usize;
        let mut path = Vec::new();
        chain_orders(units, &mut vec![false; units.len()], &mut path, &mut found, &mut steps);
        match found.as_slice() {
            [one] => Ok(one.iter().map(|&i| units[i].clone()).collect()),
            [] => {
                let break_at = natural.windows(2).find(|w| !w[0].feeds(w[1])).map(|w| (w[0], w[1]));
                let detail = break_at.map_or(String::new(), |(a, b)| {
                    format!(
                        "`{}.weight` takes {} inputs but `{}` before it in name order gives {}; ",
                        b.name,
                        b.inputs(),
                        a.name,
                        a.outputs()
                    )
                });
                Err(self.fail(format!(
                    "{detail}the linear and conv layers chain in no order; list them in order under \"layers\" in {}",
                    self.layout_file()
                )))
            }
            several => {
                let shown: Vec<String> = several
                    .iter()
                    .take(4)
                    .map(|order| order.iter().map(|&i| units[i].name.as_str()).collect::<Vec<_>>().join(" -> "))
                    .collect();
                Err(self.fail(format!(
                    "the layers chain in {} orders ({}); list them in order under \"layers\" in {}",
                    if several.len() > 4 { "more than 4".to_string() } else { several.len().to_string() },
                    shown.join("; "),
                    self.layout_file()
                )))
            }
        }
    }

    /// The layer each norm follows: the one linear or conv layer of its size; among several,
    /// the one whose name ends in the same number (`bn1` after `conv1`) or, in a Sequential, the
    /// one just before it (`features.1` after `features.0`).
    fn attach_norms(&self, norms: &[Module], order: &[Module], all: &[Module]) -> Result<BTreeMap<String, Module>> {
        let mut attached: BTreeMap<String, Module> = BTreeMap::new();
        for norm in norms {
            let candidates: Vec<&Module> = order.iter().filter(|u| u.outputs() == norm.outputs()).collect();
            let same_number: Vec<&&Module> = candidates
                .iter()
                .filter(|u| {
                    trailing_number(&u.name).is_some() && trailing_number(&u.name) == trailing_number(&norm.name)
                })
                .collect();
            let position = |m: &Module| all.iter().position(|x| x.name == m.name);
            let just_before = all[..position(norm).unwrap_or(0)]
                .iter()
                .rev()
                .find(|m| !matches!(m.kind, Kind::Norm { .. }))
                .filter(|m| parent(&m.name) == parent(&norm.name) && m.outputs() == norm.outputs());
            let owner = match (candidates.as_slice(), same_number.as_slice(), just_before) {
                ([one], _, _) => (*one).clone(),
                (_, [one], _) => (**one).clone(),
                (_, _, Some(before)) => before.clone(),
                ([], _, _) => {
                    return Err(self.fail(format!(
                        "norm `{}` normalises {} units but no linear or conv layer has {} outputs",
                        norm.name,
                        norm.outputs(),
                        norm.outputs()
                    )));
                }
                (several, _, _) => {
                    let names: Vec<&str> = several.iter().map(|m| m.name.as_str()).collect();
                    return Err(self.fail(format!(
                        "norm `{}` could follow any of {}; list the layers in order under \"layers\" in {}",
                        norm.name,
                        names.join(", "),
                        self.layout_file()
                    )));
                }
            };
            if let Some(other) = attached.insert(owner.name.clone(), norm.clone()) {
                return Err(self.fail(format!(
                    "norms `{}` and `{}` both follow `{}`; list the layers in order under \"layers\" in {}",
                    other.name,
                    norm.name,
                    owner.name,
                    self.layout_file()
                )));
            }
        }
        Ok(attached)
    }

    /// The stack's layers for `order` with `norms` attached, as `hints` say.
    fn layers(
        &self,
        order: &[Module],
        norms: &BTreeMap<String, Module>,
        hints: &LayoutHints,
    ) -> Result<Vec<LayerSpec>> {
        let mut layers = Vec::new();
        let mut image = false;
        for (k, unit) in order.iter().enumerate() {
            match unit.kind {
                Kind::Linear { outputs, bias, .. } => {
                    if image {
                        layers.push(LayerSpec::Flatten);
                        image = false;
                    }
                    layers.push(LayerSpec::Linear { name: unit.name.clone(), outputs, bias });
                }
                Kind::Conv { channels, kernel, bias, .. } => {
                    let ConvHint { stride, padding } = hints.conv.get(&unit.name).copied().unwrap_or_default();
                    layers.push(LayerSpec::Conv2d { name: unit.name.clone(), channels, kernel, stride, padding, bias });
                    image = true;
                }
                Kind::Norm { .. } => unreachable!("norms are attached, not ordered"),
            }
            if let Some(norm) = norms.get(&unit.name) {
                layers.push(self.norm_layer(norm, unit, hints)?);
            }
            if k + 1 < order.len() {
                layers.push(LayerSpec::Activation { function: hints.activation });
            }
            for extra in hints.after.get(&unit.name).into_iter().flatten() {
                match extra {
                    LayerSpec::MaxPool2d { .. } | LayerSpec::AvgPool2d { .. } | LayerSpec::Activation { .. } => {}
                    LayerSpec::Flatten => image = false,
                    other => {
                        return Err(self.fail(format!(
                            "\"after\" of `{}` in {} lists {other:?}; only pooling, flatten and activation layers go there",
                            unit.name,
                            self.layout_file()
                        )));
                    }
                }
                layers.push(extra.clone());
            }
        }
        Ok(layers)
    }

    fn norm_layer(&self, norm: &Module, owner: &Module, hints: &LayoutHints) -> Result<LayerSpec> {
        let name = norm.name.clone();
        let Kind::Norm { size, batch } = norm.kind else { unreachable!("only norms are attached") };
        if batch {
            return Ok(LayerSpec::BatchNorm { name });
        }
        match hints.norm.get(&name) {
            Some(NormHint::LayerNorm) => Ok(LayerSpec::LayerNorm { name }),
            Some(NormHint::GroupNorm { groups }) => Ok(LayerSpec::GroupNorm { name, groups: *groups }),
            None => {
                let divisors: Vec<String> =
                    (1..=size).filter(|g| size.is_multiple_of(*g)).map(|g| g.to_string()).collect();
                let layer_norm = if matches!(owner.kind, Kind::Linear { .. }) {
                    " or {\"type\": \"layer-norm\"}".to_string()
                } else {
                    String::new()
                };
                Err(self.fail(format!(
                    "`{name}.weight` ({size} values, after `{}`) is a LayerNorm or a GroupNorm, which names and shapes do not tell apart; add to {}: \"norm\": {{\"{name}\": {{\"type\": \"group-norm\", \"groups\": G}}}} with G one of {}{layer_norm}",
                    owner.name,
                    self.layout_file(),
                    divisors.join(", ")
                )))
            }
        }
    }

    /// The layout of `layers` on samples of `sample_shape`, checked against every tensor of the
    /// file: `Ok(Err(misfit))` when these settings give a tensor another shape (a candidate that
    /// does not fit), `Err` when the layers and the file disagree whatever the settings.
    fn fit(&self, layers: &[LayerSpec], sample_shape: &[usize]) -> Result<std::result::Result<ModelLayout, Misfit>> {
        let Some(LayerSpec::Linear { outputs, .. }) = layers.last() else {
            return Err(
                self.fail("the model must end in a linear layer (the classifier); it ends in a conv or a norm".into())
            );
        };
        let config = ModelConfig::Stack { layers: layers.to_vec(), init: Default::default() };
        let layout = match ModelLayout::new(&config, sample_shape, *outputs) {
            Ok(layout) => layout,
            Err(e) => return Ok(Err(Misfit { tensor: None, detail: e.to_string() })),
        };
        for spec in &layout.params {
            match self.shapes.get(&spec.path) {
                None => {
                    return Err(self.fail(format!(
                        "the layers of {} need `{}`, which the file does not have",
                        self.layout_file(),
                        spec.path
                    )));
                }
                Some(shape) if *shape != spec.shape => {
                    return Ok(Err(Misfit {
                        tensor: Some(spec.path.clone()),
                        detail: format!("shape {shape:?} in the file, {:?} with these settings", spec.shape),
                    }));
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = self
            .shapes
            .keys()
            .find(|name| !name.ends_with(".num_batches_tracked") && layout.params.iter().all(|p| &p.path != *name))
        {
            return Err(self.fail(format!("tensor `{extra}` belongs to no layer of {}", self.layout_file())));
        }
        Ok(Ok(layout))
    }
}

/// Why a candidate layout does not fit the file.
struct Misfit {
    tensor: Option<String>,
    detail: String,
}

/// Every order of `units` in which each feeds the next (depth first, at most a few found and a
/// bounded number of steps, enough to tell one order from several).
fn chain_orders(
    units: &[Module],
    used: &mut Vec<bool>,
    path: &mut Vec<usize>,
    found: &mut Vec<Vec<usize>>,
    steps: &mut usize,
) {
    if found.len() > 4 || *steps > 100_000 {
        return;
    }
    *steps += 1;
    if path.len() == units.len() {
        found.push(path.clone());
        return;
    }
    for i in 0..units.len() {
        if used[i] || path.last().is_some_and(|&last| !units[last].feeds(&units[i])) {
            continue;
        }
        used[i] = true;
        path.push(i);
        chain_orders(units, used, path, found, steps);
        path.pop();
        used[i] = false;
    }
}

/// The layout of the PyTorch model in `bytes` (a safetensors file; `origin` names it in
/// errors), from its names and shapes and `hints` (its layout file).
pub fn infer_layout(bytes: &[u8], hints: Option<&LayoutHints>, origin: &Path) -> Result<ModelLayout> {
    if crate::checkpoint::header::is_pickle(bytes) {
        return Err(WsaError::CorruptModel {
            path: origin.to_path_buf(),
            reason: crate::checkpoint::header::pickle_advice(origin),
        });
    }
    let file = SafeTensors::deserialize(bytes).map_err(|e| WsaError::CorruptModel {
        path: origin.to_path_buf(),
        reason: format!("not a valid safetensors file ({e})"),
    })?;
    let shapes = file.tensors().into_iter().map(|(name, view)| (name, view.shape().to_vec())).collect();
    let reading = Reading { origin, shapes };
    let default = LayoutHints::default();
    let hints = hints.unwrap_or(&default);
    let modules = reading.modules()?;
    // Each setting must name a module of its kind: a typo would otherwise be ignored.
    let kind_of = |name: &String| modules.iter().find(|m| &m.name == name).map(|m| &m.kind);
    let settings = [
        ("conv", hints.conv.keys().collect::<Vec<_>>(), "a conv layer"),
        ("norm", hints.norm.keys().collect(), "a norm layer without running statistics"),
        ("after", hints.after.keys().collect(), "a linear or conv layer"),
    ];
    let misnamed = settings.into_iter().find_map(|(field, names, what)| {
        let fits = |kind: &Kind| match field {
            "conv" => matches!(kind, Kind::Conv { .. }),
            "norm" => matches!(kind, Kind::Norm { batch: false, .. }),
            _ => !matches!(kind, Kind::Norm { .. }),
        };
        names.into_iter().find(|name| !kind_of(name).is_some_and(fits)).map(|name| (field, name, what))
    });
    if let Some((field, name, what)) = misnamed {
        return Err(reading.fail(format!(
            "\"{field}\" in {} names `{name}`, which is not {what} of the file",
            reading.layout_file()
        )));
    }
    let (norms, units): (Vec<Module>, Vec<Module>) =
        modules.iter().cloned().partition(|m| matches!(m.kind, Kind::Norm { .. }));
    if units.is_empty() {
        return Err(reading.fail("it has no linear or conv layer".into()));
    }
    let layers = match &hints.layers {
        Some(layers) => layers.clone(),
        None => {
            let order = reading.order(&units)?;
            let attached = reading.attach_norms(&norms, &order, &modules)?;
            reading.layers(&order, &attached, hints)?
        }
    };
    let first = LayerSpec::unrolled(&layers).into_iter().find(|l| l.has_units()).and_then(LayerSpec::name);
    let first = units.iter().find(|u| Some(u.name.as_str()) == first).unwrap_or(&units[0]);
    let inferred = hints.layers.is_none();
    let sample_shape = match (&hints.input_shape, &first.kind) {
        (Some(shape), _) => shape.clone(),
        (None, Kind::Linear { inputs, .. }) => vec![*inputs],
        (None, _) => {
            let fits = candidates(&reading, &layers, first, None, inferred);
            let fix = if fits.is_empty() {
                "\"input_shape\": [channels, height, width]".to_string()
            } else {
                format!("one of {}", fits.join("; "))
            };
            return Err(reading.fail(format!(
                "`{}.weight` takes images of {} channel(s) but their height and width are not in the file; add to {}: {fix}",
                first.name,
                first.inputs(),
                reading.layout_file()
            )));
        }
    };
    match reading.fit(&layers, &sample_shape)? {
        Ok(layout) => Ok(layout),
        Err(misfit) => {
            let tensor = misfit.tensor.map_or(String::new(), |t| format!("`{t}` has "));
            let fits = candidates(&reading, &layers, first, Some(&sample_shape), inferred);
            let fix = if fits.is_empty() {
                "check its input_shape, conv strides and paddings and pooling, or list the layers under \"layers\""
                    .to_string()
            } else {
                format!("settings that fit: {}", fits.join("; "))
            };
            Err(reading.fail(format!(
                "{tensor}{} (input {sample_shape:?}); in the layout file {}, {fix}",
                misfit.detail,
                reading.layout_file()
            )))
        }
    }
}

/// Layout-file settings with which `layers` fit the file: square input shapes (1..=512 a side,
/// `first`'s channels), with the layers as they are and, where the layers were inferred, with
/// a 2x2 max-pool before the flatten (PyTorch's MNIST example has one there); `tried` left out.
fn candidates(
    reading: &Reading<'_>,
    layers: &[LayerSpec],
    first: &Module,
    tried: Option<&[usize]>,
    inferred: bool,
) -> Vec<String> {
    if !matches!(first.kind, Kind::Conv { .. }) {
        return Vec::new();
    }
    let mut variants = vec![(layers.to_vec(), String::new())];
    let flatten = layers.iter().position(|l| *l == LayerSpec::Flatten);
    if let Some(at) = flatten.filter(|&at| inferred && at > 0)
        && !matches!(layers[at - 1], LayerSpec::MaxPool2d { .. } | LayerSpec::AvgPool2d { .. })
        && let Some(last_conv) = layers[..at].iter().rev().find(|l| l.has_units()).and_then(LayerSpec::name)
    {
        let mut pooled = layers.to_vec();
        pooled.insert(at, LayerSpec::MaxPool2d { kernel: 2, stride: None });
        let note = format!(" with \"after\": {{\"{last_conv}\": [{{\"type\": \"max-pool2d\", \"kernel\": 2}}]}}");
        variants.push((pooled, note));
    }
    let mut found = Vec::new();
    for (layers, note) in &variants {
        let fitting = (1..=512)
            .map(|side| vec![first.inputs(), side, side])
            .filter(|shape| !note.is_empty() || Some(shape.as_slice()) != tried)
            .filter(|shape| matches!(reading.fit(layers, shape), Ok(Ok(_))))
            .take(3);
        found.extend(fitting.map(|shape| format!("\"input_shape\": {shape:?}{note}")));
    }
    found
}
