//! Our own WGSL compute kernels (`shaders/*.wgsl`) for the operations that define this product:
//! per-layer scope statistics, histograms, weighted sums of models (the K-model average and
//! the interpolation path), the WSA penalty's closed-form gradient, and the counts and fourth
//! moments behind a checkpoint tensor's statistics ([`crate::checkpoint`]). They plug into burn
//! through a backend extension: on the wgpu (CubeCL) backend the hand-written shaders run; on
//! the CPU (flex) backend the Rust implementations of [`crate::scope`], tensor operations or
//! host code repeating a shader's operations compute the same numbers. Callers see one function
//! per operation and never name a backend.

use crate::checkpoint::stats::order_key32;
use crate::error::{Result, WsaError};
use crate::scope::{histogram as host_histogram, scope_of};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::{Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor, tensor::IntTensor};
#[cfg(gpu)]
use burn::tensor::{DType, Shape};
use burn::tensor::{Int, Tensor, TensorData};

#[cfg(gpu)]
const WORKGROUP_SIZE: u32 = 256;
/// Workgroups of the statistics pass: enough to fill a large GPU (1024 x 256 threads), few
/// enough that the partials stay a few kilobytes.
#[cfg(gpu)]
const MAX_PARTIALS: u32 = 1024;
/// Entries each thread handles at least before another workgroup is worth launching.
#[cfg(gpu)]
const ENTRIES_PER_THREAD: u32 = 4;
/// The most bins a histogram may have: its workgroup counters must fit WebGPU's guaranteed
/// 16 KiB of workgroup memory.
pub const MAX_HISTOGRAM_BINS: usize = 1024;
/// The most models one pass of the weighted sum reads (inputs + 2 bindings stay within
/// WebGPU's guaranteed 8 storage buffers per shader stage).
const MAX_INPUTS_PER_PASS: usize = 4;
/// Numbers per partial of the statistics pass.
const PARTIAL_LEN: usize = 6;
/// Numbers per layer in [`wsa_coefficients`]' result: (m, b, a, KL).
pub const COEFFICIENTS_LEN: usize = 4;
/// Where the KL divergence sits among a layer's coefficients.
pub const COEFFICIENTS_KL: usize = 3;
/// Numbers before the per-layer ones in the coefficients' params.
const COEFFICIENT_PARAMS_HEADER: usize = 4;
/// Numbers per layer in [`layer_stats_on_device`]'s result, and where min and max sit.
pub const STATS_LEN: usize = 4;
pub const STATS_MIN: usize = 2;
pub const STATS_MAX: usize = 3;
/// Counters of [`pattern_counts`] (one per 16-bit pattern) and of [`key_buckets`] (one per top
/// 16 bits of a float32 order key).
pub const VALUE_COUNTERS: usize = 1 << 16;
/// Where [`key_buckets`] keeps the least and the greatest order key, after the counters.
pub const LEAST_KEY: usize = VALUE_COUNTERS;
pub const GREATEST_KEY: usize = VALUE_COUNTERS + 1;
/// Numbers per partial of [`piece_moments`]' central sums: sum d, d², d³, d⁴.
pub const CENTRAL_SUMS_LEN: usize = 4;

/// Mean, population variance, minimum and maximum of one layer's entries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerStats {
    pub mean: f64,
    pub variance: f64,
    pub min: f64,
    pub max: f64,
}

// ---------------------------------------------------------------------------------------------
// The backend extension: one method per kernel launch.

