//! Weight scopes (method.md sections 1 and 4): per-layer Gaussian N(mean, std^2), which layers
//! count, how Gaussian a layer really is, histograms, and the fusion of several models' scopes.

use crate::error::{Result, WsaError};
use crate::kernels;
use crate::model::{HostParams, ModelLayout, ParamRole, Params};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Added to a std wherever it divides or sits in a log.
pub const STD_EPS: f64 = 1e-8;

/// The scope of one layer: mean and population std (1/n) of its entries.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    pub mean: f64,
    pub std: f64,
}

/// Which parameter tensors have a scope (method.md section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct LayerSelection {
    /// Each bias as a scope of its own.
    pub include_biases: bool,
    /// Normalisation gammas and betas.
    pub include_norm: bool,
    /// Leave the classifier layer out.
    pub exclude_classifier: bool,
}

impl LayerSelection {
    /// Indices into the layout of the selected parameters, in layout order.
    pub fn select(&self, layout: &ModelLayout) -> Vec<usize> {
        layout
            .params
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                let role_ok = match p.role {
                    ParamRole::Weight => true,
                    ParamRole::Bias => self.include_biases,
                    ParamRole::NormWeight | ParamRole::NormBias => self.include_norm,
                    // Statistics of the data, not weights: no scope describes them.
                    ParamRole::RunningMean | ParamRole::RunningVar => false,
                };
                role_ok && !(self.exclude_classifier && p.classifier)
            })
            .map(|(i, _)| i)
            .collect()
    }
}

/// Mean and population std in f64, two passes (exact enough for any f32 layer).
pub fn scope_of(values: &[f32]) -> Scope {
    let n = values.len().max(1) as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
    Scope { mean, std: var.sqrt() }
}

/// Scopes of the selected layers, computed on the parameters' device (on a GPU by our
/// `shaders/scope_*.wgsl` kernels); two numbers per layer come back to the host in one read.
pub async fn device_scopes(params: &Params, layers: &[usize]) -> Result<Vec<Scope>> {
    let selected: Vec<Tensor<1>> = layers.iter().map(|&i| params.tensors[i].clone()).collect();
    Ok(kernels::layer_stats(&selected).await?.iter().map(|s| Scope { mean: s.mean, std: s.variance.sqrt() }).collect())
}

/// Histograms of one layer of several models over one shared range.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedHistograms {
    pub low: f64,
    pub high: f64,
    /// One list of counts per model, in the order the models were given.
    pub counts: Vec<Vec<u64>>,
}

/// Histograms of the selected layers (`layers`, indices into each model's tensors) of several
/// models, each layer over the models' joint
/// [min, max], computed on the device (on a GPU by `shaders/histogram.wgsl`, the range taken
/// from the statistics kernels without a trip to the host); the counts come back in one read.
pub async fn device_histograms(
    models: &[&[Tensor<1>]],
    layers: &[usize],
    bins: usize,
) -> Result<Vec<SharedHistograms>> {
    let per_model: Vec<Vec<Tensor<1>>> =
        models.iter().map(|m| layers.iter().map(|&i| m[i].clone()).collect()).collect();
    if layers.is_empty() || models.is_empty() {
        return Ok(Vec::new());
    }
    let l = layers.len();
    let (low, high) = per_model
        .iter()
        .map(|tensors| {
            let stats = kernels::layer_stats_on_device(tensors).reshape([l, kernels::STATS_LEN]);
            (stats.clone().narrow(1, kernels::STATS_MIN, 1), stats.narrow(1, kernels::STATS_MAX, 1))
        })
        .reduce(|(lo, hi), (lo2, hi2)| (lo.min_pair(lo2), hi.max_pair(hi2)))
        .expect("at least one model");
    let ranges: Tensor<1> = Tensor::cat(vec![low, high], 1).reshape([2 * l]);
    let all_layers: Vec<Tensor<1>> = per_model.into_iter().flatten().collect();
    let all_ranges = Tensor::cat(vec![ranges.clone(); models.len()], 0);
    let counts = kernels::histograms(&all_layers, all_ranges, bins).await?;
    let ranges = crate::device::read_f64(ranges).await?;
    Ok((0..l)
        .map(|layer| SharedHistograms {
            low: ranges[2 * layer],
            high: ranges[2 * layer + 1],
            counts: (0..models.len()).map(|m| counts[m * l + layer].clone()).collect(),
        })
        .collect())
}

