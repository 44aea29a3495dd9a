//! A checkpoint tensor's statistics on a compute device: our WGSL kernels on a GPU
//! ([`crate::kernels`]), their CPU twins on the CPU backend. The tensor travels in pieces of
//! [`DEVICE_PIECE_VALUES`], well inside WebGPU's guaranteed 128 MiB storage binding.
//!
//! - float16 and bfloat16: `pattern_counts` counts the 65,536 bit patterns on the device; one
//!   read of the counters per tensor, then every statistic follows from them by the very code
//!   the CPU path runs ([`Values::Patterns`]), so the results are identical bit for bit.
//! - float32 and float64 (rounded to float32 as on the CPU; non-finite values counted and left
//!   out on the host before the upload): per piece `scope_partials`/`scope_finalize` give the
//!   piece's mean and range, `central_sums` the sums of the first four powers of the
//!   deviations from that mean (scaled by half the range, so that no power overflows or
//!   underflows f32), merged across pieces in f64 (Pébay's formulas): mean, std and excess
//!   kurtosis. A GPU may flush subnormal f32 values to zero in arithmetic, so a tensor whose
//!   values are all below 1.2e-38 gets its moments from zeros there (its range, histogram and
//!   KS buckets are compared as integer keys and stay exact). `key_buckets` counts the
//!   values per bucket of order keys (the top 16 bits: sign, exponent, 7 mantissa bits) and
//!   keeps the least and greatest key, the exact minimum and maximum.
//!
//! The KS distance and the histograms need the values in order, which 65,536 buckets give only
//! up to a bucket. They are made exact by a bounded refinement on the CPU: from each bucket's
//! cumulative count and value range, bounds on the largest CDF gap inside it follow; the buckets
//! whose upper bound reaches the largest lower bound of any bucket (the only ones that can hold
//! the supremum), and those straddling a histogram bin edge, are read once more from the source,
//! and only their values are sorted. Every other bucket counts whole. So the histograms equal
//! the CPU's and the KS distance differs from it only through the mean and std it is measured
//! against (f32 sums on the device against the CPU's f64 ones: below 1e-6). How many values
//! the refinement sorts depends on the data: few for a tensor far from Gaussian, most of them
//! for one so close to Gaussian that the gap is below a bucket's share (no more memory than
//! the CPU path in either case).

use super::Source;
use super::header::{StoredType, TensorEntry, for_each_piece};
use super::stats::{TensorStats, Values, from_order_key32, order_key32, radix_sort};
use crate::error::Result;
use crate::kernels::{
    CENTRAL_SUMS_LEN, LEAST_KEY, STATS_LEN, VALUE_COUNTERS, central_sums_scale, key_buckets, pattern_counts,
    piece_moments, read_counters,
};
use crate::scope::{HistogramBins, normal_cdf};
use burn::tensor::{Device, Int, Tensor, TensorData};
use std::path::Path;

/// Values per piece sent to the device: 16 MiB of float32, an eighth of the storage binding
/// WebGPU guarantees, few enough launches that their fixed cost is small.
pub const DEVICE_PIECE_VALUES: usize = 1 << 22;

/// Values queued on the device before the host waits for them (four pieces: 32 MiB of
/// float16, 64 MiB of float32 in flight at most).
const IN_FLIGHT_VALUES: u64 = 4 * DEVICE_PIECE_VALUES as u64;

/// Top bits of a float32 order key that [`key_buckets`] counts by.
const BUCKET_SHIFT: u32 = 16;

/// Slack on the KS bounds, far above the rounding of the normal CDF and far below any KS
/// distance that matters: a bucket within it of the lower bound is refined too.
const BOUND_SLACK: f64 = 1e-9;

/// What the device pass leaves of one tensor.
pub enum DeviceSummary {
    /// A 16-bit tensor: its bit patterns counted, as the CPU path counts them.
    Patterns { values: Values, non_finite: u64 },
    /// A float32 or float64 tensor: moments, buckets and extremes; order statistics still to
    /// be refined.
    Keys(KeySummary),
}

