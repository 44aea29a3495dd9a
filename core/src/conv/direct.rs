//! The CPU convolution without unfolding: the forward pass (and so, through
//! [`ConvShape::transposed`], the input gradient at stride 1) and the weight gradient read the
//! zero-padded image in place, on SIMD registers.
//!
//! Why: the unfolded input is the image copied once per tap (9x for a 3x3 kernel), and gemm then
//! copied it again into its packed layout; the two copies and their calls took ~28% of a ResNet's
//! training step, the products themselves ~31% (`perf`, docs/benchmarks.md).
//!
//! The wide grid: with the image padded and laid out in rows of `row` floats, output pixel (y, x)
//! is numbered `q = y * row + x` (a row of the output is as wide as a row of the padded image;
//! its entries past `out_width` are not outputs and are dropped). Tap (c, ky, kx) then reads, for
//! output q, the padded image at `offset(c, ky, kx) + q`: consecutive outputs read consecutive
//! inputs, so a row of outputs is a handful of vector loads from each tap's offset, whatever the
//! kernel. At stride 1 a row is the image's row and `padding` zeros (more where the padding is
//! at least the kernel, so that a row holds `out_width` outputs), which serve both as its right
//! padding and as the next row's left padding (reading past a row's end continues into the next
//! row's start), so that a 3x3 convolution of a 7x7 image computes 7 x 8 wide outputs
//! rather than 7 x 9. At a stride s above 1 the padded image is first split into its s x s
//! phases (every s-th row and column from each offset), and each tap reads one phase the same
//! way ([`Grid`]).
//!
//! Arithmetic: every output, and every entry of the weight gradient, is one chain of fused
//! multiply-adds in a fixed order: the taps in order (starting from the bias), or the samples and
//! their pixels in order. No sum is split across vector lanes or threads, so the numbers do not
//! depend on the number of threads, nor on the vector width where multiply-adds are fused (AVX2
//! and AVX-512 give the same numbers). Where they are not (WebAssembly; an x86-64 CPU without
//! AVX2 and FMA, on pulp's scalar fallback) the last digits differ.
//!
//! The weight gradient also multiplies inputs at the wide grid's positions that are not outputs
//! by a gradient of zero: that adds nothing, unless the input there is infinite or NaN (0 x inf
//! is NaN), which a training step would have carried into its loss already, or the sum so far is
//! -0.0 (which a product must underflow to reach), which a +0.0 product (a non-negative input)
//! turns into +0.0.

use super::ConvShape;
#[cfg(doc)]
use crate::simd::with_best_simd;
use crate::simd::{Simd, WithSimd};

/// Accumulator registers a kernel keeps, by vector width: x86's AVX-512 has 32 registers of 16
/// floats, its AVX2 16 of 8 (WebAssembly's SIMD and ARM's NEON have vectors of 4; we keep as many
/// as for AVX2); each kernel also needs a few for its loads.
const fn accumulators(lanes: usize) -> usize {
    if lanes >= 16 { 24 } else { 12 }
}

/// Vector registers, by vector width as for [`accumulators`]: every set of 4 lanes counts as 16
/// (the browser's compiler of WebAssembly uses 16 on x86-64; NEON's 32 are counted as 16 on
/// purpose, as its accumulators are).
const fn registers(lanes: usize) -> usize {
    if lanes >= 16 { 32 } else { 16 }
}

/// Where a convolution reads on the wide grid (see the module's comment).
pub(super) struct Grid {
    stride: usize,
    /// A row of the wide grid: at stride 1 a row of the image and its `padding` zeros (at least
    /// `out_width`), at larger ones a padded row of a phase.
    row: usize,
    /// One phase of a padded channel (`rows x row`): at stride s the padded image is kept as
    /// s x s phases, phase (a, b) holding its rows a, a + s, ... and columns b, b + s, ..., so
    /// that consecutive outputs again read consecutive inputs. At stride 1 the one phase is the
    /// padded channel.
    phase_plane: usize,
    /// A padded channel, all its phases.
    channel_len: usize,
    /// Outputs on the wide grid, `out_height * row`.
    wide_pixels: usize,
    /// Per tap (c, ky, kx), in the weight's order: where its reads start in the padded image;
    /// then, up to [`padded_taps`], the image's start for the weight gradient's filler taps
    /// (their sums are never read; the forward pass stops at the weight's last tap).
    offsets: Vec<usize>,
}

