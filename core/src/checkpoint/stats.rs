//! One tensor's statistics, exact and in bounded memory: its scope (mean, population std), how
//! Gaussian it is (excess kurtosis, KS distance to N(mean, std²)), its range and histogram.
//!
//! The KS distance needs the values in order. A 16-bit tensor (float16, bfloat16) has at most
//! 65,536 distinct values, so one pass counting each bit pattern gives the sorted values with
//! their multiplicities in 512 KB whatever the tensor's size; a float32 or float64 tensor is
//! held as order-preserving 32-bit keys and radix-sorted (8 bytes per value while it sorts).
//! Every statistic then walks the values in ascending order (a 16-bit tensor's distinct values
//! with their counts). Non-finite values are counted and left out of every statistic. float64
//! values are summarised after rounding to float32 (one above float32's range counts as
//! infinite).

use super::Source;
use super::header::{StoredType, TensorEntry, for_each_piece};
use crate::error::Result;
use crate::scope::{Scope, counted_histogram, normal_cdf};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Values read per piece: 4 MB of float32, 2 MB of float16.
pub const PIECE_VALUES: usize = 1 << 20;

/// What is reported about one tensor.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorStats {
    /// Finite values summarised.
    pub count: u64,
    /// NaN and infinite values, left out of everything else.
    pub non_finite: u64,
    pub mean: f64,
    /// Population std (1/n), as a weight scope has.
    pub std: f64,
    /// m4 / m2² − 3: zero for a Gaussian, −1.2 for a uniform; 0 for a constant tensor.
    pub excess_kurtosis: f64,
    /// Largest gap between the empirical CDF and N(mean, std²)'s; 1 for a constant tensor.
    pub ks_distance: f64,
    pub min: f64,
    pub max: f64,
}

impl TensorStats {
    pub fn scope(&self) -> Scope {
        Scope { mean: self.mean, std: self.std }
    }
}

/// Maps a sign-magnitude float's bits to an unsigned key with the same order as the values:
/// negatives reversed below the positives (−0 just below +0). `shaders/value_counts.wgsl` maps
/// them the same way on a GPU.
pub(crate) fn order_key32(bits: u32) -> u32 {
    if bits & 0x8000_0000 != 0 { !bits } else { bits | 0x8000_0000 }
}

pub(crate) fn from_order_key32(key: u32) -> u32 {
    if key & 0x8000_0000 != 0 { key & 0x7fff_ffff } else { !key }
}

/// The inverse of [`order_key32`]'s 16-bit twin: the bit pattern with order key `key`.
fn from_order_key16(key: u16) -> u16 {
    if key & 0x8000 != 0 { key & 0x7fff } else { !key }
}

/// A tensor's finite values, in a form that lists them in ascending order.
#[derive(Clone, Debug)]
pub enum Values {
    /// A 16-bit float tensor: how often each bit pattern occurs.
    Patterns { dtype: StoredType, counts: Vec<u64> },
    /// A 32- or 64-bit float tensor's finite values as sorted order keys ([`order_key32`]).
    SortedKeys(Vec<u32>),
}

impl Values {
    /// Reads `entry` (a float tensor) from `source` in pieces. Returns the values and how many
    /// were not finite.
    pub fn read(source: &mut impl Source, origin: &Path, entry: &TensorEntry) -> Result<(Values, u64)> {
        let mut non_finite = 0u64;
        let values = match entry.dtype {
            StoredType::F16 | StoredType::BF16 => {
                let mut counts = vec![0u64; 1 << 16];
                for_each_piece(source, origin, entry, PIECE_VALUES, |piece| {
                    for pair in piece.chunks_exact(2) {
                        counts[usize::from(u16::from_le_bytes([pair[0], pair[1]]))] += 1;
                    }
                })?;
                let (values, patterns_not_finite) = Values::from_patterns(entry.dtype.clone(), counts);
                non_finite = patterns_not_finite;
                values
            }
            _ => {
                let mut keys = Vec::with_capacity(entry.numel());
                let mut decoded = Vec::new();
                for_each_piece(source, origin, entry, PIECE_VALUES, |piece| {
                    decoded.clear();
                    entry.dtype.decode(piece, &mut decoded);
                    for v in &decoded {
                        if v.is_finite() {
                            keys.push(order_key32(v.to_bits()));
                        } else {
                            non_finite += 1;
                        }
                    }
                })?;
                radix_sort(&mut keys);
                Values::SortedKeys(keys)
            }
        };
        Ok((values, non_finite))
    }

