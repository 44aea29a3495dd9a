//! The training step's own kernels beside the model's: the mini-batch's rows, and the
//! optimisers' update of one parameter tensor (Adam's, SGD's with momentum). On the CPU (flex)
//! backend our own: the rows copied on rayon's threads (on the calling thread for a small
//! batch), and one loop over the weight, its gradient and the optimiser's state that writes the
//! new weight and state (in place where nothing else holds them; the weight, which the step's
//! autodiff leaves still hold, is copied first). On the GPU backends burn's operations (the
//! trait's default bodies, in the order the trainer issued them before), fused there by burn's
//! fusion backend.
//!
//! Why our own on the CPU: written with tensor operations, Adam's update is ten to fourteen
//! operations per parameter, each a pass with a call of its own, and burn copies a batch's rows
//! on one thread: at batch 512 the two took more than half of the thread that drives the MLP's
//! step (`perf`; docs/benchmarks.md, "The training step's own kernels").
//!
//! The same numbers for float32 tensors: the rows are copies, and every entry of an update goes
//! through the same float32 operations in the same order as the trainer's tensor code (no fused
//! multiply-adds), which tests check bit for bit. (The constants are float32, so other float
//! types, which the trainer never makes, would see them rounded.)

use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
#[cfg(gpu)]
use burn::backend::wgpu::CubeBackend;
use burn::backend::{
    Backend, Dispatch, Flex, Scalar, TensorMetadata, backend_extension,
    tensor::{FloatTensor, IntTensor},
};
use burn::tensor::{DType, Int, Shape, Tensor};

use crate::conv::{
    VALUES_PER_TASK, all_f32, contiguous, f32s, for_each_chunk, on_the_pool, tensor, unique_f32s, zeroed,
};
use crate::simd::{Simd, WithSimd, with_best_simd};

/// Adam's constants for one step, as float32: how the update reads them on every backend.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub beta1: f32,
    pub one_minus_beta1: f32,
    pub beta2: f32,
    pub one_minus_beta2: f32,
    /// `1 - beta1^t` and `1 - beta2^t` at step `t` (from 1): the moments' bias corrections.
    pub correction1: f32,
    pub correction2: f32,
    pub epsilon: f32,
    pub learning_rate: f32,
    /// The first step: the moments start from the gradient alone (the ones passed are not
    /// read). [`adam_update`] sets it from whether it is given moments.
    pub first: bool,
}

impl AdamStep {
    /// Step `t` (from 1), the constants computed in f64 and then rounded, as burn rounds the
    /// scalars of its tensor operations; not the first step ([`adam_update`] says which is).
    pub fn new(beta1: f64, beta2: f64, epsilon: f64, learning_rate: f64, t: i32) -> Self {
        Self {
            beta1: beta1 as f32,
            one_minus_beta1: (1.0 - beta1) as f32,
            beta2: beta2 as f32,
            one_minus_beta2: (1.0 - beta2) as f32,
            correction1: (1.0 - beta1.powi(t)) as f32,
            correction2: (1.0 - beta2.powi(t)) as f32,
            epsilon: epsilon as f32,
            learning_rate: learning_rate as f32,
            first: false,
        }
    }

    fn encode(&self) -> Vec<f32> {
        vec![
            self.beta1,
            self.one_minus_beta1,
            self.beta2,
            self.one_minus_beta2,
            self.correction1,
            self.correction2,
            self.epsilon,
            self.learning_rate,
            if self.first { 1.0 } else { 0.0 },
        ]
    }

    fn decode(settings: &[f32]) -> Self {
        let [beta1, one_minus_beta1, beta2, one_minus_beta2, correction1, correction2, epsilon, learning_rate, first] =
            settings[..]
        else {
            panic!("Adam's settings: 9 numbers, not {}", settings.len())
        };
        Self {
            beta1,
            one_minus_beta1,
            beta2,
            one_minus_beta2,
            correction1,
            correction2,
            epsilon,
            learning_rate,
            first: first != 0.0,
        }
    }
}