impl Grid {
    pub(super) fn new(s: &ConvShape) -> Self {
        let (stride, k) = (s.stride, s.kernel);
        let rows = (s.height + 2 * s.padding).div_ceil(stride);
        // At stride 1 a padded row shares its zeros with the next one. Output (y, x < out_width)
        // reads padded columns up to `width + 2 * padding - 1`; those past `row` are the first
        // `width + 2 * padding - row <= padding` of the next row, which are its left padding:
        // zeros, as the right padding they stand for. (A padding above `kernel - 1` makes
        // `out_width` the wider.)
        let row = match stride {
            1 => (s.width + s.padding).max(s.out_width),
            _ => (s.width + 2 * s.padding).div_ceil(stride),
        };
        let phase_plane = rows * row;
        let channel_len = stride * stride * phase_plane;
        // Output (y, x) reads padded (y * stride + ky, x * stride + kx): in phase
        // (ky % stride, kx % stride), at (y + ky / stride, x + kx / stride).
        let offsets = (0..s.taps())
            .map(|r| {
                let (c, ky, kx) = (r / (k * k), r / k % k, r % k);
                let phase = (ky % stride) * stride + kx % stride;
                c * channel_len + phase * phase_plane + ky / stride * row + kx / stride
            })
            .chain(std::iter::repeat(0))
            .take(padded_taps(s))
            .collect();
        Grid { stride, row, phase_plane, channel_len, wide_pixels: s.out_height * row, offsets }
    }

    /// The wide outputs rounded up to whole vectors of `lanes`: what the kernels compute.
    fn vector_pixels(&self, lanes: usize) -> usize {
        self.wide_pixels.div_ceil(lanes) * lanes
    }

    /// The padded image and the zeros after it that the last vectors of the last taps read: the
    /// last tap's reads end at most `kernel` entries past the image (`kernel / stride` columns
    /// past its phase), plus the vector rounding.
    fn padded_len(&self, s: &ConvShape, lanes: usize) -> usize {
        s.channels * self.channel_len + s.kernel + self.vector_pixels(lanes) - self.wide_pixels
    }

    /// `image` (`[channels, height, width]`) into `padded` with zeros around and after it. At
    /// stride 1 rows are copied in whole vectors, which may spill past a row's end: the zeros
    /// are written after all rows. At larger strides each value goes to its phase.
    #[inline(always)]
    fn pad_into<S: Simd>(&self, s: &ConvShape, image: &[f32], padded: &mut [f32]) {
        let (width, row, plane) = (s.width, self.row, self.channel_len);
        if self.stride > 1 {
            padded.fill(0.0);
            let (stride, padding) = (self.stride, s.padding);
            for (image, channel) in image.chunks_exact(s.in_pixels()).zip(padded.chunks_mut(plane)) {
                for (y, line) in image.chunks_exact(width).enumerate() {
                    let py = y + padding;
                    let phase_row = (py % stride) * stride * self.phase_plane + py / stride * row;
                    for (x, &v) in line.iter().enumerate() {
                        let px = x + padding;
                        channel[phase_row + (px % stride) * self.phase_plane + px / stride] = v;
                    }
                }
            }
            return;
        }
        let first = s.padding * row + s.padding;
        for i in 0..s.channels * s.height {
            let at = i / s.height * plane + first + i % s.height * row;
            copy_row::<S>(&mut padded[at..], &image[i * width..], width);
        }
        let last_row = first + (s.height.max(1) - 1) * row;
        for plane in padded.chunks_mut(plane).take(s.channels) {
            plane[..first].fill(0.0);
            for y in 0..s.height.saturating_sub(1) {
                zero_few(&mut plane[first + y * row + width..first + (y + 1) * row]);
            }
            plane[last_row + width..].fill(0.0);
        }
        padded[s.channels * plane..].fill(0.0);
    }
}

