//! Background work. A job is a plain request ([`JobRequest`]: a config, and the models a
//! re-evaluation starts from) carried out by [`run`]: natively on a thread of its own, in a
//! browser in the page's worker (`web::worker`, a second instance of the same module), so that
//! training never shares a thread with drawing. Either way the UI only reads the messages the
//! work sends through a channel, and can cancel it. Requests, outputs and messages are serde:
//! the page's worker protocol (`wire`) posts them as they are.

// Natively jobs run on threads, and only the tests use the worker protocol.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub mod wire;

use crate::error::{AppError, AppResult};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use web_time::Instant;
use wsa_core::cancel::Cancel;
use wsa_core::data::{DataConfig, FileSource, Memory};
use wsa_core::device::{ComputeDevice, DeviceChoice, DeviceFault};
use wsa_core::experiment::connect::{self, ConnectConfig, ConnectOutcome, GivenPair, MethodResult, TrainedPair};
use wsa_core::experiment::federated::{self, Aggregation, FedConfig, FedOutcome};
use wsa_core::experiment::method::Method;
use wsa_core::experiment::plane::{PlaneConfig, PlaneOutcome};
use wsa_core::experiment::{Event, Observer};
use wsa_core::model::HostParams;

/// What a job is asked to do: plain data, so that it can be handed to a thread or posted to the
/// page's worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum JobRequest {
    /// Train and evaluate a connect experiment.
    Connect(ConnectConfig),
    /// Federated learning, one run per (aggregation, with WSA) variant.
    Federated { config: FedConfig, variants: Vec<(Aggregation, bool)> },
    /// Re-evaluate method `method_index` with new endpoints `pair` (B aligned to A again as the
    /// method says).
    Reevaluate { config: ConnectConfig, method_index: usize, pair: TrainedPair },
    /// The loss plane through `pair`'s A and B and a curve's control point trained between them.
    Plane { config: ConnectConfig, pair: TrainedPair, plane: PlaneConfig },
    /// Evaluate two models the user brought with `config`'s methods (none that trains) on
    /// `config`'s data: its files read from `files` where the page holds them (the worker has
    /// no other copy), else from the disk.
    GivenPair { config: ConnectConfig, pair: GivenPair, files: Option<Memory> },
    /// The model at `alpha` on `pair`'s path, to be saved as `file` (`connect::merged_model`:
    /// a model with BatchNorm needs the training data to re-estimate its statistics; its files
    /// read from `files` where the page holds them).
    MergedModel { config: ConnectConfig, pair: TrainedPair, alpha: f64, file: String, files: Option<Memory> },
}

impl JobRequest {
    /// What the progress line calls the job.
    pub fn label(&self) -> &'static str {
        match self {
            JobRequest::Connect(_) => "training",
            JobRequest::Federated { .. } => "federated training",
            JobRequest::Reevaluate { .. } => "evaluating the loaded pair",
            JobRequest::Plane { .. } => "computing the loss plane",
            JobRequest::GivenPair { .. } => "evaluating your pair",
            JobRequest::MergedModel { .. } => "merging the model to save",
        }
    }

    /// The work of one training step, which the device is chosen for (`select_for`): from the
    /// models in hand where the job has them (asking the config would read a user's data file
    /// on the UI thread to learn its shape).
    pub fn flops_per_step(&self) -> Option<f64> {
        let of = |layout: &wsa_core::model::ModelLayout, config: &ConnectConfig| {
            Some(layout.training_flops_per_sample() * config.train.batch_size as f64)
        };
        match self {
            JobRequest::Connect(config) => config.flops_per_step(),
            JobRequest::Reevaluate { config, pair, .. }
            | JobRequest::Plane { config, pair, .. }
            | JobRequest::MergedModel { config, pair, .. } => of(&pair.a.layout, config),
            JobRequest::GivenPair { config, pair, .. } => of(pair.layout(), config),
            JobRequest::Federated { config, .. } => config.flops_per_step(),
        }
    }

    /// The data the job trains or evaluates on.
    pub fn data(&self) -> &DataConfig {
        match self {
            JobRequest::Connect(config)
            | JobRequest::Reevaluate { config, .. }
            | JobRequest::Plane { config, .. }
            | JobRequest::GivenPair { config, .. }
            | JobRequest::MergedModel { config, .. } => &config.data,
            JobRequest::Federated { config, .. } => &config.data,
        }
    }
}

