//! The application: settings (persisted), the background job, and the views. `logic` drains the
//! job's messages; `ui` only draws from what is already here, so a frame never waits on work.

use crate::derived::Derived;
use crate::job::{DeviceTarget, Job, JobMessage, JobOutput, JobRequest, Wake};
use crate::platform::{self, PickedModel};
use crate::state::{self, Settings, Tab};
use crate::tour::{Highlight, StepRun, Tour};
use crate::views::{self, Action, Export, TourAction, View, ViewState};
use crate::{AppError, AppResult};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use web_time::Instant;
use wsa_core::device::DeviceChoice;
use wsa_core::experiment::Event;
use wsa_core::experiment::connect::{ConnectOutcome, ConnectResult, EpochRecord, TrainedPair};
use wsa_core::experiment::federated::{Aggregation, FedConfig};
use wsa_core::experiment::method::{Method, Training};
use wsa_core::experiment::plane::PlaneOutcome;
use wsa_core::model::HostParams;

/// The time between frames while a job runs and nothing else asks for one (input still draws at
/// once): 10 per second keep the curves live, and in a browser without a GPU, where a frame is
/// drawn in software on the cores the training needs, 30 per second left the page's thread
/// too busy to take a click for seconds.
const LIVE_FRAME_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Wakes the UI for a job's messages: at once when it finished, within a live frame for
/// progress.
fn wake(ctx: &egui::Context) -> Wake {
    let ctx = ctx.clone();
    std::sync::Arc::new(move |finished| {
        if finished {
            ctx.request_repaint();
        } else {
            ctx.request_repaint_after(LIVE_FRAME_INTERVAL);
        }
    })
}

/// A message shown to the user until dismissed.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub text: String,
    pub is_error: bool,
}

/// Curves and progress of the job in flight, rebuilt from its events.
#[derive(Default)]
pub struct LiveRun {
    pub stage: String,
    /// (trained pair, record) for every finished epoch of the seed in flight.
    pub epochs: Vec<(Training, EpochRecord)>,
    /// Epochs finished in earlier seeds of a run over several.
    pub epochs_of_earlier_seeds: usize,
    /// The seed in flight of a run over several: (index from 0, how many, seed).
    pub seed: Option<(usize, usize, u64)>,
    /// The views show this run's result so far (`Event::SeedResult`).
    pub showing_partial_result: bool,
    pub path_points_done: usize,
    /// Epochs and path points of the whole connect run (`ConnectConfig::progress_total`).
    pub total: usize,
    /// (run, round, global test accuracy) of a federated job.
    pub rounds: Vec<(String, usize, f64)>,
    /// Total rounds of a federated job (all runs), when one is in flight.
    pub rounds_total: usize,
    pub timing: RunTiming,
}

/// Where a job's time went, as the UI saw it: when each stage began and the frames drawn
/// meanwhile. The page publishes it with the result (the browser test prints it).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RunTiming {
    /// Each stage and the second (since the job started) its message arrived, to a frame.
    pub stages: Vec<(String, f64)>,
    /// Frames drawn while the job ran, the time building them took (mean, max) and the longest
    /// time between two (a frame blocked by work shows here).
    pub frames: usize,
    pub frame_build_ms_mean: f64,
    pub frame_build_ms_max: f64,
    pub frame_interval_ms_max: f64,
    /// From the start to the result.
    pub seconds: f64,
}

impl RunTiming {
    fn frame(&mut self, build_ms: f64, interval_ms: f64) {
        self.frame_build_ms_mean =
            (self.frame_build_ms_mean * self.frames as f64 + build_ms) / (self.frames + 1) as f64;
        self.frames += 1;
        self.frame_build_ms_max = self.frame_build_ms_max.max(build_ms);
        self.frame_interval_ms_max = self.frame_interval_ms_max.max(interval_ms);
    }
}