/// Copies a row of `len` floats from the start of `src` to the start of `dst`: in one or two
/// whole vectors where both slices hold them (up to a vector less one float past the row's end
/// is read and written; the caller writes those again later), else with `copy_from_slice`. Why:
/// a call of `memcpy` for each row of ~7-28 floats cost as much as a third of the kernel's
/// products (the copies in and out were 6% of a ResNet's step).
#[inline(always)]
fn copy_row<S: Simd>(dst: &mut [f32], src: &[f32], len: usize) {
    let lanes = S::F32_LANES;
    let vectors = len.div_ceil(lanes);
    let whole = vectors * lanes;
    if (1..=2).contains(&vectors) && dst.len() >= whole && src.len() >= whole {
        let (dst, src) = (S::as_mut_simd_f32s(&mut dst[..whole]).0, S::as_simd_f32s(&src[..whole]).0);
        dst[0] = src[0];
        if vectors == 2 {
            dst[1] = src[1];
        }
    } else {
        dst[..len].copy_from_slice(&src[..len]);
    }
}

/// Zeroes `values`, the padding's one or two entries between rows: written directly, since a
/// call of memset for each cost more than the row's copy.
#[inline(always)]
fn zero_few(values: &mut [f32]) {
    match values {
        [] => {}
        [a] => *a = 0.0,
        [a, b] => (*a, *b) = (0.0, 0.0),
        _ => values.fill(0.0),
    }
}

/// The largest number of lanes any instruction set here has: the scratch a task asks for is
/// sized by it, so that it does not depend on the CPU.
const MAX_LANES: usize = 16;

/// Floats of scratch [`Forward`] needs per task: one padded image and its wide output.
pub(super) fn forward_scratch_len(s: &ConvShape, grid: &Grid) -> usize {
    grid.padded_len(s, MAX_LANES) + s.out_channels.next_multiple_of(FORWARD_BLOCK) * grid.vector_pixels(MAX_LANES)
}

/// The convolution of consecutive images (`x`, `[samples, channels, height, width]`) into
/// `out` (`[samples, out_channels, out_height, out_width]`), each output starting from its
/// `bias` (zero without one), run by [`with_best_simd`](crate::simd::with_best_simd). `weights`: [`pack_weights`]'s.
/// `scratch`: at least [`forward_scratch_len`] floats, any values.
pub(super) struct Forward<'a> {
    pub(super) s: &'a ConvShape,
    pub(super) grid: &'a Grid,
    pub(super) weights: &'a PackedWeights,
    pub(super) bias: Option<&'a [f32]>,
    pub(super) x: &'a [f32],
    pub(super) out: &'a mut [f32],
    pub(super) scratch: &'a mut [f32],
}

impl WithSimd for Forward<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Forward { s, grid, weights, bias, x, out, scratch } = self;
        let lanes = S::F32_LANES;
        let vector_pixels = grid.vector_pixels(lanes);
        let blocks = s.out_channels.div_ceil(FORWARD_BLOCK);
        let (padded, rest) = scratch.split_at_mut(grid.padded_len(s, lanes));
        let wide = &mut rest[..blocks * FORWARD_BLOCK * vector_pixels];
        let out_len = s.out_channels * s.out_pixels();
        for (image, out) in x.chunks_exact(s.sample_len()).zip(out.chunks_exact_mut(out_len)) {
            grid.pad_into::<S>(s, image, padded);
            for (block, (weights, wide)) in weights
                .0
                .chunks_exact(s.taps() * FORWARD_BLOCK)
                .zip(wide.chunks_exact_mut(FORWARD_BLOCK * vector_pixels))
                .enumerate()
            {
                let start = std::array::from_fn(|o| {
                    bias.and_then(|b| b.get(block * FORWARD_BLOCK + o)).copied().unwrap_or(0.0)
                });
                let block = ForwardBlock { grid, padded, weights, start, vector_pixels };
                // Whole tiles of three vectors, then the one or two vectors left.
                let tile = 3 * lanes;
                let whole = vector_pixels / tile * tile;
                for first in (0..whole).step_by(tile) {
                    block.tile::<S, 3>(simd, first, wide);
                }
                match (vector_pixels - whole) / lanes {
                    2 => block.tile::<S, 2>(simd, whole, wide),
                    1 => block.tile::<S, 1>(simd, whole, wide),
                    _ => {}
                }
            }
            // The wide rows' outputs, without the columns past each row's end; in order, so that
            // what a row's copy spills past its end is written again by the rows after it.
            for o in 0..s.out_channels {
                for y in 0..s.out_height {
                    let at = (o * s.out_height + y) * s.out_width;
                    copy_row::<S>(&mut out[at..], &wide[o * vector_pixels + y * grid.row..], s.out_width);
                }
            }
        }
    }
}

