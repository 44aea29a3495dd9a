//! A connect experiment over several seeds (`ConnectConfig::seeds`): one seed is an anecdote
//! (the default pair's WSA barrier is above plain training's on seed 0 and below it on average
//! over seeds 0-7), so the app, the page and `wsa-lab connect --seeds N` show the mean with its
//! spread. Each seed keeps only its numbers ([`SeedRun`]); the first seed also keeps everything
//! else (layers, histograms, curves, models) for the views that show one pair.

use super::connect::{ConnectResult, MethodResult};
use super::curve::CurveResult;
use super::method::Method;
pub use super::stats::Summary;
use super::stats::summarize;
use crate::merge::{Barriers, PathPoint};
use crate::train::Metrics;
use serde::{Deserialize, Serialize};

/// The most seeds one experiment runs (the reproduce command is the tool for more).
pub const MAX_SEEDS: usize = 100;

/// One seed's numbers for one method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedMethod {
    pub endpoint_a: Metrics,
    pub endpoint_b: Metrics,
    pub path: Vec<PathPoint>,
    pub barriers: Barriers,
    pub scope_distance: f64,
    /// The method's trained curve at this seed, when the config trains curves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<CurveResult>,
}

impl From<&MethodResult> for SeedMethod {
    fn from(m: &MethodResult) -> Self {
        Self {
            endpoint_a: m.endpoint_a,
            endpoint_b: m.endpoint_b,
            path: m.path.clone(),
            barriers: m.barriers,
            scope_distance: m.scope_distance,
            curve: m.curve.clone(),
        }
    }
}

/// The numbers of every method at one seed, in the result's method order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedRun {
    pub seed: u64,
    pub methods: Vec<SeedMethod>,
}

impl SeedRun {
    pub fn of(result: &ConnectResult) -> Self {
        Self { seed: result.config.seed, methods: result.methods.iter().map(SeedMethod::from).collect() }
    }
}

/// Loss and accuracy at one alpha over the seeds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PathSpread {
    pub alpha: f64,
    pub loss: Summary,
    pub accuracy: Summary,
}

/// One method over the seeds: every number of the barrier table and every path point as mean,
/// sample std, min and max.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodSpread {
    pub method: Method,
    pub lambda: f64,
    pub accuracy_a: Summary,
    pub accuracy_b: Summary,
    pub loss_barrier: Summary,
    pub accuracy_barrier: Summary,
    pub scope_distance: Summary,
    pub path: Vec<PathSpread>,
}