/// A float32 (or float64 rounded) tensor after the device pass.
pub struct KeySummary {
    pub moments: Moments,
    pub non_finite: u64,
    /// Values per bucket of order keys.
    pub buckets: Vec<u64>,
    pub least_key: u32,
    pub greatest_key: u32,
}

/// Count, mean and central moments (sums of powers of deviations from the mean) of some values.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Moments {
    pub count: f64,
    pub mean: f64,
    pub m2: f64,
    pub m3: f64,
    pub m4: f64,
}

impl Moments {
    /// The moments of a piece from its sums of d, d², d³, d⁴ about `centre`.
    pub fn from_central_sums(count: f64, centre: f64, sums: [f64; CENTRAL_SUMS_LEN]) -> Self {
        if count == 0.0 {
            return Self::default();
        }
        let [s1, s2, s3, s4] = sums;
        let delta = s1 / count;
        Moments {
            count,
            mean: centre + delta,
            m2: (s2 - count * delta * delta).max(0.0),
            m3: s3 - 3.0 * delta * s2 + 2.0 * count * delta.powi(3),
            m4: (s4 - 4.0 * delta * s3 + 6.0 * delta * delta * s2 - 3.0 * count * delta.powi(4)).max(0.0),
        }
    }

    /// Both sets of values together (Pébay 2008, the pairwise update of central moments).
    pub fn merge(self, b: Moments) -> Moments {
        if b.count == 0.0 {
            return self;
        }
        if self.count == 0.0 {
            return b;
        }
        let a = self;
        let n = a.count + b.count;
        let delta = b.mean - a.mean;
        let (na, nb) = (a.count, b.count);
        Moments {
            count: n,
            mean: a.mean + delta * nb / n,
            m2: a.m2 + b.m2 + delta * delta * na * nb / n,
            m3: a.m3 + b.m3 + delta.powi(3) * na * nb * (na - nb) / (n * n) + 3.0 * delta * (na * b.m2 - nb * a.m2) / n,
            m4: a.m4
                + b.m4
                + delta.powi(4) * na * nb * (na * na - na * nb + nb * nb) / (n * n * n)
                + 6.0 * delta * delta * (na * na * b.m2 + nb * nb * a.m2) / (n * n)
                + 4.0 * delta * (na * b.m3 - nb * a.m3) / n,
        }
    }
}

/// Counters that the device adds to, read back into u64 before any could pass u32::MAX.
/// With the extremes' slots, the least and greatest order key over every read.
struct Counters {
    on_device: Tensor<1, Int>,
    fresh: Vec<i32>,
    since_read: u64,
    total: Vec<u64>,
    least_key: u32,
    greatest_key: u32,
    device: Device,
}

impl Counters {
    fn new(fresh: Vec<i32>, device: &Device) -> Self {
        let on_device = Self::upload(&fresh, device);
        let total = vec![0; VALUE_COUNTERS];
        Counters {
            on_device,
            fresh,
            since_read: 0,
            total,
            least_key: u32::MAX,
            greatest_key: 0,
            device: device.clone(),
        }
    }

    fn upload(fresh: &[i32], device: &Device) -> Tensor<1, Int> {
        Tensor::from_data(TensorData::new(fresh.to_vec(), [fresh.len()]), device)
    }

    /// Makes room for `more` values: reads and restarts the counters before they could
    /// overflow, and every [`IN_FLIGHT_VALUES`], so that the read waits for the pieces queued
    /// so far and their buffers go back to the pool instead of piling up.
    fn room_for(&mut self, more: u64) -> Result<()> {
        if self.since_read > 0 && self.since_read + more > IN_FLIGHT_VALUES.min(u64::from(u32::MAX)) {
            self.read()?;
            self.on_device = Self::upload(&self.fresh, &self.device);
        }
        self.since_read += more;
        Ok(())
    }