/// The weights of a convolution laid out for [`Forward`] with every instruction set: for each
/// block of [`FORWARD_BLOCK`] output channels, per tap, the block's weights next to each other
/// (zeros for channels past the last).
pub(super) struct PackedWeights(Vec<f32>);

/// Output channels a forward kernel computes at once.
const FORWARD_BLOCK: usize = 8;

pub(super) fn pack_weights(s: &ConvShape, weight: &[f32]) -> PackedWeights {
    let taps = s.taps();
    let blocks = s.out_channels.div_ceil(FORWARD_BLOCK);
    let mut packed = vec![0.0f32; blocks * taps * FORWARD_BLOCK];
    for (o, kernels) in weight.chunks_exact(taps).enumerate() {
        let block = &mut packed[o / FORWARD_BLOCK * taps * FORWARD_BLOCK..][..taps * FORWARD_BLOCK];
        for (r, &w) in kernels.iter().enumerate() {
            block[r * FORWARD_BLOCK + o % FORWARD_BLOCK] = w;
        }
    }
    PackedWeights(packed)
}

/// One sample's forward pass for one block of output channels.
struct ForwardBlock<'a> {
    grid: &'a Grid,
    padded: &'a [f32],
    /// `[taps, FORWARD_BLOCK]`.
    weights: &'a [f32],
    start: [f32; FORWARD_BLOCK],
    vector_pixels: usize,
}

impl ForwardBlock<'_> {
    /// `V` vectors of wide outputs from `first`, for the block's channels, into `wide`
    /// (`[FORWARD_BLOCK, vector_pixels]`). The accumulators stay in registers over all taps.
    #[inline(always)]
    fn tile<S: Simd, const V: usize>(&self, simd: S, first: usize, wide: &mut [f32]) {
        // AVX-512 keeps the whole block (8 x 3 of 32 registers); narrower sets two halves.
        if accumulators(S::F32_LANES) >= FORWARD_BLOCK * V {
            self.tile_part::<S, FORWARD_BLOCK, V>(simd, 0, first, wide);
        } else {
            const HALF: usize = FORWARD_BLOCK / 2;
            self.tile_part::<S, HALF, V>(simd, 0, first, wide);
            self.tile_part::<S, HALF, V>(simd, HALF, first, wide);
        }
    }

    /// Channels `from..from + O` of the block.
    #[inline(always)]
    fn tile_part<S: Simd, const O: usize, const V: usize>(&self, simd: S, from: usize, first: usize, wide: &mut [f32]) {
        let mut sums: [[S::f32s; V]; O] = std::array::from_fn(|o| [simd.splat_f32s(self.start[from + o]); V]);
        for (&offset, w) in self.grid.offsets.iter().zip(self.weights.chunks_exact(FORWARD_BLOCK)) {
            let inputs = vectors::<S, V>(&self.padded[offset + first..]);
            for (sums, &w) in sums.iter_mut().zip(&w[from..from + O]) {
                let w = simd.splat_f32s(w);
                for (sum, &input) in sums.iter_mut().zip(inputs) {
                    *sum = simd.mul_add_e_f32s(w, input, *sum);
                }
            }
        }
        for (o, sums) in sums.iter().enumerate() {
            *vectors_mut::<S, V>(&mut wide[(from + o) * self.vector_pixels + first..]) = *sums;
        }
    }
}