/// SGD's constants for one step, as float32.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    pub momentum: f32,
    pub learning_rate: f32,
    /// Whether the velocity carries over (there is one, and momentum): else it is the gradient.
    /// [`sgd_update`] sets it from whether it is given a velocity.
    pub carry: bool,
}

impl SgdStep {
    fn encode(&self) -> Vec<f32> {
        vec![self.momentum, self.learning_rate, if self.carry { 1.0 } else { 0.0 }]
    }

    fn decode(settings: &[f32]) -> Self {
        let [momentum, learning_rate, carry] = settings[..] else {
            panic!("SGD's settings: 3 numbers, not {}", settings.len())
        };
        Self { momentum, learning_rate, carry: carry != 0.0 }
    }
}

#[backend_extension(Cube: cfg(gpu), Flex, Fusion: cfg(gpu))]
pub trait StepKernels: Backend {
    /// The rows `indices` of `features: [samples, features]`, in that order.
    #[fusion(default)]
    fn batch_rows(features: FloatTensor<Self>, indices: IntTensor<Self>) -> FloatTensor<Self> {
        Self::float_select(features, 0, indices)
    }

    /// Adam's step of weight `w` with gradient `g` and moments `m`, `v` (`settings`:
    /// [`AdamStep`]): the new weight and moments.
    #[fusion(default)]
    fn adam_update(
        w: FloatTensor<Self>,
        g: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        settings: Vec<f32>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        composed::adam::<Self>(w, g, m, v, &AdamStep::decode(&settings))
    }

    /// SGD's step of weight `w` with gradient `g` and `velocity` (`settings`: [`SgdStep`]): the
    /// new weight and velocity.
    #[fusion(default)]
    fn sgd_update(
        w: FloatTensor<Self>,
        g: FloatTensor<Self>,
        velocity: FloatTensor<Self>,
        settings: Vec<f32>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        composed::sgd::<Self>(w, g, velocity, &SgdStep::decode(&settings))
    }
}

/// See [`StepKernels::batch_rows`].
pub fn batch_rows(features: Tensor<2>, indices: Tensor<1, Int>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as StepKernels>::batch_rows(features.into_dispatch(), indices.into_dispatch()))
}

/// See [`StepKernels::adam_update`]; `moments` is `None` on the first step.
pub fn adam_update(
    w: Tensor<1>,
    g: Tensor<1>,
    moments: Option<(Tensor<1>, Tensor<1>)>,
    step: AdamStep,
) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
    let step = AdamStep { first: moments.is_none(), ..step };
    // The first step reads no moments: the gradient stands in for them.
    let (m, v) = moments.unwrap_or_else(|| (g.clone(), g.clone()));
    let (w, m, v) = <Dispatch as StepKernels>::adam_update(
        w.into_dispatch(),
        g.into_dispatch(),
        m.into_dispatch(),
        v.into_dispatch(),
        step.encode(),
    );
    (Tensor::from_dispatch(w), Tensor::from_dispatch(m), Tensor::from_dispatch(v))
}

/// See [`StepKernels::sgd_update`]; `velocity` is `None` when it does not carry over.
pub fn sgd_update(w: Tensor<1>, g: Tensor<1>, velocity: Option<Tensor<1>>, step: SgdStep) -> (Tensor<1>, Tensor<1>) {
    let step = SgdStep { carry: velocity.is_some(), ..step };
    let velocity = velocity.unwrap_or_else(|| g.clone());
    let (w, velocity) = <Dispatch as StepKernels>::sgd_update(
        w.into_dispatch(),
        g.into_dispatch(),
        velocity.into_dispatch(),
        step.encode(),
    );
    (Tensor::from_dispatch(w), Tensor::from_dispatch(velocity))
}

/// The arithmetic in the backend's tensor operations: the GPU backends' path, and the CPU's
/// for types other than float32.
mod composed {
    use super::*;

    fn scalar(value: f32, like: &impl TensorMetadata) -> Scalar {
        Scalar::new(value, &like.dtype())
    }

