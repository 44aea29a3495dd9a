//! Two checkpoints side by side: for every float tensor both scopes, how Gaussian each is, the
//! symmetric KL between the scopes and both histograms over one range; the tensors whose scopes
//! differ most first, since those are the ones an averaging merge will hurt.

use super::Source;
use super::header::{Header, StoredType, TensorEntry};
use super::stats::{TensorStats, Values};
use crate::error::{Result, WsaError};
use crate::scope::symmetric_kl;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Default histogram resolution.
pub const DEFAULT_BINS: usize = 60;

/// One tensor of both checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorComparison {
    pub name: String,
    pub shape: Vec<usize>,
    /// The stored types in A and B ("F16", "BF16", "F32", "F64").
    pub dtypes: [String; 2],
    pub a: TensorStats,
    pub b: TensorStats,
    /// (KL(a‖b) + KL(b‖a)) / 2 between the two Gaussian scopes: scale-free, 0 when equal.
    pub symmetric_kl: f64,
    /// Both histograms over one range, [low, high] split into equal bins.
    pub histogram_low: f64,
    pub histogram_high: f64,
    pub histogram_a: Vec<u64>,
    pub histogram_b: Vec<u64>,
}

/// A tensor that is not a float (a counter, an index, a quantised block): listed, not compared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkippedTensor {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
}

/// What `wsa-lab scopes` reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub files: [PathBuf; 2],
    /// In the order of A's file.
    pub tensors: Vec<TensorComparison>,
    pub skipped: Vec<SkippedTensor>,
    /// Values of the float tensors in each checkpoint (the non-finite ones included).
    pub values: u64,
}

impl Comparison {
    /// The compared tensors, those whose scopes differ most first.
    pub fn by_difference(&self) -> Vec<&TensorComparison> {
        let mut sorted: Vec<&TensorComparison> = self.tensors.iter().collect();
        sorted.sort_by(|x, y| y.symmetric_kl.total_cmp(&x.symmetric_kl).then_with(|| x.name.cmp(&y.name)));
        sorted
    }
}

/// Refuses two headers that do not hold the same tensors with the same shapes (and float types
/// in the same places), naming the first difference in A's order.
pub fn check_same_tensors(a: &Header, b: &Header) -> Result<()> {
    let mismatch = |name: &str, detail: String| WsaError::CheckpointMismatch { name: name.to_string(), detail };
    for ta in &a.tensors {
        let Some(tb) = b.get(&ta.name) else {
            return Err(mismatch(&ta.name, "it is in A but not in B".into()));
        };
        if ta.shape != tb.shape {
            return Err(mismatch(&ta.name, format!("it is {:?} in A and {:?} in B", ta.shape, tb.shape)));
        }
        if ta.dtype.is_float() != tb.dtype.is_float() {
            return Err(mismatch(
                &ta.name,
                format!("it is {} in A and {} in B (a float and a non-float)", ta.dtype.name(), tb.dtype.name()),
            ));
        }
    }
    if let Some(extra) = b.tensors.iter().find(|tb| a.get(&tb.name).is_none()) {
        return Err(mismatch(&extra.name, "it is in B but not in A".into()));
    }
    Ok(())
}

/// Compares the checkpoints in `sources` (named by `files` in errors and in the report),
/// reading one tensor of each at a time, on the CPU.
pub fn compare<S: Source>(files: [&Path; 2], sources: [&mut S; 2], bins: usize) -> Result<Comparison> {
    compare_each(files, sources, |entries, sources| compare_tensor(entries, sources, bins))
}

/// [`compare`] with the statistics computed on `device` by our kernels ([`on_device`]): the
/// same report, identical for 16-bit tensors, for float32 ones within the device's f32 sums.
#[cfg(not(target_arch = "wasm32"))]
pub fn compare_on_device<S: Source>(
    device: &burn::tensor::Device,
    files: [&Path; 2],
    sources: [&mut S; 2],
    bins: usize,
) -> Result<Comparison> {
    compare_each(files, sources, |entries, sources| compare_tensor_on_device(device, entries, sources, bins))
}

