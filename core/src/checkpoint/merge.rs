//! The merged checkpoint of two: every float tensor (1 − α)·A + α·B, stored in A's type; the
//! other tensors (counters, indices) copied from A. Optionally each merged tensor is then mapped
//! affinely onto the fused scope of A's and B's, w ↦ μ* + (w − μ)·σ*/σ: post-hoc rescaling, the
//! baseline that undoes the shrinking of the std that averaging causes. It is *not* WSA, which
//! aligns the scopes while training; the file's metadata says which of the two it holds.
//!
//! Written in pieces: the header first (every size is known from A's), then each tensor as it
//! is computed, piece by piece, so a merge of two checkpoints larger than memory holds a few
//! megabytes.

use super::Source;
use super::compare::check_same_tensors;
use super::header::{Header, StoredType, TensorEntry, for_each_piece};
use super::stats::PIECE_VALUES;
use crate::error::{Result, WsaError};
use crate::scope::{FusionRule, Scope, fuse};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{SeekFrom, Write};
use std::path::Path;

/// The metadata key saying how the file was made.
pub const MERGE_KEY: &str = "wsa_lab.merge";

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MergeOptions {
    /// Weight of B: 0 gives A, 1 gives B.
    pub alpha: f64,
    /// Map each merged float tensor onto the fused scope of A's and B's.
    pub rescale: bool,
    /// How A's and B's scopes (weights 1 − α and α) become the rescaling target.
    pub fusion: FusionRule,
}

impl MergeOptions {
    pub fn check(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(WsaError::invalid("alpha", self.alpha, "must be between 0 (A) and 1 (B)"));
        }
        Ok(())
    }

    /// What the file holds, in words, for its metadata and the command's report.
    pub fn describe(&self) -> String {
        let blend = format!("linear interpolation (1 - {a}) A + {a} B", a = self.alpha);
        if self.rescale {
            format!(
                "{blend}, each tensor then rescaled onto the {} fusion of A's and B's scopes (post-hoc rescaling: a baseline, not WSA)",
                self.fusion.label()
            )
        } else {
            blend
        }
    }
}

/// What the merge did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MergeReport {
    pub options: MergeOptions,
    pub merged: usize,
    /// Non-float tensors copied from A.
    pub copied: Vec<String>,
    /// For each rescaled tensor, the scope it was mapped onto (empty without rescaling).
    pub targets: Vec<(String, Scope)>,
    pub bytes: u64,
}

/// Mean and M2 (sum of squared deviations) of a stream of values, combined piece by piece
/// (Chan et al.'s pairwise update), so that a billion values keep full precision.
#[derive(Clone, Copy, Debug, Default)]
struct Moments {
    count: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn add(&mut self, values: &[f32]) {
        let finite = || values.iter().filter(|v| v.is_finite()).map(|&v| f64::from(v));
        let count = finite().count() as f64;
        if count == 0.0 {
            return;
        }
        let mean = finite().sum::<f64>() / count;
        let m2 = finite().map(|v| (v - mean).powi(2)).sum::<f64>();
        let total = self.count + count;
        let delta = mean - self.mean;
        self.mean += delta * count / total;
        self.m2 += m2 + delta * delta * self.count * count / total;
        self.count = total;
    }

    fn scope(&self) -> Scope {
        Scope { mean: self.mean, std: if self.count > 0.0 { (self.m2 / self.count).sqrt() } else { 0.0 } }
    }
}

/// The buffers of one piece of a tensor in A and B and of their blend, reused piece after piece.
#[derive(Default)]
struct Pieces {
    raw: Vec<u8>,
    a: Vec<f32>,
    b: Vec<f32>,
    blended: Vec<f32>,
}

impl Pieces {
    /// Reads values `from..from + count` of the tensor on each side and blends them:
    /// (1 − α)·a + α·b.
    fn blend<S: Source>(
        &mut self,
        sides: &mut [(&mut S, &Path, &TensorEntry); 2],
        from: usize,
        count: usize,
        alpha: f32,
    ) -> Result<()> {
        for (k, (source, origin, entry)) in sides.iter_mut().enumerate() {
            let size = entry.dtype.bytes();
            self.raw.resize(count * size, 0);
            let io = |e| WsaError::io(*origin, e);
            source.seek(SeekFrom::Start(entry.start + (from * size) as u64)).map_err(io)?;
            source.read_exact(&mut self.raw).map_err(io)?;
            let values = if k == 0 { &mut self.a } else { &mut self.b };
            values.clear();
            entry.dtype.decode(&self.raw, values);
        }
        self.blended.clear();
        self.blended.extend(self.a.iter().zip(&self.b).map(|(&x, &y)| (1.0 - alpha) * x + alpha * y));
        Ok(())
    }
}

