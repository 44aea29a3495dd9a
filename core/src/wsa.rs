//! The WSA regulariser (method.md sections 2 and 3): a KL pull of every selected layer's live
//! scope toward a target scope, added to the cross-entropy with weight lambda.

use crate::error::{Result, WsaError};
use crate::kernels;
use crate::scope::{FusionRule, LayerSelection, STD_EPS, Scope};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum KlDirection {
    /// KL(model || target), the default.
    #[default]
    ModelToTarget,
    /// KL(target || model).
    TargetToModel,
}

crate::choices!(KlDirection, "KL direction" {
    ModelToTarget => "model-to-target", "KL(model ‖ target)",
    TargetToModel => "target-to-model", "KL(target ‖ model)",
});

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LayerReduction {
    #[default]
    Mean,
    Sum,
}

crate::choices!(LayerReduction, "layer reduction" {
    Mean => "mean", "mean",
    Sum => "sum", "sum",
});

/// Where the target scope comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum TargetSource {
    /// N(0, sigma_init^2) of each layer's initialisation (the weakest variant).
    Fixed,
    /// The frozen scope of an existing model: the safetensors file `model`, or, when absent,
    /// model A trained without WSA (B is then trained toward it).
    Reference {
        #[serde(default)]
        model: Option<PathBuf>,
    },
    /// Fused from the models being trained, refreshed every `sync_every` steps.
    Fused {
        #[serde(default = "default_sync_every")]
        sync_every: usize,
    },
}

fn default_sync_every() -> usize {
    10
}

