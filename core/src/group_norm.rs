//! GroupNorm (and LayerNorm, its one-group case) with its backward pass, behind one function.
//! On the CPU (flex) backend our own kernel runs; on the GPU backends the same arithmetic as
//! burn's tensor operations (the trait's default bodies), fused there by burn's fusion backend.
//!
//! Why our own on the CPU: written with tensor operations, a GroupNorm forward is six passes
//! over the activations (mean, subtract, square, mean, divide, scale and shift, the last two of
//! them one each), and its backward about twice as many, each with a fresh buffer and an
//! autodiff node; the ResNet-GN of the reproduction has nine GroupNorms. Here one task per few
//! groups of channels reads the group twice for its statistics and once more to write the
//! output; the backward reads it twice (the sums, then the input gradient), and autodiff
//! records one node. The effect on that network's training speed: docs/benchmarks.md.
//!
//! A ReLU right after the norm (a ResNet's `conv → GroupNorm → ReLU`) can be folded in
//! (`rectify`): the forward writes the rectified output in its one output pass, and the backward
//! recomputes each output from the input and the statistics to know where ReLU passed the
//! gradient (one more pass over a group, in cache, before the two above), so neither ReLU's own
//! pass over the activations nor its gradient's runs. The numbers are those of the norm followed
//! by [`crate::conv::relu`], bit for bit on the CPU.
//!
//! Determinism: the tasks' size depends only on the shapes, and the affine parameters'
//! gradients add the samples' partial sums in sample order, so one thread and many give the
//! same numbers.

use crate::conv::{all_f32, contiguous, f32s, for_each_chunk, sum_in_order, tensor, zeroed};
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
#[cfg(gpu)]
use burn::backend::wgpu::CubeBackend;
use burn::backend::{Backend, Dispatch, Flex, Scalar, TensorMetadata, backend_extension, tensor::FloatTensor};
use burn::tensor::{Shape, Tensor};

/// Added to the variance before the square root, as PyTorch's `nn.GroupNorm` does by default.
pub const EPSILON: f32 = 1e-5;

/// Values of one task of the CPU kernel, about: whole groups of channels of one sample each, so
/// a task's data stays in a core's L2 cache between its passes.
const VALUES_PER_GROUPS_TASK: usize = 16 * 1024;

#[backend_extension(Cube: cfg(gpu), Flex, Fusion: cfg(gpu), Autodiff)]
pub trait GroupNormKernels: Backend {
    /// `x: [batch, channels, positions]` normalised per sample over each of `groups`
    /// consecutive groups of channels (and all their positions), then scaled by `gamma: [channels]`
    /// and shifted by `beta: [channels]`; then, with `rectify`, ReLU ([`crate::conv::relu`]).
    #[fusion(default)]
    fn group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        rectify: bool,
    ) -> FloatTensor<Self> {
        composed::forward::<Self>(x, gamma, beta, groups, rectify).0
    }

    /// [`GroupNormKernels::group_norm`] and what its backward needs: each group's mean and
    /// reciprocal standard deviation (`1 / sqrt(variance + EPSILON)`), as `[batch, groups, 1]`.
    #[fusion(default)]
    fn group_norm_with_statistics(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        rectify: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        composed::forward::<Self>(x, gamma, beta, groups, rectify)
    }

    /// The gradients with respect to `x`, `gamma` and `beta`, given the output's and the
    /// statistics of the forward pass. `rectified`: the forward rectified its output, so the
    /// output's gradient first passes only where the recomputed output (from `beta` too) is
    /// above zero or NaN, as ReLU's gradient does.
    #[allow(clippy::too_many_arguments)]
    #[fusion(default)]
    fn group_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        inverse_std: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        groups: usize,
        rectified: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        composed::backward::<Self>(x, gamma, beta, mean, inverse_std, output_grad, groups, rectified)
    }
}

/// See [`GroupNormKernels::group_norm`]. The caller checked that `groups` divides the channels.
pub fn group_norm(x: Tensor<3>, groups: usize, gamma: Tensor<1>, beta: Tensor<1>) -> Tensor<3> {
    group_norm_then(x, groups, gamma, beta, false)
}

