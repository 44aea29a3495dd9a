//! The application. It composes what it remembers, each part with its own state: the settings
//! (preferences and selections, stored by eframe), the results of the runs (`results`, saved
//! apart when a run finishes), the background job and its live run (`jobs`), the tour's state
//! machine (`guide`), the trained models and the model files handed over (`models`), and the
//! exports (`exports`); what scripts and tests hear goes through `platform::Publish`. `logic`
//! takes in what arrived (the job's messages, picked files, finished saves); `ui` only draws
//! from what is already here, so a frame never waits on work, and what a view asks for is
//! carried out after the frame.

mod exports;
mod given;
mod guide;
mod jobs;
mod models;

pub use given::{DataSplitting, DataSummary, GivenFiles, Reading};
pub use guide::TourGuide;
pub use jobs::{Jobs, LiveRun, RunTiming};
pub use models::Models;

use crate::AppResult;
use crate::derived::Derived;
use crate::job::{JobOutput, JobRequest};
use crate::platform::{self, PickedModel, Publish};
use crate::results::{Kind, PlaneResult, ResultStore, Results};
use crate::state::{self, Settings, Tab};
use crate::tour::{StepRun, Tour};
use crate::views::{self, Action, Export, TourAction, View, ViewState};
use exports::Exports;
use jobs::{JobUpdate, LIVE_FRAME_INTERVAL};
use models::LoadedPair;
use std::collections::VecDeque;
use std::path::Path;
use web_time::Instant;
use wsa_core::experiment::connect::{ConnectConfig, ConnectOutcome, ConnectResult, GIVEN_PAIR_METHODS, TrainedPair};
use wsa_core::experiment::plane::PlaneOutcome;

/// A message shown to the user until dismissed.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub text: String,
    pub is_error: bool,
}

/// Frame timing for the debug overlay: the time between frames and the time spent building one
/// (the app's whole frame as eframe runs it: `logic()`, `ui()` and the actions the views asked for).
#[derive(Default)]
pub struct FrameStats {
    pub intervals_ms: VecDeque<f32>,
    pub build_ms: VecDeque<f32>,
}

impl FrameStats {
    const WINDOW: usize = 240;

    fn push(queue: &mut VecDeque<f32>, value: f32) {
        if queue.len() == Self::WINDOW {
            queue.pop_front();
        }
        queue.push_back(value);
    }

    pub fn record(&mut self, interval_ms: f32, build_ms: f32) {
        Self::push(&mut self.intervals_ms, interval_ms);
        Self::push(&mut self.build_ms, build_ms);
    }

    pub fn summary(queue: &VecDeque<f32>) -> (f32, f32) {
        let n = queue.len().max(1) as f32;
        (queue.iter().sum::<f32>() / n, queue.iter().copied().fold(0.0, f32::max))
    }
}

pub struct WsaLabApp {
    pub settings: Settings,
    /// The results of the runs, read by the views; saved into `store` when a run finishes.
    pub results: Results,
    store: ResultStore,
    /// The background job and its live run.
    pub jobs: Jobs,
    /// The tour's steps and where the user is in them.
    pub tour: TourGuide,
    /// The trained models in memory (never stored) and the model files handed over.
    pub models: Models,
    /// The files of models the user brought (Your models), and what was read from them.
    pub given: GivenFiles,
    exports: Exports,
    /// Where the page publishes its state for scripts and tests (natively nowhere).
    publisher: Box<dyn Publish>,
    pub notices: Vec<Notice>,
    pub frames: FrameStats,
    /// What the views edit that is not a setting.
    pub view_state: ViewState,
    /// What the views show that is computed from the results and models (`derived`).
    pub derived: Derived,
    last_frame: Option<Instant>,
    /// When this frame's `logic()` began: a frame's build time counts from there.
    frame_started: Option<Instant>,
    /// Print frame statistics to stderr every few seconds (`--frame-log`).
    pub frame_log: bool,
    last_frame_log: Option<Instant>,
}

