//! `wsa_lab._engine`: the engine's scope, fusion and WSA-penalty functions for Python. The
//! Python package around it (`wsa_lab/__init__.py`) turns NumPy arrays and PyTorch tensors into
//! little-endian float32 bytes and back; here they are checked, read and handed to `wsa-core`,
//! the very functions a training run calls, so the numbers are the engine's bit for bit.

use burn::tensor::{Device, Tensor, TensorData};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use wsa_core::WsaError;
use wsa_core::choice::Choice;
use wsa_core::scope::{FusionRule, STD_EPS, Scope, fuse as fuse_scopes, kl_gaussian, scope_of};
use wsa_core::wsa::{KlDirection, LayerReduction, WsaConfig, WsaTerm};

/// Python's ValueError with the engine's sentence.
fn refused(error: WsaError) -> PyErr {
    PyValueError::new_err(error.to_string())
}

/// The float32 values in `bytes` (little-endian, as the package writes them), refused when
/// empty or not finite: a NaN would make every number after it NaN without saying where from.
fn floats(what: &str, bytes: &[u8]) -> PyResult<Vec<f32>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return Err(PyValueError::new_err(format!("{what} has no values; pass an array with at least one number")));
    }
    let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if let Some(at) = values.iter().position(|v| !v.is_finite()) {
        return Err(PyValueError::new_err(format!(
            "{what} holds {} at flat index {at}; weights must be finite numbers (check the training run that wrote them)",
            values[at]
        )));
    }
    Ok(values)
}

/// A scope given as (mean, std), refused unless both are finite and the std is not negative.
fn scope_from(what: &str, (mean, std): (f64, f64)) -> PyResult<Scope> {
    if !(mean.is_finite() && std.is_finite() && std >= 0.0) {
        return Err(PyValueError::new_err(format!(
            "{what} is (mean {mean}, std {std}); a scope needs a finite mean and a finite std >= 0"
        )));
    }
    Ok(Scope { mean, std })
}

/// The mean and population std (1/n) of one layer's weights, in f64 (`wsa_core::scope::scope_of`).
#[pyfunction]
fn scope(weights: &[u8]) -> PyResult<(f64, f64)> {
    let values = floats("the array", weights)?;
    let s = scope_of(&values);
    Ok((s.mean, s.std))
}

/// KL(N(p) || N(q)) between two scopes, each std + 1e-8 (`wsa_core::scope::kl_gaussian`).
#[pyfunction]
fn kl(p: (f64, f64), q: (f64, f64)) -> PyResult<f64> {
    Ok(kl_gaussian(scope_from("the first scope", p)?, scope_from("the second scope", q)?))
}

/// One target from several models' scopes: `scopes[k][l]` is model k's layer l, `weights` one
/// per model (normalised by the engine), `rule` a fusion rule's name (`wsa_core::scope::fuse`).
#[pyfunction]
fn fuse(scopes: Vec<Vec<(f64, f64)>>, weights: Vec<f64>, rule: &str) -> PyResult<Vec<(f64, f64)>> {
    let rule = FusionRule::parse(rule).map_err(refused)?;
    let models = scopes
        .iter()
        .enumerate()
        .map(|(k, layers)| {
            layers.iter().enumerate().map(|(l, &s)| scope_from(&format!("model {k}'s layer {l}"), s)).collect()
        })
        .collect::<PyResult<Vec<Vec<Scope>>>>()?;
    let fused = fuse_scopes(&models, &weights, rule).map_err(refused)?;
    Ok(fused.iter().map(|s| (s.mean, s.std)).collect())
}

/// The WSA penalty lambda * reduce_l KL(...) of the layers toward `targets` (one per layer) and
/// its gradient for each layer, as float32 bytes: the closed form a training run adds to the
/// cross-entropy's gradient (`WsaTerm::closed_form`), on the CPU backend.
#[pyfunction]
fn penalty<'py>(
    py: Python<'py>,
    layers: Vec<Bound<'py, PyBytes>>,
    targets: Vec<(f64, f64)>,
    lam: f64,
    direction: &str,
    reduction: &str,
) -> PyResult<(f64, Vec<Bound<'py, PyBytes>>)> {
    let config = WsaConfig {
        lambda: lam,
        direction: KlDirection::parse(direction).map_err(refused)?,
        reduction: LayerReduction::parse(reduction).map_err(refused)?,
        ..WsaConfig::default()
    };
    config.validate().map_err(refused)?;
    if layers.is_empty() || layers.len() != targets.len() {
        return Err(PyValueError::new_err(format!(
            "{} layer(s) and {} target scope(s); pass at least one layer and one target scope per layer",
            layers.len(),
            targets.len()
        )));
    }
    let values = layers
        .iter()
        .enumerate()
        .map(|(l, bytes)| floats(&format!("layer {l}"), bytes.as_bytes()))
        .collect::<PyResult<Vec<Vec<f32>>>>()?;
    let target = targets
        .iter()
        .enumerate()
        .map(|(l, &t)| scope_from(&format!("layer {l}'s target"), t))
        .collect::<PyResult<Vec<Scope>>>()?;
    let indices: Vec<usize> = (0..values.len()).collect();
    let term: WsaTerm = config.term(lam, &indices, &target);
    // Python's other threads (a data loader) go on meanwhile.
    let (value, gradients) = py.detach(move || closed_form(&term, values)).map_err(refused)?;
    let gradients = gradients.iter().map(|g| PyBytes::new(py, g)).collect();
    Ok((value, gradients))
}

/// The term's value and gradients on the CPU backend, the gradients as little-endian bytes.
fn closed_form(term: &WsaTerm, values: Vec<Vec<f32>>) -> wsa_core::Result<(f64, Vec<Vec<u8>>)> {
    let device = Device::flex();
    let params: Vec<Tensor<1>> = values
        .into_iter()
        .map(|v| {
            let n = v.len();
            Tensor::<1>::from_data(TensorData::new(v, [n]), &device)
        })
        .collect();
    // At least one layer was given, so the term has one.
    let Some(closed) = term.closed_form(&params) else { return Ok((0.0, Vec::new())) };
    let value: f32 = closed.value.into_scalar();
    let gradients = closed
        .gradients
        .into_iter()
        .map(|g| {
            let g: Vec<f32> =
                g.into_data().try_to_vec().map_err(|e| WsaError::serialize("a gradient", format!("{e:?}")))?;
            Ok(g.iter().flat_map(|v| v.to_le_bytes()).collect())
        })
        .collect::<wsa_core::Result<_>>()?;
    Ok((f64::from(value), gradients))
}

/// The names the Python package offers as choices, from the engine's own lists.
fn names<C: Choice>() -> Vec<&'static str> {
    C::ALL.iter().map(|c| c.name()).collect()
}

#[pymodule]
fn _engine(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(scope, module)?)?;
    module.add_function(wrap_pyfunction!(kl, module)?)?;
    module.add_function(wrap_pyfunction!(fuse, module)?)?;
    module.add_function(wrap_pyfunction!(penalty, module)?)?;
    module.add("FUSION_RULES", names::<FusionRule>())?;
    module.add("KL_DIRECTIONS", names::<KlDirection>())?;
    module.add("LAYER_REDUCTIONS", names::<LayerReduction>())?;
    module.add("STD_EPS", STD_EPS)?;
    Ok(())
}