/// Streams the merge of the checkpoints in `sources` into `out` as a safetensors file.
pub fn merge<S: Source>(
    files: [&Path; 2],
    sources: [&mut S; 2],
    options: MergeOptions,
    out: &mut dyn Write,
) -> Result<MergeReport> {
    options.check()?;
    let [file_a, file_b] = files;
    let [source_a, source_b] = sources;
    let header_a = Header::read(source_a, file_a)?;
    let header_b = Header::read(source_b, file_b)?;
    check_same_tensors(&header_a, &header_b)?;
    let written = |e| WsaError::serialize("the merged checkpoint", e);

    let mut metadata = header_a.metadata.clone();
    metadata.insert(MERGE_KEY.into(), options.describe());
    let header_bytes = output_header(&header_a, &metadata)?;
    out.write_all(&(header_bytes.len() as u64).to_le_bytes()).map_err(written)?;
    out.write_all(&header_bytes).map_err(written)?;

    let alpha = options.alpha as f32;
    let mut report = MergeReport { options, merged: 0, copied: Vec::new(), targets: Vec::new(), bytes: 0 };
    let mut pieces = Pieces::default();
    let mut encoded = Vec::new();
    for ta in &header_a.tensors {
        let tb = header_b.get(&ta.name).expect("checked: B has every tensor of A");
        let n = ta.numel();
        if !ta.dtype.is_float() {
            let mut failed = None;
            for_each_piece(source_a, file_a, ta, PIECE_VALUES, |piece| {
                if failed.is_none() {
                    failed = out.write_all(piece).err();
                }
            })?;
            if let Some(e) = failed {
                return Err(written(e));
            }
            report.copied.push(ta.name.clone());
            report.bytes += ta.len;
            continue;
        }
        let mut sides = [(&mut *source_a, file_a, ta), (&mut *source_b, file_b, tb)];
        // When rescaling, a first pass over both tensors for the scopes of A, B and the blend.
        let mut affine = None;
        if options.rescale {
            let (mut a, mut b, mut m) = (Moments::default(), Moments::default(), Moments::default());
            for from in (0..n).step_by(PIECE_VALUES) {
                pieces.blend(&mut sides, from, PIECE_VALUES.min(n - from), alpha)?;
                a.add(&pieces.a);
                b.add(&pieces.b);
                m.add(&pieces.blended);
            }
            let weights = [1.0 - options.alpha, options.alpha];
            let target = fuse(&[vec![a.scope()], vec![b.scope()]], &weights, options.fusion)?[0];
            let current = m.scope();
            // A constant tensor has no spread to scale: it lands on the target mean.
            let gain = if current.std > 0.0 { target.std / current.std } else { 0.0 };
            affine = Some((current.mean, gain, target.mean));
            report.targets.push((ta.name.clone(), target));
        }
        for from in (0..n).step_by(PIECE_VALUES) {
            pieces.blend(&mut sides, from, PIECE_VALUES.min(n - from), alpha)?;
            if let Some((mean, gain, target)) = affine {
                pieces.blended.iter_mut().for_each(|w| *w = (target + (f64::from(*w) - mean) * gain) as f32);
            }
            encoded.clear();
            ta.dtype.encode(&pieces.blended, &mut encoded);
            out.write_all(&encoded).map_err(written)?;
        }
        report.merged += 1;
        report.bytes += ta.len;
    }
    out.flush().map_err(written)?;
    Ok(report)
}