    pub(super) fn adam<B: Backend>(
        w: FloatTensor<B>,
        g: FloatTensor<B>,
        m: FloatTensor<B>,
        v: FloatTensor<B>,
        s: &AdamStep,
    ) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
        let k = |value: f32| scalar(value, &w);
        // The operations in the order the trainer's tensor code issued them before (Rust
        // evaluates arguments left to right), so that burn's fusion sees the same graph.
        let fresh_m = |g: FloatTensor<B>| B::float_mul_scalar(g, k(s.one_minus_beta1));
        let fresh_v =
            |g: FloatTensor<B>| B::float_mul_scalar(B::float_powi_scalar(g, Scalar::Int(2)), k(s.one_minus_beta2));
        let (m, v) = if s.first {
            (fresh_m(g.clone()), fresh_v(g))
        } else {
            let m = B::float_add(B::float_mul_scalar(m, k(s.beta1)), fresh_m(g.clone()));
            (m, B::float_add(B::float_mul_scalar(v, k(s.beta2)), fresh_v(g)))
        };
        let m_hat = B::float_div_scalar(m.clone(), k(s.correction1));
        let v_hat = B::float_div_scalar(v.clone(), k(s.correction2));
        let denominator = B::float_add_scalar(B::float_sqrt(v_hat), k(s.epsilon));
        let update = B::float_mul_scalar(B::float_div(m_hat, denominator), k(s.learning_rate));
        (B::float_sub(w, update), m, v)
    }

    pub(super) fn sgd<B: Backend>(
        w: FloatTensor<B>,
        g: FloatTensor<B>,
        velocity: FloatTensor<B>,
        s: &SgdStep,
    ) -> (FloatTensor<B>, FloatTensor<B>) {
        let k = |value: f32| scalar(value, &w);
        let velocity = if s.carry { B::float_add(B::float_mul_scalar(velocity, k(s.momentum)), g) } else { g };
        let update = B::float_mul_scalar(velocity.clone(), k(s.learning_rate));
        (B::float_sub(w, update), velocity)
    }
}

#[cfg(gpu)]
impl StepKernels for CubeBackend {}

/// `t`'s values to overwrite when nothing else holds it, else a copy of them (a new buffer).
fn owned_values(t: FlexTensor) -> FlexTensor {
    let t = contiguous(t);
    if t.is_unique() {
        return t;
    }
    let shape = t.layout().shape().clone();
    tensor(f32s(&t).to_vec(), shape)
}

fn values_mut(t: &mut FlexTensor) -> &mut [f32] {
    unique_f32s(t).expect("a tensor made unique by owned_values")
}

/// Adam's update of one tensor on the CPU, compiled for the widest vectors this CPU has: a
/// scalar loop of divisions and a square root, which the compiler vectorises (as written: the
/// same numbers on every instruction set) where it may use them.
struct AdamTask<'a> {
    s: AdamStep,
    grad: &'a [f32],
    weights: &'a mut [f32],
    first_moments: &'a mut [f32],
    second_moments: &'a mut [f32],
}

impl WithSimd for AdamTask<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let AdamTask { s, grad, weights, first_moments, second_moments } = self;
        let entries = weights.iter_mut().zip(first_moments).zip(second_moments).zip(grad);
        // Two loops rather than a test per entry, so that each vectorises.
        if s.first {
            for (((weight, m), v), &g) in entries {
                (*m, *v) = (g * s.one_minus_beta1, (g * g) * s.one_minus_beta2);
                *weight -= *m / s.correction1 / ((*v / s.correction2).sqrt() + s.epsilon) * s.learning_rate;
            }
        } else {
            for (((weight, m), v), &g) in entries {
                *m = *m * s.beta1 + g * s.one_minus_beta1;
                *v = *v * s.beta2 + (g * g) * s.one_minus_beta2;
                *weight -= *m / s.correction1 / ((*v / s.correction2).sqrt() + s.epsilon) * s.learning_rate;
            }
        }
    }
}

/// An index tensor's values, when it holds 64- or 32-bit integers.
fn indices_of(indices: &FlexTensor) -> Option<Vec<usize>> {
    let indices = contiguous(indices.clone());
    let as_usize = |v: i64| usize::try_from(v).ok();
    match indices.dtype() {
        DType::I64 => indices.as_slice::<i64>()?.iter().map(|&v| as_usize(v)).collect(),
        DType::I32 => indices.as_slice::<i32>()?.iter().map(|&v| as_usize(i64::from(v))).collect(),
        _ => None,
    }
}

