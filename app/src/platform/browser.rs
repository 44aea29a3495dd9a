//! The web page: exports are downloads (a set of files as one ZIP archive), figures SVGs the
//! browser draws into PNGs, model files picked in the browser's dialog, results kept in the
//! browser's local storage; the page publishes its state for scripts and tests (`web`).

use super::{FileContent, FileInbox, HandedFile, ModelInbox, PickedModel};
use crate::app::{RunTiming, TourGuide};
use crate::job::{DeviceTarget, JobMessage, JobRequest, Wake};
use crate::{AppError, AppResult};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;
use wsa_core::cancel::Pause;
use wsa_core::device::{ComputeDevice, DeviceChoice};
use wsa_core::experiment::connect::{ConnectConfig, ConnectResult};
use wsa_core::experiment::plane::Plane;

/// A page cannot write into a folder: exports download through the browser.
pub const EXPORTS_TO_FOLDER: bool = false;

/// The fetched data sets are too large for a page: only the embedded and generated ones.
pub const READS_FETCHED_DATA: bool = false;

/// Saves a set of files as one download, `wsa-lab-<set>.zip`: a page that saves several files
/// at once makes the browser ask first (and headless Chromium dropped all downloads after the
/// tenth). Returns what was saved, for the notice.
pub fn save_files(_out: &Path, set: &str, files: wsa_figures::files::Files) -> AppResult<Vec<String>> {
    let archive = format!("wsa-lab-{set}.zip");
    let names: Vec<String> = files.iter().map(|(name, _)| name.clone()).collect();
    crate::web::download_archive(&archive, files);
    Ok(vec![format!("{archive} ({})", names.join(", "))])
}

/// What the notice says: the browser finishes a download (and draws an archive's figures)
/// after the export returned.
pub fn saved_notice(names: &[String], _dir: &Path) -> String {
    format!("Download started: {}", names.join(", "))
}

/// Opens the browser's file picker for a model for slot `slot` of method `method`'s pair; the
/// file lands in `inbox` and wakes the app. A cancelled picker leaves nothing behind.
pub fn pick_model(
    inbox: &ModelInbox,
    _typed_path: &str,
    method: usize,
    slot: wsa_core::experiment::connect::Endpoint,
    ctx: &egui::Context,
) {
    let inbox = std::sync::Arc::clone(inbox);
    let ctx = ctx.clone();
    wasm_bindgen_futures::spawn_local(async move {
        if let Some((name, bytes)) = crate::web::pick_file(".safetensors").await {
            if let Ok(mut waiting) = inbox.lock() {
                waiting.push(Ok(PickedModel { method, slot, origin: name.into(), bytes }));
            }
            ctx.request_repaint();
        }
    });
}

/// The most a handed-over file may hold in the page: it stays in the browser's memory (with a
/// copy for the worker while a job runs), and a tab's memory is limited.
pub const HANDED_FILE_LIMIT: Option<u64> = Some(256 << 20);

/// Keeps the files a job carried (the user's data set) in this instance of the module (the
/// page's worker), where `data::load` reads them: the loss plane and the re-evaluations of a
/// given pair's result carry no files of their own.
pub fn keep_files(files: &wsa_core::data::Memory) {
    for (path, bytes) in files.files() {
        wsa_core::data::provide_file(path, bytes.to_vec());
    }
}

/// The files dropped on the page, read by the browser (asynchronously: they arrive a frame or
/// more later). A file over [`HANDED_FILE_LIMIT`] is refused with a message, unread: its size is
/// asked of the browser first.
pub fn take_dropped(dropped: Vec<egui::DroppedFileHandle>, inbox: &FileInbox, ctx: &egui::Context) {
    for file in dropped {
        let (inbox, ctx) = (Arc::clone(inbox), ctx.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let origin = file.path().to_path_buf();
            let handed = match file.web_file().and_then(|f| over_limit(&origin, f.size())) {
                Some(refused) => Err(refused),
                None => file
                    .bytes_async()
                    .await
                    .map_err(|e| AppError::browser(&format!("read {}", origin.display()), e))
                    .map(|bytes| HandedFile { origin, content: FileContent::Bytes(bytes.into()) }),
            };
            hand_over(&inbox, handed, &ctx);
        });
    }
}