/// What a job hands back when it ends.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub enum JobOutput {
    Connect(Box<ConnectOutcome>),
    Federated(Box<FedOutcome>),
    /// A method's pair re-evaluated after a model was loaded into one of its slots.
    Reevaluated {
        method_index: usize,
        result: Box<MethodResult>,
        pair: Box<TrainedPair>,
    },
    /// A merged model to save as `file`.
    MergedModel {
        file: String,
        model: Box<HostParams>,
    },
    /// The loss plane of a method's pair, with the third model it goes through.
    Plane {
        method: Method,
        outcome: Box<PlaneOutcome>,
    },
}

/// What the work tells the UI while a job runs, and how it ended.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub enum JobMessage {
    Device(String),
    /// The GPU failed (`failure`, whole) and the work starts again on `device`: drop the progress.
    Restarted {
        device: String,
        failure: String,
    },
    Event(Event),
    Finished(AppResult<JobOutput>),
}

/// Where a job computes.
pub enum DeviceTarget {
    /// A choice to resolve for a run of this much work per training step (see `select_for`).
    Choose(DeviceChoice, Option<f64>),
    /// The GPU device shared with the renderer (natively, where eframe draws with wgpu).
    #[cfg(not(target_arch = "wasm32"))]
    Shared(ComputeDevice),
}

impl DeviceTarget {
    pub(crate) async fn resolve(self) -> AppResult<ComputeDevice> {
        match self {
            DeviceTarget::Choose(choice, flops) => crate::platform::choose_device(choice, flops).await,
            #[cfg(not(target_arch = "wasm32"))]
            DeviceTarget::Shared(device) => Ok(device),
        }
    }
}

/// How the work tells the UI that something arrived: `true` when the job finished (draw now),
/// `false` for progress (a frame soon is enough: the UI draws live progress at a capped rate).
pub type Wake = Arc<dyn Fn(bool) + Send + Sync>;

/// The work's side of a job: forwards events to the UI, reports a Cancel and a fault of the
/// device the work runs on to the engine.
pub struct JobObserver {
    /// Hands a message to the UI; `false` when nobody listens any more.
    send: Box<dyn FnMut(JobMessage) -> bool>,
    cancel: Arc<AtomicBool>,
    device_fault: DeviceFault,
    /// When the work last handed its thread back (`platform::pause`).
    last_yield: Instant,
}

impl JobObserver {
    pub fn new(send: Box<dyn FnMut(JobMessage) -> bool>, cancel: Arc<AtomicBool>) -> Self {
        Self { send, cancel, device_fault: DeviceFault::default(), last_yield: Instant::now() }
    }

    /// Sends `message`; a closed channel means the UI dropped the job: stop at the next check.
    pub fn send(&mut self, message: JobMessage) {
        if !(self.send)(message) {
            self.cancel.store(true, Ordering::Relaxed);
        }
    }
}

impl Observer for JobObserver {
    fn on_event(&mut self, event: &Event) {
        self.send(JobMessage::Event(event.clone()));
    }
}

impl Cancel for JobObserver {
    fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.device_fault.reason().is_some()
    }

    fn pause(&mut self) -> wsa_core::cancel::Pause<'_> {
        crate::platform::pause(&mut self.last_yield)
    }
}

