//! Background work: a connect experiment (or a re-evaluation of a pair) runs as a future that
//! natively blocks a named thread and in a browser is a task of the page's event loop, yielding
//! to the page after every step (`Observer::pause`). The UI only reads what the work sends
//! through a channel, and can cancel it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use web_time::Instant;
use wsa_core::WsaError;
use wsa_core::device::{ComputeDevice, DeviceChoice, DeviceFault};
use wsa_core::experiment::connect::{self, ConnectConfig, ConnectOutcome, MethodResult, TrainedPair};
use wsa_core::experiment::federated::{self, Aggregation, FedConfig, FedOutcome};
use wsa_core::experiment::{Event, Observer};

/// The work of a job, started where it runs.
type Work = Pin<Box<dyn Future<Output = Result<JobOutput, String>>>>;

// Natively the channel is bounded: a worker far ahead of a hidden window waits instead of piling
// up events. In a browser the work shares the page's only thread, so a full channel could never
// drain: there it is unbounded (and a hidden page throttles the work's timers anyway).
#[cfg(not(target_arch = "wasm32"))]
type EventSender = std::sync::mpsc::SyncSender<JobMessage>;
#[cfg(not(target_arch = "wasm32"))]
fn event_channel() -> (EventSender, Receiver<JobMessage>) {
    std::sync::mpsc::sync_channel(1024)
}
#[cfg(target_arch = "wasm32")]
type EventSender = std::sync::mpsc::Sender<JobMessage>;
#[cfg(target_arch = "wasm32")]
fn event_channel() -> (EventSender, Receiver<JobMessage>) {
    std::sync::mpsc::channel()
}

/// What a job hands back when it ends.
pub enum JobOutput {
    Connect(Box<ConnectOutcome>),
    Federated(Box<FedOutcome>),
    /// A method's pair re-evaluated after a model was loaded into one of its slots.
    Reevaluated {
        method_index: usize,
        result: Box<MethodResult>,
        pair: Box<TrainedPair>,
    },
}

pub enum JobMessage {
    Device(String),
    /// The GPU failed (`failure`, whole) and the work starts again on `device`: drop the progress.
    Restarted {
        device: String,
        failure: String,
    },
    Event(Event),
    Finished(Result<JobOutput, String>),
}

/// Where a job computes: a device to choose on the worker, or the GPU device shared with the
/// renderer.
pub enum DeviceTarget {
    /// A choice to resolve for a run of this much work per training step (see `select_for`).
    Choose(DeviceChoice, Option<f64>),
    Shared(ComputeDevice),
}

impl DeviceTarget {
    async fn resolve(self) -> Result<ComputeDevice, String> {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            DeviceTarget::Choose(choice, flops) => {
                wsa_core::device::select_for(choice, flops).map_err(|e| e.to_string())
            }
            #[cfg(target_arch = "wasm32")]
            DeviceTarget::Choose(choice, flops) => Ok(crate::web::device(choice, flops).await),
            DeviceTarget::Shared(device) => Ok(device),
        }
    }
}

/// The UI's handle on the running job.
pub struct Job {
    pub label: String,
    pub started: Instant,
    receiver: Receiver<JobMessage>,
    cancel: Arc<AtomicBool>,
}

/// Forwards events to the UI and wakes it; reports cancellation requests, and a fault of the
/// device the work runs on, to the engine.
struct ChannelObserver {
    sender: EventSender,
    cancel: Arc<AtomicBool>,
    repaint: Box<dyn Fn() + Send>,
    device_fault: DeviceFault,
}

impl Observer for ChannelObserver {
    fn on_event(&mut self, event: &Event) {
        // A closed channel means the UI dropped the job: stop at the next check.
        if self.sender.send(JobMessage::Event(event.clone())).is_err() {
            self.cancel.store(true, Ordering::Relaxed);
        }
        (self.repaint)();
    }

    fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.device_fault.reason().is_some()
    }

    #[cfg(target_arch = "wasm32")]
    fn pause(&mut self) -> wsa_core::experiment::Pause<'_> {
        Box::pin(crate::web::yield_to_page())
    }
}

/// Runs `work` on `device` and, when that is a GPU which failed during it, once more on the
/// CPU: a device error (a lost device), or an error the GPU reported on its own (a kernel that
/// failed validation; whatever the device computed since cannot be trusted). The UI is told
/// which device runs the work, and why it changed.
async fn with_cpu_fallback<T>(
    device: ComputeDevice,
    observer: &mut ChannelObserver,
    mut work: impl AsyncFnMut(&ComputeDevice, &mut ChannelObserver) -> wsa_core::Result<T>,
) -> Result<T, String> {
    let _ = observer.sender.send(JobMessage::Device(device.description.clone()));
    observer.device_fault = device.fault.clone();
    let outcome = work(&device, observer).await;
    observer.device_fault = DeviceFault::default();
    let failure = match (device.fault.reason(), &outcome) {
        (Some(reason), _) => reason.to_string(),
        (None, Err(WsaError::Device(message))) if device.is_gpu => {
            // Lost devices stay lost: later jobs should not be handed this one again.
            device.fault.record(message.clone());
            message.clone()
        }
        _ => return outcome.map_err(|e| e.to_string()),
    };
    // The device line gets the first line; browsers add the call chain below it.
    let first_line = failure.lines().next().unwrap_or_default().trim();
    let mut cpu = wsa_core::device::cpu();
    cpu.description =
        format!("{} — the GPU failed during the run, which restarted here ({first_line})", cpu.description);
    let _ = observer.sender.send(JobMessage::Restarted { device: cpu.description.clone(), failure });
    work(&cpu, observer).await.map_err(|e| e.to_string())
}

