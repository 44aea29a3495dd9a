//! The CNN's convolution (any stride, the same zero padding on every side), its 2x2 max-pool
//! and ReLU (every model's; also of a residual block's sum, in the sum's one pass), with their
//! backward passes, behind one function each. On the CPU (flex) backend
//! our own kernels run; on the GPU backends burn's (the trait's default bodies), so the GPU path
//! is what it was.
//!
//! Why our own on the CPU: burn's flex backend ran the CNN at 0.4-0.6x PyTorch's CPU speed,
//! and slower per sample as the batch grew (docs/benchmarks.md): its pool kept indices through
//! a generic 3-D path, its weight gradient was a convolution over swapped dimensions with
//! copies, and its unfolded inputs outgrew the caches. Here every operation works on a task of
//! a few samples, one sample at a time in a buffer each thread keeps, so it is read from cache.
//! The forward pass and the weight gradient run on SIMD kernels of our own that read the
//! zero-padded image in place (`direct`), and at stride 1 the input gradient is itself such a
//! convolution (of the output's gradient with the turned kernel). At other strides (the
//! ResNet's two downsampling convolutions) the input gradient is one matrix product per sample
//! (gemm, called directly) whose result, the unfolded image's gradient (`[taps, pixels]`), is
//! added back into the image. The output comes out in NCHW and the output's gradient is read
//! in place.
//!
//! Determinism: the tasks' size depends only on the shapes, never on the number of threads,
//! and the weight and bias gradients add the samples' and then the tasks' partial sums in
//! order, so one thread and many give the same numbers. Our kernels give the same numbers with
//! AVX2 and AVX-512 (`direct`); gemm picks its kernels and its blocking (from the caches' sizes)
//! by the machine, so another CPU may give other last digits where it runs (the input gradient
//! at strides above 1, and the other layers' matrix products). The same machine gives the same
//! numbers.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ActivationOps, FloatTensorOps, ModuleOps};
#[cfg(gpu)]
use burn::backend::wgpu::CubeBackend;
use burn::backend::{
    Backend, Dispatch, Flex, TensorMetadata, backend_extension, get_or_init_device_settings, tensor::FloatTensor,
    tensor::IntTensor,
};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Shape, Tensor, TensorData};
pub(crate) use cpu::{VALUES_PER_TASK, for_each_chunk, on_the_pool, sum_in_order, zeroed};

/// A task takes as many samples as have unfolded inputs (`[taps, out_pixels]`) of this many
/// bytes in all (at least one): a measure of a sample's work, whether or not anything is
/// unfolded. It sets how the work is split among threads (and where their partial sums meet),
/// not the memory: a task of the ResNet's first stage is one sample, of its last four.
const UNFOLDED_BYTES_PER_TASK: usize = 512 * 1024;
/// Planes (sample x channel) per task of the pool.
const PLANES_PER_POOL_TASK: usize = 64;

#[backend_extension(Cube: cfg(gpu), Flex, Fusion: cfg(gpu), Autodiff)]
pub trait CnnKernels: Backend {
    /// `x: [batch, channels, h, w]` convolved with `weight: [out, channels, k, k]` at `stride`,
    /// `padding` zeros on every side, plus `bias: [out]`.
    #[fusion(default)]
    fn conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, Some(bias), options(stride, padding))
    }

    /// The gradient of [`CnnKernels::conv`] with respect to `x`, given the output's.
    #[fusion(default)]
    fn conv_input_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, weight, output_grad, options(stride, padding))
    }

    /// The gradient with respect to the weight.
    #[fusion(default)]
    fn conv_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, weight, output_grad, options(stride, padding))
    }

    /// The gradient with respect to the bias: the output's gradient summed per channel.
    #[fusion(default)]
    fn conv_bias_grad(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv2d_bias_backward(x, bias, output_grad)
    }

    /// ReLU of a tensor of any shape: `x` where it is above zero or NaN, else zero (burn's
    /// `relu`, whose CPU kernel runs on one thread).
    #[fusion(default)]
    fn rectify(x: FloatTensor<Self>) -> FloatTensor<Self> {
        <Self as ActivationOps<Self>>::relu(x)
    }

    /// [`CnnKernels::rectify`]'s input gradient from its `output`: `grad` where the output is
    /// above zero or NaN, else zero.
    #[fusion(default)]
    fn rectify_grad(output: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        <Self as ActivationOps<Self>>::relu_backward(output, grad)
    }

    /// ReLU of `a + b`, two tensors of one shape (a residual block's output added to its
    /// input): one pass over the activations instead of two.
    #[fusion(default)]
    fn add_rectify(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::rectify(Self::float_add(a, b))
    }

    /// 2x2 max-pool at stride 2 (a last odd row or column is dropped).
    #[fusion(default)]
    fn max_pool_2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], false)
    }

    /// The pool and, per output, which input it took (in the backend's own encoding, read only
    /// by [`CnnKernels::max_pool_2x2_grad`]).
    #[fusion(default)]
    fn max_pool_2x2_with_indices(x: FloatTensor<Self>) -> (FloatTensor<Self>, IntTensor<Self>) {
        let int_dtype = get_or_init_device_settings::<Self>(&x.device()).int_dtype;
        let pooled = Self::max_pool2d_with_indices(x, [2, 2], [2, 2], [0, 0], [1, 1], false, int_dtype);
        (pooled.output, pooled.indices)
    }

    /// The gradient of the pool with respect to `x`, given the output's and the indices.
    #[fusion(default)]
    fn max_pool_2x2_grad(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        indices: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::max_pool2d_with_indices_backward(x, [2, 2], [2, 2], [0, 0], [1, 1], false, output_grad, indices).x_grad
    }
}

/// burn's options for a square convolution without dilation or groups.
fn options(stride: usize, padding: usize) -> ConvOptions<2> {
    ConvOptions::new([stride; 2], [padding; 2], [1, 1], 1)
}

// ---------------------------------------------------------------------------------------------
// The functions the model calls.

/// See [`CnnKernels::conv`].
pub fn conv(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>, stride: usize, padding: usize) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as CnnKernels>::conv(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        stride,
        padding,
    ))
}

/// See [`CnnKernels::rectify`].
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as CnnKernels>::rectify(x.into_dispatch()))
}

/// See [`CnnKernels::add_rectify`]: `relu(a + b)`, the same numbers in one operation.
pub fn add_relu<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    assert_eq!(a.dims(), b.dims(), "add_relu: tensors of one shape");
    Tensor::from_dispatch(<Dispatch as CnnKernels>::add_rectify(a.into_dispatch(), b.into_dispatch()))
}

/// Where ReLU keeps its input (and passes its gradient): above zero, or NaN (burn's `relu`
/// zeroes what is at most zero, which NaN is not).
#[inline(always)]
pub(crate) fn rectifier_passes(value: f32) -> bool {
    value.is_nan() || value > 0.0
}