impl WsaLabApp {
    /// The app with the settings eframe stored and the results saved beside them. Without
    /// eframe's storage (as in the UI tests) nothing is read and results stay in memory.
    pub fn new(cc: &eframe::CreationContext<'_>) -> Self {
        let stored = cc.storage.and_then(|s| s.get_string(state::STORAGE_KEY));
        let loaded = state::load(stored);
        let store =
            if cc.storage.is_some() { ResultStore::new(platform::Shelf::of_app()) } else { ResultStore::in_memory() };
        let mut app = Self::with_settings(loaded.settings);
        app.jobs = Jobs::new(platform::RendererGpu::of_renderer(cc));
        // Error texts may quote anything (wgpu's shader messages draw boxes); egui's built-in
        // fonts lack those glyphs and would panic, so a wide-coverage font backs them up.
        let fallback = |family| egui::epaint::text::InsertFontFamily {
            family,
            priority: egui::epaint::text::FontPriority::Lowest,
        };
        cc.egui_ctx.add_font(egui::epaint::text::FontInsert::new(
            "DejaVuSans",
            egui::FontData::from_static(wsa_figures::FONT),
            vec![fallback(egui::FontFamily::Proportional), fallback(egui::FontFamily::Monospace)],
        ));
        if let Some(text) = loaded.notice {
            app.notify(text, true);
        }
        app.open_results(store, loaded.results);
        app
    }

    /// The app with `settings`, no results, and nowhere to save them.
    pub fn with_settings(settings: Settings) -> Self {
        let mut tour = TourGuide::new(Tour::shipped());
        let results = Results::default();
        tour.reopen(settings.tour, &results);
        Self {
            view_state: ViewState {
                widths_text: crate::state::widths_text(&settings.config.model),
                ..ViewState::default()
            },
            settings,
            results,
            store: ResultStore::in_memory(),
            jobs: Jobs::new(platform::RendererGpu::none()),
            tour,
            models: Models::default(),
            given: GivenFiles::default(),
            exports: Exports::default(),
            publisher: Box::new(platform::Publisher),
            notices: Vec::new(),
            frames: FrameStats::default(),
            derived: Derived::default(),
            last_frame: None,
            frame_started: None,
            frame_log: false,
            last_frame_log: None,
        }
    }

    /// Takes the results `store` holds and keeps saving there. Results an older build kept in
    /// its settings (`older`) fill what the store lacks and are saved into it, once: the
    /// settings are saved without them from then on.
    fn open_results(&mut self, store: ResultStore, older: Results) {
        let (mut results, notice) = store.load();
        if let Some(text) = notice {
            self.notify(text, true);
        }
        let adopted = results.adopt(older);
        self.store = store;
        self.results = results;
        self.save_results(&adopted);
        self.tour.reopen(self.tour.step(), &self.results);
    }

    /// Saves the results of `kinds` as they are now, for the next session.
    fn save_results(&mut self, kinds: &[Kind]) {
        for &kind in kinds {
            if let Err(e) = self.store.save(&self.results, kind) {
                self.notify(format!("The result could not be kept for the next session: {e}"), true);
            }
        }
    }

    /// Opens `config` in the setup panel, as a loaded file or a shared link does.
    pub fn open_config(&mut self, config: ConnectConfig) {
        self.view_state.widths_text = crate::state::widths_text(&config.model);
        self.settings.config = config;
    }

    /// Adds a message to the notices shown above the views.
    pub fn notify(&mut self, text: String, is_error: bool) {
        self.notices.push(Notice { text, is_error });
    }

    pub fn is_busy(&self) -> bool {
        self.jobs.is_busy()
    }

    /// Starts `request` in the background on the chosen device.
    fn start_job(&mut self, request: JobRequest, ctx: &egui::Context) {
        if let Some(notice) = self.jobs.start(request, self.settings.device, ctx) {
            self.notices.push(notice);
        }
    }

    /// Starts training the configured experiment in the background.
    pub fn start_run(&mut self, ctx: &egui::Context) {
        if self.is_busy() {
            return;
        }
        if let Err(e) = self.settings.config.validate() {
            return self.notify(e.to_string(), true);
        }
        self.start_job(JobRequest::Connect(self.settings.config.clone()), ctx);
        self.settings.tab = Tab::Training;
    }

    /// Starts federated learning with the Experiment panel's data, model, seed and number of
    /// seeds.
    pub fn start_federated(&mut self, ctx: &egui::Context) {
        if self.is_busy() {
            return;
        }
        let mut config = self.settings.fed.clone();
        config.data = self.settings.config.data.clone();
        config.model = self.settings.config.model.clone();
        config.seed = self.settings.config.seed;
        config.seeds = self.settings.config.seeds;
        if let Err(e) = config.validate() {
            return self.notify(e.to_string(), true);
        }
        let variants = config.variants(self.settings.fed_compare, 0.01);
        self.start_job(JobRequest::Federated { config, variants }, ctx);
    }

