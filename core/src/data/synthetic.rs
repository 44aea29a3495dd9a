//! Seeded 2-D point sets for teaching: the decision regions of a merged model are visible.

use super::Dataset;
use crate::error::{Result, WsaError};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyntheticKind {
    /// Two interleaving half circles (always 2 classes).
    Moons,
    /// A circle inside a circle (always 2 classes).
    Circles,
    /// `classes` interleaved spiral arms.
    Spirals,
    /// `classes` Gaussian blobs on a circle.
    Blobs,
}

impl SyntheticKind {
    pub fn label(self) -> &'static str {
        match self {
            SyntheticKind::Moons => "moons",
            SyntheticKind::Circles => "circles",
            SyntheticKind::Spirals => "spirals",
            SyntheticKind::Blobs => "blobs",
        }
    }
}

pub fn generate(kind: SyntheticKind, samples: usize, noise: f64, classes: usize, seed: u64) -> Result<Dataset> {
    if samples < 10 {
        return Err(WsaError::invalid("dataset.samples", samples, "need at least 10 points"));
    }
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(WsaError::invalid("dataset.noise", noise, "must be a finite number >= 0"));
    }
    let classes = match kind {
        SyntheticKind::Moons | SyntheticKind::Circles => 2,
        _ if (2..=10).contains(&classes) => classes,
        _ => return Err(WsaError::invalid("dataset.classes", classes, "must be between 2 and 10")),
    };
    let mut rng = Rng::derive(seed, kind.label());
    let mut features = Vec::with_capacity(samples * 2);
    let mut labels = Vec::with_capacity(samples);
    let pi = std::f64::consts::PI;
    for i in 0..samples {
        let class = i % classes;
        let t = rng.uniform();
        let (x, y) = match kind {
            SyntheticKind::Moons => {
                let a = pi * t;
                if class == 0 { (a.cos(), a.sin()) } else { (1.0 - a.cos(), 0.5 - a.sin()) }
            }
            SyntheticKind::Circles => {
                let a = std::f64::consts::TAU * t;
                let r = if class == 0 { 1.0 } else { 0.5 };
                (r * a.cos(), r * a.sin())
            }
            SyntheticKind::Spirals => {
                let r = 0.1 + 0.9 * t;
                let a = 1.75 * std::f64::consts::TAU * t + std::f64::consts::TAU * class as f64 / classes as f64;
                (r * a.cos(), r * a.sin())
            }
            SyntheticKind::Blobs => {
                let a = std::f64::consts::TAU * class as f64 / classes as f64;
                (2.0 * a.cos() + 0.5 * rng.normal(), 2.0 * a.sin() + 0.5 * rng.normal())
            }
        };
        features.push((x + noise * rng.normal()) as f32);
        features.push((y + noise * rng.normal()) as f32);
        labels.push(class as u32);
    }
    Ok(Dataset { features, labels, sample_shape: vec![2], num_classes: classes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_seeded_and_balanced() {
        for kind in [SyntheticKind::Moons, SyntheticKind::Circles, SyntheticKind::Spirals, SyntheticKind::Blobs] {
            let a = generate(kind, 300, 0.1, 3, 5).expect("generate");
            let b = generate(kind, 300, 0.1, 3, 5).expect("generate");
            let c = generate(kind, 300, 0.1, 3, 6).expect("generate");
            assert_eq!(a, b);
            assert_ne!(a.features, c.features);
            let counts = a.class_counts();
            assert!(counts.iter().all(|&n| n >= 300 / a.num_classes), "{kind:?} {counts:?}");
        }
    }

    #[test]
    fn absurd_settings_are_refused() {
        assert!(generate(SyntheticKind::Moons, 3, 0.1, 2, 0).is_err());
        assert!(generate(SyntheticKind::Blobs, 100, f64::NAN, 3, 0).is_err());
        assert!(generate(SyntheticKind::Spirals, 100, 0.1, 50, 0).is_err());
    }
}
