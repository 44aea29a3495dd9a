//! The tour guide: the tour's state machine. It knows which step is open, where the open step's
//! run is (running, its plane to follow, timed once its answer is on screen), and whether that
//! answer is on screen, with the step's claims checked on it. The answer is worked out when the
//! step or the results change (`Results::revision`), not every frame; the views and the page
//! read it from here. What a step does to the setup (its experiment, its view and selections)
//! the app applies when the guide opens it.

use crate::results::Results;
use crate::state::Settings;
use crate::tour::{ClaimCheck, Highlight, Step, Tour, numbered};
use std::collections::BTreeSet;
use web_time::Instant;
use wsa_core::experiment::method::Method;

/// The tour's progress as the page publishes it for its test (`platform::Publish::tour`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TourProgress {
    /// The open step, from 0.
    pub step: Option<usize>,
    pub answered: bool,
    /// How long the open step's run took to its answer.
    pub seconds: Option<f64>,
    /// How many of the step's claims held on every seed of its answer, and how many it makes.
    pub claims: Option<(usize, usize)>,
}

/// Where the open step's run is.
#[derive(Clone, Copy, Debug, Default)]
enum StepRunState {
    /// Not run since the step was opened, or the run ended without its answer.
    #[default]
    Idle,
    /// Run at `started`; for a plane step the plane follows the experiment (`plane_follows`
    /// until it is started).
    Running { started: Instant, plane_follows: bool },
    /// The run's answer came `seconds` after it started.
    Answered { seconds: f64 },
}

/// Whether the open step's answer is on screen, as of one step and results revision.
#[derive(Default)]
struct Answer {
    /// (step, `Results::revision`) it was worked out for.
    of: Option<(usize, u64)>,
    answered: bool,
    /// The step's claims checked on the connect result, once answered (and there is one).
    checks: Option<Vec<ClaimCheck>>,
}

pub struct TourGuide {
    /// The tour's steps (`tour.ron`).
    tour: Tour,
    open: Option<usize>,
    run: StepRunState,
    answer: Answer,
}

impl TourGuide {
    /// The tour's steps and glossary.
    pub fn tour(&self) -> &Tour {
        &self.tour
    }

    pub fn new(tour: Tour) -> Self {
        Self { tour, open: None, run: StepRunState::Idle, answer: Answer::default() }
    }

    /// The tour's steps.
    pub fn steps(&self) -> &[Step] {
        &self.tour.steps
    }

    /// The open step (from 0), while the tour is open.
    pub fn step(&self) -> Option<usize> {
        self.open
    }

    /// The open step and its number (from 0).
    pub fn open_step(&self) -> Option<(usize, &Step)> {
        let index = self.open?;
        Some((index, self.tour.steps.get(index)?))
    }

    /// Opens step `index` (clamped to the tour), with nothing run yet; returns it, for the app
    /// to load its experiment.
    pub fn open(&mut self, index: usize, results: &Results) -> &Step {
        let index = index.min(self.tour.steps.len().saturating_sub(1));
        self.open = Some(index);
        self.run = StepRunState::Idle;
        self.answer = Answer::default();
        self.refresh(results);
        &self.tour.steps[index]
    }

    /// Opens the step the settings kept from the last session, as it was left: its experiment
    /// is already in them. A step the tour no longer has leaves the tour closed.
    pub fn reopen(&mut self, step: Option<usize>, results: &Results) {
        self.open = step.filter(|&index| index < self.tour.steps.len());
        self.run = StepRunState::Idle;
        self.answer = Answer::default();
        self.refresh(results);
    }

    /// Leaves the tour; the app keeps the last step's experiment and results.
    pub fn close(&mut self) {
        self.open = None;
        self.run = StepRunState::Idle;
        self.answer = Answer::default();
    }

    /// The open step's run started now; `plane_follows` for a plane step.
    pub fn run_started(&mut self, plane_follows: bool) {
        self.run = StepRunState::Running { started: Instant::now(), plane_follows };
    }

    /// Whether the open step's plane is due now: its experiment is in (called while no job
    /// runs). Asked once: a plane that then fails to start ends the step's run.
    pub fn plane_is_due(&mut self, results: &Results) -> bool {
        let StepRunState::Running { plane_follows: true, started } = self.run else { return false };
        self.run = StepRunState::Running { started, plane_follows: false };
        self.open_step().is_some_and(|(_, step)| step.is_answered_by(results.connect(), None))
    }

    /// Brings the answer up to date with `results`, and, while no job runs (`busy` false),
    /// ends the open step's run: timed when its answer is on screen. Cheap when nothing changed.
    pub fn update(&mut self, results: &Results, busy: bool) {
        self.refresh(results);
        if let StepRunState::Running { started, plane_follows: false } = self.run
            && !busy
        {
            self.run = if self.answer.answered {
                StepRunState::Answered { seconds: started.elapsed().as_secs_f64() }
            } else {
                StepRunState::Idle
            };
        }
    }

