//! The guided tour for teaching: steps of one idea each, read from one data file
//! (`tour/tour.ron`, compiled in) so that a teacher edits or translates a step without touching
//! UI code. A step loads an experiment (a patch on the default experiment, in the JSON of config
//! files and links), opens a view with the thing to look at marked, asks for a prediction before
//! the run and, after it, says what to look at and checks its claim on the run's own numbers,
//! seed by seed — so a step's text never says more than its run shows. Pure Rust: the views draw
//! it, tests walk it.

pub mod worksheet;

use serde::{Deserialize, Serialize};
use wsa_core::WsaError;
use wsa_core::experiment::Versioned;
use wsa_core::experiment::connect::{ConnectConfig, ConnectResult};
use wsa_core::experiment::federated::{Aggregation, FedConfig, FedResult};
use wsa_core::experiment::method::Method;
use wsa_core::experiment::patch::merge_patch;
use wsa_core::experiment::seeds::{SeedMethod, mean_std};
use wsa_core::experiment::stats::summarize;

/// The app's views, as a step names the one it opens (the app's tabs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Tab {
    #[default]
    Path,
    Scopes,
    Training,
    Regions,
    Federated,
    Plane,
    Files,
    /// Models the user brought (dropped or picked files).
    Given,
}

/// What a federated step runs: FedAvg with and without WSA, on one split and start (the app and
/// the worksheet alike).
pub fn federated_variants() -> Vec<(Aggregation, bool)> {
    vec![(Aggregation::FedAvg, false), (Aggregation::FedAvg, true)]
}

/// The tour as shipped.
pub const TOUR_FILE: &str = include_str!("../tour.ron");

/// The tour's keys and what they do, as the tour's list of keys shows them (`views::tour`).
pub const KEYS: [(&str, &str); 5] = [
    ("→", "next step"),
    ("←", "previous step"),
    ("R", "run this step"),
    ("Esc", "leave the tour"),
    ("?", "show or hide this list"),
];

/// The most words of a step's text (its main paragraph): one idea, read aloud in a minute.
pub const MAX_WORDS: usize = 120;

/// Why the tour file does not make a usable tour.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum TourError {
    #[error("the tour file does not read: {reason}")]
    Unreadable { reason: String },

    #[error("the tour file has no steps")]
    NoSteps,

    /// Step `number` (from 1) is not usable: `source` says why.
    #[error("tour step {number} ({title}): {source}")]
    Step {
        number: usize,
        title: String,
        #[source]
        source: Box<TourError>,
    },

    #[error("its text has {words} words; at most {}", MAX_WORDS)]
    TooLong { words: usize },

    #[error("its config patch is not JSON: {reason}")]
    PatchNotJson { reason: String },

    /// The default config with the patch merged in does not read back as a config.
    #[error("its config patch does not make a config: {0}")]
    PatchNotConfig(#[source] WsaError),

    /// The step's config does not validate.
    #[error(transparent)]
    Config(WsaError),

    #[error("it marks or claims about `{0}`, which its config does not run")]
    MethodNotRun(Method),

    #[error("it marks a curve, but its config trains none")]
    CurveNotTrained,

    #[error("its claim that B is unchanged compares `{aligned}` with `{original}`, which train different models")]
    NotTheSameB { aligned: Method, original: Method },

    /// Exercise `number` (from 1) of the step is not usable: `source` says why.
    #[error("exercise {number}: {source}")]
    Exercise {
        number: usize,
        #[source]
        source: Box<TourError>,
    },

    /// A glossary term that no step's text uses: nothing would lead to it.
    #[error("the glossary's term `{0}` appears in no step's text")]
    UnusedTerm(String),
}

#[derive(Clone, Debug, Deserialize)]
pub struct Tour {
    pub steps: Vec<Step>,
    /// The words the steps use, explained; a step lists those its text uses.
    #[serde(default)]
    pub glossary: Vec<Term>,
}