/// The first `N` vectors of `values` (at least that many floats long), read in place.
#[inline(always)]
fn vectors<S: Simd, const N: usize>(values: &[f32]) -> &[S::f32s; N] {
    S::as_simd_f32s(&values[..N * S::F32_LANES]).0.try_into().expect("N whole vectors")
}

/// [`vectors`], to write.
#[inline(always)]
fn vectors_mut<S: Simd, const N: usize>(values: &mut [f32]) -> &mut [S::f32s; N] {
    S::as_mut_simd_f32s(&mut values[..N * S::F32_LANES]).0.try_into().expect("N whole vectors")
}

/// Floats of scratch [`WeightGrad`] needs per task: one padded image and the output's
/// gradient on the wide grid, pixel-major.
pub(super) fn weight_grad_scratch_len(s: &ConvShape, grid: &Grid) -> usize {
    grid.padded_len(s, PIXEL_CHUNK) + grid.vector_pixels(PIXEL_CHUNK) * s.out_channels.next_multiple_of(MAX_LANES)
}

/// The weight gradient's rows: taps rounded up to whole blocks of the largest kernel (24).
fn padded_taps(s: &ConvShape) -> usize {
    s.taps().next_multiple_of(accumulators(MAX_LANES))
}

/// The length of [`WeightGrad`]'s sums: `[padded taps, out channels rounded to 16]`.
pub(super) fn weight_grad_len(s: &ConvShape) -> usize {
    padded_taps(s) * s.out_channels.next_multiple_of(MAX_LANES)
}

/// Adds the weight gradient of consecutive images (`x`) and their outputs' gradients (`grad`,
/// `[samples, out_channels, out_pixels]`) to `sums`, tap-major ([`weight_grad_len`]; see
/// [`weight_grad_of`]), sample after sample; run by [`with_best_simd`](crate::simd::with_best_simd). `scratch`:
/// [`weight_grad_scratch_len`] floats.
pub(super) struct WeightGrad<'a> {
    pub(super) s: &'a ConvShape,
    pub(super) grid: &'a Grid,
    pub(super) x: &'a [f32],
    pub(super) grad: &'a [f32],
    pub(super) sums: &'a mut [f32],
    pub(super) scratch: &'a mut [f32],
}

impl WithSimd for WeightGrad<'_> {
    type Output = ();

    /// A block keeps its channel vectors of the output's gradient in registers beside the
    /// accumulators and the broadcast input. Four fit beside AVX-512's 24 accumulators (29 of
    /// 32); beside AVX2's 12 they made 17 of 16, and the compiler kept one accumulator on the
    /// stack, loaded and stored again at every pixel: over a third of the kernel's time (`perf
    /// annotate`, docs/benchmarks.md).
    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let (gradient_vectors, broadcast) = (4, 1);
        let four_fit = accumulators(S::F32_LANES) + gradient_vectors + broadcast <= registers(S::F32_LANES);
        self.in_blocks(simd, if four_fit { gradient_vectors } else { 2 });
    }
}

impl WeightGrad<'_> {
    /// With blocks of up to `channel_vectors` vectors of output channels (4, 2 or 1: the
    /// largest that divides the channels' vectors) and as many taps as fill the accumulators.
    /// Every block shape gives the same numbers: each sum is the same chain over the pixels.
    #[inline(always)]
    fn in_blocks<S: Simd>(self, simd: S, channel_vectors: usize) {
        let WeightGrad { s, grid, x, grad, sums, scratch } = self;
        let channels = s.out_channels.next_multiple_of(MAX_LANES);
        let (padded, rest) = scratch.split_at_mut(grid.padded_len(s, PIXEL_CHUNK));
        let by_pixel = &mut rest[..grid.vector_pixels(PIXEL_CHUNK) * channels];
        let grad_len = s.out_channels * s.out_pixels();
        let vectors = channels / S::F32_LANES;
        for (image, grad) in x.chunks_exact(s.sample_len()).zip(grad.chunks_exact(grad_len)) {
            grid.pad_into::<S>(s, image, padded);
            // The output's gradient pixel-major on the wide grid, zero past each row's end, after
            // the last pixel and for channels past the last, so those add nothing.
            by_pixel.fill(0.0);
            for (o, plane) in grad.chunks_exact(s.out_pixels()).enumerate() {
                for (y, row) in plane.chunks_exact(s.out_width).enumerate() {
                    for (x, &g) in row.iter().enumerate() {
                        by_pixel[(y * grid.row + x) * channels + o] = g;
                    }
                }
            }
            let pass = WeightGradPass { padded, by_pixel, channels };
            let taps_per_block = |block_vectors: usize| accumulators(S::F32_LANES) / block_vectors;
            match vectors {
                v if v % 4 == 0 && channel_vectors >= 4 => {
                    pass.run::<S, 4>(simd, taps_per_block(4), &grid.offsets, sums)
                }
                v if v % 2 == 0 && channel_vectors >= 2 => {
                    pass.run::<S, 2>(simd, taps_per_block(2), &grid.offsets, sums)
                }
                _ => pass.run::<S, 1>(simd, taps_per_block(1), &grid.offsets, sums),
            }
        }
    }
}