impl ConnectResult {
    /// Every seed's numbers: those of each seed of a run over several (borrowed: the tour checks
    /// its claims every frame), or this result's own.
    pub fn seed_runs(&self) -> std::borrow::Cow<'_, [SeedRun]> {
        if self.seeds.is_empty() { vec![SeedRun::of(self)].into() } else { self.seeds.as_slice().into() }
    }

    /// Each method summarised over the result's seeds; `None` for a single-seed result.
    pub fn over_seeds(&self) -> Option<Vec<MethodSpread>> {
        if self.seeds.len() < 2 {
            return None;
        }
        self.spread_over(&self.seeds)
    }

    /// What a view shows: the spread over every seed (`None`), or seed index `Some(k)` alone
    /// (n = 1: std 0, min = max); a single-seed result is its one seed either way.
    pub fn shown(&self, seed: Option<usize>) -> Vec<MethodSpread> {
        let one = |run: SeedRun| self.spread_over(std::slice::from_ref(&run));
        let spread = match seed.and_then(|k| self.seeds.get(k)) {
            Some(run) => one(run.clone()),
            None if self.seeds.len() > 1 => self.spread_over(&self.seeds),
            None => one(SeedRun::of(self)),
        };
        spread.unwrap_or_default()
    }

    /// Each method over `runs` (runs missing a method or a path point make it `None`).
    fn spread_over(&self, runs: &[SeedRun]) -> Option<Vec<MethodSpread>> {
        self.methods
            .iter()
            .enumerate()
            .map(|(k, method)| {
                let runs: Vec<&SeedMethod> = runs.iter().map(|s| s.methods.get(k)).collect::<Option<_>>()?;
                let over = |value: &dyn Fn(&SeedMethod) -> Option<f64>| {
                    let values: Vec<f64> = runs.iter().map(|r| value(r)).collect::<Option<_>>()?;
                    summarize(&values)
                };
                let path = method
                    .path
                    .iter()
                    .enumerate()
                    .map(|(i, point)| {
                        let at = |value: fn(&PathPoint) -> f64| over(&|r: &SeedMethod| r.path.get(i).map(value));
                        Some(PathSpread { alpha: point.alpha, loss: at(|p| p.loss)?, accuracy: at(|p| p.accuracy)? })
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some(MethodSpread {
                    method: method.method,
                    lambda: method.lambda,
                    accuracy_a: over(&|r| Some(r.endpoint_a.accuracy))?,
                    accuracy_b: over(&|r| Some(r.endpoint_b.accuracy))?,
                    loss_barrier: over(&|r| Some(r.barriers.loss))?,
                    accuracy_barrier: over(&|r| Some(r.barriers.accuracy))?,
                    scope_distance: over(&|r| Some(r.scope_distance))?,
                    path,
                })
            })
            .collect()
    }

    /// Each method's trained curve as a view shows it: seed index `Some(k)`'s, or for `None` the
    /// one seed's of a single-seed result; curves are not averaged, so the spread over several
    /// seeds has none (empty).
    pub fn curves_shown(&self, seed: Option<usize>) -> Vec<(Method, &CurveResult)> {
        let names = self.methods.iter().map(|m| m.method);
        match seed.and_then(|k| self.seeds.get(k)) {
            Some(run) => names.zip(&run.methods).filter_map(|(n, m)| Some((n, m.curve.as_ref()?))).collect(),
            None if self.seeds.len() > 1 => Vec::new(),
            None => self.methods.iter().filter_map(|m| Some((m.method, m.curve.as_ref()?))).collect(),
        }
    }

    /// The seeds this result summarises, e.g. "seeds 0-2" or "seed 4".
    pub fn seeds_label(&self) -> String {
        match (self.seeds.first(), self.seeds.last()) {
            (Some(first), Some(last)) if self.seeds.len() > 1 => format!("seeds {}-{}", first.seed, last.seed),
            _ => format!("seed {}", self.config.seed),
        }
    }
}

/// A number over seeds as a table shows it: "mean ± std" for several, the value for one.
pub fn mean_std(summary: &Summary, digits: usize) -> String {
    if summary.n > 1 {
        format!("{:.digits$} ± {:.digits$}", summary.mean, summary.std)
    } else {
        format!("{:.digits$}", summary.mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::connect::ConnectConfig;
    use crate::merge::Barriers;

    fn method(barrier: f64, path_loss: [f64; 3]) -> SeedMethod {
        SeedMethod {
            endpoint_a: Metrics { loss: 0.1, accuracy: 0.9 },
            endpoint_b: Metrics { loss: 0.2, accuracy: 0.8 },
            path: path_loss
                .iter()
                .enumerate()
                .map(|(i, &loss)| PathPoint { alpha: i as f64 / 2.0, loss, accuracy: 1.0 - loss })
                .collect(),
            barriers: Barriers { loss: barrier, accuracy: barrier / 2.0 },
            scope_distance: 0.01,
            curve: None,
        }
    }

    #[test]
    fn a_result_over_three_seeds_summarises_every_number_and_every_path_point() {
        let seeds: Vec<SeedRun> = [(1.0, 0.5), (2.0, 0.7), (6.0, 0.9)]
            .iter()
            .enumerate()
            .map(|(s, &(barrier, mid))| SeedRun {
                seed: 10 + s as u64,
                methods: vec![method(barrier, [0.1, mid, 0.2])],
            })
            .collect();
        let first = &seeds[0].methods[0];
        let mut result = ConnectResult {
            version: 2,
            config: ConnectConfig { seed: 10, seeds: 3, ..Default::default() },
            dataset: "test".into(),
            train_samples: 1,
            test_samples: 1,
            parameters: 1,
            device: "cpu".into(),
            difference: "seed".into(),
            pairs: Vec::new(),
            methods: vec![MethodResult {
                method: Method::PLAIN,
                lambda: 0.0,
                endpoint_a: first.endpoint_a,
                endpoint_b: first.endpoint_b,
                path: first.path.clone(),
                barriers: first.barriers,
                scope_distance: first.scope_distance,
                layers: Vec::new(),
                alignment: None,
                curve: None,
            }],
            warnings: Vec::new(),
            seeds: Vec::new(),
        };
        assert_eq!(result.over_seeds(), None, "one seed has no spread to show");
        result.seeds = seeds;
        let spread = result.over_seeds().expect("three seeds");
        let plain = &spread[0];
        // Barriers 1, 2, 6: mean 3, sample variance ((-2)^2 + (-1)^2 + 3^2) / 2 = 7.
        assert_eq!((plain.loss_barrier.mean, plain.loss_barrier.min, plain.loss_barrier.max), (3.0, 1.0, 6.0));
        assert!((plain.loss_barrier.std - 7f64.sqrt()).abs() < 1e-12);
        assert_eq!(plain.accuracy_barrier.mean, 1.5);
        assert_eq!(plain.scope_distance.std, 0.0);
        // The midpoint's loss 0.5, 0.7, 0.9: mean 0.7, std 0.2.
        assert_eq!(plain.path.len(), 3);
        assert!((plain.path[1].loss.mean - 0.7).abs() < 1e-12);
        assert!((plain.path[1].loss.std - 0.2).abs() < 1e-12);
        assert!((plain.path[1].accuracy.mean - 0.3).abs() < 1e-12);
        assert_eq!(plain.path[1].alpha, 0.5);
        assert_eq!(result.seeds_label(), "seeds 10-12");
        assert_eq!(mean_std(&plain.loss_barrier, 2), "3.00 ± 2.65");
        // One seed, one click away: its own numbers, no spread.
        let second = &result.shown(Some(1))[0];
        assert_eq!((second.loss_barrier.n, second.loss_barrier.mean, second.loss_barrier.std), (1, 2.0, 0.0));
        assert!((second.path[1].loss.mean - 0.7).abs() < 1e-12);
        assert_eq!(mean_std(&second.loss_barrier, 2), "2.00");
        assert_eq!(result.shown(None), spread, "no seed chosen: the spread over all");
        assert_eq!(result.shown(Some(7)), spread, "a seed that is not there: the spread over all");
    }
}