/// A glossary entry: a term as the steps write it, and what it means.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Term {
    pub term: String,
    pub meaning: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Step {
    pub title: String,
    /// The idea, in plain language.
    pub text: String,
    /// The question asked before the run ("predict, then run").
    pub predict: String,
    /// What to look at once the run has answered.
    pub look: String,
    pub run: StepRun,
    /// The tab the step opens.
    pub view: Tab,
    pub highlight: Highlight,
    /// What the step's text claims about its run, each checked on every seed of it.
    #[serde(default)]
    pub claims: Vec<Claim>,
    /// Tasks for the students to set up and run themselves (the last step's), answers hidden.
    #[serde(default)]
    pub exercises: Vec<Exercise>,
    /// The experiment `run` describes, read once when the tour is read (the tour guide asks
    /// whenever the results change).
    #[serde(skip)]
    experiment: Experiment,
}

/// A task for the students to set up and run on their own, with its answer hidden until they
/// ask for it. The answer's claims are checked on their run, seed by seed, as a step's are, so
/// that the answer never says more than the run shows.
#[derive(Clone, Debug, Deserialize)]
pub struct Exercise {
    pub task: String,
    /// The experiment that answers it: a patch (JSON) on the default experiment.
    pub run: String,
    pub answer: String,
    #[serde(default)]
    pub claims: Vec<Claim>,
    /// `run`, read and validated when the tour is read.
    #[serde(skip)]
    config: Option<Box<ConnectConfig>>,
}

impl Exercise {
    /// The experiment that answers the exercise (once the tour is read).
    pub fn config(&self) -> Option<&ConnectConfig> {
        self.config.as_deref()
    }

    /// Whether `result` is the exercise's run.
    pub fn is_answered_by(&self, result: Option<&ConnectResult>) -> bool {
        result.is_some_and(|r| self.config().is_some_and(|c| r.config == *c))
    }

    /// The answer's claims checked on `result`.
    pub fn check_claims(&self, result: &ConnectResult) -> Vec<ClaimCheck> {
        check_all(&self.claims, result)
    }

    fn prepare(&mut self) -> Result<(), TourError> {
        let config = connect_experiment(&self.run)?;
        runs_every_method(&config, self.claims.iter().flat_map(Claim::methods))?;
        sensible(&self.claims)?;
        self.config = Some(Box::new(config));
        Ok(())
    }
}

/// The connect experiment a patch (JSON) on the default experiment describes, validated.
fn connect_experiment(patch: &str) -> Result<ConnectConfig, TourError> {
    let config: ConnectConfig = patched(ConnectConfig::default(), patch)?;
    config.validate().map_err(TourError::Config)?;
    Ok(config)
}

/// `claims` checked on `result`, in their order.
fn check_all(claims: &[Claim], result: &ConnectResult) -> Vec<ClaimCheck> {
    claims.iter().map(|claim| claim.check(result)).collect()
}

/// Refuses a claim that makes no sense (`Claim::check_sense`).
fn sensible(claims: &[Claim]) -> Result<(), TourError> {
    claims.iter().try_for_each(Claim::check_sense)
}

/// Refuses a mark or claim about a method `config` does not run.
fn runs_every_method(config: &ConnectConfig, named: impl IntoIterator<Item = Method>) -> Result<(), TourError> {
    match named.into_iter().find(|m| !config.methods.contains(m)) {
        Some(m) => Err(TourError::MethodNotRun(m)),
        None => Ok(()),
    }
}

/// A step's experiment, read and validated.
#[derive(Clone, Debug, Default)]
enum Experiment {
    #[default]
    None,
    Connect(Box<ConnectConfig>),
    Federated(Box<FedConfig>),
}

/// What a step runs.
#[derive(Clone, Debug, Deserialize)]
pub enum StepRun {
    /// A connect experiment: a patch (JSON) on the default experiment.
    Connect(String),
    /// A connect experiment, then the loss plane of the highlighted method's pair.
    ConnectThenPlane(String),
    /// FedAvg with and without WSA on the same split: a patch (JSON) on the default federated
    /// settings.
    Federated(String),
    /// Nothing: the step hands over the full setup.
    Free,
}