impl StepKernels for Flex {
    fn batch_rows(features: FloatTensor<Self>, indices: IntTensor<Self>) -> FloatTensor<Self> {
        let shape = features.layout().shape().clone();
        let rows = (shape.num_dims() == 2)
            .then(|| indices_of(&indices))
            .flatten()
            .filter(|rows| rows.iter().all(|&r| r < shape[0]));
        let (true, Some(rows)) = (all_f32(&[&features]), rows) else {
            // Other types, and indices out of range, as burn handles (and reports) them.
            return Self::float_select(features, 0, indices);
        };
        let (features, width) = (contiguous(features), shape[1]);
        let source = f32s(&features);
        let row = |r: usize| &source[r * width..][..width];
        let values = rows.len() * width;
        // Few values: appended on the calling thread, nothing written twice. More: zeroed and
        // copied on rayon's threads.
        if !on_the_pool(values) {
            let mut out = Vec::with_capacity(values);
            rows.iter().for_each(|&r| out.extend_from_slice(row(r)));
            return tensor(out, Shape::new([rows.len(), width]));
        }
        let rows_per_task = (VALUES_PER_TASK / width).max(1);
        let mut out = zeroed(values);
        for_each_chunk(&mut out, rows_per_task * width, |task, chunk| {
            for (&r, out) in rows[task * rows_per_task..].iter().zip(chunk.chunks_exact_mut(width)) {
                out.copy_from_slice(row(r));
            }
        });
        tensor(out, Shape::new([rows.len(), width]))
    }

    fn adam_update(
        w: FloatTensor<Self>,
        g: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        settings: Vec<f32>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let s = AdamStep::decode(&settings);
        if !all_f32(&[&w, &g, &m, &v]) {
            return composed::adam::<Self>(w, g, m, v, &s);
        }
        let g = contiguous(g);
        // The weight and the moments are written in place where nothing else holds them; the
        // first step's moments (stand-ins) are never read, only written.
        let (mut w, mut m, mut v) = (owned_values(w), owned_values(m), owned_values(v));
        let task = AdamTask {
            s,
            grad: f32s(&g),
            weights: values_mut(&mut w),
            first_moments: values_mut(&mut m),
            second_moments: values_mut(&mut v),
        };
        let sizes = [task.weights.len(), task.first_moments.len(), task.second_moments.len()];
        assert!(
            sizes.iter().all(|&n| n == task.grad.len()),
            "Adam: the weight, its gradient and its moments differ in size"
        );
        with_best_simd(task);
        (w, m, v)
    }

