//! `wsa_lab._engine`: the engine's scope, fusion and WSA-penalty functions for Python. The
//! Python package around it (`wsa_lab/__init__.py`) turns NumPy arrays and PyTorch tensors into
//! float32 arrays, read here through the buffer protocol (the stable ABI has it from Python 3.11),
//! checked and handed to `wsa-core`, the very functions a training run calls, so the numbers are
//! the engine's bit for bit; gradients go back as little-endian float32 bytearrays.

use burn::tensor::{Device, Tensor, TensorData};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyByteArray;
use wsa_core::WsaError;
use wsa_core::choice::Choice;
use wsa_core::scope::{FusionRule, STD_EPS, Scope, fuse as fuse_scopes, kl_gaussian, scope_of};
use wsa_core::wsa::{KlDirection, LayerReduction, WsaConfig, WsaTerm};

/// Python's ValueError with the engine's reason, naming the Python argument it is about (the
/// engine names its config's field, which a Python caller never wrote).
fn refused(argument: &str, error: WsaError) -> PyErr {
    match error {
        WsaError::InvalidConfig { value, reason, .. } => {
            PyValueError::new_err(format!("{argument} = {value}: {reason}"))
        }
        other => PyValueError::new_err(other.to_string()),
    }
}

/// The float32 values of a buffer (a NumPy array as the package passes it), copied once, refused
/// when empty or not finite: a NaN would make every number after it NaN without saying where from.
fn floats(py: Python<'_>, what: &str, buffer: &PyBuffer<f32>) -> PyResult<Vec<f32>> {
    let values = buffer.to_vec(py)?;
    if values.is_empty() {
        return Err(PyValueError::new_err(format!("{what} has no values; pass an array with at least one number")));
    }
    if let Some(at) = values.iter().position(|v| !v.is_finite()) {
        return Err(PyValueError::new_err(format!(
            "{what} holds {} at flat index {at}; weights must be finite numbers (check the training run that wrote them)",
            values[at]
        )));
    }
    Ok(values)
}

/// `x` as a person writes it: 0.05, -1, 1e39 (Rust's `{}` spells a large float out in full).
fn readable(x: f64) -> String {
    if x != 0.0 && x.is_finite() && !(1e-4..1e6).contains(&x.abs()) { format!("{x:e}") } else { format!("{x}") }
}

/// A scope given as (mean, std), refused unless both are finite and the std is not negative.
fn scope_from(what: &str, (mean, std): (f64, f64)) -> PyResult<Scope> {
    if !(mean.is_finite() && std.is_finite() && std >= 0.0) {
        return Err(PyValueError::new_err(format!(
            "{what} is (mean {}, std {}); a scope needs a finite mean and a finite std >= 0",
            readable(mean),
            readable(std)
        )));
    }
    Ok(Scope { mean, std })
}

/// A target of the penalty, which is computed in float32: one beyond its range is refused.
fn target_from(what: &str, pair: (f64, f64)) -> PyResult<Scope> {
    let target = scope_from(what, pair)?;
    let limit = f64::from(f32::MAX);
    if target.mean.abs() > limit || target.std > limit {
        return Err(PyValueError::new_err(format!(
            "{what} is (mean {}, std {}), beyond float32's range (±{limit:.4e}) in which the penalty is computed; rescale it",
            readable(target.mean),
            readable(target.std)
        )));
    }
    Ok(target)
}

/// The mean and population std (1/n) of one layer's weights, in f64 (`wsa_core::scope::scope_of`).
#[pyfunction]
fn scope(py: Python<'_>, weights: PyBuffer<f32>) -> PyResult<(f64, f64)> {
    let values = floats(py, "the array", &weights)?;
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
    let rule = FusionRule::parse(rule).map_err(|e| refused("rule", e))?;
    if scopes.is_empty() {
        return Err(PyValueError::new_err(
            "no models' scopes to fuse; pass a list with each model's list of layer scopes",
        ));
    }
    if weights.len() != scopes.len() {
        return Err(PyValueError::new_err(format!(
            "{} weight(s) for {} model(s); pass one weight per model (or none, for equal shares)",
            weights.len(),
            scopes.len()
        )));
    }
    if let Some((k, layers)) = scopes.iter().enumerate().find(|(_, layers)| layers.len() != scopes[0].len()) {
        return Err(PyValueError::new_err(format!(
            "model {k} has {} layer scope(s) and model 0 has {}; pass every model's scopes of the same layers, in the same order",
            layers.len(),
            scopes[0].len()
        )));
    }
    let models = scopes
        .iter()
        .enumerate()
        .map(|(k, layers)| {
            layers.iter().enumerate().map(|(l, &s)| scope_from(&format!("model {k}'s layer {l}"), s)).collect()
        })
        .collect::<PyResult<Vec<Vec<Scope>>>>()?;
    let fused = fuse_scopes(&models, &weights, rule).map_err(|e| refused("weights", e))?;
    Ok(fused.iter().map(|s| (s.mean, s.std)).collect())
}

/// The WSA penalty lambda * reduce_l KL(...) of the layers toward `targets` (one per layer) and
/// its gradient for each layer, as float32 bytearrays: the closed form a training run adds to the
/// cross-entropy's gradient (`WsaTerm::closed_form`), on the CPU backend.
#[pyfunction]
fn penalty<'py>(
    py: Python<'py>,
    layers: Vec<PyBuffer<f32>>,
    targets: Vec<(f64, f64)>,
    lam: f64,
    direction: &str,
    reduction: &str,
) -> PyResult<(f64, Vec<Bound<'py, PyByteArray>>)> {
    let config = WsaConfig {
        lambda: lam,
        direction: KlDirection::parse(direction).map_err(|e| refused("direction", e))?,
        reduction: LayerReduction::parse(reduction).map_err(|e| refused("reduction", e))?,
        ..WsaConfig::default()
    };
    config.validate().map_err(|e| refused("lam", e))?;
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
        .map(|(l, buffer)| floats(py, &format!("layer {l}"), buffer))
        .collect::<PyResult<Vec<Vec<f32>>>>()?;
    let target = targets
        .iter()
        .enumerate()
        .map(|(l, &t)| target_from(&format!("layer {l}'s target"), t))
        .collect::<PyResult<Vec<Scope>>>()?;
    let indices: Vec<usize> = (0..values.len()).collect();
    let term: WsaTerm = config.term(lam, &indices, &target);
    // Python's other threads (a data loader) go on meanwhile.
    let (value, gradients) = py.detach(move || closed_form(&term, values)).map_err(|e| refused("layers", e))?;
    if !value.is_finite() || gradients.iter().flatten().any(|g| !g.is_finite()) {
        return Err(PyValueError::new_err(format!(
            "the penalty came out {value} with its gradient not finite everywhere: the layers' or the targets' numbers overflow float32, in which it is computed; rescale them"
        )));
    }
    // Written straight into writable Python buffers, which NumPy then reads without a copy.
    let gradients = gradients
        .iter()
        .map(|g| {
            PyByteArray::new_with(py, g.len() * 4, |bytes| {
                bytes.chunks_exact_mut(4).zip(g).for_each(|(b, v)| b.copy_from_slice(&v.to_le_bytes()));
                Ok(())
            })
        })
        .collect::<PyResult<_>>()?;
    Ok((value, gradients))
}

/// The term's value and gradients on the CPU backend.
fn closed_form(term: &WsaTerm, values: Vec<Vec<f32>>) -> wsa_core::Result<(f64, Vec<Vec<f32>>)> {
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
        .map(|g| g.into_data().try_to_vec().map_err(|e| WsaError::serialize("a gradient", format!("{e:?}"))))
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