/// The thing a step marks in its view.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub enum Highlight {
    /// A method's path and its row of the barrier table.
    Method(Method),
    /// A layer (by index) of a method: its histograms in the scopes view.
    Layer { method: Method, layer: usize },
    /// A method's trained curve beside its line.
    Curve(Method),
    /// A federated run's accuracy curve, by name ("fedavg+wsa").
    FedRun(String),
    /// The setup panel.
    Setup,
}

/// A claim about a step's run, checked on each of its seeds (the claims about one layer's
/// histograms: on the seed the scopes view shows, the first).
#[derive(Clone, Debug, Deserialize)]
pub enum Claim {
    /// Both of `method`'s models reach at least this test accuracy.
    Accurate { method: Method, at_least: f64 },
    /// `method`'s loss barrier is at least `at_least`.
    BarrierAtLeast { method: Method, at_least: f64 },
    /// `method`'s loss barrier is at most `at_most`: a pair with (next to) no barrier.
    BarrierAtMost { method: Method, at_most: f64 },
    /// The test loss along `method`'s line peaks between α = 0.25 and 0.75.
    PeakInTheMiddle(Method),
    /// `method`'s loss barrier is below `than`'s.
    LowerBarrier { method: Method, than: Method },
    /// B as `aligned` reordered its units computes what B does under `original` (the same
    /// models, not reordered): the same test accuracy, to within one test image, and the same
    /// test loss, to within rounding. Permutation symmetry, shown by a run.
    SameB { aligned: Method, original: Method },
    /// `method`'s A and B end with closer scopes (mean symmetric KL over layers) than `than`'s.
    CloserScopes { method: Method, than: Method },
    /// `method`'s A and B end with scopes at least `at_least` apart (mean symmetric KL).
    ScopesApart { method: Method, at_least: f64 },
    /// `method`'s trained curve has a lower loss barrier than its straight line.
    CurveBelowLine(Method),
    /// A's and B's weights of `layer` have heavier tails than a Gaussian (excess kurtosis > 0).
    HeavyTails { method: Method, layer: usize },
    /// B's weights of `layer` spread wider than A's (a larger std).
    WiderInB { method: Method, layer: usize },
}

/// A claim checked on a run: on how many of the cases it covers it held (each seed, or each
/// histogram of the seed shown), and the numbers behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimCheck {
    pub statement: String,
    pub held: usize,
    pub cases: usize,
    /// What a case is: "seeds", "histograms of seed 0".
    pub unit: String,
    pub numbers: String,
}

impl ClaimCheck {
    pub fn holds_everywhere(&self) -> bool {
        self.cases > 0 && self.held == self.cases
    }

    /// One line for the page: the claim, where it held, the numbers. One seed is an anecdote,
    /// and the line says so.
    pub fn line(&self) -> String {
        let anecdote =
            if self.unit == "seeds" && self.cases == 1 { " (one seed is an anecdote: run more)" } else { "" };
        format!("{}: held on {} of {} {}{anecdote}. {}", self.statement, self.held, self.cases, self.unit, self.numbers)
    }
}

impl Tour {
    /// The shipped tour; a broken file is a build defect, which the tests catch.
    pub fn shipped() -> Tour {
        Tour::parse(TOUR_FILE).unwrap_or_else(|e| Tour { steps: vec![Step::broken(&e)], glossary: Vec::new() })
    }

    pub fn parse(text: &str) -> Result<Tour, TourError> {
        let mut tour: Tour = ron::from_str(text).map_err(|e| TourError::Unreadable { reason: e.to_string() })?;
        if tour.steps.is_empty() {
            return Err(TourError::NoSteps);
        }
        for (i, step) in tour.steps.iter_mut().enumerate() {
            step.prepare().map_err(|e| TourError::Step {
                number: i + 1,
                title: step.title.clone(),
                source: Box::new(e),
            })?;
        }
        if let Some(unused) = tour.glossary.iter().find(|t| tour.steps.iter().all(|s| !s.uses(t))) {
            return Err(TourError::UnusedTerm(unused.term.clone()));
        }
        Ok(tour)
    }