    /// Adds the device's counts to the totals.
    fn read(&mut self) -> Result<()> {
        let words = crate::wait(read_counters(self.on_device.clone()))?;
        for (total, &count) in self.total.iter_mut().zip(&words) {
            *total += u64::from(count);
        }
        if let [least, greatest] = words[VALUE_COUNTERS..] {
            self.least_key = self.least_key.min(least);
            self.greatest_key = self.greatest_key.max(greatest);
        }
        self.since_read = 0;
        Ok(())
    }
}

impl DeviceSummary {
    /// Reads `entry` (a float tensor) from `source` in pieces onto `device` and summarises it
    /// there.
    pub fn read(device: &Device, source: &mut impl Source, origin: &Path, entry: &TensorEntry) -> Result<Self> {
        match entry.dtype {
            StoredType::F16 | StoredType::BF16 => Self::read_patterns(device, source, origin, entry),
            _ => Self::read_keys(device, source, origin, entry),
        }
    }

    fn read_patterns(device: &Device, source: &mut impl Source, origin: &Path, entry: &TensorEntry) -> Result<Self> {
        let mut counters = Counters::new(vec![0; VALUE_COUNTERS], device);
        let mut pending = Ok(());
        for_each_piece(source, origin, entry, DEVICE_PIECE_VALUES, |piece| {
            let values = piece.len() / 2;
            if values == 0 || pending.is_err() {
                return;
            }
            pending = counters.room_for(values as u64);
            // Two values a word, the first in the low half: the file's little-endian bytes.
            let packed: Vec<i32> = piece
                .chunks(4)
                .map(|w| i32::from_le_bytes([w[0], w[1], *w.get(2).unwrap_or(&0), *w.get(3).unwrap_or(&0)]))
                .collect();
            let len = packed.len();
            let packed = Tensor::<1, Int>::from_data(TensorData::new(packed, [len]), device);
            counters.on_device = pattern_counts(packed, counters.on_device.clone(), values);
        })?;
        pending?;
        counters.read()?;
        let (values, non_finite) = Values::from_patterns(entry.dtype.clone(), counters.total);
        Ok(DeviceSummary::Patterns { values, non_finite })
    }

    fn read_keys(device: &Device, source: &mut impl Source, origin: &Path, entry: &TensorEntry) -> Result<Self> {
        let mut fresh = vec![0; VALUE_COUNTERS + 2];
        fresh[LEAST_KEY] = u32::MAX as i32;
        let mut counters = Counters::new(fresh, device);
        let mut non_finite = 0u64;
        let mut pieces = Vec::new();
        let mut decoded = Vec::new();
        let mut pending = Ok(());
        for_each_piece(source, origin, entry, DEVICE_PIECE_VALUES, |piece| {
            decoded.clear();
            entry.dtype.decode(piece, &mut decoded);
            let before = decoded.len();
            decoded.retain(|v| v.is_finite());
            non_finite += (before - decoded.len()) as u64;
            if decoded.is_empty() || pending.is_err() {
                return;
            }
            pending = counters.room_for(decoded.len() as u64);
            let values = Tensor::<1>::from_data(TensorData::new(decoded.clone(), [decoded.len()]), device);
            counters.on_device = key_buckets(values.clone(), counters.on_device.clone());
            pieces.push((decoded.len(), piece_moments(values)));
        })?;
        pending?;
        counters.read()?;
        // One read for every piece's moments, after all the launches.
        let lengths: Vec<usize> = pieces.iter().map(|(_, m)| m.dims()[0]).collect();
        let counts: Vec<usize> = pieces.iter().map(|(n, _)| *n).collect();
        let mut moments = Moments::default();
        if !pieces.is_empty() {
            let all = Tensor::cat(pieces.into_iter().map(|(_, m)| m).collect(), 0);
            let read = crate::wait(crate::device::read_f64(all))?;
            let mut at = 0;
            for (len, count) in lengths.into_iter().zip(counts) {
                let piece = &read[at..at + len];
                at += len;
                let mut sums = [0f64; CENTRAL_SUMS_LEN];
                for partial in piece[STATS_LEN..].chunks_exact(CENTRAL_SUMS_LEN) {
                    for (sum, value) in sums.iter_mut().zip(partial) {
                        *sum += value;
                    }
                }
                let scale =
                    f64::from(central_sums_scale(&piece[..STATS_LEN].iter().map(|&v| v as f32).collect::<Vec<_>>()));
                let mut power = 1.0;
                for sum in &mut sums {
                    power *= scale;
                    *sum *= power;
                }
                moments = moments.merge(Moments::from_central_sums(count as f64, piece[0], sums));
            }
        }
        Ok(DeviceSummary::Keys(KeySummary {
            moments,
            non_finite,
            buckets: counters.total,
            least_key: counters.least_key,
            greatest_key: counters.greatest_key,
        }))
    }

