//! Files: atomic writes, and models as safetensors keyed by parameter path (PyTorch names and
//! layouts), with the model layout in the metadata so that a file describes itself.

use crate::checkpoint::StoredType;
use crate::error::{Result, WsaError};
use crate::model::{HostParams, ModelLayout};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The metadata key of the layout in a model file WSA Lab wrote.
pub const LAYOUT_KEY: &str = "wsa_lab.layout";
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "wsa-lab/1";

/// What names [`write_atomic`]'s temporary files: `.<name>.tmp-<pid>`.
const TEMPORARY_MARK: &str = ".tmp-";

/// Whether `path` is a temporary file of [`write_atomic`] (one that a killed process can leave).
pub fn is_atomic_temporary(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.') && n.contains(TEMPORARY_MARK))
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so that a
/// reader never sees half a file and a failed write leaves the old file in place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |out| out.write_all(bytes).map_err(|e| WsaError::io(path, e)))
}

/// [`write_atomic`] for a file written in pieces (a merged checkpoint larger than memory):
/// `write` streams into the temporary file, which replaces `path` only once `write` succeeded
/// and the data reached the disk; on any error the temporary file is removed.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| WsaError::io(dir, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}{TEMPORARY_MARK}{}", std::process::id()));
    let result = (|| {
        let file = std::fs::File::create(&tmp).map_err(|e| WsaError::io(path, e))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut out)?;
        let file = out.into_inner().map_err(|e| WsaError::io(path, e.into_error()))?;
        file.sync_all().map_err(|e| WsaError::io(path, e))?;
        std::fs::rename(&tmp, path).map_err(|e| WsaError::io(path, e))
    })();
    if result.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    result
}

/// Serialises parameters as safetensors bytes (f32, PyTorch shapes).
pub fn to_safetensors(params: &HostParams) -> Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = params.values.iter().map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views = params
        .layout
        .params
        .iter()
        .zip(&bytes)
        .map(|(spec, data)| {
            TensorView::new(Dtype::F32, spec.shape.clone(), data)
                .map(|view| (spec.path.clone(), view))
                .map_err(|e| WsaError::serialize(format!("parameter `{}` as safetensors", spec.path), e))
        })
        .collect::<Result<Vec<_>>>()?;
    let layout =
        serde_json::to_string(params.layout.as_ref()).map_err(|e| WsaError::serialize("the model layout", e))?;
    let metadata = HashMap::from([(FORMAT_KEY.to_string(), FORMAT.to_string()), (LAYOUT_KEY.to_string(), layout)]);
    let bytes =
        safetensors::serialize(views, Some(metadata)).map_err(|e| WsaError::serialize("a safetensors file", e))?;
    with_sorted_header(bytes)
}

/// `bytes` (a safetensors file) with its JSON header's keys in sorted order. Why: the
/// safetensors crate takes the metadata as a `HashMap`, whose order changes from one map to the
/// next, so the same model would be written as different bytes each time; serde_json's own maps
/// are sorted. The header keeps its length (the same entries, reordered), so only its bytes
/// change in place.
fn with_sorted_header(mut bytes: Vec<u8>) -> Result<Vec<u8>> {
    let broken = |e: String| WsaError::serialize("a safetensors header", e);
    let length = bytes.get(..8).map(|n| u64::from_le_bytes(n.try_into().expect("8 bytes")) as usize);
    let end = length.and_then(|n| n.checked_add(8)).filter(|&end| end <= bytes.len());
    let end = end.ok_or_else(|| broken("shorter than its stated length".into()))?;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..end]).map_err(|e| broken(e.to_string()))?;
    let mut sorted = serde_json::to_vec(&header).map_err(|e| broken(e.to_string()))?;
    // The same 8-byte alignment of the data as the crate's.
    sorted.resize(sorted.len().next_multiple_of(8), b' ');
    let prefix = (sorted.len() as u64).to_le_bytes().into_iter().chain(sorted);
    bytes.splice(..end, prefix);
    Ok(bytes)
}

pub fn save_model(path: &Path, params: &HostParams) -> Result<()> {
    write_atomic(path, &model_bytes(params)?)
}

