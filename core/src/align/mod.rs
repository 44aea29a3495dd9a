//! Aligning model B to model A before merging (method.md section 5): permutation alignment by
//! weight matching (Ainsworth et al., "Git Re-Basin", ICLR 2023) and, as a baseline that is
//! *not* WSA, post-hoc rescaling of every layer to a fused scope.
//!
//! Why permutations: the hidden units (MLP) and channels (CNN) of a network can be reordered,
//! moving their incoming and outgoing weights with them, without changing its function. Two
//! models trained from different random starts usually differ by such a reordering as much as by
//! anything else, and averaging unmatched units is what makes their straight path climb. A scope
//! is invariant under permutation, so WSA cannot touch this; weight matching can.

pub mod lap;

use crate::cancel::Cancel;
use crate::error::{Result, WsaError};
use crate::model::{HostParams, LayerSpec, ModelConfig, ModelLayout, Norm, ParamRole};
use crate::rng::Rng;
use crate::scope::{self, FusionRule, Scope};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One parameter seen as `[outer, units, inner]` (row major), where a permutation reorders the
/// middle axis: a linear weight's rows (`[1, out, in]`) or columns (`[out, in, 1]`), a conv
/// weight's output (`[1, out, in*k*k]`) or input channels (`[out, in, k*k]`), a bias, or the
/// classifier's flattened CNN features, which move in blocks of one channel's pixels
/// (`[classes, channels, height*width]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitAxis {
    pub param: usize,
    pub outer: usize,
    pub units: usize,
    pub inner: usize,
}

/// The units of one hidden layer (MLP) or conv block (CNN), which one permutation reorders
/// together with everything attached to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermutationGroup {
    /// The layer whose outputs are permuted, e.g. `hidden.0` or `conv.1` (of a residual stream,
    /// the first layer that writes into it).
    pub layer: String,
    pub size: usize,
    /// Group normalisation splits the units into this many contiguous blocks, each normalised on
    /// its own: a permutation keeps the function only if it maps whole blocks onto blocks. One
    /// block (no norm, layer norm) allows any permutation.
    pub blocks: usize,
    pub axes: Vec<UnitAxis>,
}

/// Every permutation symmetry of a layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermutationSpec {
    pub groups: Vec<PermutationGroup>,
}

/// `perm[j]` is the unit of B that lands at position j (matched with A's unit j).
pub type Permutation = Vec<usize>;

impl PermutationSpec {
    /// Derived from the layout: one group per set of units that layers write and others read
    /// (see [`Stream`]): the writers' weight rows and every other parameter of theirs (bias,
    /// norm parameters, BatchNorm's running statistics), then the readers' input columns (in
    /// blocks of a channel's pixels where a linear layer reads flattened conv features). The
    /// network's inputs and the classifier's outputs are not permutable.
    pub fn new(layout: &ModelLayout) -> Result<Self> {
        let weight_of = |layer: &str| {
            layout.params.iter().position(|p| p.layer == layer && p.role == ParamRole::Weight).ok_or_else(|| {
                WsaError::ArchitectureMismatch {
                    path: format!("{layer}.weight"),
                    detail: "expected by the layout's permutation symmetry but missing".into(),
                }
            })
        };
        let mut groups = Vec::new();
        for stream in streams(layout) {
            let Some(&first) = stream.writers.first() else { continue };
            let units = layout.params[weight_of(first)?].shape[0];
            let mut axes = Vec::new();
            for &layer in &stream.writers {
                let weight = weight_of(layer)?;
                let shape = &layout.params[weight].shape;
                if shape[0] != units {
                    return Err(WsaError::ArchitectureMismatch {
                        path: layout.params[weight].path.clone(),
                        detail: format!("{} outputs added to the {units} of `{first}`", shape[0]),
                    });
                }
                let per_unit = shape[1..].iter().product::<usize>();
                axes.push(UnitAxis { param: weight, outer: 1, units, inner: per_unit });
                for (param, spec) in layout.params.iter().enumerate() {
                    if spec.layer == layer && spec.role != ParamRole::Weight {
                        axes.push(UnitAxis { param, outer: 1, units, inner: spec.numel() / units });
                    }
                }
            }
            for &next in &stream.readers {
                let next_weight = weight_of(next)?;
                let next_shape = &layout.params[next_weight].shape;
                let next_inputs = next_shape[1..].iter().product::<usize>();
                if !next_inputs.is_multiple_of(units) {
                    return Err(WsaError::ArchitectureMismatch {
                        path: layout.params[next_weight].path.clone(),
                        detail: format!(
                            "{next_inputs} inputs per unit cannot be split over {units} units of `{first}`"
                        ),
                    });
                }
                axes.push(UnitAxis { param: next_weight, outer: next_shape[0], units, inner: next_inputs / units });
            }
            groups.push(PermutationGroup {
                layer: first.to_string(),
                size: units,
                blocks: stream_blocks(layout, &stream.writers)?,
                axes,
            });
        }
        Ok(Self { groups })
    }

    pub fn identity(&self) -> Vec<Permutation> {
        self.groups.iter().map(|g| (0..g.size).collect()).collect()
    }
}

/// Units that one permutation reorders: the layers that write them (a layer's outputs; in a
/// residual stream, every layer whose output is added into it) and the layers that read them
/// (the next layer; for a stream, each layer the stream reaches, such as a block's first conv
/// and the next stage's conv). A residual block's inner layers make streams of their own.
#[derive(Debug, Default, PartialEq)]
struct Stream<'a> {
    writers: Vec<&'a str>,
    readers: Vec<&'a str>,
}

/// A layout's streams in the order of their first writers; the network's inputs (which no layer
/// writes, and any residual stream added to them) are left out.
fn streams(layout: &ModelLayout) -> Vec<Stream<'_>> {
    match &layout.config {
        ModelConfig::Stack { layers, .. } => {
            let mut walk = StreamWalk { streams: vec![Stream::default()], current: 0 };
            walk.layers(layers, true);
            // The first stream is the inputs', with whatever was added to them.
            walk.streams.into_iter().skip(1).filter(|s| !s.writers.is_empty()).collect()
        }
        ModelConfig::Mlp { .. } | ModelConfig::Cnn { .. } => {
            // One layer after another: each layer's outputs are the next one's inputs.
            let mut layers: Vec<&str> = Vec::new();
            for p in &layout.params {
                if layers.last() != Some(&p.layer.as_str()) {
                    layers.push(&p.layer);
                }
            }
            layers.windows(2).map(|pair| Stream { writers: vec![pair[0]], readers: vec![pair[1]] }).collect()
        }
    }
}

