//! The lab's statistics, in one place: mean and sample standard deviation over seeds; the 95%
//! confidence interval and two-sided p-value of a *paired* difference (a method minus its
//! baseline on the same seed, split and initialisation) from Student's t; the smallest
//! difference such a test detects at 80% power; Holm's correction of a family of tests;
//! Wilcoxon's signed-rank test; and the random-effects pooling of rows that replicate one
//! condition. An interval that contains zero is "no significant difference", never a win.
//!
//! The distributions are computed, not tabulated: Student's t from the regularised incomplete
//! beta function (a continued fraction), the normal from the error function (`scope`'s).

use serde::{Deserialize, Serialize};

/// Mean, sample standard deviation (n - 1; zero for one value), extremes and count.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

/// `None` for no values.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let std =
        if n < 2 { 0.0 } else { (values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() };
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(Summary { n, mean, std, min, max })
}

// --- distributions ---------------------------------------------------------------------------

/// ln Γ(x) for x > 0: Lanczos' approximation (g = 7, nine terms; about 1e-15 relative).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let sum = C[1..].iter().enumerate().fold(C[0], |s, (i, c)| s + c / (x + i as f64 + 1.0));
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The regularised incomplete beta function I_x(a, b), by its continued fraction (modified
/// Lentz), on the side of x where it converges fast.
fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(1.0 - x, b, a);
    }
    const TINY: f64 = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    d = 1.0 / if d.abs() < TINY { TINY } else { d };
    let mut fraction = d;
    for m in 1..300 {
        let m = f64::from(m);
        for numerator in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + numerator * d;
            d = 1.0 / if d.abs() < TINY { TINY } else { d };
            c = 1.0 + numerator / c;
            c = if c.abs() < TINY { TINY } else { c };
            fraction *= c * d;
        }
        if (c * d - 1.0).abs() < 1e-15 {
            break;
        }
    }
    front * fraction / a
}

/// P(T <= t) for Student's t with `df` degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * incomplete_beta(df / (df + t * t), 0.5 * df, 0.5);
    if t > 0.0 { 1.0 - tail } else { tail }
}

/// The p-quantile of Student's t with `df` degrees of freedom (bisection on the CDF, to 1e-12).
pub fn t_quantile(p: f64, df: usize) -> f64 {
    if df == 0 || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.5 {
        return 0.0;
    }
    let (mut lo, mut hi) = (-1e6, 1e6);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_cdf(mid, df as f64) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-12 {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The two-sided 97.5% quantile of Student's t (the half-width factor of a 95% interval);
/// infinite for no degrees of freedom.
pub fn t_quantile_975(df: usize) -> f64 {
    if df == 0 { f64::INFINITY } else { t_quantile(0.975, df) }
}

/// P(Z <= z) for the standard normal (the scope statistics' own, 1.2e-7).
pub use crate::scope::normal_cdf;

// --- paired differences ----------------------------------------------------------------------

/// What a paired difference says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The whole interval lies below zero.
    Lower,
    /// The whole interval lies above zero.
    Higher,
    /// The interval contains zero.
    NoSignificantDifference,
    /// Fewer than two paired seeds: no interval can be given (one seed is an anecdote).
    TooFewSeeds,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Lower => "lower",
            Verdict::Higher => "higher",
            Verdict::NoSignificantDifference => "no significant difference",
            Verdict::TooFewSeeds => "too few seeds",
        }
    }

    /// The verdict of an interval [low, high] around zero.
    pub fn of_interval(low: f64, high: f64) -> Verdict {
        if high < 0.0 {
            Verdict::Lower
        } else if low > 0.0 {
            Verdict::Higher
        } else {
            Verdict::NoSignificantDifference
        }
    }
}

/// The mean of `x - y` over pairs, its 95% confidence interval and two-sided p-value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    pub n: usize,
    pub mean: f64,
    pub std: f64,
    /// mean -/+ t(0.975, n - 1) std / sqrt(n); infinite for fewer than two pairs (JSON has no
    /// infinity: written as null, read back as the unbounded side).
    #[serde(deserialize_with = "unbounded_below_if_null")]
    pub low: f64,
    #[serde(deserialize_with = "unbounded_above_if_null")]
    pub high: f64,
    pub verdict: Verdict,
    /// The paired t-test's two-sided p-value (1 for fewer than two pairs).
    #[serde(default = "one")]
    pub p: f64,
    /// How many pairs have x below y, and above (ties count in neither).
    #[serde(default)]
    pub below: usize,
    #[serde(default)]
    pub above: usize,
}

