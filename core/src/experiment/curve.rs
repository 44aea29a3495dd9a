//! Mode-connecting curves (Garipov et al., NeurIPS 2018): between two trained models A and B,
//! a curve φ(t) shaped by a trained control point θ (a quadratic Bezier curve bends toward θ; a
//! polygonal chain passes through it), which can join minima whose straight line has a high
//! barrier. θ starts at the midpoint of A and B and is trained with A and B frozen to
//! minimise the loss at φ(t), one t ~ U[0, 1] per mini-batch; the curve is then evaluated on the
//! same grid as the line.

use crate::batch_norm::{self, ResetData};
use crate::error::{Result, WsaError};
use crate::merge::{PathPoint, barriers, interpolate, weighted_average};
use crate::model::Params;
use crate::rng::Rng;
use crate::train::{DeviceData, Metrics, OptimizerKind, TrainConfig, Trainer, evaluate};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::method::Method;
use super::{Event, Observer};

/// The shape of the curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CurveKind {
    /// φ(t) = (1 − t)² A + 2t(1 − t) θ + t² B.
    Bezier,
    /// A → θ → B: two straight segments with one bend at t = 1/2.
    Polychain,
}

crate::choices!(CurveKind, "curve" {
    Bezier => "bezier", "Bezier",
    Polychain => "polychain", "polygonal chain",
});

impl CurveKind {
    /// The weights of A, θ and B in φ(t); they sum to 1.
    pub fn weights(self, t: f64) -> [f64; 3] {
        match self {
            CurveKind::Bezier => [(1.0 - t).powi(2), 2.0 * t * (1.0 - t), t * t],
            CurveKind::Polychain if t <= 0.5 => [1.0 - 2.0 * t, 2.0 * t, 0.0],
            CurveKind::Polychain => [0.0, 2.0 - 2.0 * t, 2.0 * t - 1.0],
        }
    }
}

/// How a curve is trained. Off unless set (`ConnectConfig::curve`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CurveConfig {
    pub kind: CurveKind,
    /// Passes over the training data for θ.
    pub epochs: usize,
    /// SGD with momentum 0.9, the pair's batch size.
    pub learning_rate: f64,
}

impl Default for CurveConfig {
    fn default() -> Self {
        Self { kind: CurveKind::Bezier, epochs: 5, learning_rate: 0.05 }
    }
}

