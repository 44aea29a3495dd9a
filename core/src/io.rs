//! Files: atomic writes, and models as safetensors keyed by parameter path (PyTorch names and
//! layouts), with the model layout in the metadata so that a file describes itself.

use crate::error::{Result, WsaError};
use crate::model::{HostParams, ModelLayout};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const LAYOUT_KEY: &str = "wsa_lab.layout";
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "wsa-lab/1";

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so that a
/// reader never sees half a file and a failed write leaves the old file in place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| WsaError::io(dir, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        std::fs::remove_file(&tmp).ok();
        return Err(WsaError::io(path, e));
    }
    Ok(())
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
                .map_err(|e| WsaError::Device(format!("safetensors view of {}: {e}", spec.path)))
        })
        .collect::<Result<Vec<_>>>()?;
    let layout = serde_json::to_string(params.layout.as_ref()).map_err(|e| WsaError::Device(e.to_string()))?;
    let metadata = HashMap::from([(FORMAT_KEY.to_string(), FORMAT.to_string()), (LAYOUT_KEY.to_string(), layout)]);
    safetensors::serialize(views, Some(metadata)).map_err(|e| WsaError::Device(format!("safetensors: {e}")))
}

pub fn save_model(path: &Path, params: &HostParams) -> Result<()> {
    write_atomic(path, &model_bytes(params)?)
}

/// A model as the bytes of a safetensors file (what [`save_model`] writes); NaN weights refused.
pub fn model_bytes(params: &HostParams) -> Result<Vec<u8>> {
    params.check_finite()?;
    to_safetensors(params)
}

/// Reads a model whose architecture is known (e.g. trained elsewhere with the same names).
/// Every parameter of `layout` must be present with its shape; f32, f16-free.
pub fn params_from_safetensors(bytes: &[u8], layout: &Arc<ModelLayout>, origin: &Path) -> Result<HostParams> {
    let bad = |reason: String| WsaError::CorruptModel { path: origin.to_path_buf(), reason };
    let file = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a valid safetensors file ({e})")))?;
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
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            Dtype::F64 => {
                view.data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32).collect()
            }
            other => {
                return Err(bad(format!(
                    "parameter `{}` is {other:?}; only F32 and F64 are read (convert the file to float32)",
                    spec.path
                )));
            }
        };
        values.push(data);
    }
    let known: std::collections::BTreeSet<&str> = layout.params.iter().map(|p| p.path.as_str()).collect();
    let mut extra: Vec<&str> = file.names().into_iter().filter(|n| !known.contains(n)).collect();
    extra.sort();
    if let Some(first) = extra.first() {
        return Err(WsaError::ArchitectureMismatch {
            path: first.to_string(),
            detail: format!("present in {} but not in the model", origin.display()),
        });
    }
    let params = HostParams { layout: Arc::clone(layout), values };
    params.check_finite()?;
    Ok(params)
}

/// Reads a model for a known architecture from any safetensors file that uses our parameter
/// names and PyTorch shapes (ours, or e.g. one saved by PyTorch's `safetensors.torch`).
pub fn load_model_for(path: &Path, layout: &Arc<ModelLayout>) -> Result<HostParams> {
    let bytes = std::fs::read(path).map_err(|e| WsaError::io(path, e))?;
    params_from_safetensors(&bytes, layout, path)
}

/// Reads a model saved by WSA Lab: the layout comes from the file's metadata.
pub fn load_model(path: &Path) -> Result<HostParams> {
    let bytes = std::fs::read(path).map_err(|e| WsaError::io(path, e))?;
    let bad = |reason: String| WsaError::CorruptModel { path: path.to_path_buf(), reason };
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a valid safetensors file ({e}); was it truncated?")))?;
    let layout_json = meta.metadata().as_ref().and_then(|m| m.get(LAYOUT_KEY)).ok_or_else(|| {
        bad(format!("no `{LAYOUT_KEY}` metadata: not written by WSA Lab; load it with a model config instead"))
    })?;
    let layout: ModelLayout =
        serde_json::from_str(layout_json).map_err(|e| bad(format!("unreadable layout metadata: {e}")))?;
    let rebuilt = ModelLayout::new(&layout.config, &layout.sample_shape, layout.num_classes)?;
    rebuilt.check_compatible(&layout)?;
    params_from_safetensors(&bytes, &Arc::new(rebuilt), path)
}