    /// A 16-bit tensor from how often each bit pattern occurs; returns how many were not finite.
    pub fn from_patterns(dtype: StoredType, counts: Vec<u64>) -> (Values, u64) {
        let values = Values::Patterns { dtype, counts };
        let non_finite = values.non_finite_patterns();
        (values, non_finite)
    }

    /// The value of a 16-bit pattern, `None` when it is not finite.
    fn pattern_value(dtype: &StoredType, pattern: u16) -> Option<f64> {
        let value = match dtype {
            StoredType::BF16 => half::bf16::from_bits(pattern).to_f32(),
            _ => half::f16::from_bits(pattern).to_f32(),
        };
        value.is_finite().then_some(f64::from(value))
    }

    fn non_finite_patterns(&self) -> u64 {
        match self {
            Values::Patterns { dtype, counts } => (0..=u16::MAX)
                .filter(|&p| Self::pattern_value(dtype, p).is_none())
                .map(|p| counts[usize::from(p)])
                .sum(),
            Values::SortedKeys(_) => 0,
        }
    }

    /// The finite values in ascending order, each with how often it occurs (equal values may
    /// come as neighbouring runs, e.g. −0 and +0).
    pub fn ascending(&self) -> Box<dyn Iterator<Item = (f64, u64)> + '_> {
        match self {
            Values::Patterns { dtype, counts } => Box::new((0..=u16::MAX).filter_map(move |key| {
                let pattern = from_order_key16(key);
                let count = counts[usize::from(pattern)];
                if count == 0 {
                    return None;
                }
                Self::pattern_value(dtype, pattern).map(|v| (v, count))
            })),
            Values::SortedKeys(keys) => {
                Box::new(keys.iter().map(|&k| (f64::from(f32::from_bits(from_order_key32(k))), 1)))
            }
        }
    }

    /// Mean, std, excess kurtosis, KS distance and range (count 0: all zero, KS 1).
    pub fn stats(&self, non_finite: u64) -> TensorStats {
        let (mut n, mut sum) = (0u64, 0.0f64);
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for (v, c) in self.ascending() {
            n += c;
            sum += v * c as f64;
            min = min.min(v);
            max = max.max(v);
        }
        if n == 0 {
            return TensorStats {
                count: 0,
                non_finite,
                mean: 0.0,
                std: 0.0,
                excess_kurtosis: 0.0,
                ks_distance: 1.0,
                min: 0.0,
                max: 0.0,
            };
        }
        let count = n as f64;
        let mean = sum / count;
        let (mut m2, mut m4) = (0.0f64, 0.0f64);
        for (v, c) in self.ascending() {
            let d2 = (v - mean).powi(2);
            m2 += d2 * c as f64;
            m4 += d2 * d2 * c as f64;
        }
        m2 /= count;
        m4 /= count;
        let std = m2.sqrt();
        let (excess_kurtosis, ks_distance) = if m2 > 0.0 {
            let mut below = 0u64;
            let mut ks = 0f64;
            for (v, c) in self.ascending() {
                let cdf = normal_cdf((v - mean) / std);
                let before = below as f64 / count;
                below += c;
                ks = ks.max((cdf - before).abs()).max((below as f64 / count - cdf).abs());
            }
            (m4 / (m2 * m2) - 3.0, ks)
        } else {
            (0.0, 1.0)
        };
        TensorStats { count: n, non_finite, mean, std, excess_kurtosis, ks_distance, min, max }
    }

    /// Counts in `bins` equal bins over [low, high] (values outside go to the edge bins).
    pub fn histogram(&self, low: f64, high: f64, bins: usize) -> Vec<u64> {
        counted_histogram(self.ascending(), low, high, bins)
    }
}