    /// Re-evaluates method `method_index` with the pair `pair` (one of its models replaced).
    pub fn start_reevaluation(&mut self, ctx: &egui::Context, method_index: usize, pair: TrainedPair) {
        if self.is_busy() {
            // A file picked before a run started arrives while it runs: that run goes on.
            return self.notify("A job is running: load the model again when it has finished.".into(), true);
        }
        let Some(result) = self.results.connect() else { return };
        let config = result.config.clone();
        self.start_job(JobRequest::Reevaluate { config, method_index, pair }, ctx);
    }

    /// Evaluates the pair of models the user handed over, on their data (or the Experiment
    /// panel's data set), with every method that needs no training.
    fn start_given_pair(&mut self, ctx: &egui::Context) {
        if self.is_busy() {
            return;
        }
        let Some(reading) = self.given.reading() else {
            return self.notify("The files are still being read.".into(), true);
        };
        let pair = match &reading.pair {
            Some(Ok(pair)) => pair.clone(),
            Some(Err(e)) => return self.notify(e.to_string(), true),
            None => return self.notify("Hand over two model files first.".into(), true),
        };
        let mut base = self.settings.config.clone();
        let mut files = None;
        match &reading.data {
            Some((_, Ok(data))) => {
                base.data = data.config.clone();
                files = data.files.clone();
            }
            Some((name, Err(e))) => return self.notify(format!("{name} cannot be used: {e}"), true),
            None => {}
        }
        match pair.config(base, GIVEN_PAIR_METHODS.to_vec()) {
            Ok(config) => {
                self.start_job(JobRequest::GivenPair { config, pair, files }, ctx);
                self.settings.tab = Tab::Training;
            }
            Err(e) => self.notify(e.to_string(), true),
        }
    }

    /// Whether the merged model of method `method`'s pair has BatchNorm statistics, which the
    /// training data re-estimates (in a job) before it is saved.
    fn merged_needs_data(&self, method: usize) -> bool {
        self.models.pairs.get(method).is_some_and(|pair| wsa_core::batch_norm::has_running_stats(&pair.a.layout))
    }

    /// Forms the merged model at path point `index` of method `method` in the background (its
    /// BatchNorm statistics re-estimated on the run's training data), then saves it.
    fn start_merged_model(&mut self, method: usize, index: usize, ctx: &egui::Context) {
        if self.is_busy() {
            return self.notify("A job is running: save the merged model when it has finished.".into(), true);
        }
        let (Some(result), Some(pair)) = (self.results.connect(), self.models.pairs.get(method)) else { return };
        let Some(m) = result.methods.get(method) else { return };
        let alpha = m.path.get(index).map_or(0.5, |p| p.alpha);
        let file = exports::merged_file_name(m.method, alpha);
        let (config, pair) = (result.config.clone(), pair.clone());
        let files = self.given.files_for(&config.data);
        self.start_job(JobRequest::MergedModel { config, pair, alpha, file, files }, ctx);
    }

    /// The loss plane through the selected method's A and B and a curve's control point.
    fn start_plane(&mut self, ctx: &egui::Context) {
        let Some(result) = self.results.connect() else { return };
        let config = result.config.clone();
        let Some(pair) = self.models.pairs.get(self.settings.method).cloned() else {
            return self.notify("The trained models are not in memory: press Run first.".into(), true);
        };
        if let Err(e) = self.settings.plane.validate() {
            return self.notify(e.to_string(), true);
        }
        self.start_job(JobRequest::Plane { config, pair, plane: self.settings.plane.clone() }, ctx);
    }

    /// Opens the tour at the step a link or `--tour N` names (counted from 1); a step that does
    /// not exist opens the first, with a notice.
    pub fn open_tour_link(&mut self, step: &str) {
        match crate::tour::step_from_link(step, self.tour.steps().len()) {
            Ok(index) => self.enter_tour_step(index),
            Err(notice) => {
                self.enter_tour_step(0);
                self.notify(notice.to_string(), true);
            }
        }
    }