    /// The glossary's terms that `step`'s text, question, what to look at or exercises' tasks
    /// use, in the glossary's order.
    pub fn terms_of(&self, step: &Step) -> Vec<&Term> {
        self.glossary.iter().filter(|t| step.uses(t)).collect()
    }
}

impl Step {
    /// Whether the step's text, question, what it asks to look at or its exercises' tasks use `term`
    /// (as a word or words, in any case).
    fn uses(&self, term: &Term) -> bool {
        let wanted = term.term.to_lowercase();
        // An exercise's answer is hidden until asked for: its terms are not listed beside it.
        let exercises = self.exercises.iter().map(|e| &e.task);
        [&self.text, &self.predict, &self.look].into_iter().chain(exercises).any(|text| {
            let text = text.to_lowercase();
            text.match_indices(&wanted).any(|(at, _)| {
                let before = text[..at].chars().next_back();
                let after = text[at + wanted.len()..].chars().next();
                // A plural counts ("barriers" uses "barrier").
                !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(|c| c.is_alphanumeric() && c != 's')
            })
        })
    }

    /// A step that says the tour could not be read, so that the app still opens.
    fn broken(error: &TourError) -> Step {
        Step {
            title: "The tour could not be read".into(),
            text: error.to_string(),
            predict: String::new(),
            look: String::new(),
            run: StepRun::Free,
            view: Tab::Path,
            highlight: Highlight::Setup,
            claims: Vec::new(),
            exercises: Vec::new(),
            experiment: Experiment::None,
        }
    }

    /// Reads the step's experiment and checks that the step is usable: a text of at most
    /// `MAX_WORDS`, a config that reads and validates, marks and claims about methods it runs.
    fn prepare(&mut self) -> Result<(), TourError> {
        let words = self.text.split_whitespace().count();
        if words > MAX_WORDS {
            return Err(TourError::TooLong { words });
        }
        self.experiment = match &self.run {
            StepRun::Connect(patch) | StepRun::ConnectThenPlane(patch) => {
                Experiment::Connect(Box::new(connect_experiment(patch)?))
            }
            StepRun::Federated(patch) => {
                let config: FedConfig = patched(FedConfig::default(), patch)?;
                config.validate().map_err(TourError::Config)?;
                Experiment::Federated(Box::new(config))
            }
            StepRun::Free => Experiment::None,
        };
        if let Some(config) = self.connect_config() {
            let marked = match &self.highlight {
                Highlight::Method(m) | Highlight::Curve(m) | Highlight::Layer { method: m, .. } => Some(*m),
                Highlight::FedRun(_) | Highlight::Setup => None,
            };
            runs_every_method(config, marked.into_iter().chain(self.claims.iter().flat_map(Claim::methods)))?;
            sensible(&self.claims)?;
            if matches!(self.highlight, Highlight::Curve(_)) && config.curve.is_none() {
                return Err(TourError::CurveNotTrained);
            }
        }
        for (k, exercise) in self.exercises.iter_mut().enumerate() {
            exercise.prepare().map_err(|e| TourError::Exercise { number: k + 1, source: Box::new(e) })?;
        }
        Ok(())
    }

    /// The connect experiment the step runs, if it runs one.
    pub fn connect_config(&self) -> Option<&ConnectConfig> {
        match &self.experiment {
            Experiment::Connect(config) => Some(config),
            _ => None,
        }
    }

    /// The federated settings the step runs, if it runs a federation.
    pub fn fed_config(&self) -> Option<&FedConfig> {
        match &self.experiment {
            Experiment::Federated(config) => Some(config),
            _ => None,
        }
    }

    /// Whether `result` (or `fed`) is this step's run: the result of its experiment.
    pub fn is_answered_by(&self, result: Option<&ConnectResult>, fed: Option<&FedResult>) -> bool {
        match &self.experiment {
            Experiment::Connect(config) => result.is_some_and(|r| r.config == **config),
            Experiment::Federated(config) => fed.is_some_and(|r| r.config == **config),
            Experiment::None => true,
        }
    }