/// Sorts 32-bit keys: three stable counting passes over 11-bit digits (a least-significant-
/// digit radix sort), linear in the length where a comparison sort of a billion-value tensor
/// would take minutes.
pub(super) fn radix_sort(keys: &mut Vec<u32>) {
    if keys.len() < 1024 {
        keys.sort_unstable();
        return;
    }
    let mut spare = vec![0u32; keys.len()];
    for shift in [0u32, 11, 22] {
        let mut starts = [0usize; 2048];
        for &k in keys.iter() {
            starts[((k >> shift) & 0x7ff) as usize] += 1;
        }
        let mut total = 0;
        for slot in starts.iter_mut() {
            let count = *slot;
            *slot = total;
            total += count;
        }
        for &k in keys.iter() {
            let digit = ((k >> shift) & 0x7ff) as usize;
            spare[starts[digit]] = k;
            starts[digit] += 1;
        }
        std::mem::swap(keys, &mut spare);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::tests::bits_of;
    use crate::rng::Rng;
    use crate::scope::{gaussian_fit, histogram, scope_of};
    use std::io::Cursor;

    /// `values` stored as `dtype` in a one-tensor safetensors file, read back as [`Values`].
    fn read_as(dtype: StoredType, values: &[f32]) -> (Values, u64, Vec<f32>) {
        let mut data = Vec::new();
        dtype.encode(values, &mut data);
        let mut stored = Vec::new();
        dtype.decode(&data, &mut stored);
        let entry =
            TensorEntry { name: "t".into(), dtype, shape: vec![values.len()], start: 0, len: data.len() as u64 };
        let (read, non_finite) = Values::read(&mut Cursor::new(data), Path::new("t"), &entry).expect("read");
        (read, non_finite, stored)
    }

    #[test]
    fn the_statistics_equal_the_sorted_sample_definitions_for_every_type() {
        let mut rng = Rng::new(5);
        // Heavy-ish tails and many ties once rounded to 16 bits; more than one piece.
        let values: Vec<f32> = (0..PIECE_VALUES + 3000).map(|_| (0.02 * rng.normal() * rng.normal()) as f32).collect();
        for dtype in [StoredType::F16, StoredType::BF16, StoredType::F32, StoredType::F64] {
            let (read, non_finite, stored) = read_as(dtype.clone(), &values);
            let stats = read.stats(non_finite);
            let scope = scope_of(&stored);
            let fit = gaussian_fit(&stored);
            assert_eq!(stats.count, stored.len() as u64);
            assert!((stats.mean - scope.mean).abs() < 1e-12, "{dtype:?} mean");
            assert!((stats.std - scope.std).abs() < 1e-9 * scope.std, "{dtype:?} std");
            assert!((stats.excess_kurtosis - fit.excess_kurtosis).abs() < 1e-6, "{dtype:?} kurtosis");
            assert!((stats.ks_distance - fit.ks_distance).abs() < 1e-12, "{dtype:?} ks");
            let low = f64::from(stored.iter().copied().fold(f32::INFINITY, f32::min));
            let high = f64::from(stored.iter().copied().fold(f32::NEG_INFINITY, f32::max));
            assert_eq!((stats.min, stats.max), (low, high));
            assert_eq!(read.histogram(low, high, 40), histogram(&stored, low, high, 40), "{dtype:?} histogram");
        }
    }

    #[test]
    fn non_finite_values_are_counted_and_left_out() {
        for dtype in [StoredType::F16, StoredType::BF16, StoredType::F32] {
            let (read, non_finite, _) = read_as(dtype.clone(), &[1.0, f32::NAN, 3.0, f32::INFINITY, -f32::INFINITY]);
            let stats = read.stats(non_finite);
            assert_eq!((stats.count, stats.non_finite, stats.mean, stats.std), (2, 3, 2.0, 1.0), "{dtype:?}");
        }
        let (read, non_finite, _) = read_as(StoredType::F32, &[f32::NAN]);
        let stats = read.stats(non_finite);
        assert_eq!((stats.count, stats.ks_distance), (0, 1.0));
        let (constant, _, _) = read_as(StoredType::F16, &[0.5; 7]);
        let stats = constant.stats(0);
        assert_eq!((stats.std, stats.excess_kurtosis, stats.ks_distance), (0.0, 0.0, 1.0));
    }

    #[test]
    fn the_radix_sort_orders_signed_zeros_subnormals_and_extremes() {
        let mut rng = Rng::new(9);
        let mut values: Vec<f32> =
            (0..5000).map(|_| (rng.normal() * 10f64.powi(rng.below(40) as i32 - 20)) as f32).collect();
        values.extend([0.0, -0.0, f32::MIN, f32::MAX, f32::MIN_POSITIVE / 4.0, -f32::MIN_POSITIVE / 4.0]);
        let mut keys: Vec<u32> = values.iter().map(|v| order_key32(v.to_bits())).collect();
        radix_sort(&mut keys);
        let sorted: Vec<f32> = keys.iter().map(|&k| f32::from_bits(from_order_key32(k))).collect();
        values.sort_by(f32::total_cmp);
        assert_eq!(bits_of(&sorted), bits_of(&values));
    }
}