/// [`group_norm`], and with `rectify` `relu(group_norm(x, groups, gamma, beta))` in one
/// operation: the same numbers, without ReLU's own passes over the activations (the module's
/// documentation).
pub fn group_norm_then(x: Tensor<3>, groups: usize, gamma: Tensor<1>, beta: Tensor<1>, rectify: bool) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as GroupNormKernels>::group_norm(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        groups,
        rectify,
    ))
}

/// The arithmetic in the backend's tensor operations: the GPU backends' path, and the CPU's
/// for types other than float32.
mod composed {
    use super::*;

    fn dims(x: &impl TensorMetadata, groups: usize) -> (usize, usize, usize, usize) {
        let shape = x.shape();
        let (batch, channels, positions) = (shape[0], shape[1], shape[2]);
        (batch, channels, positions, channels / groups * positions)
    }

    fn per_channel<B: Backend>(p: FloatTensor<B>, channels: usize) -> FloatTensor<B> {
        B::float_reshape(p, Shape::new([1, channels, 1]))
    }

    pub(super) fn forward<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        beta: FloatTensor<B>,
        groups: usize,
        rectify: bool,
    ) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
        let (batch, channels, positions, group_len) = dims(&x, groups);
        let epsilon = Scalar::new(EPSILON, &x.dtype());
        let grouped = B::float_reshape(x, Shape::new([batch, groups, group_len]));
        let mean = B::float_mean_dim(grouped.clone(), 2);
        let centred = B::float_sub(grouped, mean.clone());
        let variance = B::float_mean_dim(B::float_mul(centred.clone(), centred.clone()), 2);
        let inverse_std = B::float_recip(B::float_sqrt(B::float_add_scalar(variance, epsilon)));
        let normed =
            B::float_reshape(B::float_mul(centred, inverse_std.clone()), Shape::new([batch, channels, positions]));
        let output = scale_and_shift::<B>(normed, gamma, beta, channels);
        let output = if rectify { B::relu(output) } else { output };
        (output, mean, inverse_std)
    }

    /// `normed: [batch, channels, positions]` times gamma plus beta, per channel.
    fn scale_and_shift<B: Backend>(
        normed: FloatTensor<B>,
        gamma: FloatTensor<B>,
        beta: FloatTensor<B>,
        channels: usize,
    ) -> FloatTensor<B> {
        B::float_add(B::float_mul(normed, per_channel::<B>(gamma, channels)), per_channel::<B>(beta, channels))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn backward<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        beta: FloatTensor<B>,
        mean: FloatTensor<B>,
        inverse_std: FloatTensor<B>,
        output_grad: FloatTensor<B>,
        groups: usize,
        rectified: bool,
    ) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
        let (batch, channels, positions, group_len) = dims(&x, groups);
        let grouped_shape = Shape::new([batch, groups, group_len]);
        let full_shape = Shape::new([batch, channels, positions]);
        let centred = B::float_sub(B::float_reshape(x, grouped_shape.clone()), mean);
        let normed = B::float_mul(centred, inverse_std.clone());
        // ReLU's gradient from the output recomputed as the forward computed it (on a GPU its
        // compiler may fuse the operations differently, which can move an output within a
        // rounding of zero across it: where ReLU's derivative jumps anyway).
        let output_grad = if rectified {
            let output = scale_and_shift::<B>(
                B::float_reshape(normed.clone(), full_shape.clone()),
                gamma.clone(),
                beta,
                channels,
            );
            B::relu_backward(output, output_grad)
        } else {
            output_grad
        };
        let per_channel_sum =
            |t: FloatTensor<B>| B::float_reshape(B::float_sum_dim(B::float_sum_dim(t, 2), 0), Shape::new([channels]));
        let beta_grad = per_channel_sum(output_grad.clone());
        let gamma_grad =
            per_channel_sum(B::float_mul(output_grad.clone(), B::float_reshape(normed.clone(), full_shape.clone())));
        // d(normed) = output_grad * gamma; dx = (d(normed) - its mean - normed * mean(d(normed)
        // * normed)) * inverse_std, per group.
        let normed_grad = B::float_reshape(B::float_mul(output_grad, per_channel::<B>(gamma, channels)), grouped_shape);
        let mean_grad = B::float_mean_dim(normed_grad.clone(), 2);
        let projection = B::float_mean_dim(B::float_mul(normed_grad.clone(), normed.clone()), 2);
        let x_grad = B::float_mul(
            B::float_sub(B::float_sub(normed_grad, mean_grad), B::float_mul(normed, projection)),
            inverse_std,
        );
        (B::float_reshape(x_grad, full_shape), gamma_grad, beta_grad)
    }
}