/// ReLU of one value: [`rectifier_passes`] keeps it, else zero.
#[inline(always)]
pub(crate) fn rectified(value: f32) -> f32 {
    if rectifier_passes(value) { value } else { 0.0 }
}

/// See [`CnnKernels::max_pool_2x2`].
pub fn max_pool_2x2(x: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as CnnKernels>::max_pool_2x2(x.into_dispatch()))
}

// ---------------------------------------------------------------------------------------------
// The GPU backends: burn's operations (the default bodies).

#[cfg(gpu)]
impl CnnKernels for CubeBackend {}

// ---------------------------------------------------------------------------------------------
// Autodiff: the backward steps call the inner backend's gradient kernels.

impl<B: Backend + CnnKernels, C: CheckpointStrategy> CnnKernels for Autodiff<B, C> {
    fn conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct ConvBackward;

        impl<B: Backend + CnnKernels> Backward<B, 3> for ConvBackward {
            /// The input, the weight, the bias, the stride and the padding.
            type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, usize, usize);

            fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
                let [node_x, node_weight, node_bias] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x, weight, bias, stride, padding) = ops.state;
                if let Some(node) = node_x {
                    let g = B::conv_input_grad(x.clone(), weight.clone(), grad.clone(), stride, padding);
                    grads.register::<B>(node.id, g);
                }
                if let Some(node) = node_weight {
                    let g = B::conv_weight_grad(x.clone(), weight, grad.clone(), stride, padding);
                    grads.register::<B>(node.id, g);
                }
                if let Some(node) = node_bias {
                    grads.register::<B>(node.id, B::conv_bias_grad(x, bias, grad));
                }
            }
        }

        match ConvBackward.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (x, weight, bias) = (x.into_primitive(), weight.into_primitive(), bias.into_primitive());
                let output = B::conv(x.clone(), weight.clone(), bias.clone(), stride, padding);
                prep.finish((x, weight, bias, stride, padding), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                stride,
                padding,
            )),
        }
    }

    fn rectify(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct RectifyBackward;

        impl<B: Backend + CnnKernels> Backward<B, 1> for RectifyBackward {
            /// The output.
            type State = FloatTensor<B>;

            fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
                let [node_x] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, B::rectify_grad(ops.state, grad));
                }
            }
        }

        match RectifyBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = B::rectify(x.into_primitive());
                prep.finish(output.clone(), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::rectify(x.into_primitive())),
        }
    }

    fn add_rectify(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct AddRectifyBackward;

        impl<B: Backend + CnnKernels> Backward<B, 2> for AddRectifyBackward {
            /// The output.
            type State = FloatTensor<B>;

            fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
                let grad = grads.consume::<B>(&ops.node);
                // ReLU's gradient, which the sum hands to both of its terms.
                let passed = B::rectify_grad(ops.state, grad);
                match ops.parents {
                    [Some(a), Some(b)] => {
                        grads.register::<B>(a.id, passed.clone());
                        grads.register::<B>(b.id, passed);
                    }
                    [Some(node), None] | [None, Some(node)] => grads.register::<B>(node.id, passed),
                    [None, None] => {}
                }
            }
        }

        match AddRectifyBackward.prepare::<C>([a.node(), b.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = B::add_rectify(a.into_primitive(), b.into_primitive());
                prep.finish(output.clone(), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::add_rectify(a.into_primitive(), b.into_primitive())),
        }
    }

    fn max_pool_2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct MaxPool2x2Backward;

        impl<B: Backend + CnnKernels> Backward<B, 1> for MaxPool2x2Backward {
            /// The input and the indices of the maxima.
            type State = (FloatTensor<B>, IntTensor<B>);

            fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
                let [node_x] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x, indices) = ops.state;
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, B::max_pool_2x2_grad(x, grad, indices));
                }
            }
        }

        match MaxPool2x2Backward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                let (output, indices) = B::max_pool_2x2_with_indices(x.clone());
                prep.finish((x, indices), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::max_pool_2x2(x.into_primitive())),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The CPU (flex) backend: our kernels for float32, burn's for other types.