/// [`WeightGrad`]'s sums as the weight's gradient, `[out_channels, taps]`.
pub(super) fn weight_grad_of(s: &ConvShape, sums: &[f32]) -> Vec<f32> {
    let channels = s.out_channels.next_multiple_of(MAX_LANES);
    let mut gradient = vec![0.0f32; s.out_channels * s.taps()];
    for (o, row) in gradient.chunks_exact_mut(s.taps()).enumerate() {
        for (r, g) in row.iter_mut().enumerate() {
            *g = sums[r * channels + o];
        }
    }
    gradient
}

/// Pixels the weight gradient's kernel takes at once.
const PIXEL_CHUNK: usize = 16;

/// One sample's weight gradient.
struct WeightGradPass<'a> {
    padded: &'a [f32],
    /// `[pixels, channels]`, the pixels rounded up to whole [`PIXEL_CHUNK`]s (zeros after them).
    by_pixel: &'a [f32],
    channels: usize,
}

impl WeightGradPass<'_> {
    /// Over blocks of `C` channel vectors and `taps` taps (24 or 12 accumulators in all).
    #[inline(always)]
    fn run<S: Simd, const C: usize>(&self, simd: S, taps: usize, offsets: &[usize], sums: &mut [f32]) {
        match taps {
            24 => self.blocks::<S, C, 24>(simd, offsets, sums),
            12 => self.blocks::<S, C, 12>(simd, offsets, sums),
            6 => self.blocks::<S, C, 6>(simd, offsets, sums),
            3 => self.blocks::<S, C, 3>(simd, offsets, sums),
            other => unreachable!("no weight-gradient kernel for {other} taps"),
        }
    }

    #[inline(always)]
    fn blocks<S: Simd, const C: usize, const T: usize>(&self, simd: S, offsets: &[usize], sums: &mut [f32]) {
        let lanes = S::F32_LANES;
        for (offsets, sums) in offsets.chunks_exact(T).zip(sums.chunks_exact_mut(T * self.channels)) {
            for first in (0..self.channels).step_by(C * lanes) {
                let mut acc: [[S::f32s; C]; T] =
                    std::array::from_fn(|t| *vectors::<S, C>(&sums[t * self.channels + first..]));
                for (start, grads) in
                    (0..).step_by(PIXEL_CHUNK).zip(self.by_pixel.chunks_exact(PIXEL_CHUNK * self.channels))
                {
                    // The taps' inputs for these pixels, copied out first: read from a
                    // fixed-size array, they need no bounds checks in the loop below, which the
                    // compiler then unrolls over the taps with the sums in registers.
                    let inputs: [[f32; PIXEL_CHUNK]; T] = std::array::from_fn(|t| {
                        self.padded[offsets[t] + start..][..PIXEL_CHUNK].try_into().expect("a chunk")
                    });
                    for (q, grads) in grads.chunks_exact(self.channels).enumerate() {
                        let grads = vectors::<S, C>(&grads[first..]);
                        for (acc, inputs) in acc.iter_mut().zip(&inputs) {
                            let input = simd.splat_f32s(inputs[q]);
                            for (a, &g) in acc.iter_mut().zip(grads) {
                                *a = simd.mul_add_e_f32s(input, g, *a);
                            }
                        }
                    }
                }
                for (t, acc) in acc.iter().enumerate() {
                    *vectors_mut::<S, C>(&mut sums[t * self.channels + first..]) = *acc;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::tests::bits_of;
    use crate::rng::Rng;

    fn shape(
        batch: usize,
        channels: usize,
        size: (usize, usize),
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> ConvShape {
        let (height, width) = size;
        let out = |n: usize| (n + 2 * padding - kernel) / stride + 1;
        ConvShape {
            batch,
            channels,
            height,
            width,
            out_channels,
            kernel,
            stride,
            padding,
            out_height: out(height),
            out_width: out(width),
        }
    }

    /// The image's value at (sample, c, y, x) of the padded image, zero in the padding.
    fn at(s: &ConvShape, x: &[f32], (n, c, y, col): (usize, usize, usize, usize)) -> f64 {
        let (y, col) = (y as isize - s.padding as isize, col as isize - s.padding as isize);
        if y < 0 || col < 0 || y >= s.height as isize || col >= s.width as isize {
            return 0.0;
        }
        f64::from(x[((n * s.channels + c) * s.height + y as usize) * s.width + col as usize])
    }

    /// The convolution and its weight gradient by their definitions, in f64.
    fn reference(s: &ConvShape, x: &[f32], weight: &[f32], bias: &[f32], grad: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let k = s.kernel;
        let mut out = vec![0.0f64; s.batch * s.out_channels * s.out_pixels()];
        let mut weight_grad = vec![0.0f64; weight.len()];
        for n in 0..s.batch {
            for o in 0..s.out_channels {
                for (y, col) in (0..s.out_height).flat_map(|y| (0..s.out_width).map(move |col| (y, col))) {
                    let i = ((n * s.out_channels + o) * s.out_height + y) * s.out_width + col;
                    out[i] = f64::from(bias[o]);
                    for r in 0..s.taps() {
                        let (c, ky, kx) = (r / (k * k), r / k % k, r % k);
                        let v = at(s, x, (n, c, y * s.stride + ky, col * s.stride + kx));
                        out[i] += f64::from(weight[o * s.taps() + r]) * v;
                        weight_grad[o * s.taps() + r] += f64::from(grad[i]) * v;
                    }
                }
            }
        }
        (out, weight_grad)
    }

    fn assert_near(ours: &[f32], exact: &[f64], what: &str) {
        assert_eq!(ours.len(), exact.len(), "{what}: lengths");
        let scale = exact.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
        for (i, (&a, &b)) in ours.iter().zip(exact).enumerate() {
            assert!((f64::from(a) - b).abs() <= 1e-5 * scale, "{what}[{i}]: {a} against {b}");
        }
    }

    /// The forward pass and the weight gradient on one instruction set. The scratch starts as
    /// NaN, so an entry read before it is written shows in the numbers.
    fn run_on<S: Simd>(
        simd: S,
        s: &ConvShape,
        x: &[f32],
        weight: &[f32],
        bias: &[f32],
        grad: &[f32],
    ) -> (Vec<f32>, Vec<f32>) {
        let grid = Grid::new(s);
        let weights = pack_weights(s, weight);
        let mut out = vec![f32::NAN; s.batch * s.out_channels * s.out_pixels()];
        let mut scratch = vec![f32::NAN; forward_scratch_len(s, &grid)];
        Simd::vectorize(
            simd,
            Forward { s, grid: &grid, weights: &weights, bias: Some(bias), x, out: &mut out, scratch: &mut scratch },
        );
        let weight_grad = |channel_vectors: Option<usize>| {
            let mut sums = vec![0.0f32; weight_grad_len(s)];
            let mut scratch = vec![f32::NAN; weight_grad_scratch_len(s, &grid)];
            let pass = WeightGrad { s, grid: &grid, x, grad, sums: &mut sums, scratch: &mut scratch };
            match channel_vectors {
                None => Simd::vectorize(simd, pass),
                Some(channel_vectors) => Simd::vectorize(simd, InBlocks(pass, channel_vectors)),
            }
            weight_grad_of(s, &sums)
        };
        let chosen = weight_grad(None);
        // Every block shape, whichever this instruction set picks, to the bit.
        for channel_vectors in [1, 2, 4] {
            assert_eq!(bits_of(&weight_grad(Some(channel_vectors))), bits_of(&chosen), "blocks of {channel_vectors}");
        }
        (out, chosen)
    }

    /// [`WeightGrad`] in blocks of a given number of channel vectors.
    struct InBlocks<'a>(WeightGrad<'a>, usize);

    impl WithSimd for InBlocks<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) {
            self.0.in_blocks(simd, self.1);
        }
    }

    /// Every instruction set the kernels can take here agrees with the definitions, and those
    /// with fused multiply-adds (AVX2 and AVX-512 on x86-64) with each other bit for bit: each
    /// lane computes the same chain of operations whatever the vectors' width. Shapes: channel
    /// counts that fill no whole block or vector, one input channel, the ResNet's last stage,
    /// kernels of 1 to 5, no padding and more than one, a padding of at least the kernel (whose
    /// outputs make the wide grid's rows wider than image and padding), a one-pixel image;
    /// strides 2 to 4 (the ResNet's downsampling, even and odd sizes, a stride above the kernel
    /// and the image). The weight gradient in every block shape (1, 2 and 4 channel vectors)
    /// gives the bits of the one the instruction set picks.
    #[test]
    fn every_instruction_set_gives_the_definitions_numbers() {
        let mut rng = Rng::new(11);
        let cases = [
            shape(3, 3, (9, 11), 20, 3, 1, 1),
            shape(2, 1, (28, 28), 16, 3, 1, 1),
            shape(2, 64, (7, 7), 64, 3, 1, 1),
            shape(2, 5, (6, 4), 10, 2, 1, 0),
            shape(1, 2, (5, 5), 3, 5, 1, 2),
            shape(2, 4, (3, 3), 40, 1, 1, 0),
            shape(2, 3, (1, 1), 2, 3, 1, 1),
            shape(1, 2, (4, 5), 3, 2, 1, 2),
            shape(2, 1, (3, 3), 2, 1, 1, 3),
            shape(2, 16, (28, 28), 32, 3, 2, 1),
            shape(2, 3, (9, 8), 5, 3, 2, 0),
            shape(1, 2, (10, 7), 3, 2, 3, 1),
            shape(1, 2, (2, 2), 2, 3, 4, 1),
        ];
        for s in cases {
            let what = format!("{s:?}");
            let mut random = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform_range(-1.0, 1.0) as f32).collect() };
            let x = random(s.batch * s.sample_len());
            let weight = random(s.out_channels * s.taps());
            let bias = random(s.out_channels);
            let grad = random(s.batch * s.out_channels * s.out_pixels());
            let (out, weight_grad) = reference(&s, &x, &weight, &bias, &grad);
            let scalar = run_on(pulp::Scalar::new(), &s, &x, &weight, &bias, &grad);
            assert_near(&scalar.0, &out, &format!("{what}, scalar: output"));
            assert_near(&scalar.1, &weight_grad, &format!("{what}, scalar: weight gradient"));
            #[cfg(target_arch = "x86_64")]
            {
                let avx2 = pulp::x86::V3::try_new().map(|simd| run_on(simd, &s, &x, &weight, &bias, &grad));
                let avx512 = pulp::x86::V4::try_new().map(|simd| run_on(simd, &s, &x, &weight, &bias, &grad));
                for (name, run) in [("AVX2", &avx2), ("AVX-512", &avx512)] {
                    if let Some((ours, ours_grad)) = run {
                        assert_near(ours, &out, &format!("{what}, {name}: output"));
                        assert_near(ours_grad, &weight_grad, &format!("{what}, {name}: weight gradient"));
                    }
                }
                if let (Some(avx2), Some(avx512)) = (avx2, avx512) {
                    assert_eq!(avx2, avx512, "{what}: AVX2 and AVX-512 differ");
                }
            }
        }
    }
}