/// Following a stack's layers to find its streams: `current` is the stream that reaches the
/// layer at hand.
struct StreamWalk<'a> {
    streams: Vec<Stream<'a>>,
    current: usize,
}

impl<'a> StreamWalk<'a> {
    fn layers(&mut self, layers: &'a [LayerSpec], top: bool) {
        for (i, layer) in layers.iter().enumerate() {
            match layer {
                LayerSpec::Linear { name, .. } | LayerSpec::Conv2d { name, .. } => {
                    self.streams[self.current].readers.push(name);
                    let classifier = top && i + 1 == layers.len();
                    if !classifier {
                        self.streams.push(Stream { writers: vec![name], readers: Vec::new() });
                        self.current = self.streams.len() - 1;
                    }
                }
                LayerSpec::Residual { layers } => {
                    let entry = self.current;
                    self.layers(layers, false);
                    // What the block makes is added to what reached it: one stream.
                    let exit = std::mem::replace(&mut self.current, entry);
                    if exit != entry {
                        let Stream { writers, readers } = std::mem::take(&mut self.streams[exit]);
                        self.streams[entry].writers.extend(writers);
                        self.streams[entry].readers.extend(readers);
                    }
                }
                // Pooling, flattening, activations and norms keep the units where they are.
                _ => {}
            }
        }
    }
}

/// The blocks a layer's group normalisation splits its units into (1 without one).
fn norm_blocks(layout: &ModelLayout, layer: &str) -> usize {
    match &layout.config {
        ModelConfig::Mlp { norm: Norm::GroupNorm { groups }, .. }
        | ModelConfig::Cnn { norm: Norm::GroupNorm { groups }, .. } => *groups,
        ModelConfig::Mlp { .. } | ModelConfig::Cnn { .. } => 1,
        ModelConfig::Stack { layers, .. } => {
            // A norm follows the layer it normalises (within a residual block too).
            let layers = LayerSpec::unrolled(layers);
            let position = layers.iter().position(|l| l.has_units() && l.name() == Some(layer));
            match position.and_then(|i| layers.get(i + 1)) {
                Some(LayerSpec::GroupNorm { groups, .. }) => *groups,
                _ => 1,
            }
        }
    }
}

