//! Merging over path-addressed parameters (method.md section 5): weighted averages of K models,
//! the linear path theta(alpha) = (1 - alpha) A + alpha B (BatchNorm statistics re-estimated
//! for the merged models, `batch_norm`), its metrics, and the barriers.
//! Merged weights are produced on the device; only metrics come back.

use crate::batch_norm::{self, DEFAULT_RESET_BATCHES, ResetData};
use crate::error::{Result, WsaError};
use crate::kernels::{lerp, weighted_sum};
use crate::model::Params;
use crate::train::{DeviceData, Metrics, evaluate};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// sum_k w_k theta_k with the weights normalised to sum to one, on the models' device (our
/// `shaders/weighted_sum.wgsl` on a GPU): one pass over the parameters for up to four models.
pub fn weighted_average(models: &[&Params], weights: &[f64]) -> Result<Params> {
    let Some(first) = models.first() else {
        return Err(WsaError::invalid("merge", "0 models", "need at least one model"));
    };
    if weights.len() != models.len() {
        return Err(WsaError::invalid(
            "merge weights",
            weights.len(),
            &format!("need one weight per model ({})", models.len()),
        ));
    }
    let total: f64 = weights.iter().sum();
    if !(total.is_finite() && total != 0.0) || weights.iter().any(|w| !w.is_finite()) {
        return Err(WsaError::invalid("merge weights", format!("{weights:?}"), "must be finite and not sum to zero"));
    }
    for other in &models[1..] {
        first.layout.check_compatible(&other.layout)?;
    }
    // Normalised in f64, then handed to the kernel as f32 weights.
    let weights: Vec<f32> = weights.iter().map(|w| (w / total) as f32).collect();
    let tensors = (0..first.tensors.len())
        .map(|i| {
            let layer: Vec<Tensor<1>> = models.iter().map(|m| m.tensors[i].clone()).collect();
            weighted_sum(&layer, &weights)
        })
        .collect();
    Ok(Params { layout: Arc::clone(&first.layout), tensors })
}

/// theta(alpha) = (1 - alpha) a + alpha b, on the parameters' device (`kernels::lerp`: our
/// `shaders/weighted_sum.wgsl` with two models on a GPU). Extrapolates for alpha outside [0, 1].
pub fn interpolate(a: &Params, b: &Params, alpha: f64) -> Result<Params> {
    a.layout.check_compatible(&b.layout)?;
    let tensors = a.tensors.iter().zip(&b.tensors).map(|(ta, tb)| lerp(ta.clone(), tb.clone(), alpha as f32)).collect();
    Ok(Params { layout: Arc::clone(&a.layout), tensors })
}

/// The alpha grid of a path, and how its merged models' BatchNorm statistics are made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PathGrid {
    pub points: usize,
    pub start: f64,
    pub end: f64,
    /// Training batches (of the config's batch size, at most the training set) over which every
    /// merged model's BatchNorm running statistics are re-estimated before it is evaluated or
    /// repaired ([`crate::batch_norm`]); 0 interpolates them with the weights instead. Only
    /// models with BatchNorm are affected. Left out of files at its default, so configs (and
    /// reproduce's cell keys) from before it stay as they were.
    #[serde(skip_serializing_if = "is_default_reset")]
    pub bn_reset_batches: usize,
}

fn is_default_reset(batches: &usize) -> bool {
    *batches == DEFAULT_RESET_BATCHES
}

impl Default for PathGrid {
    fn default() -> Self {
        Self { points: 21, start: 0.0, end: 1.0, bn_reset_batches: DEFAULT_RESET_BATCHES }
    }
}