/// Reads both headers, refuses different tensors, and compares each float tensor pair with
/// `compare_pair`.
fn compare_each<'s, S: Source + 's>(
    files: [&Path; 2],
    sources: [&'s mut S; 2],
    mut compare_pair: impl FnMut([&TensorEntry; 2], [(&mut S, &Path); 2]) -> Result<TensorComparison>,
) -> Result<Comparison> {
    let [file_a, file_b] = files;
    let [source_a, source_b] = sources;
    let header_a = Header::read(source_a, file_a)?;
    let header_b = Header::read(source_b, file_b)?;
    check_same_tensors(&header_a, &header_b)?;
    let mut tensors = Vec::new();
    let mut skipped = Vec::new();
    let mut values = 0;
    for ta in &header_a.tensors {
        let tb = header_b.get(&ta.name).expect("checked: B has every tensor of A");
        if !ta.dtype.is_float() {
            skipped.push(SkippedTensor {
                name: ta.name.clone(),
                dtype: ta.dtype.name().into(),
                shape: ta.shape.clone(),
            });
            continue;
        }
        tensors.push(compare_pair([ta, tb], [(&mut *source_a, file_a), (&mut *source_b, file_b)])?);
        values += ta.numel() as u64;
    }
    Ok(Comparison { files: [file_a.to_path_buf(), file_b.to_path_buf()], tensors, skipped, values })
}

fn compare_tensor<S: Source>(
    entries: [&TensorEntry; 2],
    sources: [(&mut S, &Path); 2],
    bins: usize,
) -> Result<TensorComparison> {
    let [(source_a, file_a), (source_b, file_b)] = sources;
    let (values_a, non_finite_a) = Values::read(source_a, file_a, entries[0])?;
    let a = values_a.stats(non_finite_a);
    let (values_b, non_finite_b) = Values::read(source_b, file_b, entries[1])?;
    let b = values_b.stats(non_finite_b);
    let (low, high) = histogram_range(&a, &b);
    let histograms = [values_a.histogram(low, high, bins), values_b.histogram(low, high, bins)];
    Ok(tensor_comparison(entries, [a, b], (low, high), histograms))
}

#[cfg(not(target_arch = "wasm32"))]
fn compare_tensor_on_device<S: Source>(
    device: &burn::tensor::Device,
    entries: [&TensorEntry; 2],
    sources: [(&mut S, &Path); 2],
    bins: usize,
) -> Result<TensorComparison> {
    use super::on_device::DeviceSummary;
    let [(source_a, file_a), (source_b, file_b)] = sources;
    let summary_a = DeviceSummary::read(device, source_a, file_a, entries[0])?;
    let summary_b = DeviceSummary::read(device, source_b, file_b, entries[1])?;
    let (low, high) = histogram_range(&summary_a.stats(), &summary_b.stats());
    let finish = |summary: DeviceSummary, source: &mut S, file: &Path, entry: &TensorEntry| match summary {
        DeviceSummary::Patterns { values, non_finite } => {
            Ok((values.stats(non_finite), values.histogram(low, high, bins)))
        }
        DeviceSummary::Keys(keys) => keys.refine(source, file, entry, (low, high, bins)).map(|(s, h, _)| (s, h)),
    };
    let (a, histogram_a) = finish(summary_a, source_a, file_a, entries[0])?;
    let (b, histogram_b) = finish(summary_b, source_b, file_b, entries[1])?;
    Ok(tensor_comparison(entries, [a, b], (low, high), [histogram_a, histogram_b]))
}

/// The range both histograms of a tensor share: both tensors' values (one's where the other
/// has none).
fn histogram_range(a: &TensorStats, b: &TensorStats) -> (f64, f64) {
    match (a.count, b.count) {
        (0, 0) => (0.0, 0.0),
        (0, _) => (b.min, b.max),
        (_, 0) => (a.min, a.max),
        _ => (a.min.min(b.min), a.max.max(b.max)),
    }
}

fn tensor_comparison(
    entries: [&TensorEntry; 2],
    [a, b]: [TensorStats; 2],
    (low, high): (f64, f64),
    [histogram_a, histogram_b]: [Vec<u64>; 2],
) -> TensorComparison {
    TensorComparison {
        name: entries[0].name.clone(),
        shape: entries[0].shape.clone(),
        dtypes: [entries[0].dtype.name().into(), entries[1].dtype.name().into()],
        symmetric_kl: symmetric_kl(a.scope(), b.scope()),
        histogram_low: low,
        histogram_high: high,
        histogram_a,
        histogram_b,
        a,
        b,
    }
}

/// A checkpoint as the bytes of a safetensors file with these float tensors, each stored as its
/// type (for tests and for writing small files). Panics on a non-float type or a shape that
/// does not hold the values.
pub fn float_file(tensors: &[(&str, StoredType, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, dtype, _, values)| {
            let mut data = Vec::new();
            dtype.encode(values, &mut data);
            data
        })
        .collect();
    let views = tensors.iter().zip(&bytes).map(|((name, dtype, shape, _), data)| {
        let dtype = match dtype {
            StoredType::F64 => safetensors::Dtype::F64,
            StoredType::F32 => safetensors::Dtype::F32,
            StoredType::F16 => safetensors::Dtype::F16,
            StoredType::BF16 => safetensors::Dtype::BF16,
            StoredType::Other { name, .. } => panic!("float_file writes float tensors, not {name}"),
        };
        (name.to_string(), safetensors::tensor::TensorView::new(dtype, shape.clone(), data).expect("view"))
    });
    safetensors::serialize(views, None).expect("serialise")
}

/// [`float_file`] with float32 tensors only.
#[cfg(test)]
pub(crate) fn f32_file(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let typed: Vec<_> =
        tensors.iter().map(|(name, shape, values)| (*name, StoredType::F32, shape.clone(), values.clone())).collect();
    float_file(&typed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::Scope;
    use std::io::Cursor;

    fn run(a: Vec<u8>, b: Vec<u8>) -> Result<Comparison> {
        compare([Path::new("a.st"), Path::new("b.st")], [&mut Cursor::new(a), &mut Cursor::new(b)], 8)
    }

    #[test]
    fn tensors_are_compared_by_name_and_sorted_by_how_far_their_scopes_are() {
        let a = f32_file(&[("w1", vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]), ("w2", vec![2], vec![0.0, 2.0])]);
        // B stores its tensors in the other order: names, not positions, pair them.
        let b = f32_file(&[("w2", vec![2], vec![10.0, 30.0]), ("w1", vec![2, 2], vec![1.0, 2.0, 3.0, 4.5])]);
        let report = run(a, b).expect("compare");
        assert_eq!(report.tensors.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["w1", "w2"]);
        let w2 = &report.tensors[1];
        assert_eq!((w2.a.mean, w2.a.std, w2.b.mean, w2.b.std), (1.0, 1.0, 20.0, 10.0));
        let expected = symmetric_kl(Scope { mean: 1.0, std: 1.0 }, Scope { mean: 20.0, std: 10.0 });
        assert_eq!(w2.symmetric_kl, expected);
        assert_eq!(report.by_difference()[0].name, "w2");
        assert_eq!((w2.histogram_low, w2.histogram_high), (0.0, 30.0));
        assert_eq!(w2.histogram_a.iter().sum::<u64>(), 2);
        assert_eq!(w2.histogram_b, [0, 0, 1, 0, 0, 0, 0, 1]);
        assert_eq!(report.values, 6);
    }

    #[test]
    fn different_tensors_are_refused_naming_the_first_difference() {
        let a = f32_file(&[("w", vec![2], vec![1.0, 2.0]), ("v", vec![1], vec![0.0])]);
        let cases = [
            (f32_file(&[("w", vec![2], vec![1.0, 2.0])]), "`v`: it is in A but not in B"),
            (
                f32_file(&[("w", vec![1, 2], vec![1.0, 2.0]), ("v", vec![1], vec![0.0])]),
                "`w`: it is [2] in A and [1, 2] in B",
            ),
            (
                f32_file(&[("w", vec![2], vec![1.0, 2.0]), ("v", vec![1], vec![0.0]), ("u", vec![1], vec![0.0])]),
                "`u`: it is in B but not in A",
            ),
        ];
        for (b, needle) in cases {
            let error = run(a.clone(), b).expect_err(needle).to_string();
            assert!(error.contains(needle), "{error}");
        }
    }
}