/// The blocks of a stream's units: its writers' group normalisation's (any permutation fits a
/// writer without one). Writers that split the stream differently are refused: no single block
/// structure would keep them all.
fn stream_blocks(layout: &ModelLayout, writers: &[&str]) -> Result<usize> {
    let mut found: Option<(usize, &str)> = None;
    for &writer in writers {
        let blocks = norm_blocks(layout, writer);
        match found {
            _ if blocks <= 1 => {}
            None => found = Some((blocks, writer)),
            Some((other, by)) if other != blocks => {
                return Err(WsaError::invalid(
                    "model.layers",
                    format!("`{by}` and `{writer}`"),
                    &format!(
                        "these layers add into one residual stream but their GroupNorms have {other} and {blocks} groups; permuting the stream needs one grouping of its channels: give their GroupNorms the same number of groups"
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(found.map_or(1, |(blocks, _)| blocks))
}

/// `params` with every group's units reordered by `perms` (one per group of `spec`).
pub fn permute(params: &HostParams, spec: &PermutationSpec, perms: &[Permutation]) -> HostParams {
    let mut values = params.values.clone();
    for (group, perm) in spec.groups.iter().zip(perms) {
        for axis in &group.axes {
            values[axis.param] = reorder(&values[axis.param], axis, perm);
        }
    }
    HostParams { layout: Arc::clone(&params.layout), values }
}

/// new[o, j, i] = old[o, perm[j], i].
fn reorder(values: &[f32], axis: &UnitAxis, perm: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(values.len());
    for o in 0..axis.outer {
        let base = o * axis.units * axis.inner;
        if axis.inner == 1 {
            // A weight's columns: one value per unit, gathered without a slice copy each.
            out.extend(perm.iter().map(|&from| values[base + from]));
            continue;
        }
        for &from in perm {
            let start = base + from * axis.inner;
            out.extend_from_slice(&values[start..start + axis.inner]);
        }
    }
    out
}

/// The rows of `values` per unit of `axis`: unit j's row is every `[o, j, :]`, concatenated.
fn unit_rows(values: &[f32], axis: &UnitAxis, rows: &mut [Vec<f32>]) {
    for o in 0..axis.outer {
        let base = o * axis.units * axis.inner;
        for (j, row) in rows.iter_mut().enumerate() {
            let start = base + j * axis.inner;
            row.extend_from_slice(&values[start..start + axis.inner]);
        }
    }
}

/// Dot product in f32 with eight independent partial sums, which the compiler turns into SIMD
/// and which sum in the same order on every platform (for the objective).
fn dot(x: &[f32], y: &[f32]) -> f64 {
    let (xc, xr) = x.as_chunks::<8>();
    let (yc, yr) = y.as_chunks::<8>();
    let mut lanes = [0.0f32; 8];
    for (a, b) in xc.iter().zip(yc) {
        for ((lane, p), q) in lanes.iter_mut().zip(a).zip(b) {
            *lane += p * q;
        }
    }
    let tail: f32 = xr.iter().zip(yr).map(|(a, b)| a * b).sum();
    lanes.iter().map(|&l| f64::from(l)).sum::<f64>() + f64::from(tail)
}

/// score[j * n + k] = <A's unit j, B's unit k> over every parameter the group touches, with B
/// already reordered by the other groups: one matrix product of the units' rows on the CPU
/// backend (SIMD on every core natively, SIMD128 in a browser), which is most of the time
/// weight matching takes.
///
/// Weight matching asks for this matrix once per step, and most of it does not change between
/// steps: A never moves, and a parameter no other group reorders (the first layer's weights, a
/// bias, the classifier's input columns of the last group) looks the same to this group on
/// every step. So that part of the product is computed once, and each step multiplies only the
/// rows of the parameters another group reorders, against A's rows for them built once.
struct GroupScores {
    n: usize,
    /// The part of the score from the axes no other group reorders (zeros if none).
    fixed: Vec<f64>,
    /// The group's axes that other groups also reorder, each with those groups' axes on the
    /// same parameter (group index, axis), to build B's rows for it on every step.
    moving: Vec<(UnitAxis, Vec<(usize, UnitAxis)>)>,
    /// A's rows over the moving axes, `[n, len]`; None when there are none.
    a_moving: Option<Tensor<2>>,
    /// The other groups whose permutations change this score matrix.
    depends_on: Vec<usize>,
}

impl GroupScores {
    async fn new(a: &HostParams, b: &HostParams, spec: &PermutationSpec, g: usize) -> Result<Self> {
        let group = &spec.groups[g];
        let n = group.size;
        let (mut fixed_axes, mut moving) = (Vec::new(), Vec::new());
        for axis in &group.axes {
            let others: Vec<(usize, UnitAxis)> = spec
                .groups
                .iter()
                .enumerate()
                .filter(|&(h, _)| h != g)
                .flat_map(|(h, other)| other.axes.iter().filter(|o| o.param == axis.param).map(move |o| (h, o.clone())))
                .collect();
            if others.is_empty() {
                fixed_axes.push(axis);
            } else {
                moving.push((axis.clone(), others));
            }
        }
        let fixed = if fixed_axes.is_empty() {
            vec![0.0; n * n]
        } else {
            let rows = |p: &HostParams| {
                let mut rows = vec![Vec::new(); n];
                for axis in &fixed_axes {
                    unit_rows(&p.values[axis.param], axis, &mut rows);
                }
                rows
            };
            product(rows(a), rows(b)).await?
        };
        let a_moving = if moving.is_empty() {
            None
        } else {
            let mut rows = vec![Vec::new(); n];
            for (axis, _) in &moving {
                unit_rows(&a.values[axis.param], axis, &mut rows);
            }
            Some(matrix(rows))
        };
        let mut depends_on: Vec<usize> = moving.iter().flat_map(|(_, others)| others.iter().map(|&(h, _)| h)).collect();
        depends_on.sort_unstable();
        depends_on.dedup();
        Ok(Self { n, fixed, moving, a_moving, depends_on })
    }

    /// The group's score matrix with the other groups at `perms`.
    async fn score(&self, b: &HostParams, perms: &[Permutation]) -> Result<Vec<f64>> {
        let Some(a_moving) = &self.a_moving else { return Ok(self.fixed.clone()) };
        let mut rows = vec![Vec::new(); self.n];
        for (axis, others) in &self.moving {
            // Only this parameter of B, reordered by the other groups (different axes of it,
            // so their order does not matter).
            let mut values = std::borrow::Cow::Borrowed(&b.values[axis.param][..]);
            for (h, other) in others {
                values = std::borrow::Cow::Owned(reorder(&values, other, &perms[*h]));
            }
            unit_rows(&values, axis, &mut rows);
        }
        let moving =
            crate::device::read_f64(a_moving.clone().matmul(matrix(rows).transpose()).reshape([self.n * self.n]))
                .await?;
        Ok(self.fixed.iter().zip(moving).map(|(f, m)| f + m).collect())
    }
}

/// Units' rows (all of one length) as one `[units, len]` matrix on the CPU backend.
fn matrix(rows: Vec<Vec<f32>>) -> Tensor<2> {
    let (n, len) = (rows.len(), rows.first().map_or(0, Vec::len));
    Tensor::<2>::from_data(TensorData::new(rows.concat(), [n, len]), &crate::device::cpu().device)
}

/// score[j * n + k] = <rows_a[j], rows_b[k]>.
async fn product(rows_a: Vec<Vec<f32>>, rows_b: Vec<Vec<f32>>) -> Result<Vec<f64>> {
    let n = rows_a.len();
    crate::device::read_f64(matrix(rows_a).matmul(matrix(rows_b).transpose()).reshape([n * n])).await
}

/// The best permutation for `score` (n x n) that maps whole blocks onto blocks: the best
/// matching within every pair of blocks, then the best assignment of blocks to blocks by those
/// matchings' totals. With one block, one assignment problem.
fn best_permutation(score: &[f64], n: usize, blocks: usize) -> Result<Permutation> {
    if blocks <= 1 {
        return lap::maximise(score, n, n);
    }
    let s = n / blocks;
    let mut inner = Vec::with_capacity(blocks * blocks);
    let mut block_score = Vec::with_capacity(blocks * blocks);
    for ba in 0..blocks {
        for bb in 0..blocks {
            let sub: Vec<f64> = (0..s * s).map(|k| score[(ba * s + k / s) * n + bb * s + k % s]).collect();
            let assignment = lap::maximise(&sub, s, s)?;
            block_score.push(lap::total(&sub, s, &assignment));
            inner.push(assignment);
        }
    }
    let outer = lap::maximise(&block_score, blocks, blocks)?;
    let mut perm = Vec::with_capacity(n);
    for (ba, &bb) in outer.iter().enumerate() {
        perm.extend(inner[ba * blocks + bb].iter().map(|&k| bb * s + k));
    }
    Ok(perm)
}

/// sum over every parameter of <A, B>: what weight matching maximises.
fn objective(a: &HostParams, b: &HostParams) -> f64 {
    a.values.iter().zip(&b.values).map(|(x, y)| dot(x, y)).sum()
}

/// Weight matching's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WeightMatchingConfig {
    /// Full sweeps over the permutations at most; it stops earlier once a sweep improves nothing.
    pub max_sweeps: usize,
}

impl Default for WeightMatchingConfig {
    fn default() -> Self {
        Self { max_sweeps: 100 }
    }
}

impl WeightMatchingConfig {
    pub fn validate(&self) -> Result<()> {
        if !(1..=10_000).contains(&self.max_sweeps) {
            return Err(WsaError::invalid(
                "weight_matching.max_sweeps",
                self.max_sweeps,
                "must be between 1 and 10000",
            ));
        }
        Ok(())
    }
}

/// What one permutation did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PermutationReport {
    pub layer: String,
    pub size: usize,
    /// Units of B that moved to another position.
    pub moved: usize,
}

/// The outcome of weight matching.
#[derive(Clone, Debug, PartialEq)]
pub struct Matching {
    pub perms: Vec<Permutation>,
    /// Sweeps run (the last one improved nothing, unless `max_sweeps` stopped it).
    pub sweeps: usize,
    /// sum <A, P(B)> before the first step and after every step: never decreasing.
    pub objective: Vec<f64>,
    pub permutations: Vec<PermutationReport>,
}

/// Weight matching scores a group linearly: each parameter it touches is compared with B's
/// reordered by the group along one axis. A residual block with one linear or conv layer reads
/// and writes the same stream, so that layer's weight would move along two axes of one group
/// (a quadratic problem the score does not see): refused, naming the layer.
fn refuse_coupled_axes(spec: &PermutationSpec, layout: &ModelLayout) -> Result<()> {
    for group in &spec.groups {
        for (k, axis) in group.axes.iter().enumerate() {
            if group.axes[..k].iter().any(|earlier| earlier.param == axis.param) {
                let path = &layout.params[axis.param].path;
                return Err(WsaError::invalid(
                    "model.layers",
                    format!("`{path}`"),
                    &format!(
                        "it both reads and writes the residual stream of `{}`, which weight matching cannot align; give the block two linear or conv layers",
                        group.layer
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Weight matching: coordinate descent over the groups' permutations in a seeded random order,
/// each step the best permutation of one group with the others held (an assignment problem),
/// until a whole sweep improves nothing or `max_sweeps` is reached. A step is kept only if it
/// raises the objective, so the objective never decreases. Yields to `cancel` after every step
/// (a browser's page stays responsive) and stops when it is cancelled.
pub async fn weight_matching(
    a: &HostParams,
    b: &HostParams,
    config: &WeightMatchingConfig,
    rng: &mut Rng,
    cancel: &mut dyn Cancel,
) -> Result<Matching> {
    config.validate()?;
    a.layout.check_compatible(&b.layout)?;
    a.check_finite()?;
    b.check_finite()?;
    let spec = PermutationSpec::new(&a.layout)?;
    refuse_coupled_axes(&spec, &a.layout)?;
    let mut perms = spec.identity();
    let mut scores = Vec::with_capacity(spec.groups.len());
    for g in 0..spec.groups.len() {
        scores.push(GroupScores::new(a, b, &spec, g).await?);
    }
    let mut current = self::objective(a, b);
    let mut objective = vec![current];
    // Steps are counted from 1: the step at which each group's permutation last changed (0:
    // never) and at which its score matrix was last taken.
    let (mut changed_at, mut solved_at) = (vec![0usize; spec.groups.len()], vec![None; spec.groups.len()]);
    let mut step = 0usize;
    let mut sweeps = 0;
    while sweeps < config.max_sweeps {
        sweeps += 1;
        let mut order: Vec<usize> = (0..spec.groups.len()).collect();
        rng.shuffle(&mut order);
        let mut improved = false;
        for g in order {
            if cancel.is_cancelled() {
                return Err(WsaError::Cancelled);
            }
            step += 1;
            // A group whose score matrix is the same as at its last step (none of the groups it
            // depends on moved since) would get the same answer again, and that answer is
            // already in place: unchanged if it was kept then, and no gain over itself if it
            // was taken. Unrelated models of two groups hit this at about one sweep in two.
            let stale = solved_at[g].is_none_or(|at| scores[g].depends_on.iter().any(|&h| changed_at[h] > at));
            if stale {
                solved_at[g] = Some(step);
                let group = &spec.groups[g];
                let score = scores[g].score(b, &perms).await?;
                let candidate = best_permutation(&score, group.size, group.blocks)?;
                let (old, new) =
                    (lap::total(&score, group.size, &perms[g]), lap::total(&score, group.size, &candidate));
                // Rounding can make an equal answer look a hair better: demand a real gain.
                if new > old + 1e-9 * old.abs().max(1.0) {
                    perms[g] = candidate;
                    changed_at[g] = step;
                    improved = true;
                    // The score covers exactly the parameters this group moves, with the others
                    // held, so the objective changes by new - old: no need to permute B and sum
                    // over all of it.
                    current += new - old;
                }
            }
            objective.push(current);
            cancel.pause().await;
        }
        if !improved {
            break;
        }
    }
    let permutations = spec
        .groups
        .iter()
        .zip(&perms)
        .map(|(g, p)| PermutationReport {
            layer: g.layer.clone(),
            size: g.size,
            moved: p.iter().enumerate().filter(|(j, k)| j != *k).count(),
        })
        .collect();
    Ok(Matching { perms, sweeps, objective, permutations })
}

/// Post-hoc scope rescaling, a baseline and *not* WSA: each of `layers` of A and B is mapped
/// affinely, w -> mu* + (w - mu) sigma* / sigma, onto the fused scope of A's and B's layers, so
/// both end with exactly the target scope. (Some merging libraries call this "scope alignment";
/// WSA instead pulls the scopes together while training.) Returns A, B and the target.
pub fn rescale_pair(
    a: &HostParams,
    b: &HostParams,
    layers: &[usize],
    fusion: FusionRule,
) -> Result<(HostParams, HostParams, Vec<Scope>)> {
    a.layout.check_compatible(&b.layout)?;
    let scopes = |p: &HostParams| layers.iter().map(|&i| scope::scope_of(&p.values[i])).collect::<Vec<_>>();
    let target = scope::fuse(&[scopes(a), scopes(b)], &[1.0, 1.0], fusion)?;
    let rescale = |p: &HostParams| {
        let mut out = p.clone();
        for (&i, t) in layers.iter().zip(&target) {
            let s = scope::scope_of(&p.values[i]);
            // A constant layer has no spread to scale: it lands on the target mean.
            let gain = if s.std > 0.0 { t.std / s.std } else { 0.0 };
            for w in &mut out.values[i] {
                *w = (t.mean + (f64::from(*w) - s.mean) * gain) as f32;
            }
        }
        out
    };
    Ok((rescale(a), rescale(b), target))
}

/// ||A - B|| of one parameter, before and after alignment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamDistance {
    pub path: String,
    pub before: f64,
    pub after: f64,
}

/// Euclidean distance between A and B per parameter, before and after B (or both) was aligned.
pub fn distances(a: &HostParams, b: &HostParams, a_after: &HostParams, b_after: &HostParams) -> Vec<ParamDistance> {
    let l2 = |x: &[f32], y: &[f32]| {
        x.iter().zip(y).map(|(p, q)| (f64::from(*p) - f64::from(*q)).powi(2)).sum::<f64>().sqrt()
    };
    a.layout
        .params
        .iter()
        .enumerate()
        .map(|(i, spec)| ParamDistance {
            path: spec.path.clone(),
            before: l2(&a.values[i], &b.values[i]),
            after: l2(&a_after.values[i], &b_after.values[i]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::Silent;
    use crate::model::{Activation, ModelConfig, Norm, Params};

    fn layout(model: ModelConfig, shape: &[usize]) -> Arc<ModelLayout> {
        Arc::new(ModelLayout::new(&model, shape, 3).expect("layout"))
    }

    fn mlp(norm: Norm) -> Arc<ModelLayout> {
        layout(
            ModelConfig::Mlp { hidden: vec![8, 12], activation: Activation::Relu, norm, init: Default::default() },
            &[5],
        )
    }

    fn cnn(norm: Norm) -> Arc<ModelLayout> {
        layout(
            ModelConfig::Cnn {
                channels: vec![4, 8],
                kernel_size: 3,
                activation: Activation::Relu,
                norm,
                init: Default::default(),
            },
            &[2, 8, 8],
        )
    }

    /// A random permutation per group that maps whole norm blocks onto blocks.
    fn random_perms(spec: &PermutationSpec, rng: &mut Rng) -> Vec<Permutation> {
        spec.groups
            .iter()
            .map(|g| {
                let s = g.size / g.blocks;
                let mut blocks: Vec<usize> = (0..g.blocks).collect();
                rng.shuffle(&mut blocks);
                blocks
                    .iter()
                    .flat_map(|&b| {
                        let mut within: Vec<usize> = (0..s).map(|k| b * s + k).collect();
                        rng.shuffle(&mut within);
                        within
                    })
                    .collect()
            })
            .collect()
    }

    /// Random weights, with non-trivial norm parameters so that they must move too.
    fn random_params(layout: &Arc<ModelLayout>, rng: &mut Rng) -> HostParams {
        let mut params = layout.init(rng);
        for v in params.values.iter_mut().flatten() {
            *v += (0.3 * rng.normal()) as f32;
        }
        params
    }

    fn logits(params: &HostParams, x: &[f32], rows: usize) -> Vec<f32> {
        let device = crate::device::cpu().device;
        let p: Params = params.to_device(&device);
        let dim = x.len() / rows;
        let x = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [rows, dim]), &device);
        p.logits(x).into_data().try_to_vec::<f32>().expect("f32 logits")
    }

    /// `a` and `b` give the same logits (to 1e-4) on four random inputs.
    fn assert_same_function(a: &HostParams, b: &HostParams, rng: &mut Rng, name: &str) {
        let dim: usize = a.layout.sample_shape.iter().product();
        let x: Vec<f32> = (0..4 * dim).map(|_| rng.normal() as f32).collect();
        for (p, q) in logits(a, &x, 4).iter().zip(&logits(b, &x, 4)) {
            assert!((p - q).abs() <= 1e-4 * (1.0 + p.abs()), "{name}: logits {p} vs {q}");
        }
    }

    #[test]
    fn permuting_a_model_keeps_its_function() {
        let mut rng = Rng::new(3);
        for (name, layout) in [
            ("mlp", mlp(Norm::None)),
            ("mlp + layer norm", mlp(Norm::LayerNorm)),
            ("mlp + group norm", mlp(Norm::GroupNorm { groups: 4 })),
            ("cnn", cnn(Norm::None)),
            ("cnn + group norm", cnn(Norm::GroupNorm { groups: 2 })),
        ] {
            let spec = PermutationSpec::new(&layout).expect("spec");
            assert_eq!(spec.groups.len(), 2, "{name}: one permutation per hidden layer / conv block");
            let params = random_params(&layout, &mut rng);
            let perms = random_perms(&spec, &mut rng);
            assert!(perms.iter().any(|p| p.iter().enumerate().any(|(j, k)| j != *k)), "{name}: a real reordering");
            let permuted = permute(&params, &spec, &perms);
            assert_ne!(permuted.values, params.values, "{name}");
            assert_same_function(&params, &permuted, &mut rng, name);
        }
    }

    /// A model PyTorch wrote (tests/fixtures/torch), read by its names and shapes.
    fn pytorch_model(name: &str) -> HostParams {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/torch")
            .join(format!("{name}.safetensors"));
        crate::infer::load_inferred(&path).unwrap_or_else(|e| panic!("{name}: {e}")).params
    }

    /// Inferred stacks: hidden units through Sequential numbering, BatchNorm (its running
    /// statistics permute with the channels), GroupNorm blocks, max- and average-pooling, the
    /// flatten into the first linear layer (a channel is a block of its pixels there) and
    /// residual blocks (listed in the model's layout file).
    #[test]
    fn permuting_an_inferred_pytorch_model_keeps_its_function() {
        let mut rng = Rng::new(8);
        for (name, layers, blocks) in [
            ("sequential_mlp", vec!["1", "3"], vec![1, 1]),
            ("batchnorm_cnn", vec!["conv1", "conv2", "fc1"], vec![1, 1, 1]),
            ("groupnorm_cnn", vec!["features.0", "features.4", "classifier.0"], vec![2, 4, 1]),
            // Two residual streams (stem and down2) and each block's inner conv.
            ("residual_gn_cnn", vec!["stem.0", "stage1.0.conv1", "down2.0", "stage2.0.conv1"], vec![2, 2, 4, 4]),
        ] {
            let params = pytorch_model(name);
            let layout = Arc::clone(&params.layout);
            let spec = PermutationSpec::new(&layout).expect("spec");
            let found: Vec<(&str, usize)> = spec.groups.iter().map(|g| (g.layer.as_str(), g.blocks)).collect();
            assert_eq!(found, layers.into_iter().zip(blocks).collect::<Vec<_>>(), "{name}");
            let moved =
                |g: &PermutationGroup| g.axes.iter().map(|a| layout.params[a.param].path.clone()).collect::<Vec<_>>();
            if name == "batchnorm_cnn" {
                assert_eq!(
                    moved(&spec.groups[0]),
                    [
                        "conv1.weight",
                        "conv1.bias",
                        "bn1.weight",
                        "bn1.bias",
                        "bn1.running_mean",
                        "bn1.running_var",
                        "conv2.weight"
                    ]
                );
                // conv2's 8 channels of 4 x 4 pixels reach fc1 flattened.
                let into_fc1 = spec.groups[1].axes.last().expect("next layer");
                assert_eq!((into_fc1.outer, into_fc1.units, into_fc1.inner), (16, 8, 16));
            }
            let perms = random_perms(&spec, &mut rng);
            let permuted = permute(&params, &spec, &perms);
            assert_ne!(permuted.values, params.values, "{name}");
            assert_same_function(&params, &permuted, &mut rng, name);
            let matching = crate::wait(weight_matching(
                &params,
                &permuted,
                &WeightMatchingConfig::default(),
                &mut Rng::new(1),
                &mut Silent,
            ))
            .expect("matching");
            assert_eq!(
                permute(&permuted, &spec, &matching.perms).values,
                params.values,
                "{name}: weight matching undoes it"
            );
        }
    }

    /// A three-stage GroupNorm ResNet on 8 x 8 images (widths 4-8-16, GroupNorm of 2 groups).
    fn resnet() -> Arc<ModelLayout> {
        let layers = crate::model::stack::residual_stack([4, 8, 16], 2, 2, 3);
        layout(ModelConfig::Stack { layers, init: Default::default() }, &[2, 8, 8])
    }

    /// A residual stream is one group: the conv into the stage and the block's last conv (and
    /// their norms) write it, the block's first conv and the next stage's conv (the classifier
    /// after the last stage) read it; the block's inner conv is a group of its own.
    #[test]
    fn a_residual_stream_is_one_permutation_group() {
        let layout = resnet();
        let spec = PermutationSpec::new(&layout).expect("spec");
        let found: Vec<(&str, usize, usize)> =
            spec.groups.iter().map(|g| (g.layer.as_str(), g.size, g.blocks)).collect();
        assert_eq!(
            found,
            [
                ("stem.0", 4, 2),
                ("stage1.0.conv1", 4, 2),
                ("down2.0", 8, 2),
                ("stage2.0.conv1", 8, 2),
                ("down3.0", 16, 2),
                ("stage3.0.conv1", 16, 2)
            ]
        );
        let moved = |g: &PermutationGroup| {
            g.axes.iter().map(|a| (layout.params[a.param].path.as_str(), a.outer, a.inner)).collect::<Vec<_>>()
        };
        assert_eq!(
            moved(&spec.groups[2]),
            [
                ("down2.0.weight", 1, 4 * 9),
                ("down2.1.weight", 1, 1),
                ("down2.1.bias", 1, 1),
                ("stage2.0.conv2.weight", 1, 8 * 9),
                ("stage2.0.gn2.weight", 1, 1),
                ("stage2.0.gn2.bias", 1, 1),
                ("stage2.0.conv1.weight", 8, 9),
                ("down3.0.weight", 16, 9)
            ]
        );
        assert_eq!(moved(&spec.groups[4]).last(), Some(&("fc.weight", 3, 1)), "the pooled features reach fc");
        assert_eq!(
            moved(&spec.groups[3]),
            [
                ("stage2.0.conv1.weight", 1, 8 * 9),
                ("stage2.0.gn1.weight", 1, 1),
                ("stage2.0.gn1.bias", 1, 1),
                ("stage2.0.conv2.weight", 8, 9)
            ]
        );
    }

    #[test]
    fn permuting_a_residual_network_keeps_its_function_and_weight_matching_undoes_it() {
        let layout = resnet();
        let spec = PermutationSpec::new(&layout).expect("spec");
        let mut rng = Rng::new(21);
        for round in 0..3 {
            let params = random_params(&layout, &mut rng);
            // Every group really reordered (a small group's draw can be the identity).
            let moves_all = |perms: &[Permutation]| perms.iter().all(|p| p.iter().enumerate().any(|(j, k)| j != *k));
            let perms =
                std::iter::repeat_with(|| random_perms(&spec, &mut rng)).find(|p| moves_all(p)).expect("a draw");
            let permuted = permute(&params, &spec, &perms);
            let x: Vec<f32> = (0..4 * 128).map(|_| rng.normal() as f32).collect();
            for (p, q) in logits(&params, &x, 4).iter().zip(&logits(&permuted, &x, 4)) {
                assert!((p - q).abs() <= 1e-5 * (1.0 + p.abs()), "round {round}: logits {p} vs {q}");
            }
            let matching = crate::wait(weight_matching(
                &params,
                &permuted,
                &WeightMatchingConfig::default(),
                &mut Rng::new(round),
                &mut Silent,
            ))
            .expect("matching");
            assert_eq!(permute(&permuted, &spec, &matching.perms).values, params.values, "round {round}");
        }
        // Moving a stream's channels in one of its writers only breaks the sum.
        let params = random_params(&layout, &mut rng);
        let mut broken = params.clone();
        let stem = layout.index_of("stem.0.weight").expect("stem");
        broken.values[stem] =
            reorder(&params.values[stem], &UnitAxis { param: stem, outer: 1, units: 4, inner: 18 }, &[1, 0, 2, 3]);
        let x: Vec<f32> = (0..4 * 128).map(|_| rng.normal() as f32).collect();
        let (before, after) = (logits(&params, &x, 4), logits(&broken, &x, 4));
        assert!(before.iter().zip(&after).any(|(p, q)| (p - q).abs() > 1e-3));
    }

    fn relu_layer() -> crate::model::LayerSpec {
        crate::model::LayerSpec::Activation { function: Activation::Relu }
    }

    /// A conv of 4 channels, 3 x 3, padded to keep the size (a residual block's).
    fn conv_4_3x3(name: &str) -> crate::model::LayerSpec {
        crate::model::LayerSpec::Conv2d { name: name.into(), channels: 4, kernel: 3, stride: 1, padding: 1, bias: true }
    }

    /// A block inside a block: its stream is the outer block's inner one (written by the outer
    /// block's first conv and the inner block's last, read by the inner block's first conv and
    /// the outer block's last).
    #[test]
    fn a_nested_residual_block_keeps_its_function_under_permutation() {
        use crate::model::LayerSpec;
        let (relu, conv) = (relu_layer, conv_4_3x3);
        let gn = |name: &str| LayerSpec::GroupNorm { name: name.into(), groups: 2 };
        let inner = LayerSpec::Residual { layers: vec![conv("in1"), gn("in1_gn"), relu(), conv("in2"), gn("in2_gn")] };
        let outer = LayerSpec::Residual { layers: vec![conv("out1"), gn("out1_gn"), relu(), inner, conv("out2")] };
        let layers = vec![
            conv("stem"),
            relu(),
            outer,
            relu(),
            LayerSpec::Flatten,
            LayerSpec::Linear { name: "fc".into(), outputs: 3, bias: true },
        ];
        let layout = layout(ModelConfig::Stack { layers, init: Default::default() }, &[2, 4, 4]);
        let spec = PermutationSpec::new(&layout).expect("spec");
        let found: Vec<(&str, usize)> = spec.groups.iter().map(|g| (g.layer.as_str(), g.blocks)).collect();
        assert_eq!(found, [("stem", 1), ("out1", 2), ("in1", 2)]);
        let weights =
            |g: &PermutationGroup| g.axes.iter().filter(|a| layout.params[a.param].role == ParamRole::Weight).count();
        assert_eq!(weights(&spec.groups[1]), 4, "out1 and in2 write it, in1 and out2 read it");
        let mut rng = Rng::new(17);
        let params = random_params(&layout, &mut rng);
        let permuted = permute(&params, &spec, &random_perms(&spec, &mut rng));
        assert_ne!(permuted.values, params.values);
        assert_same_function(&params, &permuted, &mut rng, "nested blocks");
        let matching = crate::wait(weight_matching(
            &params,
            &permuted,
            &WeightMatchingConfig::default(),
            &mut Rng::new(3),
            &mut Silent,
        ))
        .expect("matching");
        assert_eq!(permute(&permuted, &spec, &matching.perms).values, params.values);
    }

    #[test]
    fn residual_layouts_weight_matching_cannot_keep_are_refused() {
        use crate::model::LayerSpec;
        let (relu, conv) = (relu_layer, conv_4_3x3);
        let gn = |name: &str, groups| LayerSpec::GroupNorm { name: name.into(), groups };
        let stack = |block: Vec<LayerSpec>, stem_groups| {
            let layers = vec![
                conv("stem"),
                gn("stem_gn", stem_groups),
                relu(),
                LayerSpec::Residual { layers: block },
                LayerSpec::Flatten,
                LayerSpec::Linear { name: "fc".into(), outputs: 3, bias: true },
            ];
            layout(ModelConfig::Stack { layers, init: Default::default() }, &[1, 4, 4])
        };
        // One conv reads and writes the stream: a permutation of it is still a symmetry, but
        // not one weight matching's linear score can find.
        let single = stack(vec![conv("only"), gn("only_gn", 2)], 2);
        let spec = PermutationSpec::new(&single).expect("spec");
        let mut rng = Rng::new(2);
        let params = random_params(&single, &mut rng);
        let permuted = permute(&params, &spec, &random_perms(&spec, &mut rng));
        assert_same_function(&params, &permuted, &mut rng, "one-conv block");
        let err =
            crate::wait(weight_matching(&params, &permuted, &WeightMatchingConfig::default(), &mut rng, &mut Silent))
                .expect_err("refused")
                .to_string();
        assert!(
            err.contains("`only.weight`") && err.contains("both reads and writes the residual stream of `stem`"),
            "{err}"
        );
        // Two writers grouping the stream's channels differently.
        let mixed = stack(vec![conv("a"), gn("a_gn", 2), relu(), conv("b"), gn("b_gn", 4)], 2);
        let err = PermutationSpec::new(&mixed).expect_err("mixed groups").to_string();
        assert!(err.contains("`stem` and `b`") && err.contains("2 and 4 groups"), "{err}");
        // A GroupNorm of one group allows any order.
        let spec = PermutationSpec::new(&stack(vec![conv("a"), gn("a_gn", 2), relu(), conv("b"), gn("b_gn", 1)], 2))
            .expect("one group fits any");
        assert_eq!(spec.groups[0].blocks, 2);
    }

    #[test]
    fn a_permutation_across_group_norm_blocks_changes_the_function() {
        // The reason for the block constraint: swapping two units of different groups is not a
        // symmetry of a group-normalised layer.
        let layout = mlp(Norm::GroupNorm { groups: 4 });
        let spec = PermutationSpec::new(&layout).expect("spec");
        let mut rng = Rng::new(5);
        let params = random_params(&layout, &mut rng);
        let mut perms = spec.identity();
        perms[0].swap(0, 7);
        let x: Vec<f32> = (0..20).map(|_| rng.normal() as f32).collect();
        let (before, after) = (logits(&params, &x, 4), logits(&permute(&params, &spec, &perms), &x, 4));
        assert!(before.iter().zip(&after).any(|(p, q)| (p - q).abs() > 1e-3));
    }

    #[test]
    fn weight_matching_undoes_a_permutation() {
        let mut rng = Rng::new(9);
        for layout in
            [mlp(Norm::None), mlp(Norm::GroupNorm { groups: 4 }), cnn(Norm::None), cnn(Norm::GroupNorm { groups: 2 })]
        {
            let spec = PermutationSpec::new(&layout).expect("spec");
            let a = random_params(&layout, &mut rng);
            let b = permute(&a, &spec, &random_perms(&spec, &mut rng));
            let config = WeightMatchingConfig::default();
            let matching =
                crate::wait(weight_matching(&a, &b, &config, &mut Rng::new(1), &mut Silent)).expect("matching");
            assert_eq!(permute(&b, &spec, &matching.perms).values, a.values, "recovers A exactly");
            let trace = &matching.objective;
            assert!(trace.windows(2).all(|w| w[1] >= w[0]), "the objective never decreases: {trace:?}");
            assert!(trace[trace.len() - 1] > trace[0]);
            // Deterministic for a seed.
            let again = crate::wait(weight_matching(&a, &b, &config, &mut Rng::new(1), &mut Silent)).expect("again");
            assert_eq!(again, matching);
        }
    }

    /// Weight matching as first written, straight from its definition: every step builds B
    /// with the other groups' permutations applied, multiplies all of the group's units' rows,
    /// and recomputes the whole objective. The fast path must agree with it.
    fn reference_weight_matching(a: &HostParams, b: &HostParams, max_sweeps: usize, rng: &mut Rng) -> Matching {
        let spec = PermutationSpec::new(&a.layout).expect("spec");
        let mut perms = spec.identity();
        let mut objective = vec![super::objective(a, b)];
        let mut sweeps = 0;
        while sweeps < max_sweeps {
            sweeps += 1;
            let mut order: Vec<usize> = (0..spec.groups.len()).collect();
            rng.shuffle(&mut order);
            let mut improved = false;
            for g in order {
                let group = &spec.groups[g];
                let mut others = perms.clone();
                others[g] = (0..group.size).collect();
                let b_others = permute(b, &spec, &others);
                let (mut rows_a, mut rows_b) = (vec![Vec::new(); group.size], vec![Vec::new(); group.size]);
                for axis in &group.axes {
                    unit_rows(&a.values[axis.param], axis, &mut rows_a);
                    unit_rows(&b_others.values[axis.param], axis, &mut rows_b);
                }
                let score = crate::wait(product(rows_a, rows_b)).expect("score");
                let candidate = best_permutation(&score, group.size, group.blocks).expect("assignment");
                let (old, new) =
                    (lap::total(&score, group.size, &perms[g]), lap::total(&score, group.size, &candidate));
                if new > old + 1e-9 * old.abs().max(1.0) {
                    perms[g] = candidate;
                    improved = true;
                }
                objective.push(super::objective(a, &permute(b, &spec, &perms)));
            }
            if !improved {
                break;
            }
        }
        let permutations = Vec::new();
        Matching { perms, sweeps, objective, permutations }
    }

    /// The fast path against the reference: the same permutations and sweeps, and the running
    /// objective equal to the recomputed one within rounding. The scores are f32 products
    /// summed in another order (the fixed part once, the moving part per step), so the two
    /// traces may differ by f32 rounding of the dot products, far below 1e-5 of ||A|| ||B||
    /// (the largest the objective can be); the permutations must be equal.
    fn assert_matches_reference(name: &str, a: &HostParams, b: &HostParams, max_sweeps: usize, seed: u64) {
        let config = WeightMatchingConfig { max_sweeps };
        let fast = crate::wait(weight_matching(a, b, &config, &mut Rng::new(seed), &mut Silent)).expect("matching");
        let reference = reference_weight_matching(a, b, max_sweeps, &mut Rng::new(seed));
        assert_eq!(fast.perms, reference.perms, "{name}: permutations");
        assert_eq!(fast.sweeps, reference.sweeps, "{name}: sweeps");
        assert_eq!(fast.objective.len(), reference.objective.len(), "{name}: steps");
        let norm = |p: &HostParams| p.values.iter().flatten().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        let tolerance = 1e-5 * norm(a) * norm(b);
        for (step, (f, r)) in fast.objective.iter().zip(&reference.objective).enumerate() {
            assert!(
                (f - r).abs() <= tolerance,
                "{name}: step {step}: objective {f} vs reference {r} (tolerance {tolerance})"
            );
        }
        assert_eq!(fast.objective[0], reference.objective[0], "{name}: the same start");
    }

    #[test]
    fn weight_matching_agrees_with_the_reference_computation() {
        let mut rng = Rng::new(12);
        for (name, layout) in [
            ("mlp", mlp(Norm::None)),
            ("mlp + layer norm", mlp(Norm::LayerNorm)),
            ("mlp + group norm", mlp(Norm::GroupNorm { groups: 4 })),
            ("deep mlp", layout(ModelConfig::mlp(vec![16, 24, 16]), &[6])),
            ("cnn", cnn(Norm::None)),
            ("cnn + group norm", cnn(Norm::GroupNorm { groups: 2 })),
            ("resnet", resnet()),
        ] {
            for seed in 0..4 {
                // Unrelated models (many sweeps) and a permuted, noisy copy (few).
                let (a, b) = (random_params(&layout, &mut rng), random_params(&layout, &mut rng));
                assert_matches_reference(&format!("{name}, unrelated, seed {seed}"), &a, &b, 100, seed);
                let spec = PermutationSpec::new(&layout).expect("spec");
                let mut c = permute(&a, &spec, &random_perms(&spec, &mut rng));
                for v in c.values.iter_mut().flatten() {
                    *v += (0.1 * rng.normal()) as f32;
                }
                assert_matches_reference(&format!("{name}, related, seed {seed}"), &a, &c, 100, seed);
            }
        }
    }

    /// The benchmark's case, MLP 784-512-512-10 of two random starts (18 sweeps): about a second
    /// in release.
    #[test]
    fn weight_matching_agrees_with_the_reference_at_benchmark_size() {
        let layout = Arc::new(ModelLayout::new(&ModelConfig::mlp(vec![512, 512]), &[1, 28, 28], 10).expect("layout"));
        let (a, b) = (layout.init(&mut Rng::new(1)), layout.init(&mut Rng::new(2)));
        assert_matches_reference("MLP 784-512-512-10", &a, &b, 100, 0);
    }

    #[test]
    fn weight_matching_of_unrelated_models_only_raises_the_objective() {
        let layout = cnn(Norm::None);
        let mut rng = Rng::new(2);
        let (a, b) = (random_params(&layout, &mut rng), random_params(&layout, &mut rng));
        let config = WeightMatchingConfig { max_sweeps: 3 };
        let matching = crate::wait(weight_matching(&a, &b, &config, &mut Rng::new(4), &mut Silent)).expect("matching");
        assert!(matching.sweeps <= 3);
        assert!(matching.objective.windows(2).all(|w| w[1] >= w[0]), "{:?}", matching.objective);
        let spec = PermutationSpec::new(&layout).expect("spec");
        let aligned = permute(&b, &spec, &matching.perms);
        let d = distances(&a, &b, &a, &aligned);
        let total = |f: fn(&ParamDistance) -> f64| d.iter().map(|p| f(p).powi(2)).sum::<f64>();
        assert!(total(|p| p.after) < total(|p| p.before), "aligned B is closer to A");
    }

    #[test]
    fn weight_matching_refuses_different_architectures_and_nan() {
        let mut rng = Rng::new(1);
        let (a, other) = (random_params(&mlp(Norm::None), &mut rng), random_params(&cnn(Norm::None), &mut rng));
        let err = crate::wait(weight_matching(&a, &other, &WeightMatchingConfig::default(), &mut rng, &mut Silent))
            .expect_err("mismatch");
        assert!(matches!(err, WsaError::ArchitectureMismatch { .. }), "{err}");
        let mut bad = a.clone();
        bad.values[0][0] = f32::NAN;
        let err = crate::wait(weight_matching(&a, &bad, &WeightMatchingConfig::default(), &mut rng, &mut Silent))
            .expect_err("NaN");
        assert!(matches!(err, WsaError::NonFiniteWeights { .. }), "{err}");
    }

    #[test]
    fn rescaling_gives_both_models_the_fused_scope() {
        let layout = mlp(Norm::None);
        let mut rng = Rng::new(6);
        let a = random_params(&layout, &mut rng);
        let mut b = random_params(&layout, &mut rng);
        for w in &mut b.values[0] {
            *w = 3.0 * *w + 0.5;
        }
        let layers = crate::scope::LayerSelection::default().select(&layout);
        let (ra, rb, target) = rescale_pair(&a, &b, &layers, FusionRule::MomentMatching).expect("rescale");
        for (&i, t) in layers.iter().zip(&target) {
            for p in [&ra, &rb] {
                let s = scope::scope_of(&p.values[i]);
                assert!((s.mean - t.mean).abs() < 1e-5 && (s.std - t.std).abs() < 1e-5 * t.std.max(1.0));
            }
        }
        // Unselected parameters (biases) are untouched.
        assert_eq!(ra.values[1], a.values[1]);
    }
}