impl Job {
    /// Starts `work` in the background. `work` gets the observer and builds the future there
    /// (natively on the worker thread: the future holds tensors and need not be `Send`).
    fn spawn(
        label: &str,
        repaint: impl Fn() + Send + Clone + 'static,
        work: impl FnOnce(ChannelObserver) -> Work + Send + 'static,
    ) -> Self {
        let (sender, receiver) = event_channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let observer = ChannelObserver {
            sender: sender.clone(),
            cancel: Arc::clone(&cancel),
            repaint: Box::new(repaint.clone()),
            device_fault: DeviceFault::default(),
        };
        let finish = move |outcome: Result<JobOutput, String>| {
            let _ = sender.send(JobMessage::Finished(outcome));
            repaint();
        };
        #[cfg(not(target_arch = "wasm32"))]
        let receiver = {
            let spawned = std::thread::Builder::new().name("wsa-lab-job".into()).spawn(move || {
                // A panic inside burn or a driver must not take the app down: it ends this job
                // with its message.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wsa_core::wait(work(observer))))
                    .unwrap_or_else(|panic| {
                        let message = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "unknown error".into());
                        Err(format!("the computation failed: {message}"))
                    });
                finish(outcome);
            });
            match spawned {
                Ok(_) => receiver,
                Err(e) => {
                    // No thread: report the failure through the same channel the UI reads.
                    let (sender, receiver) = event_channel();
                    let _ = sender.send(JobMessage::Finished(Err(format!("could not start a worker thread: {e}"))));
                    receiver
                }
            }
        };
        #[cfg(target_arch = "wasm32")]
        wasm_bindgen_futures::spawn_local(async move { finish(work(observer).await) });
        Self { label: label.to_string(), started: Instant::now(), receiver, cancel }
    }

    /// Compiles the GPU kernels `config` will need, on a detached background thread, so that
    /// the first Run does not wait for them (`wsa_core::experiment::warm_up`). No UI state: a
    /// failure here is left for the real run to report.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn warm_up(config: ConnectConfig, target: DeviceTarget) {
        let _ = std::thread::Builder::new().name("wsa-lab-warm-up".into()).spawn(move || {
            let _ = std::panic::catch_unwind(move || {
                wsa_core::wait(async {
                    if let Ok(device) = target.resolve().await {
                        let _ = wsa_core::experiment::warm_up(&config, &device).await;
                    }
                })
            });
        });
    }

    /// In a browser the warm-up would share the page's thread with the UI, without a step to
    /// yield at: the first run compiles its kernels instead.
    #[cfg(target_arch = "wasm32")]
    pub fn warm_up(_config: ConnectConfig, _target: DeviceTarget) {}

    /// Trains and evaluates a connect experiment.
    pub fn connect(config: ConnectConfig, target: DeviceTarget, repaint: impl Fn() + Send + Clone + 'static) -> Self {
        Self::spawn("training", repaint, move |mut observer| {
            Box::pin(async move {
                let device = target.resolve().await?;
                let outcome = with_cpu_fallback(device, &mut observer, async |device, observer| {
                    connect::run(&config, device, observer).await
                })
                .await?;
                Ok(JobOutput::Connect(Box::new(outcome)))
            })
        })
    }

    /// Runs federated learning for each (aggregation, with WSA) variant.
    pub fn federated(
        config: FedConfig,
        variants: Vec<(Aggregation, bool)>,
        target: DeviceTarget,
        repaint: impl Fn() + Send + Clone + 'static,
    ) -> Self {
        Self::spawn("federated training", repaint, move |mut observer| {
            Box::pin(async move {
                let device = target.resolve().await?;
                let outcome = with_cpu_fallback(device, &mut observer, async |device, observer| {
                    federated::run(&config, &variants, device, observer).await
                })
                .await?;
                Ok(JobOutput::Federated(Box::new(outcome)))
            })
        })
    }

    /// Re-evaluates method `method_index` with new endpoints `pair` (B aligned to A again as
    /// the method says).
    pub fn reevaluate(
        config: ConnectConfig,
        target: DeviceTarget,
        method_index: usize,
        pair: TrainedPair,
        repaint: impl Fn() + Send + Clone + 'static,
    ) -> Self {
        Self::spawn("evaluating the loaded pair", repaint, move |mut observer| {
            Box::pin(async move {
                let device = target.resolve().await?;
                let (result, pair) = with_cpu_fallback(device, &mut observer, async |device, observer| {
                    connect::evaluate_pair(&config, device, pair.method, &pair.a, &pair.b, observer).await
                })
                .await?;
                Ok(JobOutput::Reevaluated { method_index, result: Box::new(result), pair: Box::new(pair) })
            })
        })
    }

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
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
                    out.push(JobMessage::Finished(Err("the worker stopped without a result".into())));
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