fn one() -> f64 {
    1.0
}

/// Reads JSON's null (what serde_json writes for an infinity) as negative infinity.
pub(crate) fn unbounded_below_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NEG_INFINITY))
}

/// Reads JSON's null (what serde_json writes for an infinity) as positive infinity.
pub(crate) fn unbounded_above_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

impl PairedDifference {
    /// The mean difference and the variance of that mean (std² / n): one row's estimate for
    /// [`random_effects`].
    pub fn estimate(&self) -> (f64, f64) {
        (self.mean, self.std * self.std / self.n as f64)
    }

    /// [`PairedDifference::estimate`] relative to `scale` (e.g. the row's baseline mean): the mean
    /// and its standard error divided by |scale|.
    pub fn relative_estimate(&self, scale: f64) -> (f64, f64) {
        (self.mean / scale.abs(), (self.std / scale.abs()).powi(2) / self.n as f64)
    }
}

/// The paired difference of `pairs` (x, y): both measured on the same seed. `None` for no pairs.
pub fn paired_difference(pairs: &[(f64, f64)]) -> Option<PairedDifference> {
    let diffs: Vec<f64> = pairs.iter().map(|(x, y)| x - y).collect();
    let s = summarize(&diffs)?;
    let below = diffs.iter().filter(|d| **d < 0.0).count();
    let above = diffs.iter().filter(|d| **d > 0.0).count();
    if s.n < 2 {
        return Some(PairedDifference {
            n: s.n,
            mean: s.mean,
            std: 0.0,
            low: f64::NEG_INFINITY,
            high: f64::INFINITY,
            verdict: Verdict::TooFewSeeds,
            p: 1.0,
            below,
            above,
        });
    }
    let se = s.std / (s.n as f64).sqrt();
    let half = t_quantile_975(s.n - 1) * se;
    let (low, high) = (s.mean - half, s.mean + half);
    let p = if se > 0.0 {
        2.0 * student_t_cdf(-(s.mean / se).abs(), (s.n - 1) as f64)
    } else if s.mean == 0.0 {
        1.0
    } else {
        0.0
    };
    Some(PairedDifference {
        n: s.n,
        mean: s.mean,
        std: s.std,
        low,
        high,
        verdict: Verdict::of_interval(low, high),
        p,
        below,
        above,
    })
}

/// The smallest true mean difference a two-sided paired t-test at the 5% level detects with 80%
/// power, from `n` pairs whose differences have sample std `std`: (t(0.975, n-1) + t(0.8, n-1))
/// · std / √n (the usual approximation by the central t). Infinite for fewer than two pairs.
pub fn minimal_detectable_effect(n: usize, std: f64) -> f64 {
    if n < 2 {
        return f64::INFINITY;
    }
    (t_quantile(0.975, n - 1) + t_quantile(0.8, n - 1)) * std / (n as f64).sqrt()
}