impl LiveRun {
    /// Share of the work done: the epochs of every trained model and every method's path
    /// points, or the federated rounds.
    pub fn fraction(&self) -> f32 {
        if self.rounds_total > 0 {
            return (self.rounds.len() as f32 / self.rounds_total as f32).min(1.0);
        }
        let done = self.epochs_of_earlier_seeds + self.epochs.len() + self.path_points_done;
        (done as f32 / self.total.max(1) as f32).min(1.0)
    }
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
    pub job: Option<Job>,
    pub live: LiveRun,
    /// The merged (or loaded) models of `settings.last_result`, one pair per method. Not stored:
    /// after a restart the results come back, the models after the next run.
    pub models: Vec<TrainedPair>,
    /// The third model of `settings.plane_result` (a trained control point), which turns a
    /// clicked grid point into a model. Not stored, like `models`.
    pub plane_third: Option<HostParams>,
    pub device_label: String,
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
    /// The renderer's GPU, which GPU jobs share natively.
    gpu: platform::RendererGpu,
    /// Notices from work that ends outside a frame (a plot PNG written from a screenshot).
    inbox: Arc<Mutex<Vec<Notice>>>,
    last_frame_log: Option<Instant>,
    /// The device, model, data and batch the GPU kernels were last warmed up for.
    warmed_for: Option<String>,
    /// Model files the user handed over (a typed path, or a file picked in the browser),
    /// loaded by the next `logic()`.
    pub(crate) model_inbox: platform::ModelInbox,
    /// The guided tour (`tour.ron`); `settings.tour` says which step is open.
    pub tour: Tour,
    /// A tour step that shows a loss plane ran its experiment: the plane follows when it is in.
    tour_plane_pending: bool,
    /// When the open tour step's run was started, until its answer is on screen; then how long
    /// that took (for a plane step the experiment and the plane together).
    tour_run_started: Option<Instant>,
    pub tour_run_seconds: Option<f64>,
}

impl WsaLabApp {
    pub fn new(cc: &eframe::CreationContext<'_>) -> Self {
        let stored = cc.storage.and_then(|s| s.get_string(state::STORAGE_KEY));
        let (settings, notice) = state::load(stored);
        let mut app = Self::with_settings(settings);
        app.gpu = platform::RendererGpu::of_renderer(cc);
        // Error texts may quote anything (wgpu's shader messages draw boxes); egui's built-in
        // fonts lack those glyphs and would panic, so a wide-coverage font backs them up.
        let fallback = |family| egui::epaint::text::InsertFontFamily {
            family,
            priority: egui::epaint::text::FontPriority::Lowest,
        };
        cc.egui_ctx.add_font(egui::epaint::text::FontInsert::new(
            "DejaVuSans",
            egui::FontData::from_static(crate::export::plots::FONT),
            vec![fallback(egui::FontFamily::Proportional), fallback(egui::FontFamily::Monospace)],
        ));
        if let Some(text) = notice {
            app.notices.push(Notice { text, is_error: true });
        }
        app
    }

