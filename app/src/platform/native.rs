//! The desktop: exports are files written atomically into the export folder, figures PNGs drawn
//! here, model files read from a typed path.

use super::{ModelInbox, PickedModel};
use crate::AppError;
use crate::AppResult;
use crate::job::{DeviceTarget, JobMessage, JobObserver, JobRequest, Wake};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;
use wsa_core::cancel::Pause;
use wsa_core::device::{ComputeDevice, DeviceChoice};
use wsa_core::experiment::connect::ConnectConfig;

/// Refuses before winit tries when no window can be opened: on Linux and the BSDs a window needs
/// an X11 or Wayland display, and winit's own error names a file in its source instead.
pub fn check_display() -> AppResult<()> {
    let needs_display = cfg!(all(unix, not(any(target_os = "macos", target_os = "ios", target_os = "android"))));
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if needs_display && !set("DISPLAY") && !set("WAYLAND_DISPLAY") && !set("WAYLAND_SOCKET") {
        return Err(AppError::NoWindow(
            "no display: set DISPLAY (or WAYLAND_DISPLAY), or run under Xvfb (`xvfb-run wsa-lab app`)".into(),
        ));
    }
    Ok(())
}

/// A windowing error as a user reads it: winit prefixes some errors with the place in its source
/// ("os error at /…/winit-0.30/src/…/mod.rs:773: …"), which says nothing to them.
pub fn window_error(error: &eframe::Error) -> AppError {
    let text = error.to_string();
    let readable: Vec<&str> =
        text.split(": ").filter(|part| !part.contains(".rs:") && !part.contains("/.cargo/")).collect();
    AppError::NoWindow(format!("the window could not be opened: {}", readable.join(": ")))
}

/// Exports are written into a folder the user chooses (the Files tab's export folder).
pub const EXPORTS_TO_FOLDER: bool = true;

/// Whether the app publishes its state for scripts and tests (the page does, into its DOM).
pub const PUBLISHES_STATE: bool = false;
/// The fetched data sets (full MNIST, Fashion-MNIST) can be read here.
pub const READS_FETCHED_DATA: bool = true;

/// Saves a set of files (`set`, e.g. "figures") under `out`, each written atomically; returns
/// what was saved, for the notice.
pub fn save_files(out: &Path, _set: &str, files: wsa_figures::files::Files) -> AppResult<Vec<String>> {
    Ok(wsa_figures::files::write(out, files)?)
}

/// What the notice says once `names` were saved into `dir`.
pub fn saved_notice(names: &[String], dir: &Path) -> String {
    format!("Wrote {} to {}", names.join(", "), dir.display())
}

/// Reads the model file at `typed_path` into `inbox` for slot `slot` of method `method`'s pair.
pub fn pick_model(inbox: &ModelInbox, typed_path: &str, method: usize, slot: &'static str, _ctx: &egui::Context) {
    let origin = std::path::PathBuf::from(typed_path.trim());
    let picked = std::fs::read(&origin)
        .map(|bytes| PickedModel { method, slot, origin: origin.clone(), bytes })
        .map_err(|e| wsa_core::WsaError::io(&origin, e).into());
    if let Ok(mut waiting) = inbox.lock() {
        waiting.push(picked);
    }
}

/// Only the page publishes where controls are (its canvas has no DOM elements to click).
pub fn publish_target(_name: &str, _at: egui::Pos2) {}

/// Only the page publishes its state for scripts: natively nothing.
pub fn publish_result(_result: &wsa_core::experiment::connect::ConnectResult, _timing: &crate::app::RunTiming) {}
pub fn publish_plane(_plane: &wsa_core::experiment::plane::Plane, _timing: &crate::app::RunTiming) {}
pub fn publish_failure(_error: &crate::AppError) {}
pub fn publish_tour(_step: Option<usize>, _answered: bool, _seconds: Option<f64>, _claims: Option<(usize, usize)>) {}
pub fn publish_state(_config: &wsa_core::experiment::connect::ConnectConfig, _tour_step: Option<usize>, _busy: bool) {}

/// Saves one file as `out/name`, written atomically.
pub fn save_file(out: &Path, name: &str, bytes: &[u8]) -> AppResult<()> {
    Ok(wsa_core::io::write_atomic(&out.join(name), bytes)?)
}

/// Model files are named by a path typed into the Files tab.
pub const PICKS_FILES_IN_DIALOG: bool = false;