// ---------------------------------------------------------------------------------------------
// The GPU backends: the composed arithmetic (the default bodies).

#[cfg(gpu)]
impl GroupNormKernels for CubeBackend {}

// ---------------------------------------------------------------------------------------------
// Autodiff: one node, whose backward calls the inner backend's.

impl<B: Backend + GroupNormKernels, C: CheckpointStrategy> GroupNormKernels for Autodiff<B, C> {
    fn group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        rectify: bool,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct GroupNormBackward;

        /// What the backward needs: the input, gamma, beta, the groups' means and reciprocal
        /// standard deviations, the number of groups, and whether the output was rectified.
        #[derive(Clone, Debug)]
        struct Saved<B: Backend> {
            x: FloatTensor<B>,
            gamma: FloatTensor<B>,
            beta: FloatTensor<B>,
            mean: FloatTensor<B>,
            inverse_std: FloatTensor<B>,
            groups: usize,
            rectified: bool,
        }

        impl<B: Backend + GroupNormKernels> Backward<B, 3> for GroupNormBackward {
            type State = Saved<B>;

            fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
                let [node_x, node_gamma, node_beta] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let Saved { x, gamma, beta, mean, inverse_std, groups, rectified } = ops.state;
                let (x_grad, gamma_grad, beta_grad) =
                    B::group_norm_backward(x, gamma, beta, mean, inverse_std, grad, groups, rectified);
                for (node, g) in [(node_x, x_grad), (node_gamma, gamma_grad), (node_beta, beta_grad)] {
                    if let Some(node) = node {
                        grads.register::<B>(node.id, g);
                    }
                }
            }
        }

        match GroupNormBackward.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (x, gamma, beta) = (x.into_primitive(), gamma.into_primitive(), beta.into_primitive());
                let (output, mean, inverse_std) =
                    B::group_norm_with_statistics(x.clone(), gamma.clone(), beta.clone(), groups, rectify);
                prep.finish(Saved { x, gamma, beta, mean, inverse_std, groups, rectified: rectify }, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::group_norm(
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
                groups,
                rectify,
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The CPU (flex) backend: our kernel for float32, the composed arithmetic for other types.

impl GroupNormKernels for Flex {
    fn group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        rectify: bool,
    ) -> FloatTensor<Self> {
        Self::group_norm_with_statistics(x, gamma, beta, groups, rectify).0
    }

    fn group_norm_with_statistics(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        rectify: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        if !all_f32(&[&x, &gamma, &beta]) {
            return composed::forward::<Self>(x, gamma, beta, groups, rectify);
        }
        let shape = GroupShape::new(x.layout().shape(), groups);
        let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
        let (output, mean, inverse_std) = cpu::forward(&shape, f32s(&x), f32s(&gamma), f32s(&beta), rectify);
        let statistics = Shape::new([shape.batch, groups, 1]);
        (tensor(output, x.layout().shape().clone()), tensor(mean, statistics.clone()), tensor(inverse_std, statistics))
    }

    fn group_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        inverse_std: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        groups: usize,
        rectified: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        if !all_f32(&[&x, &gamma, &beta, &mean, &inverse_std, &output_grad]) {
            return composed::backward::<Self>(x, gamma, beta, mean, inverse_std, output_grad, groups, rectified);
        }
        let shape = GroupShape::new(x.layout().shape(), groups);
        let dims = x.layout().shape().clone();
        let [x, gamma, beta, mean, inverse_std, grad] =
            [x, gamma, beta, mean, inverse_std, output_grad].map(contiguous);
        let statistics = (f32s(&mean), f32s(&inverse_std));
        let affine = (f32s(&gamma), f32s(&beta));
        let (x_grad, gamma_grad, beta_grad) =
            cpu::backward(&shape, f32s(&x), affine, statistics, f32s(&grad), rectified);
        let per_channel = Shape::new([shape.channels]);
        (tensor(x_grad, dims), tensor(gamma_grad, per_channel.clone()), tensor(beta_grad, per_channel))
    }
}