    /// The statistics, the KS distance of a float32 tensor still 0 ([`KeySummary::refine`] sets it).
    pub fn stats(&self) -> TensorStats {
        match self {
            DeviceSummary::Patterns { values, non_finite } => values.stats(*non_finite),
            DeviceSummary::Keys(keys) => keys.stats(),
        }
    }
}

impl KeySummary {
    fn value_of_key(key: u32) -> f64 {
        f64::from(f32::from_bits(from_order_key32(key)))
    }

    /// Mean, std, excess kurtosis and range from the device pass; KS 0 until refined (1 for a
    /// constant tensor, everything as on the CPU for one without finite values).
    pub fn stats(&self) -> TensorStats {
        let m = self.moments;
        if m.count == 0.0 {
            return Values::SortedKeys(Vec::new()).stats(self.non_finite);
        }
        let (excess_kurtosis, ks_distance) =
            if m.m2 > 0.0 { (m.count * m.m4 / (m.m2 * m.m2) - 3.0, 0.0) } else { (0.0, 1.0) };
        TensorStats {
            count: m.count as u64,
            non_finite: self.non_finite,
            mean: m.mean,
            std: (m.m2 / m.count).sqrt(),
            excess_kurtosis,
            ks_distance,
            min: Self::value_of_key(self.least_key),
            max: Self::value_of_key(self.greatest_key),
        }
    }

