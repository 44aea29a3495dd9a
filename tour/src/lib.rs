//! The guided tour for teaching: steps of one idea each, read from one data file
//! (`tour/tour.ron`, compiled in, or a translation of it read at run time) so that a teacher edits
//! or translates the tour without touching UI code: the file holds every word the tour shows
//! (`words`). A step loads an experiment (a patch on the default experiment, in the JSON of config
//! files and links), opens a view with the thing to look at marked, asks for a prediction before
//! the run and, after it, says what to look at and checks its claim on the run's own numbers,
//! seed by seed — so a step's text never says more than its run shows. Pure Rust: the views draw
//! it, tests walk it.

pub mod words;
pub mod worksheet;

pub use words::{ClaimWords, PanelWords, Words, WorksheetWords, fill, numbered};

use serde::{Deserialize, Serialize};
use std::sync::Arc;
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
pub fn keys(words: &PanelWords) -> [(&'static str, &str); 5] {
    [
        ("→", &words.key_next),
        ("←", &words.key_back),
        ("R", &words.key_run),
        ("Esc", &words.key_leave),
        ("?", &words.key_help),
    ]
}

/// The middle of a path, where `PeakInTheMiddle` wants the loss to peak (α from A to B).
const MIDDLE: std::ops::RangeInclusive<f64> = 0.25..=0.75;

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

    /// The step runs the experiment of the step before it, so it would open with its answer on
    /// screen.
    #[error("it runs the same experiment as the step before it, so its question would open answered; change its run")]
    SameRunAsBefore,

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

    #[error("the tour file's words do not fit the tour: {0}")]
    Words(#[from] words::WordsError),

    #[error("the tour file's language `{0}` is not a language tag; write one like \"en\" or \"pt-BR\"")]
    Language(String),

    /// A tour in another language than English without its own words: its buttons and claims
    /// would show in English.
    #[error("the tour file is in `{0}` but has no `words`; copy them from tour/tour.ron and translate them")]
    NoWords(String),
}

/// The tour as its file holds it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TourFile {
    /// The language of its texts, as a tag ("en", "de", "pt-BR"): the worksheet's `lang`.
    #[serde(default = "english")]
    language: String,
    steps: Vec<Step>,
    #[serde(default)]
    glossary: Vec<Term>,
    /// Left out in a tour of one's own in English: then the shipped tour's. (Written as is, not
    /// as `Some(...)`.)
    #[serde(default, deserialize_with = "present")]
    words: Option<Words>,
}

fn english() -> String {
    "en".into()
}

/// A field that is there, as `Some`: RON would otherwise want `Some(...)` written around it.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

#[derive(Clone, Debug)]
pub struct Tour {
    /// The language of its texts ("en", "de").
    pub language: String,
    pub steps: Vec<Step>,
    /// The words the steps use, explained; a step lists those its text uses.
    pub glossary: Vec<Term>,
    /// Every other word the tour shows: its panel, its claims' lines, the worksheet.
    pub words: Words,
}

/// A glossary entry: a term as the steps write it, and what it means.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Term {
    pub term: String,
    pub meaning: String,
    /// Other forms of the term that count as its use (inflections a plural "s" does not make:
    /// "Verlustbarrieren" for "Verlustbarriere").
    #[serde(default)]
    pub forms: Vec<String>,
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
    /// The tour's words for its claims' lines.
    #[serde(skip)]
    claim_words: Arc<ClaimWords>,
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
    /// The tour's words for its claims' lines.
    #[serde(skip)]
    claim_words: Arc<ClaimWords>,
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
        check_all(&self.claims, result, &self.claim_words)
    }

    fn prepare(&mut self, claim_words: &Arc<ClaimWords>) -> Result<(), TourError> {
        let config = connect_experiment(&self.run)?;
        runs_every_method(&config, self.claims.iter().flat_map(Claim::methods))?;
        sensible(&self.claims)?;
        self.config = Some(Box::new(config));
        self.claim_words = Arc::clone(claim_words);
        Ok(())
    }
}