impl CnnKernels for Flex {
    fn conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        if !all_f32(&[&x, &weight, &bias]) {
            return Self::conv2d(x, weight, Some(bias), options(stride, padding));
        }
        let shape = ConvShape::new(&x, &weight, stride, padding);
        let (x, weight, bias) = (contiguous(x), contiguous(weight), contiguous(bias));
        let output = cpu::conv_forward(&shape, f32s(&x), f32s(&weight), Some(f32s(&bias)));
        tensor(output, shape.output_shape())
    }

    fn conv_input_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        if !all_f32(&[&x, &weight, &output_grad]) {
            return Self::conv2d_x_backward(x, weight, output_grad, options(stride, padding));
        }
        let shape = ConvShape::new(&x, &weight, stride, padding);
        let (weight, grad) = (contiguous(weight), contiguous(output_grad));
        let input_grad = match shape.transposed() {
            Some(transposed) => cpu::conv_forward(&transposed, f32s(&grad), &cpu::flipped(&shape, f32s(&weight)), None),
            None => cpu::conv_input_grad(&shape, f32s(&weight), f32s(&grad)),
        };
        tensor(input_grad, shape.input_shape())
    }

    fn conv_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        if !all_f32(&[&x, &weight, &output_grad]) {
            return Self::conv2d_weight_backward(x, weight, output_grad, options(stride, padding));
        }
        let shape = ConvShape::new(&x, &weight, stride, padding);
        let (x, grad) = (contiguous(x), contiguous(output_grad));
        let weight_grad = cpu::conv_weight_grad(&shape, f32s(&x), f32s(&grad));
        tensor(weight_grad, shape.weight_shape())
    }

    fn conv_bias_grad(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        if !all_f32(&[&output_grad]) {
            return Self::conv2d_bias_backward(x, bias, output_grad);
        }
        let dims = output_grad.layout().shape().clone();
        let grad = contiguous(output_grad);
        let bias_grad = cpu::channel_sums(f32s(&grad), dims[0], dims[1], dims[2] * dims[3]);
        tensor(bias_grad, Shape::new([dims[1]]))
    }

    fn rectify(x: FloatTensor<Self>) -> FloatTensor<Self> {
        if !all_f32(&[&x]) {
            return <Self as ActivationOps<Self>>::relu(x);
        }
        let mut x = contiguous(x);
        // In place when nothing else holds the input, as burn's ReLU: a new output beside it
        // raised the page's peak memory by one activation (half a megabyte over a default run).
        if let Some(values) = unique_f32s(&mut x) {
            cpu::map_in_place(values, rectified);
            return x;
        }
        let shape = x.layout().shape().clone();
        tensor(cpu::map(f32s(&x), rectified), shape)
    }

    fn rectify_grad(output: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        if !all_f32(&[&output, &grad]) {
            return <Self as ActivationOps<Self>>::relu_backward(output, grad);
        }
        let (output, mut grad) = (contiguous(output), contiguous(grad));
        let kept = |out: f32, g: f32| if rectifier_passes(out) { g } else { 0.0 };
        if let Some(values) = unique_f32s(&mut grad) {
            cpu::zip_in_place(values, f32s(&output), |g, out| kept(out, g));
            return grad;
        }
        let shape = grad.layout().shape().clone();
        tensor(cpu::zip_map(f32s(&output), f32s(&grad), kept), shape)
    }

    fn add_rectify(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        assert_eq!(a.layout().shape(), b.layout().shape(), "add_rectify: tensors of one shape");
        if !all_f32(&[&a, &b]) {
            return Self::rectify(Self::float_add(a, b));
        }
        let (mut a, mut b) = (contiguous(a), contiguous(b));
        // Into whichever term nothing else holds (a block's output, usually), as burn's sum
        // does: the sum is the same either way round.
        let sum = |x: f32, y: f32| rectified(x + y);
        if let Some(values) = unique_f32s(&mut b) {
            cpu::zip_in_place(values, f32s(&a), |y, x| sum(x, y));
            return b;
        }
        if let Some(values) = unique_f32s(&mut a) {
            cpu::zip_in_place(values, f32s(&b), sum);
            return a;
        }
        let shape = a.layout().shape().clone();
        tensor(cpu::zip_map(f32s(&a), f32s(&b), sum), shape)
    }

    fn max_pool_2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::max_pool_2x2_with_indices(x).0
    }

    fn max_pool_2x2_with_indices(x: FloatTensor<Self>) -> (FloatTensor<Self>, IntTensor<Self>) {
        if !all_f32(&[&x]) {
            let int_dtype = get_or_init_device_settings::<Self>(&x.device()).int_dtype;
            let pooled = Self::max_pool2d_with_indices(x, [2, 2], [2, 2], [0, 0], [1, 1], false, int_dtype);
            return (pooled.output, pooled.indices);
        }
        let dims = x.layout().shape().clone();
        let x = contiguous(x);
        let (output, corners) = cpu::max_pool_2x2(f32s(&x), dims[0] * dims[1], dims[2], dims[3]);
        let pooled = Shape::new([dims[0], dims[1], dims[2] / 2, dims[3] / 2]);
        (tensor(output, pooled.clone()), FlexTensor::from_data(TensorData::new(corners, pooled)))
    }

    fn max_pool_2x2_grad(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        indices: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        if indices.dtype() != DType::U8 {
            // Indices from burn's pool (a tensor type other than float32 took that path).
            return Self::max_pool2d_with_indices_backward(
                x,
                [2, 2],
                [2, 2],
                [0, 0],
                [1, 1],
                false,
                output_grad,
                indices,
            )
            .x_grad;
        }
        let dims = x.layout().shape().clone();
        let (grad, indices) = (contiguous(output_grad), contiguous(indices));
        let input_grad =
            cpu::max_pool_2x2_grad(f32s(&grad), indices.storage::<u8>(), dims[0] * dims[1], dims[2], dims[3]);
        tensor(input_grad, dims)
    }
}

/// The shapes of one convolution.
#[derive(Clone, Copy, Debug)]
struct ConvShape {
    batch: usize,
    channels: usize,
    height: usize,
    width: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    out_height: usize,
    out_width: usize,
}

impl ConvShape {
    fn new(x: &FlexTensor, weight: &FlexTensor, stride: usize, padding: usize) -> Self {
        let (x, w) = (x.layout().shape(), weight.layout().shape());
        assert_eq!(x[1], w[1], "conv: input channels {} vs weight channels {}", x[1], w[1]);
        assert_eq!(w[2], w[3], "conv: square kernels only");
        assert!(stride > 0, "conv: a stride of 0");
        let out = |size: usize| {
            (size + 2 * padding).checked_sub(w[2]).expect("conv: kernel larger than the padded input") / stride + 1
        };
        ConvShape {
            batch: x[0],
            channels: x[1],
            height: x[2],
            width: x[3],
            out_channels: w[0],
            kernel: w[2],
            stride,
            padding,
            out_height: out(x[2]),
            out_width: out(x[3]),
        }
    }

    /// Rows of the unfolded input: one per (channel, kernel row, kernel column).
    fn taps(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }

    fn in_pixels(&self) -> usize {
        self.height * self.width
    }

    fn out_pixels(&self) -> usize {
        self.out_height * self.out_width
    }

    fn sample_len(&self) -> usize {
        self.channels * self.in_pixels()
    }

    /// The unfolded input of one sample, `[taps, out_pixels]`.
    fn unfolded_len(&self) -> usize {
        self.taps() * self.out_pixels()
    }

    /// Samples per task: as many as keep the task's unfolded inputs (counted, not necessarily
    /// made) within
    /// [`UNFOLDED_BYTES_PER_TASK`], at least one.
    fn samples_per_task(&self) -> usize {
        let per_sample = self.unfolded_len() * std::mem::size_of::<f32>();
        (UNFOLDED_BYTES_PER_TASK / per_sample.max(1)).clamp(1, self.batch.max(1))
    }

    /// The convolution whose output is this one's input gradient, where there is one: at stride
    /// 1, the output's gradient convolved with the kernel turned by 180 degrees and its channel
    /// axes swapped ([`cpu::flipped`]), padded by `kernel - 1 - padding`.
    fn transposed(&self) -> Option<ConvShape> {
        let padding = (self.kernel - 1).checked_sub(self.padding).filter(|_| self.stride == 1)?;
        Some(ConvShape {
            batch: self.batch,
            channels: self.out_channels,
            height: self.out_height,
            width: self.out_width,
            out_channels: self.channels,
            kernel: self.kernel,
            stride: 1,
            padding,
            out_height: self.height,
            out_width: self.width,
        })
    }

    fn input_shape(&self) -> Shape {
        Shape::new([self.batch, self.channels, self.height, self.width])
    }

    fn output_shape(&self) -> Shape {
        Shape::new([self.batch, self.out_channels, self.out_height, self.out_width])
    }

    fn weight_shape(&self) -> Shape {
        Shape::new([self.out_channels, self.channels, self.kernel, self.kernel])
    }
}

pub(crate) fn all_f32(tensors: &[&FlexTensor]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

pub(crate) fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.is_contiguous() && t.layout().start_offset() == 0 { t } else { t.to_contiguous() }
}

pub(crate) fn f32s(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous float32 tensor")
}

/// The values of a contiguous float32 tensor to overwrite, when no other tensor shares its
/// storage (`None` when one does).
pub(crate) fn unique_f32s(t: &mut FlexTensor) -> Option<&mut [f32]> {
    if !t.is_unique() {
        return None;
    }
    let len = t.layout().num_elements();
    Some(&mut t.storage_mut::<f32>()[..len])
}

pub(crate) fn tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

mod direct;

/// The kernels on plain slices (row-major, NCHW).
mod cpu {
    use super::{ConvShape, PLANES_PER_POOL_TASK, direct};
    use crate::simd::with_best_simd;
    use std::cell::RefCell;