impl Default for TargetSource {
    fn default() -> Self {
        TargetSource::Fused { sync_every: default_sync_every() }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WsaConfig {
    /// Weight of the regulariser; architecture dependent (sweep 1e-3 .. 10).
    pub lambda: f64,
    pub direction: KlDirection,
    pub reduction: LayerReduction,
    pub target: TargetSource,
    pub fusion: FusionRule,
    pub layers: LayerSelection,
}

impl Default for WsaConfig {
    fn default() -> Self {
        Self {
            lambda: 1.0,
            direction: KlDirection::default(),
            reduction: LayerReduction::default(),
            target: TargetSource::default(),
            fusion: FusionRule::default(),
            layers: LayerSelection::default(),
        }
    }
}

impl WsaConfig {
    pub fn validate(&self) -> Result<()> {
        if !(self.lambda.is_finite() && self.lambda >= 0.0 && self.lambda <= 1e4) {
            return Err(WsaError::invalid("wsa.lambda", self.lambda, "must be a finite number in [0, 10000]"));
        }
        if let TargetSource::Fused { sync_every: 0 } = self.target {
            return Err(WsaError::invalid("wsa.target.sync_every", 0, "must be at least 1 step"));
        }
        Ok(())
    }

    /// The term with these settings at strength `lambda`, pulling `layers` (indices into the
    /// layout) toward `target` (one scope per layer).
    pub fn term(&self, lambda: f64, layers: &[usize], target: &[Scope]) -> WsaTerm {
        WsaTerm {
            lambda,
            direction: self.direction,
            reduction: self.reduction,
            layers: layers.to_vec(),
            target: target.to_vec(),
        }
    }
}

/// Added to a layer's variance before its square root: the model's std is
/// sqrt(var + VARIANCE_EPS) + STD_EPS, so that a constant layer has a finite gradient.
const VARIANCE_EPS: f64 = 1e-16;

/// The regulariser for one model: which parameters, toward which scopes, how.
#[derive(Clone, Debug)]
pub struct WsaTerm {
    pub lambda: f64,
    pub direction: KlDirection,
    pub reduction: LayerReduction,
    /// Indices into the layout of the regularised parameters.
    pub layers: Vec<usize>,
    /// One target per regularised parameter, constant within a step.
    pub target: Vec<Scope>,
}

impl WsaTerm {
    /// lambda * reduce_l KL(...) over the live `params`, differentiable through them.
    /// The model's std is sqrt(var + 1e-16) + 1e-8 (finite gradient for a constant layer) and
    /// the target's std + 1e-8, used alike in every term, as in [`crate::scope::kl_gaussian`].
    pub fn penalty(&self, params: &[Tensor<1>]) -> Option<Tensor<1>> {
        let mut total: Option<Tensor<1>> = None;
        for (&i, target) in self.layers.iter().zip(&self.target) {
            let w = params[i].clone();
            let mean = w.clone().mean();
            let var = (w - mean.clone()).square().mean();
            let std_eps = (var + VARIANCE_EPS).sqrt() + STD_EPS;
            let target_std = target.std + STD_EPS;
            let kl = match self.direction {
                KlDirection::ModelToTarget => {
                    let dm = mean - target.mean;
                    (std_eps.clone().log().neg() + target_std.ln())
                        + (std_eps.square() + dm.square()) / (2.0 * target_std * target_std)
                        - 0.5
                }
                KlDirection::TargetToModel => {
                    let dm = mean.neg() + target.mean;
                    let target_var = target_std * target_std;
                    std_eps.clone().log() - target_std.ln() + (dm.square() + target_var) / (std_eps.square() * 2.0)
                        - 0.5
                }
            };
            total = Some(match total {
                Some(t) => t + kl,
                None => kl,
            });
        }
        let n = self.layers.len() as f64;
        total.map(|t| match self.reduction {
            LayerReduction::Mean => t * (self.lambda / n),
            LayerReduction::Sum => t * self.lambda,
        })
    }
}

/// The penalty's value and its gradient for each regularised parameter, in closed form and
/// without autodiff. The penalty depends on a layer only through its mean m and population
/// variance v, so d/dw_i = (dP/dm) / n + (dP/dv) 2 (w_i - m) / n = a + b (w_i - m), with
/// a = scale dKL/dm / n and, since dv/dw_i = 2 (w_i - m) / n and d std/dv = 1 / (2 sqrt(v)),
/// b = scale dKL/dstd / (sqrt(v) n). On a GPU: our statistics kernels give every layer's (m, v)
/// (a launch per layer and one for all), `shaders/wsa_coefficients.wgsl` every layer's (m, b, a,
/// KL) in one launch, `shaders/wsa_gradient.wgsl` each layer's gradient in one more, and the KLs
/// are summed into the value; nothing is read back. Same formulas and epsilons as
/// [`WsaTerm::penalty`] (which the tests check it against).
pub struct ClosedForm {
    /// The penalty (a one-element tensor), for the reported loss.
    pub value: Tensor<1>,
    /// dP/dw for each of `WsaTerm::layers`, in that order.
    pub gradients: Vec<Tensor<1>>,
}

impl WsaTerm {
    pub fn closed_form(&self, params: &[Tensor<1>]) -> Option<ClosedForm> {
        let layers = self.layers.len();
        self.layers.first()?;
        let selected: Vec<Tensor<1>> = self.layers.iter().map(|&i| params[i].clone()).collect();
        let scale = match self.reduction {
            LayerReduction::Mean => self.lambda / layers as f64,
            LayerReduction::Sum => self.lambda,
        };
        let penalty_layers: Vec<kernels::PenaltyLayer> = self
            .target
            .iter()
            .zip(&selected)
            .map(|(target, w)| kernels::PenaltyLayer {
                target_mean: target.mean as f32,
                target_std: (target.std + STD_EPS) as f32,
                scale_per_entry: (scale / w.dims()[0] as f64) as f32,
            })
            .collect();
        let stats = kernels::layer_stats_on_device(&selected);
        let model_to_target = self.direction == KlDirection::ModelToTarget;
        // The epsilons as the tensor operations of `penalty` apply them: f64 rounded to f32.
        let coefficients =
            kernels::wsa_coefficients(stats, model_to_target, VARIANCE_EPS as f32, STD_EPS as f32, &penalty_layers);
        let kl =
            coefficients.clone().reshape([layers, kernels::COEFFICIENTS_LEN]).narrow(1, kernels::COEFFICIENTS_KL, 1);
        let gradients =
            selected.into_iter().enumerate().map(|(l, w)| kernels::wsa_gradient(w, coefficients.clone(), l)).collect();
        Some(ClosedForm { value: kl.sum() * scale, gradients })
    }
}

/// The same penalty on the host in f64, for tests and reports.
pub fn penalty_host(term: &WsaTerm, values: &[Vec<f64>]) -> f64 {
    let mut total = 0.0;
    for (&i, target) in term.layers.iter().zip(&term.target) {
        let w = &values[i];
        let n = w.len() as f64;
        let mean = w.iter().sum::<f64>() / n;
        let var = w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let s = (var + VARIANCE_EPS).sqrt() + STD_EPS;
        let st = target.std + STD_EPS;
        total += match term.direction {
            KlDirection::ModelToTarget => {
                (st / s).ln() + (s * s + (mean - target.mean).powi(2)) / (2.0 * st * st) - 0.5
            }
            KlDirection::TargetToModel => {
                (s / st).ln() + (st * st + (target.mean - mean).powi(2)) / (2.0 * s * s) - 0.5
            }
        };
    }
    match term.reduction {
        LayerReduction::Mean => term.lambda * total / term.layers.len().max(1) as f64,
        LayerReduction::Sum => term.lambda * total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn layer_values() -> Vec<Vec<f64>> {
        let mut rng = crate::rng::Rng::new(11);
        vec![
            (0..40).map(|_| 0.3 * rng.normal() + 0.05).collect(),
            (0..7).map(|_| rng.normal() * 0.01).collect(),
            (0..25).map(|_| 1.5 * rng.normal() - 0.2).collect(),
        ]
    }

    fn term(direction: KlDirection, reduction: LayerReduction) -> WsaTerm {
        WsaTerm {
            lambda: 0.7,
            direction,
            reduction,
            layers: vec![0, 2],
            target: vec![Scope { mean: 0.0, std: 0.2 }, Scope { mean: 0.1, std: 1.0 }],
        }
    }

    /// The autodiff gradient of the WSA term against central finite differences in f64.
    #[test]
    fn gradient_matches_finite_differences() {
        let device = Device::flex().autodiff();
        let values = layer_values();
        for direction in [KlDirection::ModelToTarget, KlDirection::TargetToModel] {
            for reduction in [LayerReduction::Mean, LayerReduction::Sum] {
                let term = term(direction, reduction);
                let leaves: Vec<Tensor<1>> = values
                    .iter()
                    .map(|v| {
                        let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
                        Tensor::<1>::from_data(TensorData::new(f, [v.len()]), &device).require_grad()
                    })
                    .collect();
                let penalty = term.penalty(&leaves).expect("two layers");
                let value: f32 = penalty.clone().into_scalar();
                let values32: Vec<Vec<f64>> =
                    values.iter().map(|v| v.iter().map(|&x| f64::from(x as f32)).collect()).collect();
                let host = penalty_host(&term, &values32);
                assert!(
                    (f64::from(value) - host).abs() < 1e-4 * host.abs().max(1.0),
                    "{direction:?} {reduction:?}: {value} vs {host}"
                );
                let grads = penalty.backward();
                for (l, leaf) in leaves.iter().enumerate() {
                    let grad: Vec<f32> = match leaf.grad(&grads) {
                        Some(g) => g.into_data().try_to_vec().expect("f32"),
                        None => vec![0.0; values[l].len()],
                    };
                    for j in 0..values[l].len() {
                        let h = 1e-6;
                        let mut plus = values32.clone();
                        plus[l][j] += h;
                        let mut minus = values32.clone();
                        minus[l][j] -= h;
                        let fd = (penalty_host(&term, &plus) - penalty_host(&term, &minus)) / (2.0 * h);
                        let g = f64::from(grad[j]);
                        assert!(
                            (g - fd).abs() <= 2e-3 * fd.abs().max(1e-2),
                            "{direction:?} {reduction:?} layer {l} entry {j}: autodiff {g} vs finite difference {fd}"
                        );
                    }
                }
            }
        }
    }

    /// The closed-form value and gradient against the autodiff of the differentiable penalty.
    #[test]
    fn closed_form_matches_autodiff() {
        let device = Device::flex().autodiff();
        let values = layer_values();
        for direction in [KlDirection::ModelToTarget, KlDirection::TargetToModel] {
            for reduction in [LayerReduction::Mean, LayerReduction::Sum] {
                let term = term(direction, reduction);
                let upload = |v: &Vec<f64>, d: &Device| {
                    let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
                    Tensor::<1>::from_data(TensorData::new(f, [v.len()]), d)
                };
                let leaves: Vec<Tensor<1>> = values.iter().map(|v| upload(v, &device).require_grad()).collect();
                let penalty = term.penalty(&leaves).expect("two layers");
                let grads = penalty.clone().backward();
                let plain: Vec<Tensor<1>> = values.iter().map(|v| upload(v, &Device::flex())).collect();
                let closed = term.closed_form(&plain).expect("two layers");
                let (a, c): (f32, f32) = (penalty.into_scalar(), closed.value.into_scalar());
                assert!((a - c).abs() <= 1e-5 * a.abs().max(1.0), "{direction:?} {reduction:?}: value {a} vs {c}");
                for (k, &l) in term.layers.iter().enumerate() {
                    let auto: Vec<f32> = leaves[l].grad(&grads).expect("grad").into_data().try_to_vec().expect("f32");
                    let mine: Vec<f32> = closed.gradients[k].clone().into_data().try_to_vec().expect("f32");
                    for (x, y) in auto.iter().zip(&mine) {
                        assert!(
                            (x - y).abs() <= 1e-4 * x.abs().max(1e-3),
                            "{direction:?} {reduction:?} layer {l}: {x} vs {y}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn penalty_vanishes_at_the_target_and_grows_away_from_it() {
        let values = layer_values();
        let exact = |l: usize| {
            let v: Vec<f32> = values[l].iter().map(|&x| x as f32).collect();
            crate::scope::scope_of(&v)
        };
        let mut t = term(KlDirection::ModelToTarget, LayerReduction::Mean);
        t.target = vec![exact(0), exact(2)];
        let v32: Vec<Vec<f64>> = values.iter().map(|v| v.iter().map(|&x| f64::from(x as f32)).collect()).collect();
        assert!(penalty_host(&t, &v32).abs() < 1e-9);
        t.target[0].std *= 2.0;
        assert!(penalty_host(&t, &v32) > 0.1);
    }

    #[test]
    fn absurd_settings_are_refused() {
        let bad = WsaConfig { lambda: -1.0, ..WsaConfig::default() };
        assert!(bad.validate().is_err());
        let bad = WsaConfig { lambda: f64::NAN, ..WsaConfig::default() };
        assert!(bad.validate().is_err());
        let bad = WsaConfig { target: TargetSource::Fused { sync_every: 0 }, ..WsaConfig::default() };
        assert!(bad.validate().is_err());
    }
}