    /// Whether the step's answer is complete with these results: its run's result (for a plane
    /// step, the plane too: `plane`), or nothing to run.
    pub fn answered(&self, result: Option<&ConnectResult>, fed: Option<&FedResult>, plane: bool) -> bool {
        self.is_answered_by(result, fed) && (!matches!(self.run, StepRun::ConnectThenPlane(_)) || plane)
    }

    /// The step's claims checked on `result`.
    pub fn check_claims(&self, result: &ConnectResult) -> Vec<ClaimCheck> {
        check_all(&self.claims, result)
    }
}

/// `base` with the JSON `patch` merged in, read back through the versioned reader.
fn patched<T: Versioned + Serialize>(base: T, patch: &str) -> Result<T, TourError> {
    let patch: serde_json::Value =
        serde_json::from_str(patch).map_err(|e| TourError::PatchNotJson { reason: e.to_string() })?;
    let mut value =
        serde_json::to_value(base).map_err(|e| TourError::Config(WsaError::serialize("the default config", e)))?;
    merge_patch(&mut value, &patch);
    T::from_json(&value.to_string()).map_err(TourError::PatchNotConfig)
}

impl Claim {
    /// Refuses a claim that cannot be checked whatever the run: SameB on two methods trained
    /// differently (their Bs are different models).
    fn check_sense(&self) -> Result<(), TourError> {
        match self {
            Claim::SameB { aligned, original } if aligned.training != original.training => {
                Err(TourError::NotTheSameB { aligned: *aligned, original: *original })
            }
            _ => Ok(()),
        }
    }

    fn methods(&self) -> Vec<Method> {
        match self {
            Claim::BarrierAtLeast { method, .. }
            | Claim::BarrierAtMost { method, .. }
            | Claim::Accurate { method, .. }
            | Claim::HeavyTails { method, .. }
            | Claim::WiderInB { method, .. }
            | Claim::ScopesApart { method, .. }
            | Claim::PeakInTheMiddle(method)
            | Claim::CurveBelowLine(method) => vec![*method],
            Claim::LowerBarrier { method, than } | Claim::CloserScopes { method, than } => vec![*method, *than],
            Claim::SameB { aligned, original } => vec![*aligned, *original],
        }
    }

