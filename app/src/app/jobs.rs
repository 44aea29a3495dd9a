//! The job controller: the background job's lifecycle (start it on the right device, poll its
//! messages, cancel it, hand over how it ended) and the live run its events build, which the
//! views draw while it runs. What a finished job's result means for the app is the app's to
//! decide: [`Jobs::poll`] hands it over as a [`JobUpdate`].

use super::Notice;
use crate::AppResult;
use crate::job::{Job, JobMessage, JobOutput, JobRequest, Wake};
use crate::platform;
use wsa_core::device::DeviceChoice;
use wsa_core::experiment::Event;
use wsa_core::experiment::connect::{ConnectConfig, ConnectResult, EpochRecord};
use wsa_core::experiment::method::Training;

/// The time between frames while a job runs and nothing else asks for one (input still draws at
/// once): 10 per second keep the curves live, and in a browser without a GPU, where a frame is
/// drawn in software on the cores the training needs, 30 per second left the page's thread
/// too busy to take a click for seconds.
pub const LIVE_FRAME_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

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
    /// The progress of `request` before it began: how much work it has in all.
    fn of(request: &JobRequest) -> Self {
        match request {
            JobRequest::Connect(config) => LiveRun { total: config.progress_total(), ..LiveRun::default() },
            JobRequest::Federated { config, variants } => {
                LiveRun { rounds_total: config.rounds * variants.len() * config.seeds, ..LiveRun::default() }
            }
            JobRequest::Reevaluate { config, .. } => LiveRun { total: config.path.points, ..LiveRun::default() },
            JobRequest::Plane { .. } => LiveRun::default(),
            JobRequest::MergedModel { .. } => LiveRun::default(),
            JobRequest::GivenPair { config, .. } => {
                LiveRun { total: config.path.points * config.methods.len(), ..LiveRun::default() }
            }
        }
    }

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

/// What a poll hands the app, in the order the job sent it.
pub enum JobUpdate {
    /// Something for the user to know (the GPU failed and the run started again on the CPU).
    Notice(Notice),
    /// The result of the seeds of a connect run finished so far; `first` for the first of the run.
    PartialResult { result: Box<ConnectResult>, first: bool },
    /// The job ended: with its output, its error, or cancelled by the user (`cancelled`).
    Finished { outcome: AppResult<JobOutput>, cancelled: bool },
}

/// The background job, at most one at a time, and its live run.
pub struct Jobs {
    job: Option<Job>,
    pub live: LiveRun,
    /// The device the last job computed on, as it describes itself.
    pub device_label: String,
    /// The renderer's GPU, which GPU jobs share natively.
    gpu: platform::RendererGpu,
    /// The device, model, data and batch the GPU kernels were last warmed up for.
    warmed_for: Option<String>,
}

impl Jobs {
    pub fn new(gpu: platform::RendererGpu) -> Self {
        Self { job: None, live: LiveRun::default(), device_label: String::new(), gpu, warmed_for: None }
    }

    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    /// The job in flight.
    pub fn job(&self) -> Option<&Job> {
        self.job.as_ref()
    }

    /// Starts `request` on `device` in the background, unless a job runs; returns a notice
    /// when the renderer's GPU could not be shared (`platform::RendererGpu::target`).
    pub fn start(&mut self, request: JobRequest, device: DeviceChoice, ctx: &egui::Context) -> Option<Notice> {
        if self.job.is_some() {
            return None;
        }
        self.live = LiveRun::of(&request);
        let (target, notice) = self.gpu.target(device, request.flops_per_step());
        self.job = Some(Job::start(request, target, wake(ctx)));
        notice.map(|text| Notice { text, is_error: false })
    }

    /// While nothing runs, compiles the GPU kernels of `config` in the background whenever its
    /// device, model, data or batch size changed: the first step on a GPU otherwise waits
    /// seconds for them (docs/benchmarks.md). Only when a GPU would be used.
    pub fn warm_up_when_idle(&mut self, device: DeviceChoice, config: &ConnectConfig) -> Option<Notice> {
        let signature = format!("{device:?} {:?} {:?} {}", config.model, config.data.dataset, config.train.batch_size);
        if self.job.is_some() || self.warmed_for.as_ref() == Some(&signature) {
            return None;
        }
        self.warmed_for = Some(signature);
        if device == DeviceChoice::Cpu || config.validate().is_err() {
            return None;
        }
        let (target, notice) = self.gpu.target(device, config.flops_per_step());
        Job::warm_up(config.clone(), target);
        notice.map(|text| Notice { text, is_error: false })
    }

    /// Asks the job in flight to stop.
    pub fn cancel(&self) {
        if let Some(job) = &self.job {
            job.cancel();
        }
    }

    /// Takes in what the job sent since the last poll: its progress goes into the live run,
    /// what concerns the app is handed back.
    pub fn poll(&mut self) -> Vec<JobUpdate> {
        let Some(job) = &self.job else { return Vec::new() };
        let started = job.started;
        let mut updates = Vec::new();
        for message in job.drain() {
            let live = &mut self.live;
            match message {
                JobMessage::Device(label) => self.device_label = label,
                JobMessage::Restarted { device, failure } => {
                    // Same totals, no progress: the work starts over on the new device.
                    *live = LiveRun {
                        total: live.total,
                        rounds_total: live.rounds_total,
                        timing: std::mem::take(&mut live.timing),
                        ..LiveRun::default()
                    };
                    updates.push(JobUpdate::Notice(Notice {
                        text: format!(
                            "The GPU failed, so the run started again on the CPU. The GPU reported: {failure}"
                        ),
                        is_error: false,
                    }));
                    self.device_label = device;
                }
                JobMessage::Event(Event::Stage(stage)) => {
                    live.timing.stages.push((stage.clone(), started.elapsed().as_secs_f64()));
                    live.stage = stage;
                }
                JobMessage::Event(Event::Epoch { pair, record, .. }) => live.epochs.push((pair, record)),
                JobMessage::Event(Event::PathPoint { .. }) => live.path_points_done += 1,
                JobMessage::Event(Event::PlaneRow { row, rows }) => {
                    live.stage = format!("loss plane: row {} of {rows}", row + 1);
                    (live.path_points_done, live.total) = (row + 1, rows);
                }
                JobMessage::Event(Event::Seed { index, total, seed }) => {
                    // The live curves show the seed in flight; the progress keeps the others.
                    live.epochs_of_earlier_seeds += live.epochs.len();
                    live.epochs.clear();
                    live.seed = Some((index, total, seed));
                }
                JobMessage::Event(Event::SeedResult(result)) => {
                    // The first seed's answer shows at once; later seeds widen the spread.
                    let shown = format!("shown: the result over {}", result.seeds_label());
                    live.timing.stages.push((shown, started.elapsed().as_secs_f64()));
                    let first = !live.showing_partial_result;
                    live.showing_partial_result = true;
                    updates.push(JobUpdate::PartialResult { result, first });
                }
                JobMessage::Event(Event::Round { run, round, test_accuracy, .. }) => {
                    live.rounds.push((run, round, test_accuracy));
                }
                JobMessage::Finished(outcome) => {
                    let cancelled = job.is_cancelling();
                    self.live.timing.seconds = started.elapsed().as_secs_f64();
                    self.job = None;
                    updates.push(JobUpdate::Finished { outcome, cancelled });
                    break;
                }
            }
        }
        updates
    }

    /// Counts a frame drawn while a job runs into its timing.
    pub fn record_frame(&mut self, build_ms: f64, interval_ms: f64) {
        if self.job.is_some() {
            self.live.timing.frame(build_ms, interval_ms);
        }
    }
}