/// Computes `work` on a thread of its own and repaints `wake` when it is done; where no thread
/// can be had, here and now (a slow frame rather than a result that never comes).
pub fn compute<T: Send + Sync + 'static>(
    wake: &egui::Context,
    work: impl FnOnce() -> T + Send + 'static,
) -> super::Pending<T> {
    let slot = Arc::new(std::sync::OnceLock::new());
    let work = Arc::new(std::sync::Mutex::new(Some(work)));
    let (filled, queued, repaint) = (Arc::clone(&slot), Arc::clone(&work), wake.clone());
    let spawned = std::thread::Builder::new().name("wsa-lab-derive".into()).spawn(move || {
        if let Some(work) = queued.lock().ok().and_then(|mut w| w.take()) {
            let _ = filled.set(work());
            repaint.request_repaint();
        }
    });
    if spawned.is_err()
        && let Some(work) = work.lock().ok().and_then(|mut w| w.take())
    {
        let _ = slot.set(work());
    }
    super::Pending(slot)
}

/// Nothing to name natively: a thread's job is reached through its cancel flag.
pub struct JobWorker;

/// Runs `request` on a thread of its own; its messages arrive on the returned channel. The
/// channel is bounded: a worker far ahead of a hidden window waits instead of piling up events.
pub fn start_job(
    request: JobRequest,
    target: DeviceTarget,
    wake: Wake,
    cancel: Arc<AtomicBool>,
) -> (Receiver<JobMessage>, JobWorker) {
    let (sender, receiver) = std::sync::mpsc::sync_channel(1024);
    let spawned = std::thread::Builder::new().name("wsa-lab-job".into()).spawn(move || {
        let events = sender.clone();
        let wake_on_event = Arc::clone(&wake);
        let send = move |message| {
            let delivered = events.send(message).is_ok();
            wake_on_event(false);
            delivered
        };
        let mut observer = JobObserver::new(Box::new(send), cancel);
        // A panic inside burn or a driver must not take the app down: it ends this job with
        // its message.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wsa_core::wait(crate::job::run(request, target, &mut observer))
        }))
        .unwrap_or_else(|panic| Err(AppError::Crashed(panic_message(&*panic))));
        let _ = sender.send(JobMessage::Finished(outcome));
        wake(true);
    });
    match spawned {
        Ok(_) => (receiver, JobWorker),
        Err(e) => {
            // No thread: report the failure through the same channel the UI reads.
            let (sender, receiver) = std::sync::mpsc::sync_channel(1);
            let _ = sender.send(JobMessage::Finished(Err(AppError::Worker(format!("no thread for the job: {e}")))));
            (receiver, JobWorker)
        }
    }
}

/// The thread sees the cancel flag at its next step.
pub fn cancel_job(_worker: &JobWorker) {}

/// Compiles the GPU kernels `config` will need on a detached background thread
/// (`wsa_core::experiment::warm_up`). No UI state: a failure here is left for the real run.
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

/// The device a job computes on: `choice` resolved for this much work per training step.
pub async fn choose_device(choice: DeviceChoice, flops_per_step: Option<f64>) -> AppResult<ComputeDevice> {
    Ok(wsa_core::device::select_for(choice, flops_per_step)?)
}

/// A job's thread is its own and is cancelled through an atomic: nothing to wait for.
pub fn pause(_last_yield: &mut web_time::Instant) -> Pause<'_> {
    Box::pin(std::future::ready(()))
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown error".into())
}

/// The renderer's GPU, when eframe draws with wgpu: a GPU job computes on the same device (one
/// device for drawing and training), made into a burn device once and then reused.
pub struct RendererGpu {
    render: Option<egui_wgpu::RenderState>,
    shared: Option<ComputeDevice>,
}

impl RendererGpu {
    /// No renderer to share (an app made without a window, e.g. in tests).
    pub fn none() -> Self {
        Self { render: None, shared: None }
    }

    /// The device eframe renders with, if it renders with wgpu.
    pub fn of_renderer(creation: &eframe::CreationContext<'_>) -> Self {
        Self { render: creation.wgpu_render_state.clone(), shared: None }
    }

    /// Where a job of `flops_per_step` per training step computes for `choice`: the renderer's
    /// device when the choice wants a GPU (`auto` only on a hardware GPU and for steps big
    /// enough to pay off), else a device of its own; with a notice when sharing failed.
    pub fn target(&mut self, choice: DeviceChoice, flops_per_step: Option<f64>) -> (DeviceTarget, Option<String>) {
        let own = DeviceTarget::Choose(choice, flops_per_step);
        let Some(render) = &self.render else { return (own, None) };
        if !choice.wants_gpu(!wsa_core::device::is_software(&render.adapter), flops_per_step) {
            return (own, None);
        }
        if self.shared.is_none() {
            match wsa_core::device::from_wgpu(
                render.instance.clone(),
                render.adapter.clone(),
                render.device.clone(),
                render.queue.clone(),
            ) {
                Ok(shared) => self.shared = Some(shared),
                Err(e) => return (own, Some(format!("{e}; using a device of its own instead"))),
            }
        }
        (self.shared.clone().map_or(own, DeviceTarget::Shared), None)
    }
}