#[backend_extension(Cube: cfg(gpu), Flex, Fusion: cfg(gpu))]
pub trait WsaKernels: Backend {
    /// Partial (count, mean - shift, M2, min, max, shift) summaries of one flat layer,
    /// `PARTIAL_LEN` numbers each.
    #[fusion(dtype = values, shape = Shape::new([partial_count(values.num_elements()) * PARTIAL_LEN]))]
    fn scope_partials(values: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Merges concatenated partials into (mean, variance, min, max) per layer; `table` holds
    /// (first partial, number of partials) per layer.
    #[fusion(dtype = partials, shape = Shape::new([table.len() / 2 * STATS_LEN]))]
    fn scope_finalize(partials: FloatTensor<Self>, table: Vec<u32>) -> FloatTensor<Self>;

    /// Counts of one flat layer in `bins` equal-width bins over `range` = [low, high].
    #[fusion(dtype = DType::I32, shape = Shape::new([*bins as usize]))]
    fn histogram(values: FloatTensor<Self>, range: FloatTensor<Self>, bins: u32) -> IntTensor<Self>;

    /// sum_k weights[k] inputs[k] over the first `weights.len()` (1 to 4) of the four flat inputs;
    /// the unused ones repeat an earlier input and are not read.
    #[fusion(dtype = x0, shape = x0)]
    fn weighted_sum(
        x0: FloatTensor<Self>,
        x1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        x3: FloatTensor<Self>,
        weights: Vec<f32>,
    ) -> FloatTensor<Self>;

    /// The WSA penalty's (m, b, a, KL) per layer (`COEFFICIENTS_LEN` numbers each; see
    /// `shaders/wsa_coefficients.wgsl`) from `stats` ([`layer_stats_on_device`]'s layout) and
    /// `params` (that shader's layout, built by [`wsa_coefficients`]).
    #[fusion(dtype = stats, shape = Shape::new([stats.num_elements() / STATS_LEN * COEFFICIENTS_LEN]))]
    fn wsa_coefficients(stats: FloatTensor<Self>, params: Vec<u32>) -> FloatTensor<Self>;

    /// (w - m) b + a for every entry w of `values`, with (m, b, a) of layer `layer` of
    /// `coefficients`.
    #[fusion(dtype = values, shape = values)]
    fn wsa_gradient(values: FloatTensor<Self>, coefficients: FloatTensor<Self>, layer: u32) -> FloatTensor<Self>;

    /// Adds to `counts` ([`VALUE_COUNTERS`]) how often each bit pattern occurs among the first
    /// `values` 16-bit values packed two to a word in `packed`; returns `counts`, added to in
    /// place (the caller owns it, so no copy is made).
    #[fusion(dtype = counts, shape = counts)]
    fn pattern_counts(packed: IntTensor<Self>, counts: IntTensor<Self>, values: u32) -> IntTensor<Self>;

    /// Adds to `counts` how many of the finite `values` fall in each bucket of order keys (their
    /// top 16 bits) and folds their least and greatest key into `counts[LEAST_KEY]` and
    /// `counts[GREATEST_KEY]`; returns `counts`, added to in place.
    #[fusion(dtype = counts, shape = counts)]
    fn key_buckets(values: FloatTensor<Self>, counts: IntTensor<Self>) -> IntTensor<Self>;

    /// Partial sums of d, d², d³ and d⁴ (`CENTRAL_SUMS_LEN` numbers each), d = (entry − mean) /
    /// [`central_sums_scale`] with `stats` in [`scope_finalize`](WsaKernels::scope_finalize)'s
    /// layout.
    #[fusion(dtype = values, shape = Shape::new([partial_count(values.num_elements()) * CENTRAL_SUMS_LEN]))]
    fn central_sums(values: FloatTensor<Self>, stats: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Workgroups (and so partials) of the statistics pass for a layer of `n` entries.
#[cfg(gpu)]
fn partial_count(n: usize) -> usize {
    let groups = (n as u64).div_ceil(u64::from(WORKGROUP_SIZE * ENTRIES_PER_THREAD));
    groups.clamp(1, u64::from(MAX_PARTIALS)) as usize
}

// ---------------------------------------------------------------------------------------------
// The wgpu (CubeCL) backend: our shaders, where the crate has its GPU backend (`build.rs`).

#[cfg(gpu)]
mod cube {
    use super::*;
    use burn::backend::wgpu::{
        CubeBackend, CubeDim, CubeTensor, KernelSource, SourceKernel, SourceTemplate, into_contiguous,
    };
    use burn::cubecl::{CubeCount, prelude::KernelId, server::KernelArguments};

    const MOMENTS_WGSL: &str = include_str!("../../shaders/moments.wgsl");
    const SCOPE_PARTIALS_WGSL: &str = include_str!("../../shaders/scope_partials.wgsl");
    const SCOPE_FINALIZE_WGSL: &str = include_str!("../../shaders/scope_finalize.wgsl");
    const HISTOGRAM_WGSL: &str = include_str!("../../shaders/histogram.wgsl");
    const WEIGHTED_SUM_WGSL: &str = include_str!("../../shaders/weighted_sum.wgsl");
    const WSA_COEFFICIENTS_WGSL: &str = include_str!("../../shaders/wsa_coefficients.wgsl");
    const WSA_GRADIENT_WGSL: &str = include_str!("../../shaders/wsa_gradient.wgsl");
    const VALUE_COUNTS_WGSL: &str = include_str!("../../shaders/value_counts.wgsl");
    const CENTRAL_SUMS_WGSL: &str = include_str!("../../shaders/central_sums.wgsl");

    /// The largest workgroup count WebGPU allows in one dimension.
    const MAX_GROUPS_PER_DIM: u32 = 65_535;
    /// Workgroups of the histogram pass: each adds its counters to the global ones once.
    const MAX_HISTOGRAM_GROUPS: u32 = 256;

    /// A WGSL source and the values of its template slots; `variant` tells kernels of one source
    /// apart in CubeCL's compiled-kernel cache.
    struct Wgsl {
        main: &'static str,
        with_moments: bool,
        slots: Vec<(&'static str, String)>,
        variant: String,
    }

    impl Wgsl {
        fn new(main: &'static str, variant: impl Into<String>) -> Self {
            Self { main, with_moments: false, slots: Vec::new(), variant: variant.into() }
        }

        /// Appends `shaders/moments.wgsl`, whose functions the statistics shaders call.
        fn with_moments(self) -> Self {
            Self { with_moments: true, ..self }
        }

        fn register(mut self, slot: &'static str, value: impl Into<String>) -> Self {
            self.slots.push((slot, value.into()));
            self
        }
    }

    impl KernelSource for Wgsl {
        fn source(&self) -> SourceTemplate {
            let mut source = SourceTemplate::new(self.main);
            if self.with_moments {
                source = source.add_template(MOMENTS_WGSL);
            }
            source = source.register("workgroup_size", WORKGROUP_SIZE.to_string());
            for (slot, value) in &self.slots {
                source = source.register(*slot, value.clone());
            }
            source
        }

        fn id(&self) -> KernelId {
            KernelId::new::<Self>().info(self.variant.clone())
        }

        fn lang(&self) -> &'static str {
            "wgsl"
        }
    }

    /// A 2-D grid of workgroups with one thread per entry, for `n` entries.
    fn grid_for(n: usize) -> CubeCount {
        let groups = (n as u32).div_ceil(WORKGROUP_SIZE).max(1);
        let x = groups.min(MAX_GROUPS_PER_DIM);
        CubeCount::Static(x, groups.div_ceil(x), 1)
    }

    fn words(values: &[u32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn launch(
        kernel: Wgsl,
        grid: CubeCount,
        like: &CubeTensor,
        buffers: Vec<&CubeTensor>,
        params: &[u8],
        out: &CubeTensor,
    ) {
        let params = like.client.create_from_slice(params);
        let mut bindings: Vec<_> = buffers.into_iter().map(|t| t.handle.clone().binding()).collect();
        bindings.push(params.binding());
        bindings.push(out.handle.clone().binding());
        like.client.launch(
            Box::new(SourceKernel::new(kernel, CubeDim::new_1d(WORKGROUP_SIZE))),
            grid,
            KernelArguments::new().with_buffers(bindings),
        );
    }

    fn empty_like(like: &CubeTensor, len: usize, dtype: DType) -> CubeTensor {
        CubeTensor::new_contiguous(
            like.client.clone(),
            like.device.clone(),
            Shape::new([len]),
            like.client.empty(len * 4),
            dtype,
        )
    }

    impl WsaKernels for CubeBackend {
        fn scope_partials(values: FloatTensor<Self>) -> FloatTensor<Self> {
            let values = into_contiguous(values);
            let n = values.meta.shape().num_elements();
            let groups = partial_count(n);
            let out = empty_like(&values, groups * PARTIAL_LEN, values.dtype);
            let kernel = Wgsl::new(SCOPE_PARTIALS_WGSL, "partials").with_moments();
            launch(kernel, CubeCount::Static(groups as u32, 1, 1), &values, vec![&values], &words(&[n as u32]), &out);
            out
        }

        fn scope_finalize(partials: FloatTensor<Self>, table: Vec<u32>) -> FloatTensor<Self> {
            let partials = into_contiguous(partials);
            let layers = table.len() / 2;
            let out = empty_like(&partials, layers * STATS_LEN, partials.dtype);
            // The table travels as the kernel's params binding: it is the only host input.
            let kernel = Wgsl::new(SCOPE_FINALIZE_WGSL, "finalize").with_moments();
            launch(kernel, CubeCount::Static(layers as u32, 1, 1), &partials, vec![&partials], &words(&table), &out);
            out
        }

        fn histogram(values: FloatTensor<Self>, range: FloatTensor<Self>, bins: u32) -> IntTensor<Self> {
            let values = into_contiguous(values);
            let range = into_contiguous(range);
            let n = values.meta.shape().num_elements();
            // The counters are added to atomically, so they start from zero.
            let zeros = values.client.create_from_slice(&vec![0u8; bins as usize * 4]);
            let out = CubeTensor::new_contiguous(
                values.client.clone(),
                values.device.clone(),
                Shape::new([bins as usize]),
                zeros,
                DType::I32,
            );
            let groups = partial_count(n).min(MAX_HISTOGRAM_GROUPS as usize) as u32;
            let kernel = Wgsl::new(HISTOGRAM_WGSL, "histogram").register("max_bins", MAX_HISTOGRAM_BINS.to_string());
            launch(
                kernel,
                CubeCount::Static(groups, 1, 1),
                &values,
                vec![&values, &range],
                &words(&[n as u32, bins]),
                &out,
            );
            out
        }

        fn weighted_sum(
            x0: FloatTensor<Self>,
            x1: FloatTensor<Self>,
            x2: FloatTensor<Self>,
            x3: FloatTensor<Self>,
            weights: Vec<f32>,
        ) -> FloatTensor<Self> {
            let k = weights.len();
            let inputs: Vec<CubeTensor> = [x0, x1, x2, x3].into_iter().take(k).map(into_contiguous).collect();
            let shape = inputs[0].meta.shape().clone();
            let n = shape.num_elements();
            let declarations: String = (0..k)
                .map(|i| format!("@group(0) @binding({i}) var<storage, read_write> x{i}: array<f32>;\n"))
                .collect();
            let sum = (0..k).map(|i| format!("params[{}] * x{i}[i]", i + 1)).collect::<Vec<_>>().join(" + ");
            let kernel = Wgsl::new(WEIGHTED_SUM_WGSL, format!("sum{k}"))
                .register("inputs", declarations)
                .register("sum", sum)
                .register("params_binding", k.to_string())
                .register("out_binding", (k + 1).to_string());
            let mut params = (n as u32).to_le_bytes().to_vec();
            params.extend(weights.iter().flat_map(|w| w.to_le_bytes()));
            let first = &inputs[0];
            let out = CubeTensor::new_contiguous(
                first.client.clone(),
                first.device.clone(),
                shape,
                first.client.empty(n * 4),
                first.dtype,
            );
            launch(kernel, grid_for(n), first, inputs.iter().collect(), &params, &out);
            out
        }

        fn wsa_coefficients(stats: FloatTensor<Self>, params: Vec<u32>) -> FloatTensor<Self> {
            let stats = into_contiguous(stats);
            let layers = params[0];
            let out = empty_like(&stats, layers as usize * COEFFICIENTS_LEN, stats.dtype);
            let kernel = Wgsl::new(WSA_COEFFICIENTS_WGSL, "coefficients");
            let groups = layers.div_ceil(WORKGROUP_SIZE).max(1);
            launch(kernel, CubeCount::Static(groups, 1, 1), &stats, vec![&stats], &words(&params), &out);
            out
        }

        fn wsa_gradient(values: FloatTensor<Self>, coefficients: FloatTensor<Self>, layer: u32) -> FloatTensor<Self> {
            let values = into_contiguous(values);
            let coefficients = into_contiguous(coefficients);
            let n = values.meta.shape().num_elements();
            let out = empty_like(&values, n, values.dtype);
            let kernel = Wgsl::new(WSA_GRADIENT_WGSL, "gradient");
            let params = words(&[n as u32, layer]);
            launch(kernel, grid_for(n), &values, vec![&values, &coefficients], &params, &out);
            out
        }

        fn pattern_counts(packed: IntTensor<Self>, counts: IntTensor<Self>, values: u32) -> IntTensor<Self> {
            let packed = into_contiguous(packed);
            let counts = into_contiguous(counts);
            let groups = partial_count(values as usize) as u32;
            let kernel = Wgsl::new(VALUE_COUNTS_WGSL, "patterns").register("bits", "16");
            launch(kernel, CubeCount::Static(groups, 1, 1), &packed, vec![&packed], &words(&[values]), &counts);
            counts
        }

        fn key_buckets(values: FloatTensor<Self>, counts: IntTensor<Self>) -> IntTensor<Self> {
            let values = into_contiguous(values);
            let counts = into_contiguous(counts);
            let n = values.meta.shape().num_elements();
            let groups = partial_count(n) as u32;
            let kernel = Wgsl::new(VALUE_COUNTS_WGSL, "key-buckets").register("bits", "32");
            launch(kernel, CubeCount::Static(groups, 1, 1), &values, vec![&values], &words(&[n as u32]), &counts);
            counts
        }

        fn central_sums(values: FloatTensor<Self>, stats: FloatTensor<Self>) -> FloatTensor<Self> {
            let values = into_contiguous(values);
            let stats = into_contiguous(stats);
            let n = values.meta.shape().num_elements();
            let groups = partial_count(n);
            let out = empty_like(&values, groups * CENTRAL_SUMS_LEN, values.dtype);
            let kernel = Wgsl::new(CENTRAL_SUMS_WGSL, "central-sums");
            launch(
                kernel,
                CubeCount::Static(groups as u32, 1, 1),
                &values,
                vec![&values, &stats],
                &words(&[n as u32]),
                &out,
            );
            out
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The CPU (flex) backend: the data already lives in host memory, so the Rust implementations
// run on it directly, in f64 where they sum.

fn host_values(tensor: FlexTensor) -> Vec<f32> {
    tensor.into_data().convert::<f32>().try_into_vec::<f32>().expect("flex tensors hold host f32 data")
}

/// A flex integer tensor's entries as the u32 words a shader's counters hold.
fn host_words(tensor: FlexTensor) -> Vec<u32> {
    let values = tensor.into_data().convert::<i64>().try_into_vec::<i64>().expect("flex tensors hold host data");
    values.into_iter().map(|v| v as u32).collect()
}

fn host_word_tensor(words: Vec<u32>) -> FlexTensor {
    let len = words.len();
    FlexTensor::from_data(TensorData::new(words.into_iter().map(|w| w as i32).collect::<Vec<i32>>(), [len]))
}

fn host_tensor(values: Vec<f32>) -> FlexTensor {
    let len = values.len();
    FlexTensor::from_data(TensorData::new(values, [len]))
}

impl WsaKernels for Flex {
    fn scope_partials(values: FloatTensor<Self>) -> FloatTensor<Self> {
        // One partial for the whole layer, with the GPU's layout (shift 0); f64 sums.
        let v = host_values(values);
        let scope = scope_of(&v);
        let m2 = scope.std * scope.std * v.len() as f64;
        let (lo, hi) = v.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        host_tensor(vec![v.len() as f32, scope.mean as f32, m2 as f32, lo, hi, 0.0])
    }

    fn scope_finalize(partials: FloatTensor<Self>, table: Vec<u32>) -> FloatTensor<Self> {
        let p = host_values(partials);
        let mut out = Vec::with_capacity(table.len() / 2 * STATS_LEN);
        for layer in table.chunks_exact(2) {
            let (mut count, mut mean, mut m2, mut lo, mut hi) = (0f64, 0f64, 0f64, f32::MAX, f32::MIN);
            for part in
                p[layer[0] as usize * PARTIAL_LEN..][..layer[1] as usize * PARTIAL_LEN].chunks_exact(PARTIAL_LEN)
            {
                let nb = f64::from(part[0]);
                if nb == 0.0 {
                    continue;
                }
                let total = count + nb;
                let delta = f64::from(part[1]) - mean;
                mean += delta * nb / total;
                m2 += f64::from(part[2]) + delta * delta * count * nb / total;
                count = total;
                lo = lo.min(part[3]);
                hi = hi.max(part[4]);
            }
            let shift = p.get(layer[0] as usize * PARTIAL_LEN + 5).map_or(0.0, |&s| f64::from(s));
            out.extend([(mean + shift) as f32, (m2 / count.max(1.0)) as f32, lo, hi]);
        }
        host_tensor(out)
    }

    fn histogram(values: FloatTensor<Self>, range: FloatTensor<Self>, bins: u32) -> IntTensor<Self> {
        let range = host_values(range);
        let counts = host_histogram(&host_values(values), f64::from(range[0]), f64::from(range[1]), bins as usize);
        let counts: Vec<i32> = counts.into_iter().map(|c| c as i32).collect();
        FlexTensor::from_data(TensorData::new(counts, [bins as usize]))
    }

    fn weighted_sum(
        x0: FloatTensor<Self>,
        x1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        x3: FloatTensor<Self>,
        weights: Vec<f32>,
    ) -> FloatTensor<Self> {
        let dtype = x0.dtype();
        let scaled = |x, w: f32| Flex::float_mul_scalar(x, burn::backend::Scalar::new(w, &dtype));
        [x0, x1, x2, x3]
            .into_iter()
            .zip(weights)
            .map(|(x, w)| scaled(x, w))
            .reduce(Flex::float_add)
            .expect("weighted_sum takes at least one weight")
    }

    fn wsa_coefficients(stats: FloatTensor<Self>, params: Vec<u32>) -> FloatTensor<Self> {
        host_tensor(coefficients_on_host(&host_values(stats), &params))
    }

    fn wsa_gradient(values: FloatTensor<Self>, coefficients: FloatTensor<Self>, layer: u32) -> FloatTensor<Self> {
        let c = host_values(coefficients);
        let [m, b, a] = [0, 1, 2].map(|k| c[layer as usize * COEFFICIENTS_LEN + k]);
        host_tensor(host_values(values).into_iter().map(|w| (w - m) * b + a).collect())
    }

    fn pattern_counts(packed: IntTensor<Self>, counts: IntTensor<Self>, values: u32) -> IntTensor<Self> {
        let packed = host_words(packed);
        let mut counts = host_words(counts);
        for i in 0..values as usize {
            let pattern = (packed[i / 2] >> ((i & 1) * 16)) & 0xffff;
            counts[pattern as usize] = counts[pattern as usize].wrapping_add(1);
        }
        host_word_tensor(counts)
    }

    fn key_buckets(values: FloatTensor<Self>, counts: IntTensor<Self>) -> IntTensor<Self> {
        let mut counts = host_words(counts);
        for v in host_values(values) {
            let key = order_key32(v.to_bits());
            let bucket = (key >> 16) as usize;
            counts[bucket] = counts[bucket].wrapping_add(1);
            counts[LEAST_KEY] = counts[LEAST_KEY].min(key);
            counts[GREATEST_KEY] = counts[GREATEST_KEY].max(key);
        }
        host_word_tensor(counts)
    }

    fn central_sums(values: FloatTensor<Self>, stats: FloatTensor<Self>) -> FloatTensor<Self> {
        // One partial for the whole piece; d in f32 as the shader forms it, the sums in f64.
        let stats = host_values(stats);
        let (centre, scale) = (stats[0], central_sums_scale(&stats));
        let mut sums = [0f64; CENTRAL_SUMS_LEN];
        for v in host_values(values) {
            let d = f64::from((v - centre) / scale);
            let d2 = d * d;
            for (sum, power) in sums.iter_mut().zip([d, d2, d2 * d, d2 * d2]) {
                *sum += power;
            }
        }
        host_tensor(sums.map(|s| s as f32).to_vec())
    }
}

/// What `shaders/central_sums.wgsl` divides the deviations by, from scope_finalize's (mean,
/// variance, min, max): half the range, or 1 where that is not a normal f32.
pub fn central_sums_scale(stats: &[f32]) -> f32 {
    let scale = 0.5 * stats[STATS_MAX] - 0.5 * stats[STATS_MIN];
    if scale >= f32::MIN_POSITIVE { scale } else { 1.0 }
}

/// `shaders/wsa_coefficients.wgsl` on the host: the same f32 operations in the same order, so
/// the CPU backend's WSA gradients are the very numbers its tensor operations gave before.
fn coefficients_on_host(stats: &[f32], params: &[u32]) -> Vec<f32> {
    let float = |i: usize| f32::from_bits(params[i]);
    let model_to_target = params[1] == 0;
    let (variance_eps, std_eps) = (float(2), float(3));
    let layers = params[0] as usize;
    let mut out = Vec::with_capacity(layers * COEFFICIENTS_LEN);
    for (layer, s) in stats.chunks_exact(STATS_LEN).take(layers).enumerate() {
        let at = COEFFICIENT_PARAMS_HEADER + layer * 3;
        let (mean, variance) = (s[0], s[1]);
        let (target_mean, target_std, per_entry) = (float(at), float(at + 1), float(at + 2));
        let root = (variance + variance_eps).sqrt();
        let model_std = root + std_eps;
        let dm = mean - target_mean;
        let (kl, d_mean, d_std) = if model_to_target {
            let target_var = target_std * target_std;
            let kl = target_std.ln() - model_std.ln() + (model_std * model_std + dm * dm) / (target_var * 2.0) - 0.5;
            (kl, dm / target_var, -(1.0 / model_std) + model_std / target_var)
        } else {
            let model_var = model_std * model_std;
            let numerator = target_std * target_std + dm * dm;
            let kl = model_std.ln() - target_std.ln() + numerator / (model_var * 2.0) - 0.5;
            (kl, dm / model_var, 1.0 / model_std - numerator / (model_var * model_std))
        };
        out.extend([mean, d_std / root * per_entry, d_mean * per_entry, kl]);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The functions the rest of core calls.

/// Statistics of every given layer as one device tensor of `STATS_LEN` numbers per layer
/// (mean, variance, min, max): one statistics dispatch per layer and one merging dispatch for
/// all of them; nothing is read back.
pub fn layer_stats_on_device(layers: &[Tensor<1>]) -> Tensor<1> {
    let partials: Vec<Tensor<1>> = layers
        .iter()
        .map(|w| Tensor::from_dispatch(<Dispatch as WsaKernels>::scope_partials(w.clone().into_dispatch())))
        .collect();
    let mut table = Vec::with_capacity(2 * layers.len());
    let mut first = 0usize;
    for p in &partials {
        let count = p.dims()[0] / PARTIAL_LEN;
        table.extend([first as u32, count as u32]);
        first += count;
    }
    let all = Tensor::cat(partials, 0);
    Tensor::from_dispatch(<Dispatch as WsaKernels>::scope_finalize(all.into_dispatch(), table))
}

/// Statistics of every given layer, computed on the layers' device (our WGSL kernels on a GPU);
/// `STATS_LEN` numbers per layer come back in one read.
pub async fn layer_stats(layers: &[Tensor<1>]) -> Result<Vec<LayerStats>> {
    if layers.is_empty() {
        return Ok(Vec::new());
    }
    let values = crate::device::read_f64(layer_stats_on_device(layers)).await?;
    Ok(values
        .chunks_exact(STATS_LEN)
        .map(|s| LayerStats { mean: s[0], variance: s[1].max(0.0), min: s[2], max: s[3] })
        .collect())
}

/// Histograms of each `layers[l]` over `ranges[2l..2l+2]` = [low, high] (a device tensor, e.g.
/// derived from [`layer_stats_on_device`] without a read), with `bins` equal-width bins; the
/// counts of all layers come back in one read.
pub async fn histograms(layers: &[Tensor<1>], ranges: Tensor<1>, bins: usize) -> Result<Vec<Vec<u64>>> {
    if !(1..=MAX_HISTOGRAM_BINS).contains(&bins) {
        return Err(WsaError::invalid("histogram bins", bins, &format!("must be between 1 and {MAX_HISTOGRAM_BINS}")));
    }
    if layers.is_empty() {
        return Ok(Vec::new());
    }
    let counts: Vec<Tensor<1, Int>> = layers
        .iter()
        .enumerate()
        .map(|(l, w)| {
            let range = ranges.clone().narrow(0, 2 * l, 2);
            Tensor::from_dispatch(<Dispatch as WsaKernels>::histogram(
                w.clone().into_dispatch(),
                range.into_dispatch(),
                bins as u32,
            ))
        })
        .collect();
    // Read as integers: a bin of a large layer may hold more than the 2^24 counts f32 keeps exact.
    let values = crate::device::read_data(Tensor::cat(counts, 0).into_data_async().await)?
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| WsaError::Device(format!("{e:?}")))?;
    Ok(values.chunks_exact(bins).map(|c| c.iter().map(|&v| v.max(0) as u64).collect()).collect())
}

/// sum_k weights[k] tensors[k] for flat tensors of one length on one device, without autodiff:
/// on a GPU through `shaders/weighted_sum.wgsl`, up to four models a pass.
pub fn weighted_sum(tensors: &[Tensor<1>], weights: &[f32]) -> Tensor<1> {
    assert!(!tensors.is_empty() && tensors.len() == weights.len(), "one weight per tensor, at least one");
    let mut inputs: Vec<Tensor<1>> = tensors[..tensors.len().min(MAX_INPUTS_PER_PASS)].to_vec();
    let mut w: Vec<f32> = weights[..inputs.len()].to_vec();
    let mut next = inputs.len();
    loop {
        let k = inputs.len();
        let pad = |i: usize| inputs[i.min(k - 1)].clone().into_dispatch();
        let sum = Tensor::from_dispatch(<Dispatch as WsaKernels>::weighted_sum(pad(0), pad(1), pad(2), pad(3), w));
        if next == tensors.len() {
            return sum;
        }
        // The next pass: the sum so far with weight 1, then up to three more models.
        let take = (tensors.len() - next).min(MAX_INPUTS_PER_PASS - 1);
        inputs = std::iter::once(sum).chain(tensors[next..next + take].iter().cloned()).collect();
        w = std::iter::once(1.0).chain(weights[next..next + take].iter().copied()).collect();
        next += take;
    }
}

/// (1 - alpha) a + alpha b: the interpolation path, one pass of the weighted sum.
pub fn lerp(a: Tensor<1>, b: Tensor<1>, alpha: f32) -> Tensor<1> {
    weighted_sum(&[a, b], &[1.0 - alpha, alpha])
}

/// What [`wsa_coefficients`] needs to know of one regularised layer besides its statistics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PenaltyLayer {
    pub target_mean: f32,
    /// The target's std plus the std epsilon.
    pub target_std: f32,
    /// The penalty's scale over the layer's number of entries.
    pub scale_per_entry: f32,
}

/// The WSA penalty's (m, b, a, KL) of every layer, `COEFFICIENTS_LEN` numbers each (see
/// `shaders/wsa_coefficients.wgsl`), from `stats` ([`layer_stats_on_device`] of those layers):
/// one launch on a GPU. `model_to_target` picks KL(model || target), else KL(target || model).
pub fn wsa_coefficients(
    stats: Tensor<1>,
    model_to_target: bool,
    variance_eps: f32,
    std_eps: f32,
    layers: &[PenaltyLayer],
) -> Tensor<1> {
    let mut params = vec![layers.len() as u32, u32::from(!model_to_target), variance_eps.to_bits(), std_eps.to_bits()];
    debug_assert_eq!(params.len(), COEFFICIENT_PARAMS_HEADER);
    for layer in layers {
        params.extend([layer.target_mean.to_bits(), layer.target_std.to_bits(), layer.scale_per_entry.to_bits()]);
    }
    Tensor::from_dispatch(<Dispatch as WsaKernels>::wsa_coefficients(stats.into_dispatch(), params))
}

/// The WSA penalty's gradient (w - m) b + a at every entry of `values`, layer `layer` of
/// `coefficients` ([`wsa_coefficients`]): one launch on a GPU.
pub fn wsa_gradient(values: Tensor<1>, coefficients: Tensor<1>, layer: usize) -> Tensor<1> {
    Tensor::from_dispatch(<Dispatch as WsaKernels>::wsa_gradient(
        values.into_dispatch(),
        coefficients.into_dispatch(),
        layer as u32,
    ))
}

/// Adds how often each bit pattern occurs among `values` 16-bit floats packed two to a word in
/// `packed` to `counts` ([`VALUE_COUNTERS`] counters): one launch on a GPU, no read.
pub fn pattern_counts(packed: Tensor<1, Int>, counts: Tensor<1, Int>, values: usize) -> Tensor<1, Int> {
    Tensor::from_dispatch(<Dispatch as WsaKernels>::pattern_counts(
        packed.into_dispatch(),
        counts.into_dispatch(),
        values as u32,
    ))
}

/// Adds how many of the finite `values` fall in each bucket of float32 order keys to `counts`
/// (`VALUE_COUNTERS` + 2 counters, the last two the least and the greatest key so far): one
/// launch on a GPU, no read.
pub fn key_buckets(values: Tensor<1>, counts: Tensor<1, Int>) -> Tensor<1, Int> {
    Tensor::from_dispatch(<Dispatch as WsaKernels>::key_buckets(values.into_dispatch(), counts.into_dispatch()))
}

/// One flat tensor's moments about its own mean, as one device tensor: (mean, variance, min,
/// max) as [`layer_stats_on_device`] gives them, then partial sums of d, d², d³, d⁴
/// (`CENTRAL_SUMS_LEN` numbers each) with d = (entry − that mean) / [`central_sums_scale`]. Three launches
/// on a GPU, nothing read back.
pub fn piece_moments(values: Tensor<1>) -> Tensor<1> {
    let stats = layer_stats_on_device(std::slice::from_ref(&values));
    let sums = Tensor::from_dispatch(<Dispatch as WsaKernels>::central_sums(
        values.into_dispatch(),
        stats.clone().into_dispatch(),
    ));
    Tensor::cat(vec![stats, sums], 0)
}

/// Reads counters ([`pattern_counts`], [`key_buckets`]) back to the host as the u32 words the
/// shader holds.
pub async fn read_counters(counts: Tensor<1, Int>) -> Result<Vec<u32>> {
    let values = crate::device::read_data(counts.into_data_async().await)?
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| WsaError::Device(format!("{e:?}")))?;
    // An i32 counter past 2^31 reads as negative: its low 32 bits are the count.
    Ok(values.into_iter().map(|v| v as u32).collect())
}