    /// Checks the claim on every seed of `result`.
    pub fn check(&self, result: &ConnectResult) -> ClaimCheck {
        let runs = result.seed_runs();
        let index = |m: &Method| result.methods.iter().position(|r| r.method == *m);
        let values = |m: &Method, f: &dyn Fn(&SeedMethod) -> f64| -> Vec<f64> {
            index(m).map_or(Vec::new(), |k| runs.iter().filter_map(|r| r.methods.get(k)).map(f).collect())
        };
        let barrier = |m: &Method| values(m, &|s| s.barriers.loss);
        let distance = |m: &Method| values(m, &|s| s.scope_distance);
        let spread = |v: &[f64], digits| summarize(v).map_or("–".to_string(), |s| mean_std(&s, digits));
        let count = |held: Vec<bool>| (held.iter().filter(|h| **h).count(), held.len());
        // The first seed's layer `layer` of `method` (A's and B's reports), for the histogram
        // claims: the scopes view shows that seed.
        let layer_of = |m: &Method, layer: usize| {
            result
                .methods
                .iter()
                .find(|r| r.method == *m)
                .and_then(|r| r.layers.get(layer))
                .map(|l| (&l.path, &l.a, &l.b))
        };
        let mut unit = "seeds".to_string();
        let (statement, (held, cases), numbers) = match self {
            Claim::Accurate { method, at_least } => {
                let (a, b) = (values(method, &|s| s.endpoint_a.accuracy), values(method, &|s| s.endpoint_b.accuracy));
                (
                    format!("both of {method}'s models get at least {:.0}% of the test set right", at_least * 100.0),
                    count(a.iter().zip(&b).map(|(a, b)| a.min(*b) >= *at_least).collect()),
                    format!("test accuracy A {}, B {}", spread(&a, 3), spread(&b, 3)),
                )
            }
            Claim::HeavyTails { method, layer } => {
                unit = format!("histograms of seed {}", result.config.seed);
                match layer_of(method, *layer) {
                    None => missing_layer(method, *layer),
                    Some((path, a, b)) => {
                        let (ka, kb) = (a.fit.excess_kurtosis, b.fit.excess_kurtosis);
                        (
                            format!("{path}'s weights in A and B have heavier tails than a Gaussian"),
                            count(vec![ka > 0.0, kb > 0.0]),
                            format!("excess kurtosis A {ka:+.2}, B {kb:+.2} (a Gaussian's is 0)"),
                        )
                    }
                }
            }
            Claim::WiderInB { method, layer } => {
                unit = format!("pairs of histograms of seed {}", result.config.seed);
                match layer_of(method, *layer) {
                    None => missing_layer(method, *layer),
                    Some((path, a, b)) => {
                        let (sa, sb) = (a.scope.std, b.scope.std);
                        (
                            format!("{path}'s weights spread wider in B than in A"),
                            count(vec![sb > sa]),
                            format!("std A {sa:.3}, B {sb:.3}"),
                        )
                    }
                }
            }
            Claim::BarrierAtLeast { method, at_least } => {
                let b = barrier(method);
                (
                    format!("{method}'s loss barrier is at least {at_least}"),
                    count(b.iter().map(|v| v >= at_least).collect()),
                    format!("{method}: {}", spread(&b, 3)),
                )
            }
            Claim::BarrierAtMost { method, at_most } => {
                let b = barrier(method);
                (
                    format!("{method}'s loss barrier is at most {at_most}"),
                    count(b.iter().map(|v| v <= at_most).collect()),
                    format!("{method}: {}", spread(&b, 3)),
                )
            }
            Claim::SameB { aligned, original } => {
                let accuracy = |m: &Method| values(m, &|s| s.endpoint_b.accuracy);
                let loss = |m: &Method| values(m, &|s| s.endpoint_b.loss);
                let (acc, acc_original) = (accuracy(aligned), accuracy(original));
                let (loss, loss_original) = (loss(aligned), loss(original));
                // One test image's worth of accuracy (and a rounding's worth of loss): summing the
                // reordered inputs of the next layer in another order may tip a near-tie.
                let one_image = 1.0 / result.test_samples.max(1) as f64;
                let largest = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
                (
                    format!(
                        "B with its units reordered by {aligned} gets B's own test accuracy and loss ({original}'s B)"
                    ),
                    count(
                        acc.iter()
                            .zip(&acc_original)
                            .zip(loss.iter().zip(&loss_original))
                            .map(|((a, ao), (l, lo))| {
                                (a - ao).abs() <= one_image + 1e-12 && (l - lo).abs() <= 1e-4 * lo.abs().max(1.0)
                            })
                            .collect(),
                    ),
                    format!(
                        "B's accuracy {} reordered, {} as trained; the largest change over the seeds: accuracy {:.4}, loss {:.1e}",
                        spread(&acc, 4),
                        spread(&acc_original, 4),
                        largest(&acc, &acc_original),
                        largest(&loss, &loss_original)
                    ),
                )
            }
            Claim::PeakInTheMiddle(method) => {
                let peaks: Vec<f64> = index(method).map_or(Vec::new(), |k| {
                    runs.iter().filter_map(|r| r.methods.get(k)).map(|s| peak_alpha(&s.path)).collect()
                });
                (
                    format!("the test loss along {method}'s line peaks between α = 0.25 and 0.75"),
                    count(peaks.iter().map(|a| (0.25..=0.75).contains(a)).collect()),
                    format!("peak at α = {}", peaks.iter().map(|a| format!("{a:.2}")).collect::<Vec<_>>().join(", ")),
                )
            }
            Claim::LowerBarrier { method, than } => {
                let (b, t) = (barrier(method), barrier(than));
                (
                    format!("{method}'s loss barrier is lower than {than}'s"),
                    count(b.iter().zip(&t).map(|(b, t)| b < t).collect()),
                    format!("{method}: {}, {than}: {}", spread(&b, 3), spread(&t, 3)),
                )
            }
            Claim::CloserScopes { method, than } => {
                let (d, t) = (distance(method), distance(than));
                (
                    format!("{method}'s A and B end with closer scopes than {than}'s"),
                    count(d.iter().zip(&t).map(|(d, t)| d < t).collect()),
                    format!(
                        "scope distance (mean symmetric KL) {method}: {}, {than}: {}",
                        spread(&d, 4),
                        spread(&t, 4)
                    ),
                )
            }
            Claim::ScopesApart { method, at_least } => {
                let d = distance(method);
                (
                    format!("{method}'s A and B end with scopes apart (mean symmetric KL at least {at_least})"),
                    count(d.iter().map(|v| v >= at_least).collect()),
                    format!("scope distance {method}: {}", spread(&d, 4)),
                )
            }
            Claim::CurveBelowLine(method) => {
                let pairs: Vec<(f64, f64)> = index(method).map_or(Vec::new(), |k| {
                    runs.iter()
                        .filter_map(|r| r.methods.get(k))
                        .filter_map(|s| Some((s.barriers.loss, s.curve.as_ref()?.barriers.loss)))
                        .collect()
                });
                let (line, curve): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
                (
                    format!("the trained curve's loss barrier is below {method}'s straight line's"),
                    count(pairs.iter().map(|(l, c)| c < l).collect()),
                    format!("line {}, curve {}", spread(&line, 3), spread(&curve, 3)),
                )
            }
        };
        ClaimCheck { statement, held, cases, unit, numbers }
    }
}