    /// Shows `tour` (a translation, a teacher's own) instead of the shipped one, at the step that
    /// is open (if the new tour has it).
    pub fn use_tour(&mut self, tour: Tour) {
        let open = self.tour.step();
        self.tour = TourGuide::new(tour);
        self.tour.reopen(open, &self.results);
    }

    /// Opens tour step `index`: its experiment in the setup, its view, its marked element.
    pub fn enter_tour_step(&mut self, index: usize) {
        let step = self.tour.open(index, &self.results);
        match (step.connect_config().cloned(), step.fed_config().cloned()) {
            (Some(config), _) => self.open_config(config),
            (_, Some(fed)) => {
                // The federation runs on the setup's data, model, seed and seeds (`start_federated`).
                self.settings.config.data = fed.data.clone();
                self.settings.config.model = fed.model.clone();
                self.settings.config.seed = fed.seed;
                self.settings.config.seeds = fed.seeds;
                self.view_state.widths_text = crate::state::widths_text(&fed.model);
                self.settings.fed = fed;
            }
            _ => {}
        }
        self.tour.show_step(&mut self.settings, &self.results);
    }

    /// Runs the open tour step's experiment (and, for a plane step, the plane after it).
    fn run_tour_step(&mut self, ctx: &egui::Context) {
        let Some((_, step)) = self.tour.open_step() else { return };
        if self.is_busy() {
            return;
        }
        let (run, connect, fed) = (step.run.clone(), step.connect_config().cloned(), step.fed_config().cloned());
        self.tour.run_started(matches!(run, StepRun::ConnectThenPlane(_)));
        match run {
            StepRun::Connect(_) | StepRun::ConnectThenPlane(_) => {
                if let Some(config) = connect {
                    self.open_config(config);
                }
                self.start_run(ctx);
            }
            StepRun::Federated(_) => {
                let Some(config) = fed else { return };
                self.settings.fed = config.clone();
                let variants = crate::tour::federated_variants();
                self.start_job(JobRequest::Federated { config, variants }, ctx);
            }
            StepRun::Free => {}
        }
    }

    /// Sets up exercise `k` of the open tour step (its experiment in the setup, where the student
    /// sees what it changed) and runs it.
    fn run_tour_exercise(&mut self, k: usize, ctx: &egui::Context) {
        let Some((_, step)) = self.tour.open_step() else { return };
        let Some(config) = step.exercises.get(k).and_then(|e| e.config()).cloned() else { return };
        if self.is_busy() {
            return;
        }
        self.open_config(config);
        self.start_run(ctx);
    }

    /// Carries out what a view asked for.
    fn apply(&mut self, action: Action, ctx: &egui::Context) {
        match action {
            Action::Run => self.start_run(ctx),
            Action::RunFederated => self.start_federated(ctx),
            Action::RunPlane => self.start_plane(ctx),
            Action::Tour(TourAction::Go(index)) => self.enter_tour_step(index),
            Action::Tour(TourAction::Run) => self.run_tour_step(ctx),
            Action::Tour(TourAction::RunExercise(k)) => self.run_tour_exercise(k, ctx),
            Action::Tour(TourAction::Leave) => self.tour.close(),
            Action::Cancel => self.jobs.cancel(),
            Action::SavePlot { name, rect } => {
                self.exports.save_plot_png(ctx, Path::new(&self.settings.export_dir), &name, rect);
            }
            Action::Export(Export::Merged { method, index }) if self.merged_needs_data(method) => {
                self.start_merged_model(method, index, ctx);
            }
            Action::Export(export) => {
                let Some(result) = self.results.connect() else { return };
                let dir = Path::new(&self.settings.export_dir);
                if let Some(notice) = self.exports.export(export, dir, result, &self.models.pairs) {
                    self.notices.push(notice);
                }
            }
            Action::PickGivenFiles => self.given.pick(&self.settings.given_path, ctx),
            Action::ClearGivenFiles => self.given.clear(),
            Action::CompareGivenPair => self.start_given_pair(ctx),
            Action::LoadModel { method, slot } => self.models.pick(method, slot, &self.settings.model_path, ctx),
            Action::Dismiss(index) => {
                if index < self.notices.len() {
                    self.notices.remove(index);
                }
            }
            Action::ResetToDefaults => {
                self.settings.reset_experiment();
                self.open_config(self.settings.config.clone());
            }
        }
    }