/// The JSON header of the merged file: A's tensors, types and shapes, data laid out in A's order
/// without gaps, padded with spaces to a multiple of 8 bytes as safetensors writers do.
fn output_header(a: &Header, metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let mut entries = serde_json::Map::new();
    entries
        .insert("__metadata__".into(), serde_json::to_value(metadata).map_err(|e| WsaError::serialize("metadata", e))?);
    let mut offset = 0u64;
    for t in &a.tensors {
        let dtype = match &t.dtype {
            StoredType::Other { name, .. } => name.clone(),
            other => other.name().to_string(),
        };
        entries.insert(
            t.name.clone(),
            serde_json::json!({"dtype": dtype, "shape": t.shape, "data_offsets": [offset, offset + t.len]}),
        );
        offset += t.len;
    }
    let mut bytes = serde_json::to_vec(&entries).map_err(|e| WsaError::serialize("the merged header", e))?;
    while bytes.len() % 8 != 0 {
        bytes.push(b' ');
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::compare::f32_file;
    use crate::rng::Rng;
    use crate::scope::scope_of;
    use safetensors::SafeTensors;
    use std::io::Cursor;

    fn run(a: &[u8], b: &[u8], options: MergeOptions) -> Result<(Vec<u8>, MergeReport)> {
        let mut out = Vec::new();
        let report = merge(
            [Path::new("a"), Path::new("b")],
            [&mut Cursor::new(a.to_vec()), &mut Cursor::new(b.to_vec())],
            options,
            &mut out,
        )?;
        Ok((out, report))
    }

    fn floats(file: &SafeTensors, name: &str) -> Vec<f32> {
        let view = file.tensor(name).expect("tensor");
        let mut out = Vec::new();
        StoredType::F32.decode(view.data(), &mut out);
        out
    }

    fn options(alpha: f64, rescale: bool) -> MergeOptions {
        MergeOptions { alpha, rescale, fusion: FusionRule::MomentMatching }
    }

    #[test]
    fn the_merge_is_the_interpolation_and_reads_back_with_the_safetensors_crate() {
        let mut rng = Rng::new(3);
        let big = PIECE_VALUES + 17;
        let wa: Vec<f32> = (0..big).map(|_| rng.normal() as f32).collect();
        let wb: Vec<f32> = (0..big).map(|_| (3.0 * rng.normal() + 1.0) as f32).collect();
        let a = f32_file(&[("w", vec![big], wa.clone()), ("b", vec![2], vec![1.0, 2.0])]);
        let b = f32_file(&[("b", vec![2], vec![3.0, 6.0]), ("w", vec![big], wb.clone())]);
        for alpha in [0.0, 0.25, 1.0] {
            let (bytes, report) = run(&a, &b, options(alpha, false)).expect("merge");
            let file = SafeTensors::deserialize(&bytes).expect("a valid safetensors file");
            let merged = floats(&file, "w");
            let expected: Vec<f32> =
                wa.iter().zip(&wb).map(|(&x, &y)| (1.0 - alpha as f32) * x + alpha as f32 * y).collect();
            assert_eq!(merged, expected, "alpha {alpha}");
            assert_eq!(floats(&file, "b"), [1.0 + 2.0 * alpha as f32, 2.0 + 4.0 * alpha as f32]);
            assert_eq!(report.merged, 2);
            let (_, metadata) = SafeTensors::read_metadata(&bytes).expect("metadata");
            assert!(metadata.metadata().as_ref().expect("metadata")[MERGE_KEY].contains("linear interpolation"));
        }
    }

    #[test]
    fn rescaling_lands_every_tensor_on_the_fused_scope_and_says_it_is_a_baseline() {
        let mut rng = Rng::new(4);
        let wa: Vec<f32> = (0..5000).map(|_| (0.1 * rng.normal()) as f32).collect();
        let wb: Vec<f32> = (0..5000).map(|_| (0.3 * rng.normal() + 0.05) as f32).collect();
        let a = f32_file(&[("w", vec![50, 100], wa.clone())]);
        let b = f32_file(&[("w", vec![50, 100], wb.clone())]);
        let (bytes, report) = run(&a, &b, options(0.5, true)).expect("merge");
        let merged = floats(&SafeTensors::deserialize(&bytes).expect("valid"), "w");
        let target = fuse(&[vec![scope_of(&wa)], vec![scope_of(&wb)]], &[0.5, 0.5], FusionRule::MomentMatching)
            .expect("fuse")[0];
        let got = scope_of(&merged);
        assert!((got.mean - target.mean).abs() < 1e-6 && (got.std - target.std).abs() < 1e-6, "{got:?} vs {target:?}");
        // The plain blend of two independent tensors has a smaller std than either's fusion.
        let plain = run(&a, &b, options(0.5, false)).expect("merge").0;
        assert!(scope_of(&floats(&SafeTensors::deserialize(&plain).expect("valid"), "w")).std < 0.8 * target.std);
        assert_eq!(report.targets[0].1, target);
        assert!(report.options.describe().contains("not WSA"));
    }

    #[test]
    fn half_tensors_stay_half_and_integers_are_copied_from_a() {
        let mut halves = Vec::new();
        StoredType::F16.encode(&[1.0, 2.0, 3.0], &mut halves);
        let mut halves_b = Vec::new();
        StoredType::F16.encode(&[3.0, 2.0, 1.0], &mut halves_b);
        let counter_a = 7i64.to_le_bytes();
        let counter_b = 9i64.to_le_bytes();
        let file = |h: &[u8], c: &[u8]| {
            use safetensors::tensor::TensorView;
            let views = [
                ("h".to_string(), TensorView::new(safetensors::Dtype::F16, vec![3], h).expect("view")),
                ("steps".to_string(), TensorView::new(safetensors::Dtype::I64, vec![], c).expect("view")),
            ];
            safetensors::serialize(views, None).expect("serialise")
        };
        let (bytes, report) =
            run(&file(&halves, &counter_a), &file(&halves_b, &counter_b), options(0.5, false)).expect("merge");
        let merged = SafeTensors::deserialize(&bytes).expect("valid");
        let h = merged.tensor("h").expect("h");
        assert_eq!(h.dtype(), safetensors::Dtype::F16);
        let mut values = Vec::new();
        StoredType::F16.decode(h.data(), &mut values);
        assert_eq!(values, [2.0, 2.0, 2.0]);
        assert_eq!(merged.tensor("steps").expect("steps").data(), counter_a);
        assert_eq!(report.copied, ["steps"]);
    }

    #[test]
    fn an_alpha_outside_the_segment_is_refused() {
        let a = f32_file(&[("w", vec![1], vec![1.0])]);
        for alpha in [-0.1, 1.5, f64::NAN] {
            let error = run(&a, &a, options(alpha, false)).expect_err("alpha").to_string();
            assert!(error.contains("alpha") && error.contains("between 0"), "{error}");
        }
    }
}