/// KL( N(m1, s1^2) || N(m2, s2^2) ) as method.md section 2 writes it. Both stds carry the
/// epsilon everywhere (not only where they divide), so the value is the KL of two valid
/// Gaussians: zero for equal scopes and never negative.
pub fn kl_gaussian(p: Scope, q: Scope) -> f64 {
    let s1 = p.std + STD_EPS;
    let s2 = q.std + STD_EPS;
    (s2 / s1).ln() + (s1 * s1 + (p.mean - q.mean).powi(2)) / (2.0 * s2 * s2) - 0.5
}

/// (KL(p||q) + KL(q||p)) / 2: a symmetric, scale-free distance between two scopes.
pub fn symmetric_kl(p: Scope, q: Scope) -> f64 {
    0.5 * (kl_gaussian(p, q) + kl_gaussian(q, p))
}

/// A symmetric, scale-free distance between two models' scopes: the mean over layers of
/// (KL(a||b) + KL(b||a)) / 2.
pub fn scope_distance(a: &[Scope], b: &[Scope]) -> f64 {
    if a.is_empty() {
        return 0.0;
    }
    a.iter().zip(b).map(|(&x, &y)| symmetric_kl(x, y)).sum::<f64>() / a.len() as f64
}

/// How Gaussian a layer's entries are.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaussianFit {
    /// m4 / m2^2 - 3: zero for a Gaussian, -1.2 for a uniform.
    pub excess_kurtosis: f64,
    /// Kolmogorov-Smirnov distance between the empirical CDF and N(mean, std^2).
    pub ks_distance: f64,
}

pub fn gaussian_fit(values: &[f32]) -> GaussianFit {
    let scope = scope_of(values);
    let n = values.len().max(1) as f64;
    let m2 = scope.std * scope.std;
    let m4 = values.iter().map(|&v| (f64::from(v) - scope.mean).powi(4)).sum::<f64>() / n;
    let excess_kurtosis = if m2 > 0.0 { m4 / (m2 * m2) - 3.0 } else { 0.0 };
    let mut sorted: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
    sorted.sort_by(f64::total_cmp);
    let mut ks: f64 = 0.0;
    if m2 > 0.0 {
        for (i, &x) in sorted.iter().enumerate() {
            let cdf = normal_cdf((x - scope.mean) / scope.std);
            ks = ks.max((cdf - i as f64 / n).abs()).max(((i + 1) as f64 / n - cdf).abs());
        }
    } else {
        ks = 1.0;
    }
    GaussianFit { excess_kurtosis, ks_distance: ks }
}

/// Standard normal CDF via erfc (W. J. Cody's rational approximation as in Numerical Recipes'
/// `erfcc`, fractional error below 1.2e-7: ample for a KS distance).
pub fn normal_cdf(z: f64) -> f64 {
    let x = -z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    0.5 * if x >= 0.0 { erfc } else { 2.0 - erfc }
}

/// Counts of `values` in `bins` equal-width bins over `[low, high]`; values outside are
/// clamped into the edge bins so that every entry is counted once.
pub fn histogram(values: &[f32], low: f64, high: f64, bins: usize) -> Vec<u64> {
    counted_histogram(values.iter().map(|&v| (f64::from(v), 1)), low, high, bins)
}

/// [`histogram`] of values given with how often each occurs (a checkpoint tensor's distinct
/// values and their counts): the same bins, the same clamping, NaN in the first bin.
pub fn counted_histogram(values: impl IntoIterator<Item = (f64, u64)>, low: f64, high: f64, bins: usize) -> Vec<u64> {
    let bins = HistogramBins::new(low, high, bins);
    let mut counts = vec![0u64; bins.count];
    for (v, count) in values {
        counts[bins.bin(v)] += count;
    }
    counts
}

/// Equal bins over [low, high] and which one a value falls in: the one rule every histogram of
/// the CPU follows. The bin is monotone in the value (a subtraction and a division by a positive
/// width, then a floor), so values between two of the same bin fall in that bin too.
#[derive(Clone, Copy, Debug)]
pub struct HistogramBins {
    low: f64,
    width: f64,
    count: usize,
}

impl HistogramBins {
    /// `bins` bins (at least one) over [low, high]; with high <= low everything is in the first.
    pub fn new(low: f64, high: f64, bins: usize) -> Self {
        let count = bins.max(1);
        Self { low, width: (high - low) / count as f64, count }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// The bin of `v`: values outside the range in the edge bins, a NaN in the first.
    pub fn bin(&self, v: f64) -> usize {
        let pos = if self.width > 0.0 { ((v - self.low) / self.width).floor() } else { 0.0 };
        if pos.is_nan() { 0 } else { pos.clamp(0.0, (self.count - 1) as f64) as usize }
    }
}

/// Everything reported about one layer of one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    pub path: String,
    pub count: usize,
    pub scope: Scope,
    pub fit: GaussianFit,
}