/// Runs `work` on `device` and, when that is a GPU which failed during it, once more on the
/// CPU: a device error (a lost device), or an error the GPU reported on its own (a kernel that
/// failed validation; whatever the device computed since cannot be trusted). The UI is told
/// which device runs the work, and why it changed.
async fn with_cpu_fallback<T>(
    device: ComputeDevice,
    observer: &mut JobObserver,
    mut work: impl AsyncFnMut(&ComputeDevice, &mut JobObserver) -> wsa_core::Result<T>,
) -> AppResult<T> {
    observer.send(JobMessage::Device(device.description.clone()));
    observer.device_fault = device.fault.clone();
    let outcome = work(&device, observer).await;
    observer.device_fault = DeviceFault::default();
    let failure = match (device.fault.reason(), &outcome) {
        (Some(reason), _) => reason.to_string(),
        // Only a failure of the device itself: a bad file or config fails the same anywhere.
        (None, Err(error)) if device.is_gpu && error.is_device_failure() => {
            // Lost devices stay lost: later jobs should not be handed this one again.
            let message = error.to_string();
            device.fault.record(message.clone());
            message
        }
        _ => return Ok(outcome?),
    };
    // The device line gets the first line; browsers add the call chain below it.
    let first_line = failure.lines().next().unwrap_or_default().trim();
    let mut cpu = wsa_core::device::cpu();
    cpu.description =
        format!("{} — the GPU failed during the run, which restarted here ({first_line})", cpu.description);
    observer.send(JobMessage::Restarted { device: cpu.description.clone(), failure });
    Ok(work(&cpu, observer).await?)
}

/// Carries out `request` on `target`, reporting to `observer`: the same on a native thread and
/// in the page's worker.
pub async fn run(request: JobRequest, target: DeviceTarget, observer: &mut JobObserver) -> AppResult<JobOutput> {
    // Asking a browser for a WebGPU adapter can take a moment: say so rather than nothing.
    observer.on_event(&Event::Stage("choosing the device".into()));
    let device = target.resolve().await?;
    match request {
        JobRequest::Connect(config) => {
            let outcome = with_cpu_fallback(device, observer, async |device, observer| {
                connect::run(&config, device, observer).await
            })
            .await?;
            Ok(JobOutput::Connect(Box::new(outcome)))
        }
        JobRequest::Federated { config, variants } => {
            let outcome = with_cpu_fallback(device, observer, async |device, observer| {
                federated::run(&config, &variants, device, observer).await
            })
            .await?;
            Ok(JobOutput::Federated(Box::new(outcome)))
        }
        JobRequest::Reevaluate { config, method_index, pair } => {
            let (result, pair) = with_cpu_fallback(device, observer, async |device, observer| {
                connect::evaluate_pair(&config, device, pair.method, &pair.a, &pair.b, observer).await
            })
            .await?;
            Ok(JobOutput::Reevaluated { method_index, result: Box::new(result), pair: Box::new(pair) })
        }
        JobRequest::Plane { config, pair, plane } => {
            let computed = with_cpu_fallback(device, observer, async |device, observer| {
                wsa_core::experiment::plane::through_curve(&config, &pair, &plane, device, observer).await
            })
            .await?;
            Ok(JobOutput::Plane { method: pair.method, outcome: Box::new(computed) })
        }
        JobRequest::GivenPair { config, pair, files } => {
            let source = files_of(files);
            let source = source.as_ref();
            let outcome = with_cpu_fallback(device, observer, async |device, observer| {
                connect::evaluate_given_pair(&config, device, &pair, source, observer).await
            })
            .await?;
            Ok(JobOutput::Connect(Box::new(outcome)))
        }
        JobRequest::MergedModel { config, pair, alpha, file, files } => {
            let source = files_of(files);
            let source = source.as_ref();
            let model = with_cpu_fallback(device, observer, async |device, _observer| {
                connect::merged_model(&config, device, &pair, alpha, source).await
            })
            .await?;
            Ok(JobOutput::MergedModel { file, model: Box::new(model) })
        }
    }
}

/// Where a job reads its data files: those it carries (the page's copy of the user's files, which
/// the worker also keeps for the plane and the re-evaluations that follow: `platform::keep_files`),
/// else where `data::load` reads them (the disk natively, the files the worker kept in the page).
fn files_of(carried: Option<Memory>) -> Box<dyn FileSource> {
    match carried {
        Some(memory) => {
            crate::platform::keep_files(&memory);
            Box::new(memory)
        }
        None => wsa_core::data::default_files(),
    }
}