    /// Runs `task(index, chunk)` on consecutive `chunk_len`-long chunks of `out`, on rayon's
    /// threads natively (wasm32 has none).
    pub(crate) fn for_each_chunk<T: Send>(
        out: &mut [T],
        chunk_len: usize,
        task: impl Fn(usize, &mut [T]) + Sync + Send,
    ) {
        let chunk_len = chunk_len.max(1);
        #[cfg(not(target_arch = "wasm32"))]
        {
            use rayon::prelude::*;
            out.par_chunks_mut(chunk_len).enumerate().for_each(|(i, chunk)| task(i, chunk));
        }
        #[cfg(target_arch = "wasm32")]
        out.chunks_mut(chunk_len).enumerate().for_each(|(i, chunk)| task(i, chunk));
    }

    /// Floats per task of the element-wise maps, of [`zeroed`] and of the copy of a batch's rows
    /// (`step.rs`): below this a task costs more than it saves.
    pub(crate) const VALUES_PER_TASK: usize = 1 << 16;

    /// Whether work over `len` floats goes to rayon's threads: natively from two tasks' worth
    /// (with every call handed to the pool, the bench's MLP and CNN at batch 32 ran at
    /// 0.91-1.01x their rate before, docs/benchmarks.md); never on wasm32, which has none.
    pub(crate) fn on_the_pool(len: usize) -> bool {
        cfg!(not(target_arch = "wasm32")) && len >= 2 * VALUES_PER_TASK
    }

    /// `len` zeros for a kernel's output, written on rayon's threads natively: zeroed on the
    /// calling thread (`vec![0.0; len]`), an output of a ResNet's step was written while the
    /// other threads waited (`memset` and the page faults of fresh memory were a third of what
    /// ran on one thread alone, `perf`).
    pub(crate) fn zeroed(len: usize) -> Vec<f32> {
        #[cfg(not(target_arch = "wasm32"))]
        if on_the_pool(len) {
            use rayon::prelude::*;
            return (0..len).into_par_iter().with_min_len(VALUES_PER_TASK).map(|_| 0.0).collect();
        }
        vec![0.0; len]
    }

    /// `f` of each value, on rayon's threads natively.
    pub(super) fn map(values: &[f32], f: impl Fn(f32) -> f32 + Sync + Send) -> Vec<f32> {
        #[cfg(not(target_arch = "wasm32"))]
        if on_the_pool(values.len()) {
            use rayon::prelude::*;
            return values.par_iter().with_min_len(VALUES_PER_TASK).map(|&v| f(v)).collect();
        }
        values.iter().map(|&v| f(v)).collect()
    }

    /// Each value replaced by `f` of it, on rayon's threads natively.
    pub(super) fn map_in_place(values: &mut [f32], f: impl Fn(f32) -> f32 + Sync + Send) {
        #[cfg(not(target_arch = "wasm32"))]
        if on_the_pool(values.len()) {
            use rayon::prelude::*;
            values.par_iter_mut().with_min_len(VALUES_PER_TASK).for_each(|v| *v = f(*v));
            return;
        }
        values.iter_mut().for_each(|v| *v = f(*v));
    }

    /// Each value of `a` replaced by `f` of it and the value of `b` beside it (equally many), on
    /// rayon's threads natively.
    pub(super) fn zip_in_place(a: &mut [f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync + Send) {
        assert_eq!(a.len(), b.len(), "zip_in_place: {} and {} values", a.len(), b.len());
        #[cfg(not(target_arch = "wasm32"))]
        if on_the_pool(a.len()) {
            use rayon::prelude::*;
            a.par_iter_mut().zip(b).with_min_len(VALUES_PER_TASK).for_each(|(x, &y)| *x = f(*x, y));
            return;
        }
        a.iter_mut().zip(b).for_each(|(x, &y)| *x = f(*x, y));
    }

    /// `f` of each pair of values (equally many), on rayon's threads natively.
    pub(super) fn zip_map(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync + Send) -> Vec<f32> {
        assert_eq!(a.len(), b.len(), "zip_map: {} and {} values", a.len(), b.len());
        #[cfg(not(target_arch = "wasm32"))]
        if on_the_pool(a.len()) {
            use rayon::prelude::*;
            return a.par_iter().zip(b).with_min_len(VALUES_PER_TASK).map(|(&x, &y)| f(x, y)).collect();
        }
        a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
    }

    /// `task(i)` for i in 0..count, the results in order of i.
    fn map_tasks<T: Send>(count: usize, task: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            use rayon::prelude::*;
            (0..count).into_par_iter().map(task).collect()
        }
        #[cfg(target_arch = "wasm32")]
        (0..count).map(task).collect()
    }

    thread_local! {
        /// This thread's buffer for a task's scratch (a padded image and its wide output, or its
        /// output's gradient pixel-major, or one sample's unfolded gradient), kept between
        /// calls: a fresh one per task was zeroed (and often faulted in) only to be overwritten,
        /// ~10% of a ResNet's step. Whoever takes it writes every entry it then reads.
        static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    }