    pub fn with_settings(settings: Settings) -> Self {
        Self {
            view_state: ViewState { widths_text: crate::state::widths_text(&settings.config.model) },
            settings,
            job: None,
            live: LiveRun::default(),
            models: Vec::new(),
            plane_third: None,
            device_label: String::new(),
            notices: Vec::new(),
            frames: FrameStats::default(),
            derived: Derived::default(),
            last_frame: None,
            frame_started: None,
            frame_log: false,
            last_frame_log: None,
            warmed_for: None,
            model_inbox: Arc::default(),
            tour: Tour::shipped(),
            tour_plane_pending: false,
            tour_run_started: None,
            tour_run_seconds: None,
            gpu: platform::RendererGpu::none(),
            inbox: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Saves the screen region `rect` (a plot) as `<export_dir>/<name>.png`, from a screenshot
    /// of the next frame: what is written is exactly what the user sees.
    pub fn save_plot_png(&self, ctx: &egui::Context, name: &str, rect: egui::Rect) {
        let dir = PathBuf::from(&self.settings.export_dir);
        let file = format!("{name}.png");
        let path = dir.join(&file);
        let pixels_per_point = ctx.pixels_per_point();
        let inbox = Arc::clone(&self.inbox);
        let repaint = ctx.clone();
        ctx.request_screenshot(move |image| {
            let region = image.region(&rect, Some(pixels_per_point));
            let [width, height] = region.size;
            let rgba: Vec<u8> = region.pixels.iter().flat_map(|c| c.to_array()).collect();
            let written = crate::export::plots::encode_rgba(&rgba, width as u32, height as u32)
                .and_then(|bytes| platform::save_file(&dir, &file, &bytes));
            let notice = match written {
                Ok(()) => Notice { text: format!("Wrote {}", path.display()), is_error: false },
                Err(e) => Notice { text: format!("Could not save the plot: {e}"), is_error: true },
            };
            if let Ok(mut inbox) = inbox.lock() {
                inbox.push(notice);
            }
            repaint.request_repaint();
        });
    }

    /// Where the next job, doing `flops_per_step` per training step, computes
    /// (`platform::RendererGpu::target`: natively a GPU job shares the renderer's device).
    fn device_target(&mut self, flops_per_step: Option<f64>) -> DeviceTarget {
        let (target, notice) = self.gpu.target(self.settings.device, flops_per_step);
        if let Some(text) = notice {
            self.notify(text, false);
        }
        target
    }

    /// While nothing runs, compiles the GPU kernels of the configured experiment in the
    /// background whenever its device, model, data or batch size changed: the first step on a GPU
    /// otherwise waits seconds for them (docs/benchmarks.md). Only when a GPU would be used.
    fn warm_up_when_idle(&mut self) {
        let config = &self.settings.config;
        let signature = format!(
            "{:?} {:?} {:?} {}",
            self.settings.device, config.model, config.data.dataset, config.train.batch_size
        );
        if self.job.is_some() || self.warmed_for.as_ref() == Some(&signature) {
            return;
        }
        self.warmed_for = Some(signature);
        if self.settings.device == DeviceChoice::Cpu || config.validate().is_err() {
            return;
        }
        let config = config.clone();
        let target = self.device_target(config.flops_per_step());
        Job::warm_up(config, target);
    }

    /// Opens `config` in the setup panel, as a loaded file or a shared link does.
    pub fn open_config(&mut self, config: wsa_core::experiment::connect::ConnectConfig) {
        self.view_state.widths_text = crate::state::widths_text(&config.model);
        self.settings.config = config;
    }

    /// Adds a message to the notices shown above the views.
    pub fn notify(&mut self, text: String, is_error: bool) {
        self.notices.push(Notice { text, is_error });
    }

    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    /// Starts training the configured experiment in the background.
    pub fn start_run(&mut self, ctx: &egui::Context) {
        if self.job.is_some() {
            return;
        }
        if let Err(e) = self.settings.config.validate() {
            self.notices.push(Notice { text: e.to_string(), is_error: true });
            return;
        }
        self.live = LiveRun { total: self.settings.config.progress_total(), ..LiveRun::default() };
        let target = self.device_target(self.settings.config.flops_per_step());
        self.job = Some(Job::start(JobRequest::Connect(self.settings.config.clone()), target, wake(ctx)));
        self.settings.tab = Tab::Training;
    }

    /// Starts federated learning with the Experiment panel's data, model and seed.
    pub fn start_federated(&mut self, ctx: &egui::Context) {
        if self.job.is_some() {
            return;
        }
        let mut config = self.settings.fed.clone();
        config.data = self.settings.config.data.clone();
        config.model = self.settings.config.model.clone();
        config.seed = self.settings.config.seed;
        if let Err(e) = config.validate() {
            self.notices.push(Notice { text: e.to_string(), is_error: true });
            return;
        }
        let variants = config.variants(self.settings.fed_compare, 0.01);
        self.start_federated_job(ctx, config, variants);
    }

    fn start_federated_job(&mut self, ctx: &egui::Context, config: FedConfig, variants: Vec<(Aggregation, bool)>) {
        self.live = LiveRun { rounds_total: config.rounds * variants.len(), ..LiveRun::default() };
        let target = self.device_target(config.flops_per_step());
        self.job = Some(Job::start(JobRequest::Federated { config, variants }, target, wake(ctx)));
    }

    /// Opens the tour at the step a link or `--tour N` names (counted from 1); a step that does
    /// not exist opens the first, with a notice.
    pub fn open_tour_link(&mut self, step: &str) {
        match crate::tour::step_from_link(step, self.tour.steps.len()) {
            Ok(index) => self.enter_tour_step(index),
            Err(notice) => {
                self.enter_tour_step(0);
                self.notify(notice, true);
            }
        }
    }

    /// Opens tour step `index`: its experiment in the setup, its view, its marked element.
    pub fn enter_tour_step(&mut self, index: usize) {
        let index = index.min(self.tour.steps.len().saturating_sub(1));
        self.settings.tour = Some(index);
        (self.tour_run_started, self.tour_run_seconds) = (None, None);
        let step = &self.tour.steps[index];
        match (step.connect_config().cloned(), step.fed_config().cloned()) {
            (Some(config), _) => self.open_config(config),
            (_, Some(fed)) => {
                // The federation runs on the setup's data, model and seed (`start_federated`).
                self.settings.config.data = fed.data.clone();
                self.settings.config.model = fed.model.clone();
                self.settings.config.seed = fed.seed;
                self.view_state.widths_text = crate::state::widths_text(&fed.model);
                self.settings.fed = fed;
            }
            _ => {}
        }
        self.show_tour_step();
    }

    /// The tour's state for the browser test: the step, whether it is answered, how long its run
    /// took, and how many of its claims held on every seed.
    fn publish_tour(&self) {
        let step = self.settings.tour.and_then(|i| self.tour.steps.get(i));
        let answered = self.tour_step_answered();
        let claims = step.filter(|_| answered).zip(self.settings.last_result.as_ref()).map(|(step, result)| {
            let checks = step.check_claims(result);
            (checks.iter().filter(|c| c.holds_everywhere()).count(), checks.len())
        });
        platform::publish_tour(self.settings.tour, answered, self.tour_run_seconds, claims);
    }

    /// Leaves the tour; the app keeps the last step's experiment and results.
    pub fn leave_tour(&mut self) {
        self.settings.tour = None;
        self.tour_plane_pending = false;
    }

    /// The open tour step's view and marked element, when its run is on screen (or before it
    /// runs: the view it will answer in).
    fn show_tour_step(&mut self) {
        let Some(step) = self.settings.tour.and_then(|i| self.tour.steps.get(i)) else { return };
        self.settings.tab = step.view;
        // Indices into the methods on screen: the step's result's once it is in, else the
        // step's config's (the same list).
        let methods: Vec<Method> = match &self.settings.last_result {
            Some(result) if step.is_answered_by(Some(result), None) => result.methods.iter().map(|m| m.name).collect(),
            _ => self.settings.config.methods.clone(),
        };
        let index_of = |m| methods.iter().position(|x| *x == m);
        match &step.highlight {
            Highlight::Method(m) => {
                self.settings.method = index_of(*m).unwrap_or(self.settings.method);
                self.settings.path_seed = None;
            }
            Highlight::Layer { method, layer } => {
                self.settings.method = index_of(*method).unwrap_or(self.settings.method);
                self.settings.layer = *layer;
                self.settings.plane_point = None;
            }
            // Curves are drawn per seed: the first seed's.
            Highlight::Curve(m) => {
                self.settings.method = index_of(*m).unwrap_or(self.settings.method);
                self.settings.path_seed = Some(0);
            }
            Highlight::FedRun(_) | Highlight::Setup => {}
        }
    }

    /// Runs the open tour step's experiment (and, for a plane step, the plane after it).
    fn run_tour_step(&mut self, ctx: &egui::Context) {
        let Some(step) = self.settings.tour.and_then(|i| self.tour.steps.get(i)).cloned() else { return };
        if self.job.is_some() {
            return;
        }
        (self.tour_run_started, self.tour_run_seconds) = (Some(Instant::now()), None);
        match &step.run {
            StepRun::Connect(_) | StepRun::ConnectThenPlane(_) => {
                if let Some(config) = step.connect_config() {
                    self.open_config(config.clone());
                }
                self.tour_plane_pending = matches!(step.run, StepRun::ConnectThenPlane(_));
                self.start_run(ctx);
            }
            StepRun::Federated(_) => {
                let Some(config) = step.fed_config().cloned() else { return };
                self.settings.fed = config.clone();
                // FedAvg with and without WSA, on one split and start.
                let variants = vec![(Aggregation::FedAvg, false), (Aggregation::FedAvg, true)];
                self.start_federated_job(ctx, config, variants);
            }
            StepRun::Free => {}
        }
    }

    /// Whether the open tour step's run is on screen (for a plane step: the plane too).
    pub fn tour_step_answered(&self) -> bool {
        self.settings.tour.and_then(|i| self.tour.steps.get(i)).is_some_and(|step| step.answered(&self.settings))
    }

    /// Re-evaluates method `method_index` with the pair `pair` (one of its models replaced).
    pub fn start_reevaluation(&mut self, ctx: &egui::Context, method_index: usize, pair: TrainedPair) {
        if self.job.is_some() {
            // A file picked before a run started arrives while it runs: that run goes on.
            return self.notify("A job is running: load the model again when it has finished.".into(), true);
        }
        let Some(result) = &self.settings.last_result else { return };
        let config = result.config.clone();
        self.live = LiveRun { total: config.path.points, ..LiveRun::default() };
        let target = self.device_target(config.flops_per_step());
        self.job = Some(Job::start(JobRequest::Reevaluate { config, method_index, pair }, target, wake(ctx)));
    }

    /// The loss plane through the selected method's A and B and a curve's control point.
    fn start_plane(&mut self, ctx: &egui::Context) {
        let Some(result) = &self.settings.last_result else { return };
        let Some(pair) = self.models.get(self.settings.method).cloned() else {
            return self.notify("The trained models are not in memory: press Run first.".into(), true);
        };
        let config = result.config.clone();
        if let Err(e) = self.settings.plane.validate() {
            return self.notify(e.to_string(), true);
        }
        self.live = LiveRun::default();
        let target = self.device_target(config.flops_per_step());
        let request = JobRequest::Plane { config, pair, plane: self.settings.plane.clone() };
        self.job = Some(Job::start(request, target, wake(ctx)));
    }

    /// Carries out what a view asked for.
    fn apply(&mut self, action: Action, ctx: &egui::Context) {
        match action {
            Action::Run => self.start_run(ctx),
            Action::RunFederated => self.start_federated(ctx),
            Action::RunPlane => self.start_plane(ctx),
            Action::Tour(TourAction::Go(index)) => self.enter_tour_step(index),
            Action::Tour(TourAction::Run) => self.run_tour_step(ctx),
            Action::Tour(TourAction::Leave) => self.leave_tour(),
            Action::Cancel => {
                if let Some(job) = &self.job {
                    job.cancel();
                }
            }
            Action::SavePlot { name, rect } => self.save_plot_png(ctx, &name, rect),
            Action::Export(export) => self.export(export),
            Action::LoadModel { method, slot } => {
                platform::pick_model(&self.model_inbox, &self.settings.model_path, method, slot, ctx);
            }
            Action::Dismiss(index) => {
                if index < self.notices.len() {
                    self.notices.remove(index);
                }
            }
        }
    }

    /// Saves the Files tab's `export` where this platform saves exports, with a notice.
    fn export(&mut self, export: Export) {
        let dir = PathBuf::from(&self.settings.export_dir);
        let Some(result) = &self.settings.last_result else { return };
        let outcome = match export {
            Export::Figures => crate::export::write_figures(&dir, result),
            Export::Results => crate::export::write_tables(&dir, result, None),
            Export::Models => crate::export::write_models(&dir, &self.models),
            Export::Merged { method, index } => {
                let (Some(pair), Some(m)) = (self.models.get(method), result.methods.get(method)) else { return };
                let alpha = m.path.get(index).map_or(0.5, |p| p.alpha);
                let file = format!("models/{}-merged-alpha{alpha:.2}.safetensors", m.name);
                pair.a
                    .interpolate(&pair.b, alpha)
                    .and_then(|merged| wsa_core::io::model_bytes(&merged))
                    .map_err(AppError::from)
                    .and_then(|bytes| platform::save_file(&dir, &file, &bytes))
                    .map(|()| vec![file])
            }
        };
        match outcome {
            Ok(names) => self.notify(platform::saved_notice(&names, &dir), false),
            Err(e) => self.notify(e.to_string(), true),
        }
    }

    /// Loads a model file the user handed over into its slot of a method's pair and
    /// re-evaluates the pair (B aligned to A again as the method says) in the background; what
    /// the loading converted or left out is said in a notice.
    fn load_model_into(&mut self, ctx: &egui::Context, picked: AppResult<PickedModel>) {
        let PickedModel { method, slot, origin, bytes } = match picked {
            Ok(picked) => picked,
            Err(e) => return self.notify(format!("The model was not loaded: {e}"), true),
        };
        let Some(pair) = self.models.get(method) else {
            return self.notify("Loading needs the trained pair in memory: press Run first.".into(), true);
        };
        // The engine's errors name the file and what is wrong with it.
        match wsa_core::io::params_from_safetensors(&bytes, &pair.a.layout, &origin) {
            Ok(model) => {
                let (a, b) = if slot == "A" { (model.params, pair.b.clone()) } else { (pair.a.clone(), model.params) };
                let pair = TrainedPair { method: pair.method, a, b };
                if let Some(notice) = model.report.notice() {
                    self.notify(format!("{}: {notice}", origin.display()), false);
                }
                self.start_reevaluation(ctx, method, pair);
            }
            Err(e) => self.notify(format!("Could not load {} into slot {slot}: {e}", origin.display()), true),
        }
    }

    /// Applies what the worker sent; called once per frame before drawing.
    pub fn poll_job(&mut self) {
        if let Ok(mut inbox) = self.inbox.lock() {
            self.notices.append(&mut inbox);
        }
        let Some(job) = &self.job else { return };
        let started = job.started;
        for message in job.drain() {
            match message {
                JobMessage::Device(label) => self.device_label = label,
                JobMessage::Restarted { device, failure } => {
                    // Same totals, no progress: the work starts over on the new device.
                    self.live = LiveRun {
                        total: self.live.total,
                        rounds_total: self.live.rounds_total,
                        timing: std::mem::take(&mut self.live.timing),
                        ..LiveRun::default()
                    };
                    self.notify(
                        format!("The GPU failed, so the run started again on the CPU. The GPU reported: {failure}"),
                        false,
                    );
                    self.device_label = device;
                }
                JobMessage::Event(Event::Stage(stage)) => {
                    self.live.timing.stages.push((stage.clone(), started.elapsed().as_secs_f64()));
                    self.live.stage = stage;
                }
                JobMessage::Event(Event::Epoch { pair, record, .. }) => self.live.epochs.push((pair, record)),
                JobMessage::Event(Event::PathPoint { .. }) => self.live.path_points_done += 1,
                JobMessage::Event(Event::PlaneRow { row, rows }) => {
                    self.live.stage = format!("loss plane: row {} of {rows}", row + 1);
                    (self.live.path_points_done, self.live.total) = (row + 1, rows);
                }
                JobMessage::Event(Event::Seed { index, total, seed }) => {
                    // The live curves show the seed in flight; the progress keeps the others.
                    self.live.epochs_of_earlier_seeds += self.live.epochs.len();
                    self.live.epochs.clear();
                    self.live.seed = Some((index, total, seed));
                }
                JobMessage::Event(Event::SeedResult(result)) => {
                    // The first seed's answer shows at once; later seeds widen the spread.
                    let shown = format!("shown: the result over {}", result.seeds_label());
                    self.live.timing.stages.push((shown, started.elapsed().as_secs_f64()));
                    let first = !self.live.showing_partial_result;
                    self.live.showing_partial_result = true;
                    self.show_connect_result(*result, Vec::new(), first);
                }
                JobMessage::Event(Event::Round { run, round, test_accuracy, .. }) => {
                    self.live.rounds.push((run, round, test_accuracy));
                }
                JobMessage::Finished(outcome) => {
                    self.finish(outcome);
                    return;
                }
            }
        }
    }

    /// Drops the loss plane and its selected point: the models it went through are gone.
    fn forget_plane(&mut self) {
        self.settings.plane_result = None;
        self.settings.plane_point = None;
        self.plane_third = None;
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
        self.models = models;
        self.settings.last_result = Some(result);
        if first {
            self.show_tour_step();
        }
    }

    fn finish(&mut self, outcome: AppResult<JobOutput>) {
        let cancelled = self.job.as_ref().is_some_and(Job::is_cancelling);
        if let Some(job) = self.job.take() {
            self.live.timing.seconds = job.started.elapsed().as_secs_f64();
        }
        self.derived.clear();
        match outcome {
            Ok(JobOutput::Connect(outcome)) => {
                let ConnectOutcome { result, models } = *outcome;
                for warning in &result.warnings {
                    self.notices.push(Notice { text: warning.clone(), is_error: false });
                }
                platform::publish_result(&result, &self.live.timing);
                let first = !self.live.showing_partial_result;
                self.show_connect_result(result, models, first);
            }
            Ok(JobOutput::Plane { method, outcome }) => {
                let PlaneOutcome { plane, third } = *outcome;
                platform::publish_plane(&plane, &self.live.timing);
                self.settings.plane_result = Some((method, plane));
                self.settings.plane_point = None;
                self.plane_third = Some(third);
                self.settings.tab = Tab::Plane;
            }
            Ok(JobOutput::Federated(outcome)) => {
                self.settings.fed_result = Some(outcome.result);
                self.settings.tab = Tab::Federated;
                self.show_tour_step();
            }
            Ok(JobOutput::Reevaluated { method_index, result, pair }) => {
                if let Some(last) = &mut self.settings.last_result
                    && let Some(slot) = last.methods.get_mut(method_index)
                {
                    *slot = *result;
                    // The loaded pair is no seed's: what is shown is that pair, not a spread.
                    last.seeds.clear();
                    self.settings.path_seed = None;
                }
                if self.settings.plane_result.as_ref().is_some_and(|(of, _)| *of == pair.method) {
                    self.forget_plane();
                }
                if let Some(slot) = self.models.get_mut(method_index) {
                    *slot = *pair;
                }
                self.notices.push(Notice { text: "The loaded pair was evaluated.".into(), is_error: false });
                if let Some(last) = &self.settings.last_result {
                    platform::publish_result(last, &self.live.timing);
                }
            }
            Err(_) if cancelled => self.notices.push(Notice { text: "Cancelled.".into(), is_error: false }),
            Err(e) => {
                platform::publish_failure(&e);
                self.notices.push(Notice { text: e.to_string(), is_error: true });
            }
        }
    }

    fn record_frame(&mut self, build_started: Instant) {
        let now = Instant::now();
        let interval = self.last_frame.map_or(0.0, |t| (now - t).as_secs_f32() * 1000.0);
        self.last_frame = Some(now);
        let build = (now - build_started).as_secs_f32() * 1000.0;
        self.frames.record(interval, build);
        if self.job.is_some() {
            self.live.timing.frame(f64::from(build), f64::from(interval));
        }
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
        if self.tour_plane_pending && self.job.is_none() {
            // The plane step's experiment is in (or failed): its plane follows.
            self.tour_plane_pending = false;
            let step = self.settings.tour.and_then(|i| self.tour.steps.get(i));
            if step.is_some_and(|s| s.is_answered_by(self.settings.last_result.as_ref(), None)) {
                self.start_plane(ctx);
            }
        }
        if self.job.is_none()
            && !self.tour_plane_pending
            && let Some(started) = self.tour_run_started.take()
            && self.tour_step_answered()
        {
            self.tour_run_seconds = Some(started.elapsed().as_secs_f64());
        }
        if platform::PUBLISHES_STATE {
            self.publish_tour();
        }
        self.warm_up_when_idle();
        platform::publish_state(&self.settings.config, self.settings.tour, self.job.is_some());
        self.derived.update(&self.settings, &self.models, self.plane_third.as_ref(), ctx);
        let picked = self.model_inbox.lock().map(|mut inbox| std::mem::take(&mut *inbox)).unwrap_or_default();
        for model in picked {
            self.load_model_into(ctx, model);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        // eframe calls `logic()` just before; without it (a caller that only draws) the frame
        // counts from here.
        let started = self.frame_started.take().unwrap_or_else(Instant::now);
        let view = View::new(
            &mut self.settings,
            &mut self.view_state,
            &self.live,
            self.job.as_ref(),
            &self.models,
            &self.derived,
            &self.notices,
            &self.frames,
            &self.device_label,
            &self.tour,
        );
        let actions = views::show(view, ui);
        for action in actions {
            self.apply(action, ui.ctx());
        }
        self.record_frame(started);
        if self.frame_log {
            ui.ctx().request_repaint();
        } else if self.job.is_some() {
            // Keep frames coming while work is in flight, so progress and frame times stay live,
            // at a capped rate (see LIVE_FRAME_INTERVAL).
            ui.ctx().request_repaint_after(LIVE_FRAME_INTERVAL);
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if let Ok(text) = serde_json::to_string(&self.settings) {
            storage.set_string(state::STORAGE_KEY, text);
        }
    }
}