impl PathGrid {
    pub fn alphas(&self) -> Result<Vec<f64>> {
        if self.points == 0 || self.points > 1001 {
            return Err(WsaError::invalid(
                "path.points",
                self.points,
                "the alpha grid needs between 1 and 1001 points",
            ));
        }
        let ok = |a: f64| a.is_finite() && (-0.5..=1.5).contains(&a);
        if !ok(self.start) || !ok(self.end) || self.start > self.end || (self.points > 1 && self.start == self.end) {
            return Err(WsaError::invalid(
                "path.start/end",
                format!("{}..{}", self.start, self.end),
                "need -0.5 <= start < end <= 1.5 (start = end only with a single point)",
            ));
        }
        if self.points == 1 {
            return Ok(vec![self.start]);
        }
        let step = (self.end - self.start) / (self.points - 1) as f64;
        Ok((0..self.points).map(|i| self.start + step * i as f64).collect())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathPoint {
    pub alpha: f64,
    pub loss: f64,
    pub accuracy: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Barriers {
    /// max_alpha L(theta(alpha)) - ((1 - alpha) L_A + alpha L_B)
    pub loss: f64,
    /// max_alpha ((1 - alpha) Acc_A + alpha Acc_B) - Acc(theta(alpha))
    pub accuracy: f64,
}

/// Barriers from path points and the endpoints' metrics, over the points with alpha in [0, 1]
/// (outside it the straight line between the endpoints is an extrapolation, not a baseline).
/// Zero when no point lies inside; never below zero, since alpha = 0 and 1 give zero.
pub fn barriers(points: &[PathPoint], a: Metrics, b: Metrics) -> Barriers {
    let mut out = Barriers { loss: 0.0, accuracy: 0.0 };
    for p in points.iter().filter(|p| (0.0..=1.0).contains(&p.alpha)) {
        let base_loss = (1.0 - p.alpha) * a.loss + p.alpha * b.loss;
        let base_acc = (1.0 - p.alpha) * a.accuracy + p.alpha * b.accuracy;
        out.loss = out.loss.max(p.loss - base_loss);
        out.accuracy = out.accuracy.max(base_acc - p.accuracy);
    }
    out
}

/// theta(alpha) on the parameters' device with, where `reset` is given and theta(alpha) is
/// neither A nor B, its BatchNorm statistics re-estimated over `reset`'s batches.
pub async fn merged(a: &Params, b: &Params, alpha: f64, reset: Option<&ResetData>) -> Result<Params> {
    let merged = interpolate(a, b, alpha)?;
    match reset.filter(|_| batch_norm::is_merged(alpha)) {
        Some(data) => batch_norm::reset(&merged, data).await,
        None => Ok(merged),
    }
}

/// Metrics at every alpha of the grid, computed on the device, each merged model's BatchNorm
/// statistics reset over `reset`'s batches where it is given.
pub async fn evaluate_path(
    a: &Params,
    b: &Params,
    alphas: &[f64],
    data: &DeviceData,
    reset: Option<&ResetData>,
) -> Result<Vec<PathPoint>> {
    let mut points = Vec::with_capacity(alphas.len());
    for &alpha in alphas {
        let merged = merged(a, b, alpha, reset).await?;
        let m = evaluate(&merged.layout, &merged.tensors, data).await?;
        points.push(PathPoint { alpha, loss: m.loss, accuracy: m.accuracy });
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(alpha: f64, loss: f64, accuracy: f64) -> PathPoint {
        PathPoint { alpha, loss, accuracy }
    }

    #[test]
    fn barriers_of_synthetic_paths() {
        let a = Metrics { loss: 0.2, accuracy: 0.9 };
        let b = Metrics { loss: 0.4, accuracy: 0.8 };
        // A bump of +1.0 loss and -0.3 accuracy over the line at alpha = 0.5.
        let path = [point(0.0, 0.2, 0.9), point(0.5, 1.3, 0.55), point(1.0, 0.4, 0.8)];
        let bar = barriers(&path, a, b);
        assert!((bar.loss - 1.0).abs() < 1e-12, "{bar:?}");
        assert!((bar.accuracy - 0.3).abs() < 1e-12, "{bar:?}");
        // A path below the line (a convex basin) has no barrier.
        let flat = [point(0.0, 0.2, 0.9), point(0.5, 0.25, 0.9), point(1.0, 0.4, 0.8)];
        assert_eq!(barriers(&flat, a, b), Barriers { loss: 0.0, accuracy: 0.0 });
        // Points outside [0, 1] do not count.
        let outside = [point(-0.5, 9.0, 0.0), point(1.5, 9.0, 0.0)];
        assert_eq!(barriers(&outside, a, b), Barriers { loss: 0.0, accuracy: 0.0 });
    }

    #[test]
    fn grids_are_uniform_and_validated() {
        let g = PathGrid::default().alphas().expect("grid");
        assert_eq!(g.len(), 21);
        assert!((g[10] - 0.5).abs() < 1e-12 && g[20] == 1.0);
        let e = PathGrid { points: 5, start: -0.5, end: 1.5, ..PathGrid::default() }.alphas().expect("grid");
        assert_eq!(e, vec![-0.5, 0.0, 0.5, 1.0, 1.5]);
        assert!(PathGrid { points: 0, ..PathGrid::default() }.alphas().is_err());
        assert!(PathGrid { points: 3, start: 1.0, end: 0.0, ..PathGrid::default() }.alphas().is_err());
        assert!(PathGrid { points: 3, start: -2.0, end: 1.0, ..PathGrid::default() }.alphas().is_err());
    }
}