    /// Loads a model file the user handed over into its slot of a method's pair and
    /// re-evaluates the pair (B aligned to A again as the method says) in the background; what
    /// the loading converted or left out is said in a notice.
    fn load_model_into(&mut self, ctx: &egui::Context, picked: AppResult<PickedModel>) {
        match self.models.read_picked(picked) {
            Ok(LoadedPair { method, pair, notice }) => {
                self.notices.extend(notice);
                self.start_reevaluation(ctx, method, pair);
            }
            Err(notice) => self.notices.push(notice),
        }
    }

    /// Takes in what the job sent and the notices of saves that ended; called once per frame
    /// before drawing.
    pub fn poll_job(&mut self) {
        self.notices.extend(self.exports.take_notices());
        for update in self.jobs.poll() {
            match update {
                JobUpdate::Notice(notice) => self.notices.push(notice),
                JobUpdate::PartialResult { result, first } => self.show_connect_result(*result, Vec::new(), first),
                JobUpdate::Finished { outcome, cancelled } => self.finish(outcome, cancelled),
            }
        }
    }

    /// Drops the loss plane and its selected point: the models it went through are gone.
    fn forget_plane(&mut self) {
        self.results.set_plane(None);
        self.settings.plane_point = None;
        self.models.plane_third = None;
    }

    /// Shows a connect result (and its models, when it has them); `first` when it is the first
    /// result of this run: the selections are then brought in range and the path view opens.
    fn show_connect_result(&mut self, result: ConnectResult, models: Vec<TrainedPair>, first: bool) {
        self.derived.clear();
        if first {
            let points = result.methods.first().map_or(0, |v| v.path.len());
            self.settings.alpha_index = self.settings.alpha_index.min(points.saturating_sub(1));
            // The method shown stays in range when the new run compares fewer methods.
            self.settings.method = self.settings.method.min(result.methods.len().saturating_sub(1));
            self.settings.layer = 0;
            self.settings.path_seed = None;
            self.settings.tab = Tab::Path;
            // A plane belongs to the pair it was computed from: a new run has other models.
            self.forget_plane();
        }
        self.models.pairs = models;
        self.results.set_connect(result);
        if first {
            self.tour.show_step(&mut self.settings, &self.results);
        }
    }

    /// Takes in how a job ended: its result shown and saved for the next session, published
    /// for scripts, or its error told.
    fn finish(&mut self, outcome: AppResult<JobOutput>, cancelled: bool) {
        self.derived.clear();
        let timing = &self.jobs.live.timing;
        let outcome_failed = outcome.is_err();
        match outcome {
            Ok(JobOutput::Connect(outcome)) => {
                let ConnectOutcome { result, models } = *outcome;
                for warning in &result.warnings {
                    self.notices.push(Notice { text: warning.clone(), is_error: false });
                }
                self.publisher.result(&result, timing);
                let first = !self.jobs.live.showing_partial_result;
                self.show_connect_result(result, models, first);
                self.save_results(&[Kind::Connect, Kind::Plane]);
            }
            Ok(JobOutput::Plane { method, outcome }) => {
                let PlaneOutcome { plane, third } = *outcome;
                self.publisher.plane(&plane, timing);
                self.results.set_plane(Some(PlaneResult::new(method, plane)));
                self.settings.plane_point = None;
                self.models.plane_third = Some(third);
                self.settings.tab = Tab::Plane;
                self.save_results(&[Kind::Plane]);
            }
            Ok(JobOutput::MergedModel { file, model }) => {
                let notice = self.exports.save_merged(Path::new(&self.settings.export_dir), &file, &model);
                self.notices.push(notice);
            }
            Ok(JobOutput::Federated(outcome)) => {
                self.results.set_federated(outcome.result);
                self.settings.tab = Tab::Federated;
                self.tour.show_step(&mut self.settings, &self.results);
                self.save_results(&[Kind::Federated]);
            }
            Ok(JobOutput::Reevaluated { method_index, result, pair }) => {
                if let Some(last) = self.results.connect_mut()
                    && let Some(slot) = last.methods.get_mut(method_index)
                {
                    *slot = *result;
                    // The loaded pair is no seed's: what is shown is that pair, not a spread.
                    last.seeds.clear();
                    self.settings.path_seed = None;
                }
                if self.results.plane().is_some_and(|plane| plane.method == pair.method) {
                    self.forget_plane();
                }
                if let Some(slot) = self.models.pairs.get_mut(method_index) {
                    *slot = *pair;
                }
                self.notify("The loaded pair was evaluated.".into(), false);
                if let Some(last) = self.results.connect() {
                    self.publisher.result(last, &self.jobs.live.timing);
                }
                self.save_results(&[Kind::Connect, Kind::Plane]);
            }
            Err(_) if cancelled => self.notify("Cancelled.".into(), false),
            Err(e) => {
                self.publisher.failure(&e);
                self.notify(e.to_string(), true);
            }
        }
        if outcome_failed && self.jobs.live.showing_partial_result {
            // The seeds finished before it stopped are on screen, in place of the last result.
            self.save_results(&[Kind::Connect, Kind::Plane]);
        }
    }