/// A model as the bytes of a safetensors file (what [`save_model`] writes); NaN weights refused.
pub fn model_bytes(params: &HostParams) -> Result<Vec<u8>> {
    params.check_finite()?;
    to_safetensors(params)
}

/// The keys a PyTorch `state_dict` holds besides parameters: batch-norm statistics and counters.
const BUFFER_NAMES: [&str; 3] = ["running_mean", "running_var", "num_batches_tracked"];

/// What loading a model changed or left out, for the notice the app and the CLI show.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// (parameter, its type in the file) for each parameter converted to float32.
    pub converted: Vec<(String, String)>,
    /// Keys of the file that are not parameters of the model (buffers, counters), left out.
    pub ignored: Vec<String>,
}

impl LoadReport {
    /// One line saying what was converted and what was ignored; `None` when the file held
    /// exactly the model's float32 parameters.
    pub fn notice(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.converted.is_empty() {
            let mut types: Vec<&str> = self.converted.iter().map(|(_, dtype)| dtype.as_str()).collect();
            types.sort_unstable();
            types.dedup();
            parts.push(format!("{} parameter(s) converted from {} to float32", self.converted.len(), types.join("/")));
        }
        if !self.ignored.is_empty() {
            parts.push(format!("ignored what is not a parameter of the model: {}", self.ignored.join(", ")));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// A model read from a file, with what the reading changed.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedModel {
    pub params: HostParams,
    pub report: LoadReport,
}

/// Decodes a tensor's little-endian bytes as f32: float32 as is, float64, float16 and bfloat16
/// converted (the types PyTorch saves weights in). `None` for any other type.
fn floats_of(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    let stored = match dtype {
        Dtype::F32 => StoredType::F32,
        Dtype::F64 => StoredType::F64,
        Dtype::F16 => StoredType::F16,
        Dtype::BF16 => StoredType::BF16,
        _ => return None,
    };
    let mut values = Vec::with_capacity(bytes.len() / stored.bytes());
    stored.decode(bytes, &mut values);
    Some(values)
}

/// Reads a model whose architecture is known (e.g. trained elsewhere with the same names).
/// Every parameter of `layout` must be present with its shape, in float32, float64, float16 or
/// bfloat16 (converted to float32). Keys the model does not have are left out when they are
/// buffers (batch-norm statistics, counters, anything not a float, anything of a layer the
/// model has) and refused when they are the weights of a layer it lacks: a different
/// architecture. The report says what was converted and left out.
pub fn params_from_safetensors(bytes: &[u8], layout: &Arc<ModelLayout>, origin: &Path) -> Result<LoadedModel> {
    let bad = |reason: String| WsaError::CorruptModel { path: origin.to_path_buf(), reason };
    if crate::checkpoint::header::is_pickle(bytes) {
        return Err(bad(crate::checkpoint::header::pickle_advice(origin)));
    }
    let file = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a valid safetensors file ({e})")))?;
    let mut report = LoadReport::default();
    let mut values = Vec::with_capacity(layout.params.len());
    for spec in &layout.params {
        let view = file.tensor(&spec.path).map_err(|_| WsaError::ArchitectureMismatch {
            path: spec.path.clone(),
            detail: format!("missing in {}", origin.display()),
        })?;
        if view.shape() != spec.shape.as_slice() {
            return Err(WsaError::ArchitectureMismatch {
                path: spec.path.clone(),
                detail: format!(
                    "shape {:?} in {} but the model needs {:?}",
                    view.shape(),
                    origin.display(),
                    spec.shape
                ),
            });
        }
        let data = floats_of(view.dtype(), view.data()).ok_or_else(|| {
            bad(format!(
                "parameter `{}` is {:?}; weights are read as float32, float64, float16 or bfloat16",
                spec.path,
                view.dtype()
            ))
        })?;
        if view.dtype() != Dtype::F32 {
            report.converted.push((spec.path.clone(), format!("{:?}", view.dtype())));
        }
        values.push(data);
    }
    let known: std::collections::BTreeSet<&str> = layout.params.iter().map(|p| p.path.as_str()).collect();
    let modules: std::collections::BTreeSet<&str> =
        known.iter().filter_map(|path| path.rsplit_once('.').map(|(module, _)| module)).collect();
    let mut extra: Vec<&str> = file.names().into_iter().filter(|n| !known.contains(n)).collect();
    extra.sort();
    for name in extra {
        let (module, last) = name.rsplit_once('.').unwrap_or(("", name));
        let is_float = file.tensor(name).is_ok_and(|view| floats_of(view.dtype(), &[]).is_some());
        if BUFFER_NAMES.contains(&last) || !is_float || modules.contains(module) {
            report.ignored.push(name.to_string());
        } else {
            return Err(WsaError::ArchitectureMismatch {
                path: name.to_string(),
                detail: format!(
                    "present in {} but the model has no such layer; both must come from the same model config",
                    origin.display()
                ),
            });
        }
    }
    let params = HostParams { layout: Arc::clone(layout), values };
    params.check_finite().map_err(|e| WsaError::InFile { path: origin.to_path_buf(), source: Box::new(e) })?;
    Ok(LoadedModel { params, report })
}

/// Reads a model for a known architecture from any safetensors file that uses our parameter
/// names and PyTorch shapes (ours, or e.g. one saved by PyTorch's `safetensors.torch`).
pub fn load_model_for(path: &Path, layout: &Arc<ModelLayout>) -> Result<LoadedModel> {
    let bytes = std::fs::read(path).map_err(|e| WsaError::io(path, e))?;
    params_from_safetensors(&bytes, layout, path)
}

/// What messages and results call the file at `path`: its name, without its folder (the whole
/// path where it has no name, as `..`).
pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// Reads a model saved by WSA Lab: the layout comes from the file's metadata (float32, only
/// the model's parameters, as [`save_model`] writes).
pub fn load_model(path: &Path) -> Result<HostParams> {
    let bytes = std::fs::read(path).map_err(|e| WsaError::io(path, e))?;
    model_from_bytes(&bytes, path)
}

/// [`load_model`] of a file already read (`bytes`; `path` names it in messages).
pub fn model_from_bytes(bytes: &[u8], path: &Path) -> Result<HostParams> {
    let bad = |reason: String| WsaError::CorruptModel { path: path.to_path_buf(), reason };
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("not a valid safetensors file ({e}); was it truncated?")))?;
    let layout_json = meta.metadata().as_ref().and_then(|m| m.get(LAYOUT_KEY)).ok_or_else(|| {
        bad(format!("no `{LAYOUT_KEY}` metadata: not written by WSA Lab; load it with a model config instead"))
    })?;
    let layout: ModelLayout =
        serde_json::from_str(layout_json).map_err(|e| bad(format!("unreadable layout metadata: {e}")))?;
    let rebuilt = ModelLayout::new(&layout.config, &layout.sample_shape, layout.num_classes)
        .and_then(|rebuilt| rebuilt.check_compatible(&layout).map(|()| rebuilt))
        .map_err(|e| bad(format!("its layout metadata describes no valid model ({e})")))?;
    Ok(params_from_safetensors(bytes, &Arc::new(rebuilt), path)?.params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelConfig, ModelLayout};
    use crate::rng::Rng;