    /// Works out whether the open step's answer is on screen, when the step or the results
    /// changed since the last time.
    fn refresh(&mut self, results: &Results) {
        let of = self.open.map(|step| (step, results.revision()));
        if of.is_some() && self.answer.of == of {
            return;
        }
        self.answer = match self.open_step() {
            Some((_, step)) => {
                let answered = crate::tour::answered(step, results);
                let checks = results.connect().filter(|_| answered).map(|result| step.check_claims(result));
                Answer { of, answered, checks }
            }
            None => Answer::default(),
        };
    }

    /// Whether the open step's answer is on screen: its run's result (for a plane step, the
    /// plane too), or nothing to run.
    pub fn answered(&self) -> bool {
        self.open.is_some() && self.answer.answered
    }

    /// The open step once its answer is on screen: the views then mark its element.
    pub fn answered_step(&self) -> Option<&Step> {
        self.open_step().map(|(_, step)| step).filter(|_| self.answered())
    }

    /// The open step's claims checked on its answer.
    pub fn checks(&self) -> &[ClaimCheck] {
        self.answer.checks.as_deref().unwrap_or_default()
    }

    /// How long the open step's run took to its answer, once it is on screen.
    pub fn run_seconds(&self) -> Option<f64> {
        match self.run {
            StepRunState::Answered { seconds } => Some(seconds),
            _ => None,
        }
    }

    /// The tour's progress for the page.
    pub fn progress(&self) -> TourProgress {
        let claims = self
            .answer
            .checks
            .as_ref()
            .filter(|_| self.answered())
            .map(|checks| (checks.iter().filter(|c| c.holds_everywhere()).count(), checks.len()));
        TourProgress { step: self.open, answered: self.answered(), seconds: self.run_seconds(), claims }
    }

    /// The open step's title, text and question, once it is answered what to look at and each
    /// claim checked, and its exercises with the answers shown (`answers_shown`: (step, exercise)):
    /// what the tour's panel shows, in its words, one paragraph a line (empty outside the tour).
    /// The page mirrors it into its DOM, where a screen reader reads it.
    pub fn words(&self, answers_shown: &BTreeSet<(usize, usize)>) -> String {
        let Some((index, step)) = self.open_step() else { return String::new() };
        let words = &self.tour.words.panel;
        let step_of = words.step_of(index + 1, self.tour.steps.len());
        let mut lines = vec![format!("{step_of}: {}", step.title), step.text.clone()];
        if !step.predict.is_empty() {
            lines.push(format!("{} {}", words.predict, step.predict));
        }
        if self.answered() {
            if !step.look.is_empty() {
                lines.push(format!("{} {}", words.look, step.look));
            }
            for check in self.checks() {
                let mark = if check.holds_everywhere() { &words.held } else { &words.not_held };
                lines.push(format!("{mark} {}", check.line()));
            }
        }
        for (k, exercise) in step.exercises.iter().enumerate() {
            lines.push(format!("{} {}", numbered(&words.exercise, k + 1), exercise.task));
            // An answer the student asked for is on screen: the mirror reads it too.
            if answers_shown.contains(&(index, k)) {
                lines.push(format!("{} {}", words.answer, exercise.answer));
            }
        }
        lines.join("\n")
    }

    /// Shows the open step in `settings`: its view, and its marked element selected (a method,
    /// a layer, a curve's seed), when its run is on screen or before it runs (the view it will
    /// answer in).
    pub fn show_step(&self, settings: &mut Settings, results: &Results) {
        let Some((_, step)) = self.open_step() else { return };
        settings.tab = step.view;
        // Indices into the methods on screen: the step's result's once it is in, else the
        // step's config's (the same list).
        let methods: Vec<Method> = match results.connect() {
            Some(result) if step.is_answered_by(Some(result), None) => {
                result.methods.iter().map(|m| m.method).collect()
            }
            _ => settings.config.methods.clone(),
        };
        let index_of = |m| methods.iter().position(|x| *x == m);
        match &step.highlight {
            Highlight::Method(m) => {
                settings.method = index_of(*m).unwrap_or(settings.method);
                settings.path_seed = None;
            }
            Highlight::Layer { method, layer } => {
                settings.method = index_of(*method).unwrap_or(settings.method);
                settings.layer = *layer;
                settings.plane_point = None;
            }
            // Curves are drawn per seed: the first seed's.
            Highlight::Curve(m) => {
                settings.method = index_of(*m).unwrap_or(settings.method);
                settings.path_seed = Some(0);
            }
            Highlight::FedRun(_) | Highlight::Setup => {}
        }
    }
}