/// The connect experiment a patch (JSON) on the default experiment describes, validated.
fn connect_experiment(patch: &str) -> Result<ConnectConfig, TourError> {
    let config: ConnectConfig = patched(ConnectConfig::default(), patch)?;
    config.validate().map_err(TourError::Config)?;
    Ok(config)
}

/// `claims` checked on `result`, in their order, reported in `words`.
fn check_all(claims: &[Claim], result: &ConnectResult, words: &ClaimWords) -> Vec<ClaimCheck> {
    claims.iter().map(|claim| claim.check(result, words)).collect()
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
    /// The line the tour shows (`ClaimCheck::line`), in the tour's words.
    line: String,
}

impl ClaimCheck {
    /// `statement` checked on `cases` cases (seeds when `per_seed`), `held` of them held;
    /// reported in `words`. One seed is an anecdote, and the line says so.
    fn new(
        statement: String,
        (held, cases): (usize, usize),
        unit: String,
        per_seed: bool,
        numbers: String,
        words: &ClaimWords,
    ) -> Self {
        let anecdote = if per_seed && cases == 1 { words.anecdote.as_str() } else { "" };
        let line = fill(
            &words.line,
            &[
                ("statement", &statement),
                ("held", &held),
                ("cases", &cases),
                ("unit", &unit),
                ("anecdote", &anecdote),
                ("numbers", &numbers),
            ],
        );
        ClaimCheck { statement, held, cases, unit, numbers, line }
    }

    pub fn holds_everywhere(&self) -> bool {
        self.cases > 0 && self.held == self.cases
    }

    /// One line for the page: the claim, where it held, the numbers.
    pub fn line(&self) -> &str {
        &self.line
    }
}

impl Tour {
    /// The shipped tour; a broken file is a build defect, which the tests catch.
    pub fn shipped() -> Tour {
        Tour::parse(TOUR_FILE).unwrap_or_else(|e| Tour::broken(&e))
    }

    /// A tour of one step that says why a tour could not be read, so that the app still opens.
    pub fn broken(error: &TourError) -> Tour {
        Tour {
            language: english(),
            steps: vec![Step::broken(error)],
            glossary: Vec::new(),
            words: shipped_words().unwrap_or_default(),
        }
    }

    /// Reads a tour file (the shipped one, a translation, a teacher's own), checking every step
    /// and every word; a tour without `words` takes the shipped tour's.
    pub fn parse(text: &str) -> Result<Tour, TourError> {
        let file: TourFile = ron::from_str(text).map_err(|e| TourError::Unreadable { reason: e.to_string() })?;
        let TourFile { language, mut steps, glossary, words } = file;
        if !is_language_tag(&language) {
            return Err(TourError::Language(language));
        }
        if steps.is_empty() {
            return Err(TourError::NoSteps);
        }
        let words = match words {
            // The shipped file's words are the English others are checked against.
            Some(words) if text == TOUR_FILE => words,
            Some(words) => {
                words.check_against(&shipped_words()?)?;
                words
            }
            None if language == "en" => shipped_words()?,
            None => return Err(TourError::NoWords(language)),
        };
        let claim_words = Arc::new(words.claims.clone());
        for (i, step) in steps.iter_mut().enumerate() {
            step.prepare(&claim_words).map_err(|e| TourError::Step {
                number: i + 1,
                title: step.title.clone(),
                source: Box::new(e),
            })?;
        }
        // A step that runs its predecessor's experiment would open answered: its question's
        // answer already on screen.
        if let Some(k) = (1..steps.len()).find(|&k| steps[k].runs_the_same_as(&steps[k - 1])) {
            return Err(TourError::Step {
                number: k + 1,
                title: steps[k].title.clone(),
                source: Box::new(TourError::SameRunAsBefore),
            });
        }
        if let Some(unused) = glossary.iter().find(|t| steps.iter().all(|s| !s.uses(t))) {
            return Err(TourError::UnusedTerm(unused.term.clone()));
        }
        Ok(Tour { language, steps, glossary, words })
    }