/// Files picked in the browser's file dialog (several at once: two models and a data file),
/// each refused unread when over [`HANDED_FILE_LIMIT`].
pub fn pick_files(inbox: &FileInbox, _typed_path: &str, ctx: &egui::Context) {
    let (inbox, ctx) = (Arc::clone(inbox), ctx.clone());
    wasm_bindgen_futures::spawn_local(async move {
        for file in crate::web::pick_files(".safetensors,.json,.csv,.npz,.bin").await {
            let origin = std::path::PathBuf::from(file.name());
            let handed = match over_limit(&origin, file.size()) {
                Some(refused) => Err(refused),
                None => crate::web::file_bytes(&file)
                    .await
                    .map(|bytes| HandedFile { origin, content: FileContent::Bytes(bytes.into()) }),
            };
            hand_over(&inbox, handed, &ctx);
        }
    });
}

/// The refusal of a file of `size` bytes (as the browser reports it) over [`HANDED_FILE_LIMIT`].
fn over_limit(origin: &std::path::Path, size: f64) -> Option<AppError> {
    let limit = HANDED_FILE_LIMIT.unwrap_or(u64::MAX);
    let size = size.max(0.0) as u64;
    (size > limit).then(|| AppError::TooLarge { name: origin.display().to_string(), size, limit })
}

fn hand_over(inbox: &FileInbox, handed: AppResult<HandedFile>, ctx: &egui::Context) {
    if let Ok(mut waiting) = inbox.lock() {
        waiting.push(handed);
    }
    ctx.request_repaint();
}

pub use crate::web::publish_target;

/// Publishes into the page's DOM for scripts and tests (`web`).
pub struct Publisher;

impl super::Publish for Publisher {
    fn result(&self, result: &ConnectResult, timing: &RunTiming) {
        crate::web::publish_result(result, Some(timing));
    }

    fn plane(&self, plane: &Plane, timing: &RunTiming) {
        crate::web::publish_plane(plane, timing);
    }

    fn failure(&self, error: &AppError) {
        crate::web::publish_failure(&error.to_string());
    }

    fn tour(&self, guide: &TourGuide, answers_shown: &BTreeSet<(usize, usize)>) {
        let progress = guide.progress();
        crate::web::publish_tour(progress.step, progress.answered, progress.seconds, progress.claims);
        let tour = guide.tour();
        crate::web::mirror_tour(&guide.words(answers_shown), &tour.language, &tour.words.panel.mirror_label);
    }

    /// Keeps the address bar's link equal to the experiment on screen (or the tour step) and
    /// says whether a job runs.
    fn state(&self, config: &ConnectConfig, tour_step: Option<usize>, busy: bool) {
        crate::web::keep_link_current(config, tour_step);
        crate::web::publish_busy(busy);
    }
}

/// Where the results are kept between sessions: the browser's local storage, where eframe keeps
/// the settings, under keys of their own (`wsa-lab/results/<name>`).
pub struct Shelf {
    storage: web_sys::Storage,
}

impl Shelf {
    const PREFIX: &'static str = "wsa-lab/results/";

    /// The page's local storage, when the browser gives one.
    pub fn of_app() -> Option<Shelf> {
        let storage = web_sys::window()?.local_storage().ok()??;
        Some(Shelf { storage })
    }

    fn key(name: &str) -> String {
        format!("{}{name}", Self::PREFIX)
    }

    /// The text saved as `name`; `None` when nothing is.
    pub fn read(&self, name: &str) -> AppResult<Option<String>> {
        self.storage
            .get_item(&Self::key(name))
            .map_err(|e| AppError::browser(&format!("read the saved {name}"), format!("{e:?}")))
    }

    /// Saves `text` as `name`; a full storage refuses it.
    pub fn write(&self, name: &str, text: &str) -> AppResult<()> {
        self.storage
            .set_item(&Self::key(name), text)
            .map_err(|e| AppError::browser(&format!("keep {name} in its storage"), format!("{e:?}")))
    }

    /// Removes what is saved as `name`, if anything is.
    pub fn remove(&self, name: &str) -> AppResult<()> {
        self.storage
            .remove_item(&Self::key(name))
            .map_err(|e| AppError::browser(&format!("remove the saved {name}"), format!("{e:?}")))
    }