    /// `work` on `len` floats of this thread's scratch (their values left from earlier use), or
    /// on a fresh buffer should the scratch be in use further up this thread's stack.
    fn with_scratch<R>(len: usize, work: impl FnOnce(&mut [f32]) -> R) -> R {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buffer) => {
                if buffer.len() < len {
                    buffer.resize(len, 0.0);
                }
                work(&mut buffer[..len])
            }
            Err(_) => work(&mut vec![0.0; len]),
        })
    }

    /// A matrix in a slice: entry (i, j) at `i * row_stride + j * col_stride`.
    #[derive(Clone, Copy)]
    struct Matrix<'a> {
        values: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    }

    impl<'a> Matrix<'a> {
        fn row_major(values: &'a [f32], rows: usize, cols: usize) -> Self {
            assert_eq!(values.len(), rows * cols, "a {rows}x{cols} matrix");
            Matrix { values, rows, cols, row_stride: cols, col_stride: 1 }
        }

        /// The same values read as the transpose, without a copy.
        fn transposed(self) -> Self {
            Matrix {
                rows: self.cols,
                cols: self.rows,
                row_stride: self.col_stride,
                col_stride: self.row_stride,
                ..self
            }
        }
    }

    /// `out = lhs x rhs`, `out` row-major `[lhs.rows, rhs.cols]`, on this thread. gemm's kernels
    /// with the arguments burn's flex `matmul` gives them for such a matrix (no accumulation into
    /// `out`, no threads of its own): the same products bit for bit, without the fresh zeroed
    /// buffer burn's returns each time. One of the workspace's three `unsafe` uses outside tests
    /// (the others: the allocator's option in cli/src/allocator.rs, the page's counting allocator
    /// in web/src/lib.rs): gemm takes raw pointers.
    #[allow(unsafe_code)]
    fn matmul_into(out: &mut [f32], lhs: Matrix, rhs: Matrix) {
        let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
        assert_eq!(k, rhs.rows, "matmul: {m}x{k} times {}x{n}", rhs.rows);
        assert_eq!(out.len(), m * n, "matmul: the output holds {m}x{n}");
        let last = |a: &Matrix| (a.rows.max(1) - 1) * a.row_stride + (a.cols.max(1) - 1) * a.col_stride;
        assert!(last(&lhs) < lhs.values.len().max(1) && last(&rhs) < rhs.values.len().max(1), "matmul: strides");
        if k == 0 || out.is_empty() {
            out.fill(0.0);
            return;
        }
        // SAFETY: the asserts keep every entry gemm reads (of m x k and k x n at their strides)
        // and writes (m x n, row-major) inside the three slices; `out` is borrowed mutably, so no
        // other reference sees it while gemm writes.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                out.as_mut_ptr(),
                1,
                n as isize,
                false,
                lhs.values.as_ptr(),
                lhs.col_stride as isize,
                lhs.row_stride as isize,
                rhs.values.as_ptr(),
                rhs.col_stride as isize,
                rhs.row_stride as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }

    /// Where row (c, ky, kx) of an unfolded image belongs: for output row `y` the input row
    /// `y * stride + ky - padding`, and for output columns `lo..hi` the input columns from
    /// `first_col` on, `stride` apart (outside them the padding's zeros).
    struct Tap {
        row_shift: isize,
        lo: usize,
        hi: usize,
        first_col: usize,
    }

    fn tap(s: &ConvShape, kernel_row: usize, kernel_col: usize) -> Tap {
        // Output column x reads input column x * stride + kernel_col - padding.
        let lo = s.padding.saturating_sub(kernel_col).div_ceil(s.stride).min(s.out_width);
        let hi = (s.width + s.padding).saturating_sub(kernel_col).div_ceil(s.stride).min(s.out_width).max(lo);
        Tap {
            row_shift: kernel_row as isize - s.padding as isize,
            lo,
            hi,
            // A tap that reads no column of a row (a stride above the image's width) reads from
            // its start, so that its empty slice stays inside the row.
            first_col: if hi > lo { lo * s.stride + kernel_col - s.padding } else { 0 },
        }
    }

    impl Tap {
        /// The input row for output row `y`, if inside the image.
        fn source_row(&self, y: usize, s: &ConvShape) -> Option<usize> {
            let row = (y * s.stride) as isize + self.row_shift;
            (0..s.height as isize).contains(&row).then_some(row as usize)
        }
    }

    /// Where each (ky, kx) reads, in row-major order of the kernel: the same for every channel
    /// and sample, so a convolution finds them once.
    fn tap_plans(s: &ConvShape) -> Vec<Tap> {
        (0..s.kernel * s.kernel).map(|r| tap(s, r / s.kernel, r % s.kernel)).collect()
    }

    /// Adds each entry of an unfolded image's gradient `cols` (`[samples, taps, out_pixels]`:
    /// row (c, ky, kx) at output pixel (y, x) belongs to image[c, y * stride + ky - padding,
    /// x * stride + kx - padding]) into the image position it belongs to, none for the padding;
    /// `x` (`samples` images) starts zeroed. `plans`: the shape's [`tap_plans`].
    fn fold_add(s: &ConvShape, plans: &[Tap], cols: &[f32], x: &mut [f32]) {
        let channel_cols = plans.len() * s.out_pixels();
        for (sample_cols, image) in cols.chunks_exact(s.unfolded_len()).zip(x.chunks_exact_mut(s.sample_len())) {
            for (channel_cols, plane) in
                sample_cols.chunks_exact(channel_cols).zip(image.chunks_exact_mut(s.in_pixels()))
            {
                for (src, t) in channel_cols.chunks_exact(s.out_pixels()).zip(plans) {
                    for y in 0..s.out_height {
                        if let Some(sy) = t.source_row(y, s) {
                            let src = &src[y * s.out_width + t.lo..][..t.hi - t.lo];
                            let dst = &mut plane[sy * s.width + t.first_col..];
                            if s.stride == 1 {
                                dst.iter_mut().zip(src).for_each(|(d, v)| *d += v);
                            } else {
                                dst.iter_mut().step_by(s.stride).zip(src).for_each(|(d, v)| *d += v);
                            }
                        }
                    }
                }
            }
        }
    }

    pub(super) fn conv_forward(s: &ConvShape, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let (sample_len, out_len) = (s.sample_len(), s.out_channels * s.out_pixels());
        let mut out = zeroed(s.batch * out_len);
        let grid = direct::Grid::new(s);
        let weights = direct::pack_weights(s, weight);
        for_each_chunk(&mut out, s.samples_per_task() * out_len, |task, out| {
            let x = &x[task * s.samples_per_task() * sample_len..][..out.len() / out_len * sample_len];
            with_scratch(direct::forward_scratch_len(s, &grid), |scratch| {
                with_best_simd(direct::Forward { s, grid: &grid, weights: &weights, bias, x, out, scratch });
            });
        });
        out
    }

    /// `weight: [out, channels, k, k]` as `[channels, out, k, k]`, each kernel turned by 180
    /// degrees: the weight of [`ConvShape::transposed`].
    pub(super) fn flipped(s: &ConvShape, weight: &[f32]) -> Vec<f32> {
        let (k, channels) = (s.kernel, s.channels);
        let mut flipped = vec![0.0f32; weight.len()];
        for (o, kernels) in weight.chunks_exact(channels * k * k).enumerate() {
            for (c, kernel) in kernels.chunks_exact(k * k).enumerate() {
                let target = &mut flipped[(c * s.out_channels + o) * k * k..][..k * k];
                target.iter_mut().zip(kernel.iter().rev()).for_each(|(t, &v)| *t = v);
            }
        }
        flipped
    }

    /// The input gradient of a convolution [`ConvShape::transposed`] does not cover (a stride
    /// above 1, or padding beyond the kernel): per sample, the unfolded input's gradient (the
    /// transposed weight times the output's) folded back into the image. Where both apply, the
    /// transposed convolution does less: its product runs over out_channels x taps, not
    /// out_channels alone, and nothing as large as the unfolded gradient is written and folded.
    /// `grad`: the output's gradient, `[batch, out_channels, out_pixels]`.
    pub(super) fn conv_input_grad(s: &ConvShape, weight: &[f32], grad: &[f32]) -> Vec<f32> {
        let w_t = Matrix::row_major(weight, s.out_channels, s.taps()).transposed();
        let sample_len = s.sample_len();
        let grad_len = s.out_channels * s.out_pixels();
        let plans = tap_plans(s);
        let mut input_grad = zeroed(s.batch * sample_len);
        for_each_chunk(&mut input_grad, s.samples_per_task() * sample_len, |task, input_grad| {
            let grad = &grad[task * s.samples_per_task() * grad_len..];
            with_scratch(s.unfolded_len(), |cols| {
                for (sample, input_grad) in input_grad.chunks_exact_mut(sample_len).enumerate() {
                    // [taps, out] x [out, pixels] -> [taps, pixels], folded into the image.
                    let grad =
                        Matrix::row_major(&grad[sample * grad_len..][..grad_len], s.out_channels, s.out_pixels());
                    matmul_into(cols, w_t, grad);
                    fold_add(s, &plans, cols, input_grad);
                }
            });
        });
        input_grad
    }

    /// `grad` as in [`conv_input_grad`].
    pub(super) fn conv_weight_grad(s: &ConvShape, x: &[f32], grad: &[f32]) -> Vec<f32> {
        let (per_task, sample_len, grad_len) = (s.samples_per_task(), s.sample_len(), s.out_channels * s.out_pixels());
        let grid = direct::Grid::new(s);
        let partials = map_tasks(s.batch.div_ceil(per_task), |task| {
            let samples = task * per_task..((task + 1) * per_task).min(s.batch);
            let mut sums = vec![0.0f32; direct::weight_grad_len(s)];
            let x = &x[samples.start * sample_len..samples.end * sample_len];
            let grad = &grad[samples.start * grad_len..samples.end * grad_len];
            with_scratch(direct::weight_grad_scratch_len(s, &grid), |scratch| {
                with_best_simd(direct::WeightGrad { s, grid: &grid, x, grad, sums: &mut sums, scratch });
            });
            sums
        });
        // An empty batch has no partial sums: a zero gradient.
        let sums = sum_in_order(partials);
        if sums.is_empty() { vec![0.0; s.out_channels * s.taps()] } else { direct::weight_grad_of(s, &sums) }
    }

    /// Sums of `grad: [batch, channels, pixels]` per channel, over tasks of a shape-given
    /// number of samples, added in task order.
    pub(super) fn channel_sums(grad: &[f32], batch: usize, channels: usize, pixels: usize) -> Vec<f32> {
        let per_task = (super::UNFOLDED_BYTES_PER_TASK / (channels * pixels * std::mem::size_of::<f32>()).max(1))
            .clamp(1, batch.max(1));
        let partials = map_tasks(batch.div_ceil(per_task), |task| {
            let mut sums = vec![0.0f32; channels];
            for sample in task * per_task..((task + 1) * per_task).min(batch) {
                for (c, sum) in sums.iter_mut().enumerate() {
                    *sum += lane_sum(&grad[(sample * channels + c) * pixels..][..pixels]);
                }
            }
            sums
        });
        // An empty batch has no partial sums: a zero gradient.
        let sums = sum_in_order(partials);
        if sums.is_empty() { vec![0.0; channels] } else { sums }
    }

    /// The sum of `values` in eight interleaved running sums added at the end: a fixed order
    /// the compiler can vectorise (one running sum waits on each addition's latency).
    fn lane_sum(values: &[f32]) -> f32 {
        let mut lanes = [0.0f32; 8];
        let chunks = values.chunks_exact(8);
        let rest: f32 = chunks.remainder().iter().sum();
        for chunk in chunks {
            for (lane, v) in lanes.iter_mut().zip(chunk) {
                *lane += v;
            }
        }
        lanes.iter().sum::<f32>() + rest
    }

    /// The element-wise sum of equally long parts, added in the order given (float32 here,
    /// f64 for the GroupNorm's parameter gradients).
    pub(crate) fn sum_in_order<T: Copy + std::ops::AddAssign, P: AsRef<[T]>>(
        parts: impl IntoIterator<Item = P>,
    ) -> Vec<T> {
        let mut parts = parts.into_iter();
        let mut total = parts.next().map(|first| first.as_ref().to_vec()).unwrap_or_default();
        for part in parts {
            for (t, &v) in total.iter_mut().zip(part.as_ref()) {
                *t += v;
            }
        }
        total
    }

    /// The 2x2 pool of `planes` planes of `height x width`; per output, the corner of its
    /// window that held the maximum (0 top left, 1 top right, 2 bottom left, 3 bottom right;
    /// the first of equal values, a NaN over any number).
    pub(super) fn max_pool_2x2(x: &[f32], planes: usize, height: usize, width: usize) -> (Vec<f32>, Vec<u8>) {
        let (oh, ow) = (height / 2, width / 2);
        let (plane_in, plane_out) = (height * width, oh * ow);
        let mut out = zeroed(planes * plane_out);
        let mut corners = vec![0u8; planes * plane_out];
        let task_len = (PLANES_PER_POOL_TASK * plane_out).max(1);
        let mut tasks: Vec<(&mut [f32], &mut [u8])> =
            out.chunks_mut(task_len).zip(corners.chunks_mut(task_len)).collect();
        for_each_chunk(&mut tasks, 1, |task, pair| {
            let (out, corners) = &mut pair[0];
            let x = &x[task * PLANES_PER_POOL_TASK * plane_in..];
            for (row, (out, corners)) in
                out.chunks_exact_mut(ow.max(1)).zip(corners.chunks_exact_mut(ow.max(1))).enumerate()
            {
                // Output row `row` of its plane reads input rows 2 * (row % oh) and the next.
                let top = &x[row / oh * plane_in + 2 * (row % oh) * width..][..2 * width];
                let (upper, lower) = top.split_at(width);
                for (j, (o, c)) in out.iter_mut().zip(corners.iter_mut()).enumerate() {
                    (*o, *c) = window_max([upper[2 * j], upper[2 * j + 1], lower[2 * j], lower[2 * j + 1]]);
                }
            }
        });
        (out, corners)
    }

    /// The maximum of a window (top left, top right, bottom left, bottom right) and the first
    /// corner holding it; NaN and the first NaN's corner when there is one. Arithmetic and
    /// selects only: with branches, the pool's loop cost ~25 cycles per window in mispredictions.
    #[inline(always)]
    fn window_max(window: [f32; 4]) -> (f32, u8) {
        let [a, b, c, d] = window;
        let any_nan = a.is_nan() | b.is_nan() | c.is_nan() | d.is_nan();
        let max = if any_nan { f32::NAN } else { a.max(b).max(c.max(d)) };
        let miss = |v: f32| u8::from(v != max && !v.is_nan());
        (max, miss(a) * (1 + miss(b) * (1 + miss(c))))
    }

    /// The pool's input gradient: each output's gradient goes to the input it took.
    pub(super) fn max_pool_2x2_grad(
        grad: &[f32],
        corners: &[u8],
        planes: usize,
        height: usize,
        width: usize,
    ) -> Vec<f32> {
        let (oh, ow) = (height / 2, width / 2);
        let plane_in = height * width;
        let mut input_grad = zeroed(planes * plane_in);
        for_each_chunk(&mut input_grad, (PLANES_PER_POOL_TASK * plane_in).max(1), |task, input_grad| {
            let first = task * PLANES_PER_POOL_TASK * oh * ow;
            for (plane, input_grad) in input_grad.chunks_exact_mut(plane_in).enumerate() {
                for y in 0..oh {
                    let at = first + (plane * oh + y) * ow;
                    let (grad, corners) = (&grad[at..][..ow], &corners[at..][..ow]);
                    let (upper, lower) = input_grad[2 * y * width..][..2 * width].split_at_mut(width);
                    for (j, (&g, &corner)) in grad.iter().zip(corners).enumerate() {
                        let row = if corner < 2 { &mut *upper } else { &mut *lower };
                        row[2 * j + usize::from(corner & 1)] = g;
                    }
                }
            }
        });
        input_grad
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rng::Rng;
    use burn::tensor::module::{conv2d, max_pool2d};
    use burn::tensor::ops::MaxPoolOptions;
    use burn::tensor::{Device, Distribution};

    /// Uniform values in [-1, 1) from `rng`.
    pub(crate) fn random<const D: usize>(shape: [usize; D], rng: &mut Rng, device: &Device) -> Tensor<D> {
        let values: Vec<f32> = (0..shape.iter().product()).map(|_| rng.uniform_range(-1.0, 1.0) as f32).collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    /// Equal within 2e-5 of the largest of burn's values (at least 1e-3).
    pub(crate) fn assert_close<const D: usize>(ours: Tensor<D>, burns: Tensor<D>, what: &str) {
        assert_eq!(ours.dims(), burns.dims(), "{what}: shapes");
        let (a, b) =
            (ours.into_data().try_to_vec::<f32>().expect("f32"), burns.into_data().try_to_vec::<f32>().expect("f32"));
        let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!((x - y).abs() <= 2e-5 * scale, "{what}[{i}]: ours {x}, burn's {y}");
        }
    }

    #[test]
    fn the_cpu_convolution_and_its_gradients_are_burns() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(5);
        // (batch, channels, height, width, out channels, kernel, stride, padding): several tasks
        // per batch, one channel, kernels of 1 to 5, no padding, an even kernel, a one-pixel
        // image, padding beyond the kernel (the input gradient folded, not transposed); at
        // stride 2 even and odd sizes (the last row and column read or left out), the ResNet's
        // downsampling, a stride larger than the kernel and than the image (taps that read
        // no column).
        let cases = [
            (20, 16, 14, 14, 8, 3, 1, 1),
            (3, 1, 28, 28, 16, 3, 1, 1),
            (5, 3, 7, 6, 4, 5, 1, 2),
            (2, 4, 6, 5, 3, 1, 1, 0),
            (4, 2, 6, 7, 3, 3, 1, 0),
            (3, 2, 5, 5, 2, 2, 1, 1),
            (2, 3, 1, 1, 2, 3, 1, 1),
            (2, 3, 5, 6, 2, 1, 1, 1),
            (6, 16, 28, 28, 32, 3, 2, 1),
            (3, 4, 7, 7, 5, 3, 2, 1),
            (2, 3, 8, 9, 2, 3, 2, 0),
            (2, 2, 9, 8, 3, 2, 3, 1),
            (1, 2, 3, 3, 2, 1, 2, 0),
            (1, 2, 2, 2, 2, 3, 4, 1),
            (1, 1, 3, 1, 2, 1, 3, 1),
        ];
        for (batch, channels, height, width, out, kernel, stride, padding) in cases {
            let what = format!(
                "x [{batch}, {channels}, {height}, {width}], w [{out}, {channels}, {kernel}, {kernel}], \
                 stride {stride}, padding {padding}"
            );
            let x = random([batch, channels, height, width], &mut rng, &device).require_grad();
            let w = random([out, channels, kernel, kernel], &mut rng, &device).require_grad();
            let b = random([out], &mut rng, &device).require_grad();
            let ours = conv(x.clone(), w.clone(), b.clone(), stride, padding);
            let burns = conv2d(x.clone(), w.clone(), Some(b.clone()), options(stride, padding));
            // A random weighting of the outputs, so every output's gradient differs.
            let r = Tensor::random(burns.dims(), Distribution::Uniform(-1.0, 1.0), &device);
            let our_grads = (ours.clone() * r.clone()).sum().backward();
            let burn_grads = (burns.clone() * r).sum().backward();
            assert_close(ours, burns, &format!("{what}: output"));
            assert_close(x.grad(&our_grads).expect("x"), x.grad(&burn_grads).expect("x"), &format!("{what}: dx"));
            assert_close(w.grad(&our_grads).expect("w"), w.grad(&burn_grads).expect("w"), &format!("{what}: dw"));
            assert_close(b.grad(&our_grads).expect("b"), b.grad(&burn_grads).expect("b"), &format!("{what}: db"));
        }
    }

    /// A thread's scratch buffer is reused by calls of other shapes: what one call leaves in it
    /// must not reach the next (the padding's zeros are written, not assumed). One thread, so
    /// that all three calls share its buffer.
    #[test]
    fn a_convolution_after_a_larger_one_gives_the_same_numbers() {
        let device = Device::flex();
        let mut rng = Rng::new(6);
        let small = random([2, 3, 6, 6], &mut rng, &device);
        let w = random([4, 3, 3, 3], &mut rng, &device);
        let b = random([4], &mut rng, &device);
        let large = random([1, 3, 30, 30], &mut rng, &device) * 1e3;
        let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a thread pool");
        let (alone, after) = one_thread.install(|| {
            let alone = conv(small.clone(), w.clone(), b.clone(), 1, 1).into_data();
            let filled = conv(large, w.clone(), b.clone(), 2, 1).into_data();
            assert!(filled.iter::<f32>().all(f32::is_finite));
            (alone, conv(small, w, b, 1, 1).into_data())
        });
        assert_eq!(alone, after);
    }

    /// `n` values uniform in [-1, 1) from `rng`, the first four NaN, -0.0, 0.0 and infinity.
    fn values_with_edge_cases(n: usize, rng: &mut Rng) -> Vec<f32> {
        let mut values: Vec<f32> = (0..n).map(|_| rng.uniform_range(-1.0, 1.0) as f32).collect();
        values[..4].copy_from_slice(&[f32::NAN, -0.0, 0.0, f32::INFINITY]);
        values
    }

    /// A tensor's values as bit patterns, to compare to the bit (NaN included); the stack's
    /// tests use it too.
    pub(crate) fn bits(t: Tensor<1>) -> Vec<u32> {
        t.into_data().iter::<f32>().map(f32::to_bits).collect()
    }

    /// [`bits`] of values already on the host, for the crate's other tests too.
    pub(crate) fn bits_of(values: &[f32]) -> Vec<u32> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    /// Our ReLU and its gradient give burn's bits, NaN, -0.0 and infinity among the values, on
    /// the calling thread and on the pool (131 072 values and more).
    #[test]
    fn the_cpu_relu_and_its_gradient_are_burns() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(12);
        for n in [7, 300_000] {
            let values = values_with_edge_cases(n, &mut rng);
            let x = Tensor::<1>::from_data(TensorData::new(values, [n]), &device).require_grad();
            let ours = relu(x.clone());
            let burns = burn::tensor::activation::relu(x.clone());
            let r = random([n], &mut rng, &device);
            let our_grads = (ours.clone() * r.clone()).sum().backward();
            let burn_grads = (burns.clone() * r).sum().backward();
            assert_eq!(bits(ours), bits(burns), "{n} values: output");
            let (ours, burns) = (x.grad(&our_grads).expect("x"), x.grad(&burn_grads).expect("x"));
            assert_eq!(bits(ours), bits(burns), "{n} values: gradient");
        }
    }

    /// ReLU of a sum in one operation gives the bits of the sum followed by our ReLU: the
    /// output and both terms' gradients, with NaN, -0.0 and infinities among the values, on the
    /// calling thread and on the pool, whichever term nothing else holds.
    #[test]
    fn the_cpu_add_relu_and_its_gradients_are_the_sum_then_relu() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(14);
        for n in [7, 300_000] {
            let a_values = values_with_edge_cases(n, &mut rng);
            // -0.0 + -0.0 is -0.0 (rectified to 0.0); NaN + NaN; infinity - 1 and 0.0 + infinity.
            let mut b_values = values_with_edge_cases(n, &mut rng);
            b_values[..4].copy_from_slice(&[f32::NAN, -0.0, f32::INFINITY, -1.0]);
            let r = random([n], &mut rng, &device);
            // Which term this test keeps a handle to, so that the sum must leave it as it was:
            // both, `a` (the sum may overwrite a copy of `b`) or `b` (it may overwrite a copy of
            // `a`), as a residual block's input is kept by the block.
            for keep in ["both", "a", "b"] {
                let a = Tensor::<1>::from_data(TensorData::new(a_values.clone(), [n]), &device).require_grad();
                let b = Tensor::<1>::from_data(TensorData::new(b_values.clone(), [n]), &device).require_grad();
                let apart = relu(a.clone() + b.clone());
                let apart_grads = (apart.clone() * r.clone()).sum().backward();
                let (a_grad, b_grad) = (a.grad(&apart_grads).expect("a"), b.grad(&apart_grads).expect("b"));
                let (a_in, b_in) = match keep {
                    "a" => (a.clone(), b.clone() * 1.0),
                    "b" => (a.clone() * 1.0, b.clone()),
                    _ => (a.clone(), b.clone()),
                };
                let fused = add_relu(a_in, b_in);
                let fused_grads = (fused.clone() * r.clone()).sum().backward();
                let what = format!("{n} values, {keep} kept");
                assert_eq!(bits(fused), bits(apart), "{what}: output");
                assert_eq!(bits(a.grad(&fused_grads).expect("a")), bits(a_grad), "{what}: a's gradient");
                assert_eq!(bits(b.grad(&fused_grads).expect("b")), bits(b_grad), "{what}: b's gradient");
                assert_eq!(bits(a), bits_of(&a_values), "{what}: a was overwritten");
                assert_eq!(bits(b), bits_of(&b_values), "{what}: b was overwritten");
            }
        }
    }

    /// Our ReLU and its gradient overwrite a tensor nothing else holds and leave a shared one
    /// as it was, with burn's bits either way (on the calling thread and on the pool).
    #[test]
    fn the_cpu_relu_overwrites_only_what_nothing_else_holds() {
        let mut rng = Rng::new(13);
        let bits = |t: &FlexTensor| bits_of(f32s(t));
        for n in [7, 300_000] {
            let mut random_values = || tensor(values_with_edge_cases(n, &mut rng), Shape::new([n]));
            let (x, grad) = (random_values(), random_values());
            let burns = <Flex as ActivationOps<Flex>>::relu(x.clone());
            let burns_grad = <Flex as ActivationOps<Flex>>::relu_backward(burns.clone(), grad.clone());
            let (x_bits, grad_bits) = (bits(&x), bits(&grad));
            let shared = <Flex as CnnKernels>::rectify(x.clone());
            let shared_grad = <Flex as CnnKernels>::rectify_grad(shared.clone(), grad.clone());
            assert_eq!((bits(&x), bits(&grad)), (x_bits, grad_bits), "{n} values: a shared input was overwritten");
            let (ptr, grad_ptr) = (f32s(&x).as_ptr(), f32s(&grad).as_ptr());
            let unique = <Flex as CnnKernels>::rectify(x);
            let unique_grad = <Flex as CnnKernels>::rectify_grad(unique.clone(), grad);
            assert_eq!((f32s(&unique).as_ptr(), f32s(&unique_grad).as_ptr()), (ptr, grad_ptr), "{n} values: copied");
            for (name, ours) in [("shared", &shared), ("unique", &unique)] {
                assert_eq!(bits(ours), bits(&burns), "{n} values, {name}: output");
            }
            for (name, ours) in [("shared", &shared_grad), ("unique", &unique_grad)] {
                assert_eq!(bits(ours), bits(&burns_grad), "{n} values, {name}: gradient");
            }
        }
    }

    #[test]
    fn the_cpu_pool_and_its_gradient_are_burns() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(8);
        // Odd sizes drop the last row or column; 130 planes make three tasks.
        for shape in [[2, 3, 4, 4], [1, 2, 5, 7], [5, 26, 6, 8], [1, 1, 1, 3]] {
            let x = random(shape, &mut rng, &device).require_grad();
            let ours = max_pool_2x2(x.clone());
            let burns = max_pool2d(x.clone(), MaxPoolOptions::new([2, 2]));
            let r = Tensor::random(burns.dims(), Distribution::Uniform(-1.0, 1.0), &device);
            let our_grads = (ours.clone() * r.clone()).sum().backward();
            let burn_grads = (burns.clone() * r).sum().backward();
            assert_close(ours, burns, &format!("{shape:?}: output"));
            assert_close(x.grad(&our_grads).expect("x"), x.grad(&burn_grads).expect("x"), &format!("{shape:?}: dx"));
        }
    }

    #[test]
    fn the_cpu_pool_keeps_the_first_of_equal_maxima_and_passes_nan_on() {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 3.0, 0.0, f32::NAN, 3.0, 2.0, 7.0, 1.0], [1, 1, 2, 4]),
            &device,
        )
        .require_grad();
        let pooled = max_pool_2x2(x.clone());
        let values = pooled.clone().into_data().try_to_vec::<f32>().expect("f32");
        assert_eq!(values[0], 3.0);
        assert!(values[1].is_nan(), "a NaN in the window gives NaN: {values:?}");
        let grads = pooled.sum().backward();
        let dx = x.grad(&grads).expect("x").into_data().try_to_vec::<f32>().expect("f32");
        // The first 3 (top right) takes its window's gradient, not the second (bottom left);
        // the NaN takes the other's.
        assert_eq!(dx, [0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0], "{dx:?}");
    }
}
