//! The desktop: exports are files written atomically into the export folder, figures PNGs drawn
//! here, model files read from a typed path, results kept in a folder beside eframe's storage;
//! nothing is published.

use super::{FileContent, FileInbox, HandedFile, ModelInbox, PickedModel};
use crate::AppError;
use crate::AppResult;
use crate::app::{RunTiming, TourGuide};
use crate::job::{DeviceTarget, JobMessage, JobObserver, JobRequest, Wake};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;
use wsa_core::cancel::Pause;
use wsa_core::device::{ComputeDevice, DeviceChoice};
use wsa_core::experiment::connect::{ConnectConfig, ConnectResult};
use wsa_core::experiment::plane::Plane;

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
pub fn pick_model(
    inbox: &ModelInbox,
    typed_path: &str,
    method: usize,
    slot: wsa_core::experiment::connect::Endpoint,
    _ctx: &egui::Context,
) {
    let origin = std::path::PathBuf::from(typed_path.trim());
    let picked = std::fs::read(&origin)
        .map(|bytes| PickedModel { method, slot, origin: origin.clone(), bytes })
        .map_err(|e| wsa_core::WsaError::io(&origin, e).into());
    if let Ok(mut waiting) = inbox.lock() {
        waiting.push(picked);
    }
}

/// The files dropped on the window, as they are on disk (read when needed).
pub fn take_dropped(dropped: Vec<egui::DroppedFileHandle>, inbox: &FileInbox, _ctx: &egui::Context) {
    for file in dropped {
        hand_over_path(inbox, file.path());
    }
}

/// The file or folder at the typed path (natively the app has no file dialog).
pub fn pick_files(inbox: &FileInbox, typed_path: &str, _ctx: &egui::Context) {
    hand_over_path(inbox, std::path::Path::new(typed_path.trim()));
}

fn hand_over_path(inbox: &FileInbox, path: &std::path::Path) {
    let handed = std::fs::metadata(path)
        .map(|meta| HandedFile {
            origin: path.to_path_buf(),
            content: FileContent::Disk { is_folder: meta.is_dir(), size: meta.len() },
        })
        .map_err(|e| wsa_core::WsaError::io(path, e).into());
    if let Ok(mut waiting) = inbox.lock() {
        waiting.push(handed);
    }
}

/// Natively a job reads the user's files from the disk: nothing to keep.
pub fn keep_files(_files: &wsa_core::data::Memory) {}

/// Natively there is no limit but the disk's: checkpoints are streamed from it.
pub const HANDED_FILE_LIMIT: Option<u64> = None;

/// Only the page publishes where controls are (its canvas has no DOM elements to click).
pub fn publish_target(_name: &str, _at: egui::Pos2) {}

/// Only the page publishes its state for scripts: natively nobody listens.
pub struct Publisher;

impl super::Publish for Publisher {
    fn result(&self, _result: &ConnectResult, _timing: &RunTiming) {}
    fn plane(&self, _plane: &Plane, _timing: &RunTiming) {}
    fn failure(&self, _error: &AppError) {}
    fn tour(&self, _guide: &TourGuide, _answers_shown: &std::collections::BTreeSet<(usize, usize)>) {}
    fn state(&self, _config: &ConnectConfig, _tour_step: Option<usize>, _busy: bool) {}
}

/// Where the results are kept between sessions: files in a folder, `results` beside eframe's
/// own storage of the app (on Linux `~/.local/share/wsalab/results`).
pub struct Shelf {
    dir: PathBuf,
}

impl Shelf {
    /// The app's results folder, where the system has a place for an app's data.
    pub fn of_app() -> Option<Shelf> {
        eframe::storage_dir(crate::APP_NAME).map(|dir| Shelf { dir: dir.join("results") })
    }

    /// A shelf in `dir` (the tests').
    #[cfg(test)]
    pub fn in_folder(dir: PathBuf) -> Shelf {
        Shelf { dir }
    }

    /// The text saved as `name`; `None` when nothing is.
    pub fn read(&self, name: &str) -> AppResult<Option<String>> {
        let path = self.dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(wsa_core::WsaError::io(&path, e).into()),
        }
    }

    /// Saves `text` as `name`, written atomically.
    pub fn write(&self, name: &str, text: &str) -> AppResult<()> {
        save_file(&self.dir, name, text.as_bytes())
    }

    /// Removes what is saved as `name`, if anything is.
    pub fn remove(&self, name: &str) -> AppResult<()> {
        let path = self.dir.join(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(wsa_core::WsaError::io(&path, e).into()),
            _ => Ok(()),
        }
    }

    /// Moves what is saved as `name` out of the way, to `<name>.unreadable` (over an older one);
    /// says where it went.
    pub fn set_aside(&self, name: &str) -> AppResult<String> {
        let (from, to) = (self.dir.join(name), self.dir.join(format!("{name}.unreadable")));
        std::fs::rename(&from, &to).map_err(|e| wsa_core::WsaError::io(&from, e))?;
        Ok(to.display().to_string())
    }

    /// Where `name` is saved, for messages.
    pub fn describe(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

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