    /// Reads a tour file from disk (`--tour-file`), with the file named in the error.
    pub fn read_file(path: &std::path::Path) -> Result<Tour, TourFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TourFileError { path: path.display().to_string(), reason: e.to_string() })?;
        Tour::parse(&text).map_err(|e| TourFileError { path: path.display().to_string(), reason: e.to_string() })
    }

    /// The glossary's terms that `step`'s text, question, what to look at or exercises' tasks
    /// use, in the glossary's order.
    pub fn terms_of(&self, step: &Step) -> Vec<&Term> {
        self.glossary.iter().filter(|t| step.uses(t)).collect()
    }
}

/// A tour file that could not be used, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the tour file {path} cannot be used: {reason}; fix the file, or leave out --tour-file for the shipped tour")]
pub struct TourFileError {
    pub path: String,
    pub reason: String,
}

/// The shipped tour's words: the English every translation's are checked against.
fn shipped_words() -> Result<Words, TourError> {
    let file: TourFile = ron::from_str(TOUR_FILE)
        .map_err(|e| TourError::Unreadable { reason: format!("the shipped tour's words: {e}") })?;
    file.words.ok_or_else(|| TourError::Unreadable { reason: "the shipped tour has no words".into() })
}

/// Whether `tag` looks like a language tag: letters, digits and hyphens, starting with two or
/// three letters ("en", "de", "pt-BR", "zh-Hant").
pub fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or_default();
    (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

impl Step {
    /// Whether the step's text, question, what it asks to look at or its exercises' tasks use `term`
    /// (as a word or words, in any case).
    fn uses(&self, term: &Term) -> bool {
        let forms: Vec<String> = std::iter::once(&term.term).chain(&term.forms).map(|f| f.to_lowercase()).collect();
        // An exercise's answer is hidden until asked for: its terms are not listed beside it.
        let exercises = self.exercises.iter().map(|e| &e.task);
        [&self.text, &self.predict, &self.look].into_iter().chain(exercises).any(|text| {
            let text = text.to_lowercase();
            forms.iter().any(|wanted| {
                text.match_indices(wanted.as_str()).any(|(at, _)| {
                    let before = text[..at].chars().next_back();
                    let after = text[at + wanted.len()..].chars().next();
                    // A plural counts ("barriers" uses "barrier").
                    !before.is_some_and(char::is_alphanumeric)
                        && !after.is_some_and(|c| c.is_alphanumeric() && c != 's')
                })
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
            claim_words: Arc::default(),
        }
    }

    /// Reads the step's experiment and checks that the step is usable: a text of at most
    /// `MAX_WORDS`, a config that reads and validates, marks and claims about methods it runs.
    fn prepare(&mut self, claim_words: &Arc<ClaimWords>) -> Result<(), TourError> {
        self.claim_words = Arc::clone(claim_words);
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
            exercise.prepare(claim_words).map_err(|e| TourError::Exercise { number: k + 1, source: Box::new(e) })?;
        }
        Ok(())
    }

    /// Whether the step runs `other`'s experiment (both run one).
    fn runs_the_same_as(&self, other: &Step) -> bool {
        match (&self.experiment, &other.experiment) {
            (Experiment::Connect(a), Experiment::Connect(b)) => a == b,
            (Experiment::Federated(a), Experiment::Federated(b)) => a == b,
            _ => false,
        }
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
        check_all(&self.claims, result, &self.claim_words)
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

    /// Checks the claim on every seed of `result`, reported in `words`.
    pub fn check(&self, result: &ConnectResult, words: &ClaimWords) -> ClaimCheck {
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
        let seed = result.config.seed;
        // The claim's statement and numbers, in its words, with their values filled in.
        let say = |text: &crate::words::ClaimText, values: &[(&str, &dyn std::fmt::Display)]| {
            (fill(&text.statement, values), fill(&text.numbers, values))
        };
        let missing_layer = |method: &Method, layer: &usize| {
            (fill(&words.missing_layer, &[("method", method), ("layer", layer)]), String::new())
        };
        let seeds = || words.seeds.clone();
        let (texts, held, unit, per_seed) = match self {
            Claim::Accurate { method, at_least } => {
                let (a, b) = (values(method, &|s| s.endpoint_a.accuracy), values(method, &|s| s.endpoint_b.accuracy));
                let percent = format!("{:.0}", at_least * 100.0);
                (
                    say(
                        &words.accurate,
                        &[("method", method), ("percent", &percent), ("a", &spread(&a, 3)), ("b", &spread(&b, 3))],
                    ),
                    count(a.iter().zip(&b).map(|(a, b)| a.min(*b) >= *at_least).collect()),
                    seeds(),
                    true,
                )
            }
            Claim::HeavyTails { method, layer } => {
                let unit = fill(&words.histograms, &[("seed", &seed)]);
                match layer_of(method, *layer) {
                    None => (missing_layer(method, layer), (0, 0), unit, false),
                    Some((path, a, b)) => {
                        let (ka, kb) = (a.fit.excess_kurtosis, b.fit.excess_kurtosis);
                        let (ka_text, kb_text) = (format!("{ka:+.2}"), format!("{kb:+.2}"));
                        (
                            say(&words.heavy_tails, &[("layer", path), ("a", &ka_text), ("b", &kb_text)]),
                            count(vec![ka > 0.0, kb > 0.0]),
                            unit,
                            false,
                        )
                    }
                }
            }
            Claim::WiderInB { method, layer } => {
                let unit = fill(&words.histogram_pairs, &[("seed", &seed)]);
                match layer_of(method, *layer) {
                    None => (missing_layer(method, layer), (0, 0), unit, false),
                    Some((path, a, b)) => {
                        let (sa, sb) = (a.scope.std, b.scope.std);
                        let (sa_text, sb_text) = (format!("{sa:.3}"), format!("{sb:.3}"));
                        (
                            say(&words.wider_in_b, &[("layer", path), ("a", &sa_text), ("b", &sb_text)]),
                            count(vec![sb > sa]),
                            unit,
                            false,
                        )
                    }
                }
            }
            Claim::BarrierAtLeast { method, at_least } => {
                let b = barrier(method);
                (
                    say(
                        &words.barrier_at_least,
                        &[("method", method), ("value", at_least), ("barriers", &spread(&b, 3))],
                    ),
                    count(b.iter().map(|v| v >= at_least).collect()),
                    seeds(),
                    true,
                )
            }
            Claim::BarrierAtMost { method, at_most } => {
                let b = barrier(method);
                (
                    say(
                        &words.barrier_at_most,
                        &[("method", method), ("value", at_most), ("barriers", &spread(&b, 3))],
                    ),
                    count(b.iter().map(|v| v <= at_most).collect()),
                    seeds(),
                    true,
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
                let accuracy_change = format!("{:.4}", largest(&acc, &acc_original));
                let loss_change = format!("{:.1e}", largest(&loss, &loss_original));
                (
                    say(
                        &words.same_b,
                        &[
                            ("aligned", aligned),
                            ("original", original),
                            ("reordered", &spread(&acc, 4)),
                            ("trained", &spread(&acc_original, 4)),
                            ("accuracy_change", &accuracy_change),
                            ("loss_change", &loss_change),
                        ],
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
                    seeds(),
                    true,
                )
            }
            Claim::PeakInTheMiddle(method) => {
                let peaks: Vec<f64> = index(method).map_or(Vec::new(), |k| {
                    runs.iter().filter_map(|r| r.methods.get(k)).map(|s| peak_alpha(&s.path)).collect()
                });
                let peaks_text = peaks.iter().map(|a| format!("{a:.2}")).collect::<Vec<_>>().join(", ");
                let (from, to) = (MIDDLE.start(), MIDDLE.end());
                (
                    say(
                        &words.peak_in_the_middle,
                        &[("method", method), ("from", from), ("to", to), ("peaks", &peaks_text)],
                    ),
                    count(peaks.iter().map(|a| MIDDLE.contains(a)).collect()),
                    seeds(),
                    true,
                )
            }
            Claim::LowerBarrier { method, than } => {
                let (b, t) = (barrier(method), barrier(than));
                (
                    say(
                        &words.lower_barrier,
                        &[
                            ("method", method),
                            ("than", than),
                            ("barriers", &spread(&b, 3)),
                            ("than_barriers", &spread(&t, 3)),
                        ],
                    ),
                    count(b.iter().zip(&t).map(|(b, t)| b < t).collect()),
                    seeds(),
                    true,
                )
            }
            Claim::CloserScopes { method, than } => {
                let (d, t) = (distance(method), distance(than));
                (
                    say(
                        &words.closer_scopes,
                        &[
                            ("method", method),
                            ("than", than),
                            ("distances", &spread(&d, 4)),
                            ("than_distances", &spread(&t, 4)),
                        ],
                    ),
                    count(d.iter().zip(&t).map(|(d, t)| d < t).collect()),
                    seeds(),
                    true,
                )
            }
            Claim::ScopesApart { method, at_least } => {
                let d = distance(method);
                (
                    say(&words.scopes_apart, &[("method", method), ("value", at_least), ("distances", &spread(&d, 4))]),
                    count(d.iter().map(|v| v >= at_least).collect()),
                    seeds(),
                    true,
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
                    say(
                        &words.curve_below_line,
                        &[("method", method), ("line", &spread(&line, 3)), ("curve", &spread(&curve, 3))],
                    ),
                    count(pairs.iter().map(|(l, c)| c < l).collect()),
                    seeds(),
                    true,
                )
            }
        };
        let (statement, numbers) = texts;
        ClaimCheck::new(statement, held, unit, per_seed, numbers, words)
    }
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
        let twice = step("x", r#"Connect("{\"seeds\": 2}")"#, "Setup");
        let twice = twice.replacen("])", &format!(", {}])", &twice[9..twice.len() - 2]), 1);
        let err = refused(&twice, "the same run twice in a row");
        assert!(err.contains("step 2") && err.contains("same experiment as the step before"), "{err}");
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
        let words = Tour::shipped().words.claims;
        let check = |claim: Claim| claim.check(&result, &words);
        let impossible = check(Claim::BarrierAtLeast { method: Method::PLAIN, at_least: 1e9 });
        assert_eq!((impossible.held, impossible.cases, impossible.unit.as_str()), (0, 2, "seeds"));
        assert!(!impossible.holds_everywhere() && impossible.line().contains("held on 0 of 2 seeds"), "{impossible:?}");
        let strict = check(Claim::LowerBarrier { method: Method::WSA, than: Method::WSA });
        assert_eq!(strict.held, 0, "a barrier is not lower than itself");
        let trivial = check(Claim::BarrierAtLeast { method: Method::PLAIN, at_least: -1e9 });
        assert!(trivial.holds_everywhere(), "{trivial:?}");
        let missing = check(Claim::HeavyTails { method: Method::PLAIN, layer: 99 });
        assert!(!missing.holds_everywhere() && missing.statement.contains("no layer 99"), "{missing:?}");
        let one_seed =
            ClaimCheck::new(trivial.statement.clone(), (1, 1), words.seeds.clone(), true, String::new(), &words);
        assert!(one_seed.line().contains("one seed is an anecdote"), "{}", one_seed.line());
        // Every value of every line is filled in: no name in braces is left.
        for line in [&impossible, &strict, &trivial, &missing, &one_seed].map(ClaimCheck::line) {
            assert!(crate::words::names_in(line).is_empty(), "{line}");
        }
    }

    /// A translation is a tour file of its own: read, its words checked against the English.
    #[test]
    fn a_translated_tour_is_read_from_its_own_file_and_checked() {
        let english = Tour::parse(TOUR_FILE).expect("the shipped tour");
        assert_eq!(english.language, "en");
        // A translation: another language, every word changed, names in braces kept.
        let translated = TOUR_FILE.replacen("language: \"en\"", "language: \"xx\"", 1).replace("Next ▶", "Weiter ▶");
        let tour = Tour::parse(&translated).expect("a translation");
        assert_eq!((tour.language.as_str(), tour.words.panel.next.as_str()), ("xx", "Weiter ▶"));
        // Its words are checked against the English: a lost name is refused, naming the text.
        let lost = TOUR_FILE.replacen("\"Tour · step {step} of {total}\"", "\"Tour · step {step}\"", 1);
        let err = Tour::parse(&lost).expect_err("{total} lost").to_string();
        assert!(err.contains("panel.step_of") && err.contains("{total}"), "{err}");
        let unknown = TOUR_FILE.replacen("next: \"Next ▶\"", "nxt: \"Next ▶\"", 1);
        assert!(Tour::parse(&unknown).expect_err("an unknown word").to_string().contains("nxt"));
        // A tour in another language needs its own words; one in English may leave them out.
        let own = |language: &str| {
            format!(
                "(language: \"{language}\", steps: [(title: \"t\", text: \"zwei Barrieren\", predict: \"p\", look: \"l\", run: Free, view: Path, highlight: Setup)], glossary: [(term: \"Barriere\", meaning: \"m\", forms: [\"Barrieren\"])])"
            )
        };
        assert!(Tour::parse(&own("de")).expect_err("no words").to_string().contains("has no `words`"));
        let tour = Tour::parse(&own("en")).expect("English words by default");
        assert_eq!(tour.words, english.words);
        // A form of a term counts as its use.
        assert_eq!(tour.terms_of(&tour.steps[0]).len(), 1, "`Barrieren` uses `Barriere`");
        let bad_tag = TOUR_FILE.replacen("language: \"en\"", "language: \"english!\"", 1);
        assert!(Tour::parse(&bad_tag).expect_err("not a tag").to_string().contains("not a language tag"));
        for tag in ["en", "de", "pt-BR", "zh-Hant"] {
            assert!(is_language_tag(tag), "{tag}");
        }
        for tag in ["", "e", "english", "de_DE", "../x", "de-"] {
            assert!(!is_language_tag(tag), "{tag}");
        }
        // A file on disk: read, or refused with its path and the fix.
        let dir = std::env::temp_dir().join(format!("wsa-tour-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder");
        let path = dir.join("tour.xx.ron");
        std::fs::write(&path, &translated).expect("written");
        assert_eq!(Tour::read_file(&path).expect("read").words.panel.next, "Weiter ▶");
        std::fs::write(&path, "(steps: [").expect("written");
        let err = Tour::read_file(&path).expect_err("truncated").to_string();
        assert!(err.contains("tour.xx.ron") && err.contains("--tour-file"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Every shipped translation (tour/tour.<language>.ron) reads, says its language, and runs
    /// the English tour's experiments with the English tour's claims: only its words differ.
    #[test]
    fn the_shipped_translations_run_the_english_tours_experiments() {
        let english = Tour::parse(TOUR_FILE).expect("the shipped tour");
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut translations = 0;
        for entry in std::fs::read_dir(folder).expect("the tour's folder") {
            let path = entry.expect("an entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            let Some(language) = name.strip_prefix("tour.").and_then(|n| n.strip_suffix(".ron")) else { continue };
            let tour = Tour::read_file(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(tour.language, language, "{name} says its language");
            assert_eq!(tour.steps.len(), english.steps.len(), "{name}: the steps");
            for (k, (ours, theirs)) in tour.steps.iter().zip(&english.steps).enumerate() {
                let same = format!("{:?}{:?}{:?}{:?}", ours.run, ours.view, ours.highlight, ours.claims)
                    == format!("{:?}{:?}{:?}{:?}", theirs.run, theirs.view, theirs.highlight, theirs.claims);
                assert!(same, "{name}, step {}: not the English step's run, view, mark or claims", k + 1);
                let exercises =
                    |s: &Step| format!("{:?}", s.exercises.iter().map(|e| (&e.run, &e.claims)).collect::<Vec<_>>());
                assert_eq!(exercises(ours), exercises(theirs), "{name}, step {}: the exercises", k + 1);
            }
            assert_eq!(tour.glossary.len(), english.glossary.len(), "{name}: the glossary");
            translations += 1;
        }
        assert!(translations >= 1, "tour/tour.de.ron at least");
    }
}