impl CurveConfig {
    pub fn validate(&self) -> Result<()> {
        if !(1..=1000).contains(&self.epochs) {
            return Err(WsaError::invalid("curve.epochs", self.epochs, "must be between 1 and 1000"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate <= 10.0) {
            return Err(WsaError::invalid("curve.learning_rate", self.learning_rate, "must be in (0, 10]"));
        }
        Ok(())
    }

    /// The training settings of θ.
    fn train_config(&self, batch_size: usize) -> TrainConfig {
        TrainConfig {
            optimizer: OptimizerKind::Sgd,
            learning_rate: self.learning_rate,
            momentum: 0.9,
            weight_decay: 0.0,
            batch_size,
            epochs: self.epochs,
        }
    }
}

/// A method's curve: where it runs (its path on the line's grid) and its barriers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurveResult {
    pub kind: CurveKind,
    pub path: Vec<PathPoint>,
    pub barriers: crate::merge::Barriers,
    /// The mean test loss over the curve's points in [0, 1], beside the line's (the quantity the
    /// control point is trained to lower).
    pub mean_loss: f64,
    pub line_mean_loss: f64,
}

/// The point φ(t) of the curve `kind` through `a`, `theta` and `b`.
pub fn point(kind: CurveKind, a: &Params, theta: &Params, b: &Params, t: f64) -> Result<Params> {
    weighted_average(&[a, theta, b], &kind.weights(t))
}

/// Trains the control point between `a` and `b` on `train` (θ starts at their midpoint) and
/// returns it; `seed` draws the data order and the t of each step.
pub async fn train_control_point(
    config: &CurveConfig,
    batch_size: usize,
    a: &Params,
    b: &Params,
    train: &DeviceData,
    seed: u64,
    observer: &mut dyn Observer,
) -> Result<Params> {
    config.validate()?;
    let midpoint = interpolate(a, b, 0.5)?;
    let mut trainer = Trainer::on_device("curve", config.train_config(batch_size), midpoint, train.len, seed)?;
    let mut draws = Rng::derive(seed, "curve-t");
    while !trainer.finished() {
        if observer.is_cancelled() {
            return Err(WsaError::Cancelled);
        }
        let [wa, wt, wb] = config.kind.weights(draws.uniform());
        trainer.train_step_through(train, |theta: &[Tensor<1>]| {
            a.tensors
                .iter()
                .zip(theta)
                .zip(&b.tensors)
                .map(|((ta, th), tb)| ta.clone().autodiff() * wa + th.clone() * wt + tb.clone().autodiff() * wb)
                .collect()
        });
        if trainer.step % trainer.steps_per_epoch == 0 {
            // A read per epoch: a diverged control point is an error, not a NaN plot.
            trainer.take_mean_loss().await?;
        }
        observer.pause().await;
    }
    Ok(trainer.params)
}

/// The curve through `theta` evaluated at every alpha of `line` (the straight path's points, so
/// both sit on one grid), with its barriers against the endpoints; every point but A and B has
/// its BatchNorm statistics reset over `reset`'s batches where it is given.
#[allow(clippy::too_many_arguments)]
pub async fn evaluate_curve(
    method: Method,
    kind: CurveKind,
    (a, theta, b): (&Params, &Params, &Params),
    line: &[PathPoint],
    endpoints: (Metrics, Metrics),
    test: &DeviceData,
    reset: Option<&ResetData>,
    observer: &mut dyn Observer,
) -> Result<CurveResult> {
    let mut path = Vec::with_capacity(line.len());
    for (index, p) in line.iter().enumerate() {
        if observer.is_cancelled() {
            return Err(WsaError::Cancelled);
        }
        let t = p.alpha.clamp(0.0, 1.0);
        let mut at = point(kind, a, theta, b, t)?;
        if let Some(data) = reset.filter(|_| batch_norm::is_merged(t)) {
            at = batch_norm::reset(&at, data).await?;
        }
        let m = evaluate(&at.layout, &at.tensors, test).await?;
        path.push(PathPoint { alpha: p.alpha, loss: m.loss, accuracy: m.accuracy });
        observer.on_event(&Event::PathPoint { method, index, total: line.len() });
        observer.pause().await;
    }
    let mean = |points: &[PathPoint]| {
        let inside: Vec<f64> = points.iter().filter(|p| (0.0..=1.0).contains(&p.alpha)).map(|p| p.loss).collect();
        inside.iter().sum::<f64>() / inside.len().max(1) as f64
    };
    Ok(CurveResult {
        kind,
        barriers: barriers(&path, endpoints.0, endpoints.1),
        mean_loss: mean(&path),
        line_mean_loss: mean(line),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weights_sum_to_one_and_the_curves_end_at_a_and_b() {
        for kind in [CurveKind::Bezier, CurveKind::Polychain] {
            for i in 0..=20 {
                let t = f64::from(i) / 20.0;
                let w = kind.weights(t);
                assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{kind:?} at {t}: {w:?}");
                assert!(w.iter().all(|&x| x >= 0.0));
            }
            assert_eq!(kind.weights(0.0), [1.0, 0.0, 0.0]);
            assert_eq!(kind.weights(1.0), [0.0, 0.0, 1.0]);
        }
        // The Bezier curve gives θ its largest weight at t = 1/2 (a half); the chain goes through it.
        assert_eq!(CurveKind::Bezier.weights(0.5), [0.25, 0.5, 0.25]);
        assert_eq!(CurveKind::Polychain.weights(0.5), [0.0, 1.0, 0.0]);
        assert_eq!(CurveKind::from_name("polychain").ok(), Some(CurveKind::Polychain));
        assert!(CurveKind::from_name("spline").is_err());
        assert!(CurveConfig { epochs: 0, ..Default::default() }.validate().is_err());
        assert!(CurveConfig { learning_rate: f64::NAN, ..Default::default() }.validate().is_err());
    }
}