    /// The exact KS distance for `stats` (this summary's) and the histogram over [low, high]
    /// in `bins` bins: reads `entry` once more and sorts only the values of the buckets that
    /// can hold the KS supremum or straddle a bin edge. Returns the finished statistics, the
    /// histogram and how many values were sorted.
    pub fn refine(
        &self,
        source: &mut impl Source,
        origin: &Path,
        entry: &TensorEntry,
        (low, high, bins): (f64, f64, usize),
    ) -> Result<(TensorStats, Vec<u64>, usize)> {
        let mut stats = self.stats();
        let grid = HistogramBins::new(low, high, bins);
        let mut histogram = vec![0u64; grid.count()];
        if stats.count == 0 {
            return Ok((stats, histogram, 0));
        }
        let n = stats.count as f64;
        let gauss = stats.std > 0.0;
        let cdf = |v: f64| normal_cdf((v - stats.mean) / stats.std);
        let (min, max) = (stats.min, stats.max);
        // Each non-empty bucket: its range of values (clipped to the tensor's) and the counts
        // below it.
        let mut spans = Vec::new();
        let mut below = 0u64;
        for (bucket, &count) in self.buckets.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let first = (bucket as u32) << BUCKET_SHIFT;
            let lo = Self::value_of_key(first).max(min);
            let hi = Self::value_of_key(first | ((1 << BUCKET_SHIFT) - 1)).min(max);
            spans.push((bucket, lo, hi, below, count));
            below += count;
        }
        let bounds = |&(_, lo, hi, before, count): &(usize, f64, f64, u64, u64)| {
            let (before, after) = (before as f64 / n, (before + count) as f64 / n);
            let (low_cdf, high_cdf) = (cdf(lo), cdf(hi));
            let lower = (low_cdf - before).max(after - high_cdf);
            let upper = (high_cdf - before).max(after - low_cdf);
            (lower, upper)
        };
        let floor = if gauss { spans.iter().map(|s| bounds(s).0).fold(f64::NEG_INFINITY, f64::max) } else { 0.0 };
        let mut refine = vec![false; self.buckets.len()];
        let mut ks_candidate = vec![false; self.buckets.len()];
        for span in &spans {
            let (bucket, lo, hi, _, count) = *span;
            if gauss && bounds(span).1 + BOUND_SLACK >= floor {
                ks_candidate[bucket] = true;
                refine[bucket] = true;
            }
            if grid.bin(lo) != grid.bin(hi) {
                refine[bucket] = true;
            } else if !refine[bucket] {
                histogram[grid.bin(lo)] += count;
            }
        }
        let mut keys = Vec::new();
        let mut decoded = Vec::new();
        for_each_piece(source, origin, entry, DEVICE_PIECE_VALUES, |piece| {
            decoded.clear();
            entry.dtype.decode(piece, &mut decoded);
            for v in &decoded {
                let key = order_key32(v.to_bits());
                if v.is_finite() && refine[(key >> BUCKET_SHIFT) as usize] {
                    keys.push(key);
                }
            }
        })?;
        radix_sort(&mut keys);
        let mut ks = 0f64;
        let mut next = 0;
        for &(bucket, _, _, before, count) in spans.iter().filter(|s| refine[s.0]) {
            let sorted = &keys[next..next + count as usize];
            next += count as usize;
            let mut below = before;
            for &key in sorted {
                let v = Self::value_of_key(key);
                histogram[grid.bin(v)] += 1;
                if ks_candidate[bucket] {
                    let c = cdf(v);
                    let before = below as f64 / n;
                    below += 1;
                    ks = ks.max((c - before).abs()).max((below as f64 / n - c).abs());
                }
            }
        }
        if gauss {
            stats.ks_distance = ks;
        }
        Ok((stats, histogram, keys.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::compare::{compare, compare_on_device, float_file};
    use crate::rng::Rng;
    use std::io::Cursor;

    #[test]
    fn pieces_merge_into_the_moments_of_all_values() {
        let mut rng = Rng::new(3);
        let values: Vec<f64> = (0..1000).map(|_| 5.0 + rng.normal() * rng.normal()).collect();
        let direct = |v: &[f64]| {
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            let m = |k: i32| v.iter().map(|x| (x - mean).powi(k)).sum::<f64>();
            Moments { count: n, mean, m2: m(2), m3: m(3), m4: m(4) }
        };
        let piece = |v: &[f64], centre: f64| {
            let mut sums = [0f64; CENTRAL_SUMS_LEN];
            for x in v {
                for (k, sum) in sums.iter_mut().enumerate() {
                    *sum += (x - centre).powi(k as i32 + 1);
                }
            }
            Moments::from_central_sums(v.len() as f64, centre, sums)
        };
        let merged = [(0, 1), (1, 300), (300, 301), (301, 1000)]
            .into_iter()
            .map(|(s, e)| piece(&values[s..e], values[s] - 0.5))
            .fold(Moments::default(), Moments::merge);
        let expected = direct(&values);
        assert_eq!(merged.count, expected.count);
        for (got, want) in
            [(merged.mean, expected.mean), (merged.m2, expected.m2), (merged.m3, expected.m3), (merged.m4, expected.m4)]
        {
            assert!((got - want).abs() <= 1e-9 * want.abs(), "{got} vs {want}");
        }
    }

    /// The device path on the CPU backend (the kernels' host twins): the same report as the CPU
    /// path, 16-bit tensors identical, float32 ones up to the f32 deviations' rounding, and the
    /// refinement sorting only part of a tensor far from Gaussian.
    #[test]
    fn the_device_path_on_the_cpu_backend_gives_the_cpu_paths_report() {
        let mut rng = Rng::new(11);
        let long = DEVICE_PIECE_VALUES + 777;
        let mut gauss = |n: usize, mean: f64, std: f64| -> Vec<f32> {
            (0..n).map(|_| (mean + std * rng.normal()) as f32).collect()
        };
        let skewed: Vec<f32> = gauss(40_000, 0.0, 1.0).iter().map(|v| v.exp() * 0.01).collect();
        let mut awkward = gauss(300, 0.0, 0.1);
        awkward.extend([f32::NAN, f32::INFINITY, -0.0, 0.0]);
        let mut file = |shift: f32| {
            float_file(&[
                ("long", StoredType::F32, vec![long], gauss(long, f64::from(shift), 0.02)),
                ("half", StoredType::BF16, vec![long], gauss(long, 0.0, 1.0 + f64::from(shift))),
                ("skewed", StoredType::F64, vec![40_000], skewed.iter().map(|v| v + shift).collect()),
                ("awkward", StoredType::F32, vec![304], awkward.clone()),
                ("constant", StoredType::F32, vec![5], vec![shift; 5]),
                ("empty", StoredType::F16, vec![0], Vec::new()),
                ("nan", StoredType::F32, vec![1], vec![f32::NAN]),
            ])
        };
        let (a, b) = (file(0.0), file(0.25));
        let files = [Path::new("a"), Path::new("b")];
        let cpu = compare(files, [&mut Cursor::new(a.clone()), &mut Cursor::new(b.clone())], 23).expect("cpu");
        let device = crate::device::cpu().device;
        let on_device =
            compare_on_device(&device, files, [&mut Cursor::new(a.clone()), &mut Cursor::new(b)], 23).expect("device");
        for (d, c) in on_device.tensors.iter().zip(&cpu.tensors) {
            if c.dtypes[0] == "BF16" || c.dtypes[0] == "F16" {
                assert_eq!(d, c);
                continue;
            }
            assert_eq!(
                (&d.histogram_a, &d.histogram_b, d.histogram_low),
                (&c.histogram_a, &c.histogram_b, c.histogram_low)
            );
            for (x, y) in [(&d.a, &c.a), (&d.b, &c.b)] {
                assert_eq!((x.count, x.non_finite, x.min, x.max), (y.count, y.non_finite, y.min, y.max), "{}", c.name);
                assert!((x.mean - y.mean).abs() <= 1e-7 * y.std.max(y.mean.abs()), "{} mean", c.name);
                assert!((x.std - y.std).abs() <= 1e-7 * y.std, "{} std {} {}", c.name, x.std, y.std);
                assert!((x.excess_kurtosis - y.excess_kurtosis).abs() <= 1e-5, "{} kurtosis", c.name);
                assert!(
                    (x.ks_distance - y.ks_distance).abs() <= 1e-7,
                    "{} KS {} {}",
                    c.name,
                    x.ks_distance,
                    y.ks_distance
                );
            }
        }
        // The refinement reads only the buckets that matter for a tensor far from Gaussian.
        let header = super::super::Header::read(&mut Cursor::new(&a), Path::new("a")).expect("header");
        let entry = header.get("skewed").expect("skewed");
        let DeviceSummary::Keys(keys) =
            DeviceSummary::read(&device, &mut Cursor::new(&a), Path::new("a"), entry).expect("read")
        else {
            panic!("a float64 tensor is summarised by keys");
        };
        let stats = keys.stats();
        let (_, _, sorted) =
            keys.refine(&mut Cursor::new(&a), Path::new("a"), entry, (stats.min, stats.max, 23)).expect("refine");
        assert!(sorted < 40_000 / 4, "sorted {sorted} of 40000 values");
    }
}