pub fn layer_reports(params: &HostParams, layers: &[usize]) -> Vec<LayerReport> {
    layers
        .iter()
        .map(|&i| LayerReport {
            path: params.layout.params[i].path.clone(),
            count: params.values[i].len(),
            scope: scope_of(&params.values[i]),
            fit: gaussian_fit(&params.values[i]),
        })
        .collect()
}

/// How K models' scopes become one target (method.md section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FusionRule {
    /// mean = sum p mu; var = sum p (sigma^2 + (mu - mean)^2): the mixture's moments.
    #[default]
    MomentMatching,
    /// mean and variance averaged separately (ignores the spread of the means).
    PlainAverage,
    /// mean and std averaged.
    StdAverage,
    /// 1/var = sum p / sigma^2; mean weighted by precision.
    PrecisionWeighted,
}

crate::choices!(FusionRule, "fusion rule" {
    MomentMatching => "moment-matching", "moment matching",
    PlainAverage => "plain-average", "plain average",
    StdAverage => "std-average", "std average",
    PrecisionWeighted => "precision-weighted", "precision weighted",
});

/// Fuses per-model scope lists (`scopes[k][l]`, model k, layer l) with weights `p_k`
/// (normalised here; sample counts in federated learning, equal otherwise).
pub fn fuse(scopes: &[Vec<Scope>], weights: &[f64], rule: FusionRule) -> Result<Vec<Scope>> {
    let Some(first) = scopes.first() else {
        return Err(WsaError::invalid("fusion", "0 models", "need at least one model to fuse"));
    };
    if weights.len() != scopes.len() || scopes.iter().any(|s| s.len() != first.len()) {
        return Err(WsaError::invalid(
            "fusion",
            format!("{} weight(s)", weights.len()),
            "need one weight per model and the same layers in each",
        ));
    }
    let total: f64 = weights.iter().sum();
    if total.is_nan() || total <= 0.0 || weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
        return Err(WsaError::invalid(
            "fusion weights",
            format!("{weights:?}"),
            "must be finite, >= 0, and not all zero",
        ));
    }
    let p: Vec<f64> = weights.iter().map(|w| w / total).collect();
    Ok((0..first.len())
        .map(|l| {
            let layer = |k: usize| scopes[k][l];
            let mean = (0..scopes.len()).map(|k| p[k] * layer(k).mean).sum::<f64>();
            match rule {
                FusionRule::MomentMatching => {
                    let var = (0..scopes.len())
                        .map(|k| p[k] * (layer(k).std.powi(2) + (layer(k).mean - mean).powi(2)))
                        .sum::<f64>();
                    Scope { mean, std: var.sqrt() }
                }
                FusionRule::PlainAverage => {
                    let var = (0..scopes.len()).map(|k| p[k] * layer(k).std.powi(2)).sum::<f64>();
                    Scope { mean, std: var.sqrt() }
                }
                FusionRule::StdAverage => Scope { mean, std: (0..scopes.len()).map(|k| p[k] * layer(k).std).sum() },
                FusionRule::PrecisionWeighted => {
                    let prec = |k: usize| 1.0 / (layer(k).std + STD_EPS).powi(2);
                    let total_prec = (0..scopes.len()).map(|k| p[k] * prec(k)).sum::<f64>();
                    let mean = (0..scopes.len()).map(|k| p[k] * prec(k) * layer(k).mean).sum::<f64>() / total_prec;
                    Scope { mean, std: (1.0 / total_prec).sqrt() }
                }
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(mean: f64, std: f64) -> Scope {
        Scope { mean, std }
    }

    #[test]
    fn kl_matches_hand_computed_values() {
        // KL(N(0,1)||N(0,1)) = 0
        assert!(kl_gaussian(s(0.0, 1.0), s(0.0, 1.0)).abs() < 1e-12);
        // KL(N(1,1)||N(0,1)) = 1/2
        assert!((kl_gaussian(s(1.0, 1.0), s(0.0, 1.0)) - 0.5).abs() < 1e-7);
        // KL(N(0,1)||N(0,2^2)) = ln 2 + 1/8 - 1/2
        let expected = 2f64.ln() + 1.0 / 8.0 - 0.5;
        assert!((kl_gaussian(s(0.0, 1.0), s(0.0, 2.0)) - expected).abs() < 1e-7);
        // KL(N(2,3^2)||N(-1,0.5^2)) = ln(0.5/3) + (9 + 9) / (2 * 0.25) - 1/2
        let expected = (0.5f64 / 3.0).ln() + 18.0 / 0.5 - 0.5;
        assert!((kl_gaussian(s(2.0, 3.0), s(-1.0, 0.5)) - expected).abs() < 1e-6 * expected);
    }

    #[test]
    fn every_fusion_rule_matches_its_formula() {
        let scopes = vec![vec![s(1.0, 1.0)], vec![s(3.0, 2.0)]];
        let w = [1.0, 3.0]; // p = 0.25, 0.75
        let mm = fuse(&scopes, &w, FusionRule::MomentMatching).expect("fuse")[0];
        assert!((mm.mean - 2.5).abs() < 1e-12);
        // 0.25*(1 + 2.25) + 0.75*(4 + 0.25) = 0.8125 + 3.1875 = 4.0
        assert!((mm.std - 2.0).abs() < 1e-12);
        let pa = fuse(&scopes, &w, FusionRule::PlainAverage).expect("fuse")[0];
        assert!((pa.std - (0.25f64 + 3.0).sqrt()).abs() < 1e-12);
        let sa = fuse(&scopes, &w, FusionRule::StdAverage).expect("fuse")[0];
        assert!((sa.std - 1.75).abs() < 1e-12 && (sa.mean - 2.5).abs() < 1e-12);
        let pw = fuse(&scopes, &w, FusionRule::PrecisionWeighted).expect("fuse")[0];
        // 1/var = 0.25/1 + 0.75/4 = 0.4375; mean = (0.25*1 + 0.75*3/4) / 0.4375
        assert!((pw.std - (1.0f64 / 0.4375).sqrt()).abs() < 1e-7);
        assert!((pw.mean - (0.25 + 0.5625) / 0.4375).abs() < 1e-7);
    }

    #[test]
    fn fusing_identical_scopes_is_the_identity_and_bad_weights_are_refused() {
        let scopes = vec![vec![s(0.2, 0.7)]; 4];
        for rule in [
            FusionRule::MomentMatching,
            FusionRule::PlainAverage,
            FusionRule::StdAverage,
            FusionRule::PrecisionWeighted,
        ] {
            let f = fuse(&scopes, &[1.0; 4], rule).expect("fuse")[0];
            assert!((f.mean - 0.2).abs() < 1e-9 && (f.std - 0.7).abs() < 1e-7, "{rule:?} {f:?}");
        }
        assert!(fuse(&scopes, &[0.0; 4], FusionRule::MomentMatching).is_err());
        assert!(fuse(&scopes, &[1.0; 3], FusionRule::MomentMatching).is_err());
        assert!(fuse(&[], &[], FusionRule::MomentMatching).is_err());
    }

    #[test]
    fn histogram_counts_every_value_once() {
        let values = [-1.0f32, -0.5, 0.0, 0.25, 0.5, 0.99, 1.0, 7.0];
        let counts = histogram(&values, -1.0, 1.0, 4);
        assert_eq!(counts, vec![1, 1, 2, 4]);
        assert_eq!(counts.iter().sum::<u64>(), values.len() as u64);
        assert_eq!(histogram(&[3.0; 5], 3.0, 3.0, 3), vec![5, 0, 0]);
    }

    #[test]
    fn gaussian_fit_tells_gaussian_from_uniform() {
        let mut rng = crate::rng::Rng::new(2);
        let gauss: Vec<f32> = (0..20_000).map(|_| rng.normal() as f32).collect();
        let uniform: Vec<f32> = (0..20_000).map(|_| rng.uniform() as f32).collect();
        let g = gaussian_fit(&gauss);
        let u = gaussian_fit(&uniform);
        assert!(g.excess_kurtosis.abs() < 0.1 && g.ks_distance < 0.015, "{g:?}");
        assert!((u.excess_kurtosis + 1.2).abs() < 0.05 && u.ks_distance > 0.05, "{u:?}");
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7 && (normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
    }

    #[test]
    fn scope_distance_is_zero_for_equal_scopes_and_symmetric() {
        let a = [s(0.0, 0.1), s(0.01, 0.2)];
        let b = [s(0.02, 0.15), s(0.0, 0.3)];
        assert_eq!(scope_distance(&a, &a), 0.0);
        assert!((scope_distance(&a, &b) - scope_distance(&b, &a)).abs() < 1e-12);
        assert!(scope_distance(&a, &b) > 0.0);
    }
}
