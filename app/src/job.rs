//! Background work: a connect experiment (or a re-evaluation of a pair) runs on a named thread;
//! the UI thread only reads what the worker sends through a bounded channel, and can cancel it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::time::Instant;
use wsa_core::device::{self, ComputeDevice, DeviceChoice};
use wsa_core::experiment::connect::{self, ConnectConfig, ConnectOutcome, TrainedPair, VariantResult};
use wsa_core::experiment::federated::{self, Aggregation, FedConfig, FedOutcome};
use wsa_core::experiment::{Event, Observer};
use wsa_core::model::HostParams;

/// What a job hands back when it ends.
pub enum JobOutput {
    Connect(Box<ConnectOutcome>),
    Federated(Box<FedOutcome>),
    /// A pair re-evaluated after a model was loaded into one of its slots.
    Reevaluated {
        variant_index: usize,
        result: Box<VariantResult>,
        pair: Box<TrainedPair>,
    },
}

pub enum JobMessage {
    Device(String),
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
    fn resolve(self) -> Result<ComputeDevice, String> {
        match self {
            DeviceTarget::Choose(choice, flops) => device::select_for(choice, flops).map_err(|e| e.to_string()),
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

/// Forwards events to the UI and wakes it; reports cancellation requests to the engine.
struct ChannelObserver {
    sender: SyncSender<JobMessage>,
    cancel: Arc<AtomicBool>,
    repaint: Box<dyn Fn() + Send>,
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
        self.cancel.load(Ordering::Relaxed)
    }
}

impl Job {
    fn spawn(
        label: &str,
        repaint: impl Fn() + Send + Clone + 'static,
        work: impl FnOnce(&mut ChannelObserver) -> Result<JobOutput, String> + Send + 'static,
    ) -> Self {
        // Bounded: a worker far ahead of a hidden window waits instead of piling up events.
        let (sender, receiver) = sync_channel(1024);
        let cancel = Arc::new(AtomicBool::new(false));
        let mut observer =
            ChannelObserver { sender: sender.clone(), cancel: Arc::clone(&cancel), repaint: Box::new(repaint.clone()) };
        let spawned = std::thread::Builder::new().name("wsa-lab-job".into()).spawn(move || {
            // A panic inside burn or a driver must not take the app down: it ends this job with
            // its message.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut observer)))
                .unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "unknown error".into());
                    Err(format!("the computation failed: {message}"))
                });
            let _ = sender.send(JobMessage::Finished(outcome));
            repaint();
        });
        let receiver = match spawned {
            Ok(_) => receiver,
            Err(e) => {
                // No thread: report the failure through the same channel the UI reads.
                let (sender, receiver) = sync_channel(1);
                let _ = sender.send(JobMessage::Finished(Err(format!("could not start a worker thread: {e}"))));
                receiver
            }
        };
        Self { label: label.to_string(), started: Instant::now(), receiver, cancel }
    }

    /// Compiles the GPU kernels `config` will need, on a detached background thread, so that
    /// the first Run does not wait for them (`wsa_core::experiment::warm_up`). No UI state: a
    /// failure here is left for the real run to report.
    pub fn warm_up(config: ConnectConfig, target: DeviceTarget) {
        let _ = std::thread::Builder::new().name("wsa-lab-warm-up".into()).spawn(move || {
            let _ = std::panic::catch_unwind(move || {
                if let Ok(device) = target.resolve() {
                    let _ = wsa_core::wait(wsa_core::experiment::warm_up(&config, &device));
                }
            });
        });
    }

    /// Trains and evaluates a connect experiment.
    pub fn connect(config: ConnectConfig, target: DeviceTarget, repaint: impl Fn() + Send + Clone + 'static) -> Self {
        Self::spawn("training", repaint, move |observer| {
            let device = target.resolve()?;
            let _ = observer.sender.send(JobMessage::Device(device.description.clone()));
            let outcome = wsa_core::wait(connect::run(&config, &device, observer)).map_err(|e| e.to_string())?;
            Ok(JobOutput::Connect(Box::new(outcome)))
        })
    }

    /// Runs federated learning for each (aggregation, with WSA) variant.
    pub fn federated(
        config: FedConfig,
        variants: Vec<(Aggregation, bool)>,
        target: DeviceTarget,
        repaint: impl Fn() + Send + Clone + 'static,
    ) -> Self {
        Self::spawn("federated training", repaint, move |observer| {
            let device = target.resolve()?;
            let _ = observer.sender.send(JobMessage::Device(device.description.clone()));
            let outcome =
                wsa_core::wait(federated::run(&config, &variants, &device, observer)).map_err(|e| e.to_string())?;
            Ok(JobOutput::Federated(Box::new(outcome)))
        })
    }

    /// Re-evaluates pair `variant_index` with new endpoints.
    #[allow(clippy::too_many_arguments)]
    pub fn reevaluate(
        config: ConnectConfig,
        target: DeviceTarget,
        variant_index: usize,
        name: String,
        lambda: f64,
        a: HostParams,
        b: HostParams,
        repaint: impl Fn() + Send + Clone + 'static,
    ) -> Self {
        Self::spawn("evaluating the loaded pair", repaint, move |observer| {
            let device = target.resolve()?;
            let (result, pair) =
                wsa_core::wait(connect::evaluate_pair(&config, &device, &name, lambda, &a, &b, observer))
                    .map_err(|e| e.to_string())?;
            Ok(JobOutput::Reevaluated { variant_index, result: Box::new(result), pair: Box::new(pair) })
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