    fn record_frame(&mut self, build_started: Instant) {
        let now = Instant::now();
        let interval = self.last_frame.map_or(0.0, |t| (now - t).as_secs_f32() * 1000.0);
        self.last_frame = Some(now);
        let build = (now - build_started).as_secs_f32() * 1000.0;
        self.frames.record(interval, build);
        self.jobs.record_frame(f64::from(build), f64::from(interval));
        if self.frame_log && self.last_frame_log.is_none_or(|t| now.duration_since(t).as_secs_f32() >= 2.0) {
            self.last_frame_log = Some(now);
            let (mean_build, max_build) = FrameStats::summary(&self.frames.build_ms);
            let (mean_gap, max_gap) = FrameStats::summary(&self.frames.intervals_ms);
            eprintln!(
                "frames: build mean {mean_build:.2} ms max {max_build:.2} ms; interval mean {mean_gap:.1} ms max {max_gap:.1} ms; training: {}",
                self.is_busy()
            );
        }
    }
}

impl eframe::App for WsaLabApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.frame_started = Some(Instant::now());
        self.poll_job();
        if !self.is_busy() && self.tour.plane_is_due(&self.results) {
            // The plane step's experiment is in: its plane follows.
            self.start_plane(ctx);
        }
        self.tour.update(&self.results, self.is_busy());
        self.publisher.tour(&self.tour, &self.view_state.answers_shown);
        if let Some(notice) = self.jobs.warm_up_when_idle(self.settings.device, &self.settings.config) {
            self.notices.push(notice);
        }
        self.publisher.state(&self.settings.config, self.tour.step(), self.is_busy());
        self.derived.update(&self.settings, &self.results, &self.models, ctx);
        for model in self.models.take_picked() {
            self.load_model_into(ctx, model);
        }
        self.given.take_dropped(ctx);
        let data = &self.settings.config.data;
        let split =
            DataSplitting { test_fraction: data.test_fraction, normalisation: self.settings.given_normalisation };
        if self.given.take_arrived(data, split, ctx) {
            // Classroom mode hides the tab: the files wait there for when it is switched off.
            if !self.settings.classroom {
                self.settings.tab = Tab::Given;
            }
        } else if self.given.read_with().is_some_and(|before| before != split) && !ctx.input(|i| i.pointer.any_down()) {
            // Read again once a dragged value is let go, not at every frame of the drag.
            self.given.read_again(&self.settings.config.data, split, ctx);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        // eframe calls `logic()` just before; without it (a caller that only draws) the frame
        // counts from here.
        let started = self.frame_started.take().unwrap_or_else(Instant::now);
        let view = View::new(
            &mut self.settings,
            &mut self.view_state,
            &self.results,
            &self.jobs.live,
            self.jobs.job(),
            &self.models.pairs,
            &self.derived,
            &self.notices,
            &self.frames,
            &self.jobs.device_label,
            &self.tour,
            &self.given,
        );
        let actions = views::show(view, ui);
        for action in actions {
            self.apply(action, ui.ctx());
        }
        self.record_frame(started);
        if self.frame_log {
            ui.ctx().request_repaint();
        } else if self.is_busy() {
            // Keep frames coming while work is in flight, so progress and frame times stay live,
            // at a capped rate (see LIVE_FRAME_INTERVAL).
            ui.ctx().request_repaint_after(LIVE_FRAME_INTERVAL);
        }
    }

    /// Stores the settings, with the open tour step; the results were saved when they came.
    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.settings.tour = self.tour.step();
        if let Ok(text) = serde_json::to_string(&self.settings) {
            storage.set_string(state::STORAGE_KEY, text);
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use wsa_core::experiment::method::Method;

    /// Hears what the app publishes, as the page would.
    #[derive(Clone, Default)]
    struct Heard(Arc<Mutex<Vec<String>>>);

    impl Heard {
        fn push(&self, what: String) {
            self.0.lock().expect("heard").push(what);
        }

        fn all(&self) -> Vec<String> {
            self.0.lock().expect("heard").clone()
        }
    }

    impl Publish for Heard {
        fn result(&self, result: &ConnectResult, _timing: &RunTiming) {
            self.push(format!("result of seed {}", result.config.seed));
        }
        fn plane(&self, _plane: &wsa_core::experiment::plane::Plane, _timing: &RunTiming) {
            self.push("plane".into());
        }
        fn failure(&self, error: &crate::AppError) {
            self.push(format!("failure: {error}"));
        }
        fn tour(&self, _guide: &TourGuide, _answers_shown: &std::collections::BTreeSet<(usize, usize)>) {}
        fn state(&self, _config: &ConnectConfig, _tour_step: Option<usize>, _busy: bool) {}
    }

    fn tiny_result() -> ConnectResult {
        let mut config = ConnectConfig { methods: vec![Method::PLAIN, Method::WSA], ..ConnectConfig::default() };
        config.seed = 3;
        config.train.epochs = 1;
        config.data.max_train = Some(200);
        config.path.points = 5;
        let (cpu, mut silent) = (wsa_core::device::cpu(), wsa_core::cancel::Silent);
        wsa_core::wait(wsa_core::experiment::connect::run(&config, &cpu, &mut silent)).expect("a run").result
    }

    /// An app that keeps its results in `dir`, as it would in the app's data folder.
    fn app_saving_into(dir: &Path, older: Results) -> (WsaLabApp, Heard) {
        let mut app = WsaLabApp::with_settings(Settings::default());
        let heard = Heard::default();
        app.publisher = Box::new(heard.clone());
        app.open_results(ResultStore::new(Some(platform::Shelf::in_folder(dir.to_path_buf()))), older);
        (app, heard)
    }

    /// A finished run is published and saved apart from the settings; the next start reads it
    /// back. Results an older build kept in its settings are saved apart once, and a failed job
    /// is published as one.
    #[test]
    fn a_finished_run_is_saved_and_comes_back_at_the_next_start() {
        let dir = std::env::temp_dir().join(format!("wsa-lab-app-results-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let result = tiny_result();
        let (mut app, heard) = app_saving_into(&dir, Results::default());
        assert!(app.results.connect().is_none() && app.notices.is_empty());
        let outcome = ConnectOutcome { result: result.clone(), models: Vec::new() };
        app.finish(Ok(JobOutput::Connect(Box::new(outcome))), false);
        assert_eq!(heard.all(), ["result of seed 3"]);
        assert!(dir.join(Kind::Connect.file_name()).is_file());
        assert_eq!(app.settings.tab, Tab::Path);
        let settings = serde_json::to_string(&app.settings).expect("json");
        assert!(!settings.contains("\"methods\":[{"), "no result among the settings");

        app.finish(Err(crate::AppError::Worker("gone".into())), false);
        assert!(heard.all()[1].starts_with("failure: the background worker failed: gone"), "{:?}", heard.all());
        assert!(app.notices.iter().any(|n| n.is_error && n.text.contains("gone")));

        let (next, _) = app_saving_into(&dir, Results::default());
        assert_eq!(next.results.connect(), Some(&result));
        assert!(next.notices.is_empty(), "{:?}", next.notices);

        // Settings of an older build held a federated result: taken over and saved, once.
        let fed = wsa_core::experiment::federated::FedResult {
            version: 1,
            config: Default::default(),
            dataset: "digits".into(),
            device: "cpu".into(),
            layers: Vec::new(),
            clients: Vec::new(),
            runs: Vec::new(),
            seeds: Vec::new(),
        };
        let mut older = Results::default();
        older.set_federated(fed.clone());
        let (adopted, _) = app_saving_into(&dir, older);
        assert_eq!(adopted.results.federated(), Some(&fed));
        let (again, _) = app_saving_into(&dir, Results::default());
        assert_eq!(again.results.federated(), Some(&fed));
        assert_eq!(again.results.connect(), Some(&result), "the saved result stays");
        std::fs::remove_dir_all(&dir).ok();
    }
}