/// Holm's step-down adjustment of a family of p-values (same order as given): the k-th smallest
/// is multiplied by (m - k + 1), then made monotone and capped at 1. Rejecting where the adjusted
/// p is below 0.05 keeps the chance of any false positive in the family under 5%.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![1.0; m];
    let mut running: f64 = 0.0;
    for (k, &i) in order.iter().enumerate() {
        running = running.max(((m - k) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// Wilcoxon's signed-rank test of differences against zero.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignedRank {
    /// Non-zero differences ranked (zeros are dropped, Wilcoxon's convention).
    pub n: usize,
    /// min(W+, W-), the sums of the ranks of the positive and of the negative differences.
    pub statistic: f64,
    /// Two-sided p: exact for up to 50 differences without ties in |d|, else the normal
    /// approximation with the tie correction (no continuity correction), as SciPy's `wilcoxon`
    /// computes it by default.
    pub p: f64,
    pub exact: bool,
}

pub fn wilcoxon_signed_rank(diffs: &[f64]) -> Option<SignedRank> {
    let mut nonzero: Vec<f64> = diffs.iter().copied().filter(|d| *d != 0.0 && d.is_finite()).collect();
    let n = nonzero.len();
    if n == 0 {
        return None;
    }
    nonzero.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    // Ranks of |d|, ties sharing their mean rank.
    let mut ranks = vec![0.0; n];
    let mut tie_groups = Vec::new();
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && nonzero[end].abs() == nonzero[start].abs() {
            end += 1;
        }
        let rank = (start + end + 1) as f64 / 2.0;
        ranks[start..end].iter_mut().for_each(|r| *r = rank);
        tie_groups.push(end - start);
        start = end;
    }
    let plus: f64 = nonzero.iter().zip(&ranks).filter(|(d, _)| **d > 0.0).map(|(_, r)| r).sum();
    let total = (n * (n + 1)) as f64 / 2.0;
    let statistic = plus.min(total - plus);
    let ties = tie_groups.iter().any(|&t| t > 1);
    if n <= 50 && !ties {
        // The null distribution of W+: every sign pattern of ranks 1..n equally likely.
        let top = n * (n + 1) / 2;
        let mut counts = vec![0.0f64; top + 1];
        counts[0] = 1.0;
        for rank in 1..=n {
            for s in (rank..=top).rev() {
                counts[s] += counts[s - rank];
            }
        }
        let below: f64 = counts[..=statistic as usize].iter().sum();
        let p = (2.0 * below / 2f64.powi(n as i32)).min(1.0);
        return Some(SignedRank { n, statistic, p, exact: true });
    }
    let nf = n as f64;
    let tie_term: f64 = tie_groups.iter().map(|&t| (t * t * t - t) as f64).sum::<f64>() / 48.0;
    let se = (nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie_term).sqrt();
    let z = (plus - total / 2.0) / se;
    Some(SignedRank { n, statistic, p: (2.0 * normal_cdf(-z.abs())).min(1.0), exact: false })
}

// --- pooling rows ----------------------------------------------------------------------------

/// A random-effects pooled estimate over rows (each row an estimate with its variance).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pooled {
    /// Rows pooled.
    pub k: usize,
    pub mean: f64,
    /// The 95% interval: Hartung-Knapp-Sidik-Jonkman, t with k - 1 degrees of freedom.
    pub low: f64,
    pub high: f64,
    /// The between-row variance (DerSimonian-Laird).
    pub tau2: f64,
    pub verdict: Verdict,
}