/// What a claim about a layer the run does not have shows: held on none of no cases.
fn missing_layer(method: &Method, layer: usize) -> (String, (usize, usize), String) {
    (format!("{method} has no layer {layer}"), (0, 0), String::new())
}

/// The α where the test loss along a path is highest.
fn peak_alpha(path: &[wsa_core::merge::PathPoint]) -> f64 {
    path.iter().max_by(|a, b| a.loss.total_cmp(&b.loss)).map_or(f64::NAN, |p| p.alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_tour_reads_and_every_step_is_usable() {
        let tour = Tour::parse(TOUR_FILE).unwrap_or_else(|e| panic!("{e}"));
        assert!((8..=10).contains(&tour.steps.len()), "{} steps", tour.steps.len());
        for step in &tour.steps {
            assert!(!step.title.is_empty() && !step.text.is_empty(), "{step:?}");
        }
        // A step that runs its predecessor's experiment would open answered: its question's
        // answer already on screen.
        for pair in tour.steps.windows(2) {
            let same = match (&pair[0].experiment, &pair[1].experiment) {
                (Experiment::Connect(a), Experiment::Connect(b)) => a == b,
                (Experiment::Federated(a), Experiment::Federated(b)) => a == b,
                _ => false,
            };
            assert!(!same, "`{}` runs the experiment of the step before it", pair[1].title);
        }
        let last = tour.steps.last().expect("steps");
        assert!(last.exercises.len() >= 2, "your turn: two exercises");
        for exercise in &last.exercises {
            assert!(!exercise.answer.is_empty() && !exercise.claims.is_empty(), "{exercise:?}");
        }
    }

    #[test]
    fn bad_steps_are_refused_with_the_reason() {
        let step = |text: &str, run: &str, highlight: &str| {
            format!(
                "(steps: [(title: \"t\", text: \"{text}\", predict: \"p\", look: \"l\", run: {run}, view: Path, highlight: {highlight})])"
            )
        };
        let long = "word ".repeat(MAX_WORDS + 1);
        let refused = |text: &str, why: &str| Tour::parse(text).expect_err(why).to_string();
        // Glossary terms are found as words, plurals included, and one no step uses is refused.
        let with_glossary = |text: &str, term: &str| {
            step(text, "Free", "Setup").replacen(
                ")])",
                &format!(")], glossary: [(term: \"{term}\", meaning: \"m\")])"),
                1,
            )
        };
        let tour = Tour::parse(&with_glossary("two barriers here", "barrier")).expect("a used plural");
        assert_eq!(tour.terms_of(&tour.steps[0]).len(), 1);
        let err = refused(&with_glossary("no barriers", "arrier"), "a term inside a word is not its use");
        assert!(err.contains("`arrier` appears in no step"), "{err}");
        let err = refused(&step(&long, "Free", "Setup"), "too long");
        assert!(err.contains("words"), "{err}");
        let err = refused(&step("x", r#"Connect("{not json")"#, "Setup"), "bad JSON");
        assert!(err.contains("not JSON"), "{err}");
        let err = refused(&step("x", r#"Connect("{\"seeds\": 0}")"#, "Setup"), "bad config");
        assert!(err.contains("seeds"), "{err}");
        let err = refused(
            &step("x", r#"Connect("{\"methods\": [\"plain\"]}")"#, "Method(\"wm\")"),
            "a method the config does not run",
        );
        assert!(err.contains("`wm`"), "{err}");
        let exercise = step("x", "Free", "Setup").replacen(
            "highlight: Setup)",
            r#"highlight: Setup, exercises: [(task: "t", run: "{\"methods\": [\"plain\"]}", answer: "a", claims: [LowerBarrier(method: "wm", than: "plain")])])"#,
            1,
        );
        let err = refused(&exercise, "an exercise's claim about a method it does not run");
        assert!(err.contains("exercise 1") && err.contains("`wm`"), "{err}");
        let err = refused(
            &step("x", r#"Connect("{\"methods\": [\"plain\", \"wm+wsa\"]}")"#, "Setup").replacen(
                "highlight: Setup)",
                r#"highlight: Setup, claims: [SameB(aligned: "wm+wsa", original: "plain")])"#,
                1,
            ),
            "B unchanged across two trainings",
        );
        assert!(err.contains("train different models"), "{err}");
        assert!(refused("(steps: [])", "empty").contains("no steps"));
        assert!(refused("not ron", "unreadable").contains("does not read"));
    }

    /// Claims are checked, not echoed: on a real (tiny) run over two seeds, claims that cannot
    /// hold are reported as not held, with the numbers, and one that must hold, held.
    #[test]
    fn claims_that_do_not_hold_are_reported_as_such() {
        let mut config =
            ConnectConfig { seeds: 2, methods: vec![Method::PLAIN, Method::WSA], ..ConnectConfig::default() };
        config.train.epochs = 1;
        config.data.max_train = Some(200);
        config.path.points = 5;
        let result = wsa_core::wait(wsa_core::experiment::connect::run(
            &config,
            &wsa_core::device::cpu(),
            &mut wsa_core::cancel::Silent,
        ))
        .expect("a run")
        .result;
        let check = |claim: Claim| claim.check(&result);
        let impossible = check(Claim::BarrierAtLeast { method: Method::PLAIN, at_least: 1e9 });
        assert_eq!((impossible.held, impossible.cases, impossible.unit.as_str()), (0, 2, "seeds"));
        assert!(!impossible.holds_everywhere() && impossible.line().contains("held on 0 of 2 seeds"), "{impossible:?}");
        let strict = check(Claim::LowerBarrier { method: Method::WSA, than: Method::WSA });
        assert_eq!(strict.held, 0, "a barrier is not lower than itself");
        let trivial = check(Claim::BarrierAtLeast { method: Method::PLAIN, at_least: -1e9 });
        assert!(trivial.holds_everywhere(), "{trivial:?}");
        let missing = check(Claim::HeavyTails { method: Method::PLAIN, layer: 99 });
        assert!(!missing.holds_everywhere() && missing.statement.contains("no layer 99"), "{missing:?}");
        let one_seed = ClaimCheck { cases: 1, held: 1, ..trivial };
        assert!(one_seed.line().contains("one seed is an anecdote"), "{}", one_seed.line());
    }
}