    fn sgd_update(
        w: FloatTensor<Self>,
        g: FloatTensor<Self>,
        velocity: FloatTensor<Self>,
        settings: Vec<f32>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let s = SgdStep::decode(&settings);
        if !all_f32(&[&w, &g, &velocity]) {
            return composed::sgd::<Self>(w, g, velocity, &s);
        }
        let g = contiguous(g);
        let mut w = owned_values(w);
        let (grad, weights) = (f32s(&g), values_mut(&mut w));
        assert_eq!(weights.len(), grad.len(), "SGD: the weight and its gradient differ in size");
        if !s.carry {
            // Nothing carried over: the new velocity is the gradient, returned as it is (a copy
            // of it had been written for the loop to read once).
            weights.iter_mut().zip(grad).for_each(|(weight, &g)| *weight -= g * s.learning_rate);
            return (w, g);
        }
        let mut velocity = owned_values(velocity);
        let velocities = values_mut(&mut velocity);
        assert_eq!(velocities.len(), grad.len(), "SGD: the gradient and its velocity differ in size");
        for ((weight, velocity), &g) in weights.iter_mut().zip(velocities).zip(grad) {
            *velocity = *velocity * s.momentum + g;
            *weight -= *velocity * s.learning_rate;
        }
        (w, velocity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::tests::bits_of;
    use crate::rng::Rng;

    fn values(rng: &mut Rng, n: usize, scale: f64) -> FlexTensor {
        let mut v: Vec<f32> = (0..n).map(|_| (rng.uniform_range(-1.0, 1.0) * scale) as f32).collect();
        // What must come out as the composed operations give it: signed zeros, a NaN,
        // infinities, a subnormal.
        v[..6].copy_from_slice(&[0.0, -0.0, f32::NAN, f32::INFINITY, -f32::INFINITY, 1e-40]);
        tensor(v, Shape::new([n]))
    }

    fn bits(t: &FlexTensor) -> Vec<u32> {
        bits_of(f32s(t))
    }

    /// Our CPU copy of a batch's rows is burn's `select`: on the calling thread and on the pool
    /// (3 000 rows of 784), one column, 64- and 32-bit indices, repeated rows.
    #[test]
    fn the_cpu_batch_rows_are_burns_select() {
        let mut rng = Rng::new(22);
        for (samples, width, batch) in [(10, 3, 4), (5000, 784, 3000), (50, 1, 50), (7, 784, 1)] {
            let features = tensor(
                (0..samples * width).map(|_| rng.uniform_range(-1.0, 1.0) as f32).collect(),
                Shape::new([samples, width]),
            );
            let rows: Vec<i64> = (0..batch).map(|_| rng.below(samples) as i64).collect();
            for dtype in [DType::I64, DType::I32] {
                let indices =
                    FlexTensor::from_data(burn::tensor::TensorData::new(rows.clone(), [batch]).convert_dtype(dtype));
                let burns = Flex::float_select(features.clone(), 0, indices.clone());
                let ours = <Flex as StepKernels>::batch_rows(features.clone(), indices);
                assert_eq!(ours.layout().shape(), burns.layout().shape(), "{samples}x{width}, {batch} rows");
                assert_eq!(bits(&ours), bits(&contiguous(burns)), "{samples}x{width}, {batch} rows, {dtype:?}");
            }
        }
    }

    /// The updates give the bits of the trainer's tensor code before them (kept here as it
    /// was: f64 scalars, `square`), with the training's own tensors on the CPU device.
    #[test]
    fn the_updates_are_the_trainers_tensor_code_before_them() {
        use burn::tensor::{Device, TensorData};
        let device = Device::flex();
        let mut rng = Rng::new(23);
        let n = 3000;
        let random = |rng: &mut Rng, scale: f64| {
            let mut v: Vec<f32> = (0..n).map(|_| (rng.uniform_range(-1.0, 1.0) * scale) as f32).collect();
            v[..6].copy_from_slice(&[0.0, -0.0, f32::NAN, f32::INFINITY, -f32::INFINITY, 1e-40]);
            Tensor::<1>::from_data(TensorData::new(v, [n]), &device)
        };
        let bits = |t: &Tensor<1>| t.to_data().iter::<f32>().map(f32::to_bits).collect::<Vec<_>>();
        let (b1, b2, eps, lr) = (0.9f64, 0.999f64, 1e-8f64, 3e-3f64);
        let (mut ours, mut before) = ((random(&mut rng, 1.0), None), (random(&mut rng, 1.0), None));
        before.0 = ours.0.clone();
        for t in 1..=3 {
            let g = random(&mut rng, 0.1);
            let (w, state): (Tensor<1>, Option<(Tensor<1>, Tensor<1>)>) = before;
            let (m, v) = match state {
                Some((m, v)) => (m * b1 + g.clone() * (1.0 - b1), v * b2 + g.clone().square() * (1.0 - b2)),
                None => (g.clone() * (1.0 - b1), g.clone().square() * (1.0 - b2)),
            };
            let m_hat = m.clone() / (1.0 - b1.powi(t));
            let v_hat = v.clone() / (1.0 - b2.powi(t));
            let w = w - m_hat / (v_hat.sqrt() + eps) * lr;
            let (w2, m2, v2) = adam_update(ours.0, g, ours.1, AdamStep::new(b1, b2, eps, lr, t));
            for (name, ours, theirs) in [("weight", &w2, &w), ("m", &m2, &m), ("v", &v2, &v)] {
                assert_eq!(bits(ours), bits(theirs), "Adam step {t}: {name}");
            }
            (ours, before) = ((w2, Some((m2, v2))), (w, Some((m, v))));
        }
        for momentum in [0.9, 0.0] {
            let w0 = random(&mut rng, 1.0);
            let (mut ours, mut before) = ((w0.clone(), None::<Tensor<1>>), (w0, None::<Tensor<1>>));
            for _ in 0..3 {
                let g = random(&mut rng, 0.1);
                let velocity = match before.1 {
                    Some(v) if momentum > 0.0 => v * momentum + g.clone(),
                    _ => g.clone(),
                };
                let w = before.0 - velocity.clone() * lr;
                let step = SgdStep { momentum: momentum as f32, learning_rate: lr as f32, carry: false };
                let (w2, velocity2) = sgd_update(ours.0, g, ours.1.filter(|_| momentum > 0.0), step);
                assert_eq!(bits(&w2), bits(&w), "SGD, momentum {momentum}: weight");
                assert_eq!(bits(&velocity2), bits(&velocity), "SGD, momentum {momentum}: velocity");
                (ours, before) = ((w2, Some(velocity2)), (w, Some(velocity)));
            }
        }
    }

    /// Our CPU updates give the composed operations' bits, over steps that carry the state (the
    /// first step's and later ones), and Adam's leaves a shared weight as it was; 300 000 values
    /// take more than one cache's worth.
    #[test]
    fn the_cpu_updates_are_the_composed_operations_bit_for_bit() {
        let mut rng = Rng::new(21);
        for n in [1000, 300_000] {
            let mut ours = (values(&mut rng, n, 1.0), None::<(FlexTensor, FlexTensor)>);
            let mut theirs = ours.clone();
            for t in 1..=4 {
                let g = values(&mut rng, n, 0.1);
                let step = AdamStep { first: t == 1, ..AdamStep::new(0.9, 0.999, 1e-8, 1e-3, t) };
                let stand_in = || (g.clone(), g.clone());
                let (m, v) = theirs.1.clone().unwrap_or_else(stand_in);
                let (w, m, v) = composed::adam::<Flex>(theirs.0.clone(), g.clone(), m, v, &step);
                let kept = (ours.0.clone(), bits(&ours.0));
                let (m2, v2) = ours.1.take().unwrap_or_else(stand_in);
                let (w2, m2, v2) = <Flex as StepKernels>::adam_update(ours.0, g.clone(), m2, v2, step.encode());
                assert_eq!(bits(&kept.0), kept.1, "Adam step {t}: a shared weight was overwritten");
                for (name, ours, theirs) in [("weight", &w2, &w), ("m", &m2, &m), ("v", &v2, &v)] {
                    assert_eq!(bits(ours), bits(theirs), "{n} values, Adam step {t}: {name}");
                }
                (ours, theirs) = ((w2, Some((m2, v2))), (w, Some((m, v))));
            }
            for (momentum, carries) in [(0.9f32, [false, true, true]), (0.0, [false, false, false])] {
                let mut ours = (values(&mut rng, n, 1.0), None::<FlexTensor>);
                let mut theirs = ours.clone();
                for carry in carries {
                    let g = values(&mut rng, n, 0.1);
                    let step = SgdStep { momentum, learning_rate: 0.05, carry };
                    let velocity = theirs.1.clone().unwrap_or_else(|| g.clone());
                    let (w, velocity) = composed::sgd::<Flex>(theirs.0.clone(), g.clone(), velocity, &step);
                    let velocity2 = ours.1.take().unwrap_or_else(|| g.clone());
                    let (w2, velocity2) =
                        <Flex as StepKernels>::sgd_update(ours.0, g.clone(), velocity2, step.encode());
                    assert_eq!(bits(&w2), bits(&w), "{n} values, SGD, momentum {momentum}: weight");
                    assert_eq!(bits(&velocity2), bits(&velocity), "{n} values, SGD, momentum {momentum}: velocity");
                    (ours, theirs) = ((w2, Some(velocity2)), (w, Some(velocity)));
                }
            }
        }
    }
}