/// The shapes of one GroupNorm: `x` is `[batch, channels, positions]`, and a group is
/// `channels / groups` consecutive channels of one sample, `group_len` consecutive values.
#[derive(Clone, Copy, Debug)]
struct GroupShape {
    batch: usize,
    channels: usize,
    positions: usize,
    groups: usize,
}

impl GroupShape {
    fn new(x: &Shape, groups: usize) -> Self {
        assert!(
            groups > 0 && x[1].is_multiple_of(groups),
            "group norm: {groups} groups do not divide {} channels",
            x[1]
        );
        GroupShape { batch: x[0], channels: x[1], positions: x[2], groups }
    }

    fn channels_per_group(&self) -> usize {
        self.channels / self.groups
    }

    fn group_len(&self) -> usize {
        self.channels_per_group() * self.positions
    }

    /// Groups per task: as many as keep a task near [`VALUES_PER_GROUPS_TASK`] values, at least one.
    fn groups_per_task(&self) -> usize {
        (VALUES_PER_GROUPS_TASK / self.group_len().max(1)).max(1)
    }
}

/// The kernels on plain slices.
mod cpu {
    use super::{EPSILON, GroupShape, for_each_chunk, sum_in_order, zeroed};
    use crate::conv::{rectified, rectifier_passes};
    use crate::simd::{Simd, WithSimd, with_best_simd};

    /// The sum of `f(a[i], b[i])` in f64, in eight interleaved running sums added at the end: a
    /// fixed order the compiler can vectorise (one running sum waits on each addition).
    #[inline(always)]
    fn sum_of(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f64) -> f64 {
        let (a, b) = (a.chunks_exact(8), b.chunks_exact(8));
        let rest: f64 = a.remainder().iter().zip(b.remainder()).map(|(&x, &y)| f(x, y)).sum();
        let mut lanes = [0.0f64; 8];
        for (a, b) in a.zip(b) {
            for (lane, (&x, &y)) in lanes.iter_mut().zip(a.iter().zip(b)) {
                *lane += f(x, y);
            }
        }
        lanes.iter().sum::<f64>() + rest
    }

    /// The mean and the reciprocal standard deviation of one group's values (two passes, in
    /// f64: the variance of values far from zero loses nothing to cancellation).
    #[inline(always)]
    fn statistics(values: &[f32]) -> (f32, f32) {
        let n = values.len().max(1) as f64;
        let mean = sum_of(values, values, |v, _| f64::from(v)) / n;
        let variance = sum_of(values, values, |v, _| (f64::from(v) - mean).powi(2)) / n;
        (mean as f32, (1.0 / (variance + f64::from(EPSILON)).sqrt()) as f32)
    }

    /// One output of a group: `v` normalised by the group's statistics, scaled and shifted by its
    /// channel's. The forward and the rectified backward both compute it here, so that they agree
    /// to the bit.
    #[inline(always)]
    fn output_of(v: f32, mean: f32, scale: f32, beta: f32) -> f32 {
        (v - mean) * scale + beta
    }

    /// One group forward: its statistics, and `output` (`x`'s channels, `positions` each)
    /// normalised, scaled and shifted by the group's `gamma` and `beta`, and with `rectify`
    /// rectified.
    #[inline(always)]
    fn normalise_group(
        x: &[f32],
        (gamma, beta): (&[f32], &[f32]),
        positions: usize,
        rectify: bool,
        output: &mut [f32],
    ) -> (f32, f32) {
        let (mean, inverse_std) = statistics(x);
        for ((output, x), (gamma, &beta)) in
            output.chunks_exact_mut(positions).zip(x.chunks_exact(positions)).zip(gamma.iter().zip(beta))
        {
            let scale = inverse_std * gamma;
            // Two loops rather than a test per value, so that each is vectorised.
            if rectify {
                for (o, &v) in output.iter_mut().zip(x) {
                    *o = rectified(output_of(v, mean, scale, beta));
                }
            } else {
                for (o, &v) in output.iter_mut().zip(x) {
                    *o = output_of(v, mean, scale, beta);
                }
            }
        }
        (mean, inverse_std)
    }