/// Pools `rows` (estimate, variance of the estimate) by a random-effects meta-analysis: the
/// between-row variance τ² by DerSimonian and Laird, weights 1 / (v + τ²), and the interval of
/// Hartung and Knapp (t with k - 1 degrees of freedom, the spread of the rows around the pooled
/// mean), which keeps its coverage with few rows where the normal interval is too narrow.
/// Rows replicate one condition on different data and models, so their true effects may differ:
/// a fixed-effect pool would claim more precision than the design has. `None` for fewer than
/// two rows.
pub fn random_effects(rows: &[(f64, f64)]) -> Option<Pooled> {
    let k = rows.len();
    if k < 2 {
        return None;
    }
    // A row whose differences were all equal has variance zero; a floor keeps its weight finite.
    let floor = rows.iter().map(|r| r.1).filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let floor = if floor.is_finite() { floor * 1e-3 } else { 1e-12 };
    let variances: Vec<f64> = rows.iter().map(|r| r.1.max(floor)).collect();
    let w: Vec<f64> = variances.iter().map(|v| 1.0 / v).collect();
    let sw: f64 = w.iter().sum();
    let fixed = rows.iter().zip(&w).map(|(r, w)| w * r.0).sum::<f64>() / sw;
    let q: f64 = rows.iter().zip(&w).map(|(r, w)| w * (r.0 - fixed).powi(2)).sum();
    let c = sw - w.iter().map(|w| w * w).sum::<f64>() / sw;
    let tau2 = if c > 0.0 { ((q - (k - 1) as f64) / c).max(0.0) } else { 0.0 };
    let w_re: Vec<f64> = variances.iter().map(|v| 1.0 / (v + tau2)).collect();
    let sw_re: f64 = w_re.iter().sum();
    let mean = rows.iter().zip(&w_re).map(|(r, w)| w * r.0).sum::<f64>() / sw_re;
    let spread = rows.iter().zip(&w_re).map(|(r, w)| w * (r.0 - mean).powi(2)).sum::<f64>() / (k - 1) as f64;
    let half = t_quantile_975(k - 1) * (spread / sw_re).sqrt();
    let (low, high) = (mean - half, mean + half);
    Some(Pooled { k, mean, low, high, tau2, verdict: Verdict::of_interval(low, high) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn a_one_pair_difference_reads_back_from_its_json() {
        // A row with one seed (the first cell of a group) has an unbounded interval, which JSON
        // writes as null; the report (summary.json) must still read back.
        let one = paired_difference(&[(0.5, 1.7)]).expect("one pair");
        assert_eq!((one.low, one.high, one.verdict), (f64::NEG_INFINITY, f64::INFINITY, Verdict::TooFewSeeds));
        let json = serde_json::to_string(&one).expect("written");
        assert!(json.contains("\"low\":null"), "{json}");
        let back: PairedDifference = serde_json::from_str(&json).expect("read back");
        assert_eq!(back, one);
        let two = paired_difference(&[(0.5, 1.7), (0.2, 1.1)]).expect("two pairs");
        assert_eq!(
            serde_json::from_str::<PairedDifference>(&serde_json::to_string(&two).expect("written")).expect("read"),
            two
        );
    }

    #[test]
    fn mean_and_sample_std_match_hand_computed_values() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squares of deviations sum to 32, sample var 32/7.
        let s = summarize(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).expect("values");
        assert_eq!((s.n, s.mean, s.min, s.max), (8, 5.0, 2.0, 9.0));
        assert!(close(s.std, (32.0f64 / 7.0).sqrt(), 1e-12), "{}", s.std);
        let one = summarize(&[3.5]).expect("one value");
        assert_eq!((one.mean, one.std), (3.5, 0.0));
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn paired_interval_and_p_match_a_hand_computed_t_test() {
        // Differences 0.1, 0.3, 0.2, 0.4, 0.0: mean 0.2, sample std sqrt(0.1/4) = 0.158114,
        // t(0.975, 4) = 2.776445, half-width 2.776445 * 0.158114 / sqrt(5) = 0.196324;
        // t = 0.2 / 0.070711 = 2.828427, two-sided p with 4 df = 0.047421.
        let pairs = [(1.1, 1.0), (1.3, 1.0), (1.2, 1.0), (1.4, 1.0), (1.0, 1.0)];
        let d = paired_difference(&pairs).expect("pairs");
        assert_eq!((d.n, d.below, d.above), (5, 0, 4));
        assert!(close(d.mean, 0.2, 1e-12), "{}", d.mean);
        assert!(close(d.std, 0.158_113_883, 1e-8), "{}", d.std);
        assert!(close(d.low, 0.2 - 0.196_324, 1e-5) && close(d.high, 0.2 + 0.196_324, 1e-5), "{d:?}");
        assert!(close(d.p, 0.047_421, 1e-5), "{}", d.p);
        assert_eq!(d.verdict, Verdict::Higher);
        // As a row of a pool: the mean and the squared standard error 0.070711² = 0.005, and
        // relative to a baseline mean of -2 (its size), both scaled by 1/2 and 1/4.
        let (mean, variance) = d.estimate();
        assert!(close(mean, 0.2, 1e-12) && close(variance, 0.005, 1e-12), "{mean} {variance}");
        let (mean, variance) = d.relative_estimate(-2.0);
        assert!(close(mean, 0.1, 1e-12) && close(variance, 0.001_25, 1e-12), "{mean} {variance}");

        // The same mean with more spread: the interval contains zero.
        let noisy = paired_difference(&[(0.9, 0.0), (-0.5, 0.0), (0.2, 0.0)]).expect("pairs");
        assert_eq!(noisy.verdict, Verdict::NoSignificantDifference, "{noisy:?}");
        assert!(noisy.p > 0.05);
        let lower = paired_difference(&[(0.0, 0.5), (0.1, 0.5), (0.0, 0.4)]).expect("pairs");
        assert_eq!(lower.verdict, Verdict::Lower, "{lower:?}");
        let one = paired_difference(&[(2.0, 1.0)]).expect("one pair");
        assert_eq!((one.verdict, one.mean, one.p), (Verdict::TooFewSeeds, 1.0, 1.0));
        assert!(paired_difference(&[]).is_none());
    }

    #[test]
    fn quantiles_match_published_tables() {
        // Student's t: 12.7062 (1 df), 2.7764 (4), 2.0423 (30), 0.9410 (t(0.8, 4)).
        assert!(close(t_quantile(0.975, 1), 12.706_205, 1e-5));
        assert!(close(t_quantile(0.975, 4), 2.776_445, 1e-6));
        assert!(close(t_quantile(0.975, 30), 2.042_272, 1e-6));
        assert!(close(t_quantile(0.8, 4), 0.940_965, 1e-6));
        assert!(close(t_quantile(0.975, 100_000), 1.959_99, 1e-4));
        assert!(t_quantile_975(0).is_infinite());
        assert!(close(normal_cdf(1.959_964), 0.975, 1e-7) && close(normal_cdf(-1.0), 0.158_655, 1e-6));
    }

    #[test]
    fn minimal_detectable_effect_is_the_two_quantiles_times_the_standard_error() {
        // 5 pairs, std 1: (2.776445 + 0.940965) / sqrt(5) = 1.662472.
        assert!(close(minimal_detectable_effect(5, 1.0), 1.662_472, 1e-5));
        assert!(minimal_detectable_effect(1, 1.0).is_infinite());
    }

    #[test]
    fn holm_multiplies_the_kth_smallest_by_m_minus_k_plus_1_and_keeps_the_order() {
        // Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> monotone
        // 0.02, 0.03, 0.06, 0.06.
        let adjusted = holm(&[0.01, 0.04, 0.03, 0.005]);
        let expected = [0.03, 0.06, 0.06, 0.02];
        for (a, e) in adjusted.iter().zip(expected) {
            assert!(close(*a, e, 1e-12), "{adjusted:?}");
        }
        assert_eq!(holm(&[0.9, 0.8]), vec![1.0, 1.0]);
        assert!(holm(&[]).is_empty());
    }

    #[test]
    fn signed_rank_is_exact_without_ties_and_normal_with_them() {
        // All five positive: W+ = 15, W- = 0; P(W+ <= 0) = 1/32, two-sided 0.0625.
        let all_up = wilcoxon_signed_rank(&[1.0, 2.0, 3.0, 4.0, 5.0]).expect("diffs");
        assert_eq!((all_up.n, all_up.statistic, all_up.exact), (5, 0.0, true));
        assert!(close(all_up.p, 0.0625, 1e-12));
        // -1, 2, 3, 4, 5 (and a zero, dropped): W- = 1; P(W+ <= 1) = 2/32, two-sided 0.125.
        let one_down = wilcoxon_signed_rank(&[-1.0, 2.0, 0.0, 3.0, 4.0, 5.0]).expect("diffs");
        assert_eq!((one_down.n, one_down.statistic), (5, 1.0));
        assert!(close(one_down.p, 0.125, 1e-12));
        // Ties in |d| (1, -1, 2, 2): ranks 1.5, 1.5, 3.5, 3.5; W+ = 8.5, W- = 1.5; mean 5,
        // variance 4*5*9/24 - (6 + 6)/48 = 7.25; z = 3.5 / 2.692582 = 1.299867; p = 0.193649.
        let tied = wilcoxon_signed_rank(&[1.0, -1.0, 2.0, 2.0]).expect("diffs");
        assert!(!tied.exact && tied.statistic == 1.5, "{tied:?}");
        assert!(close(tied.p, 0.193_649, 1e-5), "{}", tied.p);
        assert!(wilcoxon_signed_rank(&[0.0, 0.0]).is_none());
    }

    #[test]
    fn random_effects_pooling_matches_a_hand_computed_meta_analysis() {
        // Two rows d = 1, 3 with variance 1: fixed mean 2, Q = 2, C = 1, tau2 = 1; weights
        // 1/2 each, pooled mean 2; Hartung-Knapp: q = 1, se = 1, half-width t(0.975, 1) = 12.7062.
        let pooled = random_effects(&[(1.0, 1.0), (3.0, 1.0)]).expect("rows");
        assert!(close(pooled.mean, 2.0, 1e-12) && close(pooled.tau2, 1.0, 1e-12), "{pooled:?}");
        assert!(close(pooled.high - pooled.mean, 12.706_205, 1e-5), "{pooled:?}");
        // Homogeneous rows (Q below its degrees of freedom): tau2 is 0 and the rows are weighed
        // by precision alone.
        let same = random_effects(&[(-0.1, 0.001), (-0.12, 0.002), (-0.11, 0.001)]).expect("rows");
        assert_eq!(same.tau2, 0.0);
        assert!(close(same.mean, (-0.1 / 0.001 - 0.12 / 0.002 - 0.11 / 0.001) / 2500.0, 1e-12), "{same:?}");
        assert_eq!(same.verdict, Verdict::Lower);
        assert!(random_effects(&[(1.0, 1.0)]).is_none());
    }
}