    /// Moves what is saved as `name` out of the way, to `<name>.unreadable` (over an older one);
    /// says where it went.
    pub fn set_aside(&self, name: &str) -> AppResult<String> {
        let aside = format!("{name}.unreadable");
        if let Some(text) = self.read(name)? {
            self.write(&aside, &text)?;
        }
        self.remove(name)?;
        Ok(format!("`{}` in the browser's storage", Self::key(&aside)))
    }

    /// Where `name` is saved, for messages.
    pub fn describe(&self, name: &str) -> String {
        format!("`{}` in the browser's storage", Self::key(name))
    }
}

/// Saves one file as a download named after `name`, its folders joined with '-'.
pub fn save_file(_out: &Path, name: &str, bytes: &[u8]) -> AppResult<()> {
    crate::web::download(&name.replace('/', "-"), bytes)
}

/// A page reads a file only when the user picks it in the browser's dialog.
pub const PICKS_FILES_IN_DIALOG: bool = true;

/// Computes `work` after this frame, on the page's thread (a page has no threads to spare; the
/// jobs have the worker): the frame that asked is drawn first, the result a frame later.
pub fn compute<T: 'static>(wake: &egui::Context, work: impl FnOnce() -> T + 'static) -> super::Pending<T> {
    let slot = std::sync::Arc::new(std::sync::OnceLock::new());
    let (filled, wake) = (std::sync::Arc::clone(&slot), wake.clone());
    wasm_bindgen_futures::spawn_local(async move {
        let _ = filled.set(work());
        wake.request_repaint();
    });
    super::Pending(slot)
}

/// The job's number in the page's worker, which a Cancel names.
pub struct JobWorker(u64);

/// Posts `request` to the page's worker (`web::worker`); its messages come back through the
/// returned channel. The cancel flag is the page's: the worker has its own.
pub fn start_job(
    request: JobRequest,
    target: DeviceTarget,
    wake: Wake,
    _cancel: Arc<AtomicBool>,
) -> (Receiver<JobMessage>, JobWorker) {
    let DeviceTarget::Choose(choice, flops) = target;
    let (job, receiver) = crate::web::worker::submit(request, choice, flops, wake);
    (receiver, JobWorker(job))
}

/// Ends the job for the page at once; the worker stops at its next yield.
pub fn cancel_job(worker: &JobWorker) {
    crate::web::worker::cancel(worker.0);
}

/// In a browser the first run compiles its kernels, in the worker.
pub fn warm_up(_config: ConnectConfig, _target: DeviceTarget) {}

/// The device a job computes on in the page's worker (`web::device`: WebGPU or the CPU).
pub async fn choose_device(choice: DeviceChoice, flops_per_step: Option<f64>) -> AppResult<ComputeDevice> {
    Ok(crate::web::device(choice, flops_per_step).await)
}

/// How long the work in the page's worker runs between yields to its event loop, where a
/// Cancel from the page waits. Yielding costs ~0.1 ms, so this keeps it under 1% of the work
/// while a Cancel is seen within a few hundredths of a second.
const WORKER_SLICE: std::time::Duration = std::time::Duration::from_millis(15);

/// Hands the worker's thread back to its event loop when the work has had it for a slice.
pub fn pause(last_yield: &mut web_time::Instant) -> Pause<'_> {
    if last_yield.elapsed() < WORKER_SLICE {
        return Box::pin(std::future::ready(()));
    }
    Box::pin(async move {
        crate::web::yield_to_event_loop().await;
        *last_yield = web_time::Instant::now();
    })
}

/// The page draws with WebGL and shares nothing with the work: the worker picks WebGPU or the
/// CPU itself (`web::device`).
pub struct RendererGpu;

impl RendererGpu {
    pub fn none() -> Self {
        Self
    }

    pub fn of_renderer(_creation: &eframe::CreationContext<'_>) -> Self {
        Self
    }

    pub fn target(&mut self, choice: DeviceChoice, flops_per_step: Option<f64>) -> (DeviceTarget, Option<String>) {
        (DeviceTarget::Choose(choice, flops_per_step), None)
    }
}