    /// One task of [`forward`]: consecutive groups from `first_group`, run by
    /// [`with_best_simd`] so that their loops are vectorised for this CPU (the same numbers on
    /// every instruction set: the compiler keeps their order of operations).
    struct ForwardTask<'a> {
        s: &'a GroupShape,
        first_group: usize,
        x: &'a [f32],
        gamma: &'a [f32],
        beta: &'a [f32],
        rectify: bool,
        output: &'a mut [f32],
        mean: &'a mut [f32],
        inverse_std: &'a mut [f32],
    }

    impl WithSimd for ForwardTask<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let ForwardTask { s, first_group, x, gamma, beta, rectify, output, mean, inverse_std } = self;
            let (group_len, per_group) = (s.group_len(), s.channels_per_group());
            for (j, output) in output.chunks_exact_mut(group_len.max(1)).enumerate() {
                let group = first_group + j;
                let channels = group % s.groups * per_group..(group % s.groups + 1) * per_group;
                let x = &x[group * group_len..][..group_len];
                let affine = (&gamma[channels.clone()], &beta[channels]);
                (mean[j], inverse_std[j]) = normalise_group(x, affine, s.positions, rectify, output);
            }
        }
    }

    /// The output, and each group's mean and reciprocal standard deviation (`[batch * groups]`).
    pub(super) fn forward(
        s: &GroupShape,
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        rectify: bool,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (group_len, per_task) = (s.group_len(), s.groups_per_task());
        let mut output = zeroed(x.len());
        let mut mean = vec![0.0f32; s.batch * s.groups];
        let mut inverse_std = vec![0.0f32; s.batch * s.groups];
        let mut tasks: Vec<_> = output
            .chunks_mut((per_task * group_len).max(1))
            .zip(mean.chunks_mut(per_task).zip(inverse_std.chunks_mut(per_task)))
            .collect();
        for_each_chunk(&mut tasks, 1, |task, parts| {
            let (output, (mean, inverse_std)) = &mut parts[0];
            let first_group = task * per_task;
            with_best_simd(ForwardTask { s, first_group, x, gamma, beta, rectify, output, mean, inverse_std });
        });
        (output, mean, inverse_std)
    }

    /// One group backward: `x_grad` from the group's input `x`, the output's gradient `grad`,
    /// the group's `gamma` and statistics; per channel, the sums of `grad` and of `grad` times
    /// the normalised input (the channel's parts of beta's and gamma's gradients).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn group_gradient(
        x: &[f32],
        grad: &[f32],
        gamma: &[f32],
        (mean, inverse_std): (f32, f32),
        positions: usize,
        x_grad: &mut [f32],
        grad_sums: &mut [f64],
        weighted_sums: &mut [f64],
    ) {
        // With d = grad * gamma (the normalised input's gradient) and n the normalised input:
        // x_grad = (d - mean(d) - n * mean(d * n)) * inverse_std over the group.
        let (mut mean_d, mut mean_dn) = (0.0f64, 0.0f64);
        for (c, (x, g)) in x.chunks_exact(positions).zip(grad.chunks_exact(positions)).enumerate() {
            grad_sums[c] = sum_of(g, g, |g, _| f64::from(g));
            weighted_sums[c] = sum_of(x, g, |x, g| f64::from(x - mean) * f64::from(g)) * f64::from(inverse_std);
            mean_d += f64::from(gamma[c]) * grad_sums[c];
            mean_dn += f64::from(gamma[c]) * weighted_sums[c];
        }
        let n = x.len().max(1) as f64;
        let (mean_d, mean_dn) = ((mean_d / n) as f32, (mean_dn / n) as f32);
        for ((x_grad, (x, g)), &gamma) in x_grad
            .chunks_exact_mut(positions)
            .zip(x.chunks_exact(positions).zip(grad.chunks_exact(positions)))
            .zip(gamma)
        {
            for (d, (&x, &g)) in x_grad.iter_mut().zip(x.iter().zip(g)) {
                *d = (g * gamma - mean_d - (x - mean) * inverse_std * mean_dn) * inverse_std;
            }
        }
    }

    /// The gradient that reaches a rectified group's outputs: `grad` where the output,
    /// recomputed from `x` as the forward computed it, passed ReLU, else zero (ReLU's gradient,
    /// [`crate::conv::CnnKernels::rectify_grad`]), into `passed`.
    #[inline(always)]
    fn rectifier_gradient(
        x: &[f32],
        grad: &[f32],
        (gamma, beta): (&[f32], &[f32]),
        (mean, inverse_std): (f32, f32),
        positions: usize,
        passed: &mut [f32],
    ) {
        for ((passed, (x, grad)), (gamma, &beta)) in passed
            .chunks_exact_mut(positions)
            .zip(x.chunks_exact(positions).zip(grad.chunks_exact(positions)))
            .zip(gamma.iter().zip(beta))
        {
            let scale = inverse_std * gamma;
            for (p, (&v, &g)) in passed.iter_mut().zip(x.iter().zip(grad)) {
                *p = if rectifier_passes(output_of(v, mean, scale, beta)) { g } else { 0.0 };
            }
        }
    }

    /// One task of [`backward`], as [`ForwardTask`] is of [`forward`].
    struct BackwardTask<'a> {
        s: &'a GroupShape,
        first_group: usize,
        x: &'a [f32],
        affine: (&'a [f32], &'a [f32]),
        statistics: (&'a [f32], &'a [f32]),
        grad: &'a [f32],
        rectified: bool,
        x_grad: &'a mut [f32],
        grad_sums: &'a mut [f64],
        weighted_sums: &'a mut [f64],
    }

    impl WithSimd for BackwardTask<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let BackwardTask {
                s,
                first_group,
                x,
                affine: (gamma, beta),
                statistics: (mean, inverse_std),
                grad,
                rectified,
                x_grad,
                grad_sums,
                weighted_sums,
            } = self;
            let (group_len, per_group) = (s.group_len(), s.channels_per_group());
            // A rectified group's gradient after ReLU's, one group at a time (it stays in cache).
            let mut passed = vec![0.0f32; if rectified { group_len } else { 0 }];
            for (j, x_grad) in x_grad.chunks_exact_mut(group_len.max(1)).enumerate() {
                let group = first_group + j;
                let values = group * group_len..(group + 1) * group_len;
                let sums = j * per_group..(j + 1) * per_group;
                let channels = group % s.groups * per_group..(group % s.groups + 1) * per_group;
                let (x, statistics) = (&x[values.clone()], (mean[group], inverse_std[group]));
                let grad = if rectified {
                    let affine = (&gamma[channels.clone()], &beta[channels.clone()]);
                    rectifier_gradient(x, &grad[values], affine, statistics, s.positions, &mut passed);
                    &passed[..]
                } else {
                    &grad[values]
                };
                group_gradient(
                    x,
                    grad,
                    &gamma[channels],
                    statistics,
                    s.positions,
                    x_grad,
                    &mut grad_sums[sums.clone()],
                    &mut weighted_sums[sums],
                );
            }
        }
    }

    /// The gradients with respect to the input, gamma and beta (`affine`), given the groups'
    /// means and reciprocal standard deviations (`statistics`) and, with `rectified`, the
    /// output's gradient before ReLU's.
    pub(super) fn backward(
        s: &GroupShape,
        x: &[f32],
        affine: (&[f32], &[f32]),
        statistics: (&[f32], &[f32]),
        grad: &[f32],
        rectified: bool,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (group_len, per_task, per_group) = (s.group_len(), s.groups_per_task(), s.channels_per_group());
        let mut x_grad = zeroed(x.len());
        // Per sample and channel, the parts of beta's and gamma's gradients.
        let mut grad_sums = vec![0.0f64; s.batch * s.channels];
        let mut weighted_sums = vec![0.0f64; s.batch * s.channels];
        let mut tasks: Vec<_> = x_grad
            .chunks_mut((per_task * group_len).max(1))
            .zip(grad_sums.chunks_mut(per_task * per_group).zip(weighted_sums.chunks_mut(per_task * per_group)))
            .collect();
        for_each_chunk(&mut tasks, 1, |task, parts| {
            let (x_grad, (grad_sums, weighted_sums)) = &mut parts[0];
            let first_group = task * per_task;
            with_best_simd(BackwardTask {
                s,
                first_group,
                x,
                affine,
                statistics,
                grad,
                rectified,
                x_grad,
                grad_sums,
                weighted_sums,
            });
        });
        let by_sample = |sums: &[f64]| -> Vec<f32> {
            let total = sum_in_order(sums.chunks_exact(s.channels.max(1)));
            // An empty batch has no parts: zero gradients.
            if total.is_empty() { vec![0.0; s.channels] } else { total.into_iter().map(|v| v as f32).collect() }
        };
        (x_grad, by_sample(&weighted_sums), by_sample(&grad_sums))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::tests::{assert_close, bits_of};
    use crate::rng::Rng;
    use burn::tensor::{Device, Distribution};

    /// Uniform values in [offset - 1, offset + 1).
    fn random<const D: usize>(shape: [usize; D], offset: f32, rng: &mut Rng, device: &Device) -> Tensor<D> {
        crate::conv::tests::random(shape, rng, device) + offset
    }

    /// What the model computed before this kernel: burn's tensor operations, differentiated by
    /// burn's autodiff.
    fn burns(x: Tensor<3>, groups: usize, gamma: Tensor<1>, beta: Tensor<1>) -> Tensor<3> {
        let [b, c, rest] = x.dims();
        let grouped = x.reshape([b, groups, (c / groups) * rest]);
        let mean = grouped.clone().mean_dim(2);
        let centred = grouped - mean;
        let var = centred.clone().square().mean_dim(2);
        let normed = (centred / (var + EPSILON).sqrt()).reshape([b, c, rest]);
        normed * gamma.reshape([1, c, 1]) + beta.reshape([1, c, 1])
    }

    /// Ours against burn's on the autodiff device given (the CPU's kernel or the composed
    /// arithmetic of the default bodies).
    fn compare_with_burns(device: &Device) {
        let mut rng = Rng::new(11);
        // (batch, channels, positions, groups, offset): one task of many groups, several tasks
        // with a last partial one (41 groups per task), one group per task (a group of 17 600
        // values), LayerNorm's shape (one group, one position), one channel per group, inputs
        // around 10 (cancellation in the variance), a sample of one. Not around 100: f32's
        // spacing there (8e-6) is 1e-5 of a group's spread, so both implementations round the
        // centred values at about this test's tolerance. The smallest group has 5 values: a
        // group of two has normalised values of exactly -1 and 1 and an input gradient that is
        // all cancellation, noise in f32 in either implementation.
        let cases = [
            (20, 16, 49, 8, 0.0),
            (3, 16, 784, 8, 0.0),
            (2, 16, 1100, 1, 0.0),
            (5, 6, 7, 3, 0.5),
            (7, 64, 1, 1, 0.0),
            (4, 8, 5, 8, 0.0),
            (2, 4, 9, 2, 10.0),
            (1, 2, 3, 1, 0.0),
        ];
        for (batch, channels, positions, groups, offset) in cases {
            let what = format!("x [{batch}, {channels}, {positions}], {groups} groups, offset {offset}");
            let x = random([batch, channels, positions], offset, &mut rng, device).require_grad();
            let gamma = random([channels], 1.0, &mut rng, device).require_grad();
            let beta = random([channels], 0.0, &mut rng, device).require_grad();
            let ours = group_norm(x.clone(), groups, gamma.clone(), beta.clone());
            let theirs = burns(x.clone(), groups, gamma.clone(), beta.clone());
            let r = Tensor::random(theirs.dims(), Distribution::Uniform(-1.0, 1.0), device);
            let our_grads = (ours.clone() * r.clone()).sum().backward();
            let their_grads = (theirs.clone() * r).sum().backward();
            assert_close(ours, theirs, &format!("{what}: output"));
            assert_close(x.grad(&our_grads).expect("x"), x.grad(&their_grads).expect("x"), &format!("{what}: dx"));
            assert_close(
                gamma.grad(&our_grads).expect("gamma"),
                gamma.grad(&their_grads).expect("gamma"),
                &format!("{what}: dgamma"),
            );
            assert_close(
                beta.grad(&our_grads).expect("beta"),
                beta.grad(&their_grads).expect("beta"),
                &format!("{what}: dbeta"),
            );
        }
    }

    #[test]
    fn the_cpu_group_norm_and_its_gradients_are_burns() {
        compare_with_burns(&Device::flex().autodiff());
    }

    /// The output and the gradients of x, gamma and beta, as f32 vectors, of `norm` on the given
    /// inputs, its output weighted by `r` and summed.
    fn outputs_and_gradients(
        norm: impl Fn(Tensor<3>, Tensor<1>, Tensor<1>) -> Tensor<3>,
        (x, gamma, beta): (&Tensor<3>, &Tensor<1>, &Tensor<1>),
        r: &Tensor<3>,
    ) -> [Vec<f32>; 4] {
        let (x, gamma, beta) = (x.clone().require_grad(), gamma.clone().require_grad(), beta.clone().require_grad());
        let out = norm(x.clone(), gamma.clone(), beta.clone());
        let grads = (out.clone() * r.clone()).sum().backward();
        let read = |t: Tensor<3>| t.into_data().try_to_vec::<f32>().expect("f32");
        let read1 = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().expect("f32");
        [
            read(out),
            read(x.grad(&grads).expect("x")),
            read1(gamma.grad(&grads).expect("gamma")),
            read1(beta.grad(&grads).expect("beta")),
        ]
    }

    /// The norm with ReLU folded in gives, on the CPU, the numbers of the norm followed by our
    /// ReLU to the bit: the output and all three gradients, with about half the outputs
    /// rectified, and a NaN input in one sample's first group (whose outputs ReLU keeps, and
    /// whose gradient it passes).
    #[test]
    fn the_rectified_group_norm_is_the_norm_then_relu_to_the_bit() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(5);
        for (batch, channels, positions, groups) in [(9, 16, 49, 8), (3, 32, 196, 8), (5, 64, 1, 1), (2, 6, 7, 3)] {
            let x = random([batch, channels, positions], 0.0, &mut rng, &device)
                .slice_assign([0..1, 0..1, 0..1], Tensor::full([1, 1, 1], f32::NAN, &device));
            let (gamma, beta) =
                (random([channels], 1.0, &mut rng, &device), random([channels], 0.0, &mut rng, &device));
            let r = random([batch, channels, positions], 0.0, &mut rng, &device);
            let inputs = (&x, &gamma, &beta);
            let fused = outputs_and_gradients(|x, g, b| group_norm_then(x, groups, g, b, true), inputs, &r);
            let apart = outputs_and_gradients(|x, g, b| crate::conv::relu(group_norm(x, groups, g, b)), inputs, &r);
            let what = format!("[{batch}, {channels}, {positions}] in {groups} groups");
            let zeroed = fused[0].iter().filter(|&&v| v == 0.0).count();
            assert!(zeroed > fused[0].len() / 4, "{what}: only {zeroed} of {} outputs rectified", fused[0].len());
            assert!(fused[0][0].is_nan() && fused[1][0].is_nan(), "{what}: the NaN group lost its NaN");
            for (name, (f, a)) in ["output", "dx", "dgamma", "dbeta"].iter().zip(fused.iter().zip(&apart)) {
                assert_eq!(bits_of(f), bits_of(a), "{what}: {name} differs");
            }
        }
    }

    #[test]
    fn the_cpu_group_norm_gives_the_same_numbers_on_one_thread_and_many() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(3);
        let x = random([33, 16, 196], 0.0, &mut rng, &device).require_grad();
        let gamma = random([16], 1.0, &mut rng, &device).require_grad();
        let beta = random([16], 0.0, &mut rng, &device).require_grad();
        let r = random([33, 16, 196], 0.0, &mut rng, &device);
        let run = || {
            let out = group_norm(x.clone(), 8, gamma.clone(), beta.clone());
            let grads = (out.clone() * r.clone()).sum().backward();
            let per_channel = [gamma.grad(&grads).expect("gamma"), beta.grad(&grads).expect("beta")];
            [out, x.grad(&grads).expect("x")]
                .map(|t| t.into_data().try_to_vec::<f32>().expect("f32"))
                .into_iter()
                .chain(per_channel.map(|t| t.into_data().try_to_vec::<f32>().expect("f32")))
                .collect::<Vec<_>>()
        };
        let many = run();
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a pool").install(run);
        assert_eq!(one, many);
    }
}
