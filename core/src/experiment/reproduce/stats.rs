//! Statistics over seeds: mean and sample standard deviation, and the 95% confidence interval
//! of a *paired* difference (a method minus its baseline on the same seed, split and
//! initialisation) from Student's t. An interval that contains zero is "no significant
//! difference", never a win.

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

/// The two-sided 97.5% quantile of Student's t with `df` degrees of freedom: tabulated to
/// three decimals up to 30, then the Cornish-Fisher expansion around the normal quantile
/// (within 1e-3 of the exact value from 30 on).
pub fn t_quantile_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        _ => {
            let z: f64 = 1.959_964;
            let v = df as f64;
            z + (z.powi(3) + z) / (4.0 * v) + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
        }
    }
}

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
}

/// The mean of `x - y` over pairs and its 95% confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    pub n: usize,
    pub mean: f64,
    pub std: f64,
    /// mean -/+ t(0.975, n - 1) std / sqrt(n); infinite for fewer than two pairs.
    pub low: f64,
    pub high: f64,
    pub verdict: Verdict,
}

/// The paired difference of `pairs` (x, y): both measured on the same seed. `None` for no pairs.
pub fn paired_difference(pairs: &[(f64, f64)]) -> Option<PairedDifference> {
    let diffs: Vec<f64> = pairs.iter().map(|(x, y)| x - y).collect();
    let s = summarize(&diffs)?;
    if s.n < 2 {
        return Some(PairedDifference {
            n: s.n,
            mean: s.mean,
            std: 0.0,
            low: f64::NEG_INFINITY,
            high: f64::INFINITY,
            verdict: Verdict::TooFewSeeds,
        });
    }
    let half = t_quantile_975(s.n - 1) * s.std / (s.n as f64).sqrt();
    let (low, high) = (s.mean - half, s.mean + half);
    let verdict = if high < 0.0 {
        Verdict::Lower
    } else if low > 0.0 {
        Verdict::Higher
    } else {
        Verdict::NoSignificantDifference
    };
    Some(PairedDifference { n: s.n, mean: s.mean, std: s.std, low, high, verdict })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
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
    fn paired_interval_matches_a_hand_computed_t_interval() {
        // Differences 0.1, 0.3, 0.2, 0.4, 0.0: mean 0.2, sample std sqrt(0.1/4) = 0.158114,
        // t(0.975, 4) = 2.776, half-width 2.776 * 0.158114 / sqrt(5) = 0.196293.
        let pairs = [(1.1, 1.0), (1.3, 1.0), (1.2, 1.0), (1.4, 1.0), (1.0, 1.0)];
        let d = paired_difference(&pairs).expect("pairs");
        assert_eq!(d.n, 5);
        assert!(close(d.mean, 0.2, 1e-12), "{}", d.mean);
        assert!(close(d.std, 0.158_113_883, 1e-8), "{}", d.std);
        assert!(close(d.low, 0.2 - 0.196_293, 1e-5) && close(d.high, 0.2 + 0.196_293, 1e-5), "{d:?}");
        assert_eq!(d.verdict, Verdict::Higher);

        // The same mean with more spread: the interval contains zero.
        let noisy = paired_difference(&[(0.9, 0.0), (-0.5, 0.0), (0.2, 0.0)]).expect("pairs");
        assert_eq!(noisy.verdict, Verdict::NoSignificantDifference, "{noisy:?}");
        let lower = paired_difference(&[(0.0, 0.5), (0.1, 0.5), (0.0, 0.4)]).expect("pairs");
        assert_eq!(lower.verdict, Verdict::Lower, "{lower:?}");
        let one = paired_difference(&[(2.0, 1.0)]).expect("one pair");
        assert_eq!((one.verdict, one.mean), (Verdict::TooFewSeeds, 1.0));
        assert!(paired_difference(&[]).is_none());
    }

    #[test]
    fn t_quantiles_are_tabulated_and_approach_the_normal() {
        assert_eq!(t_quantile_975(1), 12.706);
        assert_eq!(t_quantile_975(4), 2.776);
        assert!(close(t_quantile_975(31), 2.0395, 1e-3), "{}", t_quantile_975(31));
        assert!(close(t_quantile_975(120), 1.9799, 1e-3), "{}", t_quantile_975(120));
        assert!(t_quantile_975(0).is_infinite());
    }
}