    /// The same model is the same file, byte for byte, however often it is written: the
    /// metadata's two keys would otherwise come out in either order (a run of 16 serialisations
    /// without the sorting gives both orders but for a chance of 2^-15), and it still reads back.
    #[test]
    fn a_model_is_written_as_the_same_bytes_every_time() {
        let layout = ModelLayout::new(&ModelConfig::mlp(vec![8]), &[1, 8, 8], 10).expect("a layout");
        let params = Arc::new(layout).init(&mut Rng::new(3));
        let first = to_safetensors(&params).expect("bytes");
        for _ in 0..15 {
            assert_eq!(to_safetensors(&params).expect("bytes"), first);
        }
        let read = SafeTensors::deserialize(&first).expect("a safetensors file");
        assert_eq!(read.len(), params.values.len());
        let (_, metadata) = SafeTensors::read_metadata(&first).expect("a header");
        let metadata = metadata.metadata().as_ref().expect("metadata");
        assert_eq!(metadata.get(FORMAT_KEY).map(String::as_str), Some(FORMAT));
        assert!(metadata.contains_key(LAYOUT_KEY));
        let header_len = u64::from_le_bytes(first[..8].try_into().expect("8 bytes"));
        assert_eq!(header_len % 8, 0, "the header keeps the data 8-byte aligned");
    }
}