/// The UI's handle on the running job.
pub struct Job {
    pub label: String,
    pub started: Instant,
    receiver: Receiver<JobMessage>,
    cancel: Arc<AtomicBool>,
    /// Where the work runs (`platform::start_job`), which a Cancel reaches.
    worker: crate::platform::JobWorker,
}

impl Job {
    /// Starts `request` where this platform runs jobs (`platform::start_job`: a thread of its
    /// own natively, the page's worker in a browser).
    pub fn start(request: JobRequest, target: DeviceTarget, wake: Wake) -> Self {
        let label = request.label().to_string();
        let cancel = Arc::new(AtomicBool::new(false));
        let (receiver, worker) = crate::platform::start_job(request, target, wake, Arc::clone(&cancel));
        Self { label, started: Instant::now(), receiver, cancel, worker }
    }

    /// Compiles the GPU kernels `config` will need in the background, so that the first Run
    /// does not wait for them (`platform::warm_up`).
    pub fn warm_up(config: ConnectConfig, target: DeviceTarget) {
        crate::platform::warm_up(config, target);
    }

    /// Asks the work to stop. In a browser the job ends for the UI at once (the worker drops
    /// what it was doing at its next yield, and what it still sends is ignored).
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
        crate::platform::cancel_job(&self.worker);
    }

    pub fn is_cancelling(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Everything the worker sent since the last call, without waiting.
    pub fn drain(&self) -> Vec<JobMessage> {
        let mut out = Vec::new();
        loop {
            match self.receiver.try_recv() {
                Ok(message @ JobMessage::Finished(_)) => {
                    out.push(message);
                    return out;
                }
                Ok(message) => out.push(message),
                Err(TryRecvError::Empty) => return out,
                Err(TryRecvError::Disconnected) => {
                    out.push(JobMessage::Finished(Err(AppError::Worker("it stopped without a result".into()))));
                    return out;
                }
            }
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use wsa_core::WsaError;
    use wsa_core::wsa::TargetSource;

    /// A bad file is the user's to fix, not the GPU's fault: the job fails with the file's
    /// error on the GPU it was given, nothing restarts on the CPU, and the GPU stays usable.
    /// Ignored unless asked for (`--include-ignored`, as `.ci/run` does); asked for, it fails
    /// without a GPU adapter.
    #[test]
    #[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
    fn a_corrupt_model_file_leaves_the_gpu_in_use() {
        let gpu = wsa_core::device::select(DeviceChoice::Gpu).unwrap_or_else(|e| panic!("no GPU adapter: {e}"));
        let dir = std::env::temp_dir().join(format!("wsa-lab-job-corrupt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let corrupt = dir.join("reference.safetensors");
        std::fs::write(&corrupt, b"\x10\x00\x00\x00\x00\x00\x00\x00{\"broken\": ").expect("write");
        let mut config = ConnectConfig::default();
        config.train.epochs = 1;
        config.data.max_train = Some(100);
        config.wsa.target = TargetSource::Reference { model: Some(corrupt) };
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&messages);
        let send = move |message| sink.lock().map(|mut m| m.push(message)).is_ok();
        let mut observer = JobObserver::new(Box::new(send), Arc::default());
        let target = DeviceTarget::Shared(gpu.clone());
        let error =
            wsa_core::wait(run(JobRequest::Connect(config), target, &mut observer)).expect_err("a corrupt file");
        std::fs::remove_dir_all(&dir).ok();
        assert!(
            matches!(&error, AppError::Engine(WsaError::CorruptModel { path, .. }) if path.ends_with("reference.safetensors")),
            "{error}"
        );
        let messages = messages.lock().expect("messages");
        assert!(!messages.iter().any(|m| matches!(m, JobMessage::Restarted { .. })), "moved to the CPU: {messages:?}");
        assert!(messages.contains(&JobMessage::Device(gpu.description.clone())), "{messages:?}");
        assert_eq!(gpu.fault.reason(), None, "the GPU was marked as failed");
    }
}
