//! Everything that differs between the desktop app and the web page, behind one set of names:
//! where exports go (files in a folder, or downloads), how a figure becomes an image, how the
//! user hands over a model file, where a job runs (a thread, or the page's worker), how its
//! work yields and picks its device, how derived data is computed in the background, where
//! results are kept between sessions (`Shelf`), what the page publishes for scripts and tests
//! (`Publisher`). Views, exports and jobs call these and hold no `cfg`.

use crate::AppError;
use crate::app::{RunTiming, TourGuide};
use wsa_core::experiment::connect::{ConnectConfig, ConnectResult};
use wsa_core::experiment::plane::Plane;

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

#[cfg(target_arch = "wasm32")]
mod browser;
#[cfg(target_arch = "wasm32")]
pub use browser::*;

/// A model file the user handed over for slot A or B of a method's pair: read from the typed
/// path natively, picked in the browser's file dialog on the page (it arrives a frame later).
pub struct PickedModel {
    /// Index into the result's methods.
    pub method: usize,
    pub slot: wsa_core::experiment::connect::Endpoint,
    /// Where it came from, for messages: a path, or the picked file's name.
    pub origin: std::path::PathBuf,
    pub bytes: Vec<u8>,
}

/// Where picked model files wait for the app's next `logic()`.
pub type ModelInbox = std::sync::Arc<std::sync::Mutex<Vec<crate::AppResult<PickedModel>>>>;

/// A file the user handed over to compare models of their own (dropped on the window, picked,
/// or natively a typed path): its name, and its bytes or where they are on disk.
#[derive(Clone, Debug)]
pub struct HandedFile {
    /// The path natively; the file's name in the page (a browser gives no path).
    pub origin: std::path::PathBuf,
    pub content: FileContent,
}

#[derive(Clone, Debug)]
pub enum FileContent {
    /// Read into memory (the page's files: a page cannot reach the disk).
    Bytes(std::sync::Arc<[u8]>),
    /// Read from the disk when needed, so that a checkpoint of gigabytes is streamed rather
    /// than held; a folder is a data set of class folders.
    Disk { is_folder: bool, size: u64 },
}

impl HandedFile {
    /// The file's name, without its folder.
    pub fn name(&self) -> String {
        wsa_core::io::file_name(&self.origin)
    }

    pub fn size(&self) -> u64 {
        match &self.content {
            FileContent::Bytes(bytes) => bytes.len() as u64,
            FileContent::Disk { size, .. } => *size,
        }
    }

    pub fn is_folder(&self) -> bool {
        matches!(self.content, FileContent::Disk { is_folder: true, .. })
    }
}

/// Where handed-over files wait for the app's next `logic()` (a browser reads a dropped or
/// picked file asynchronously: it arrives a frame or more later).
pub type FileInbox = std::sync::Arc<std::sync::Mutex<Vec<crate::AppResult<HandedFile>>>>;

/// A value computed in the background ([`compute`]): `None` until it is there.
pub struct Pending<T>(std::sync::Arc<std::sync::OnceLock<T>>);

impl<T> Pending<T> {
    pub fn get(&self) -> Option<&T> {
        self.0.get()
    }
}

/// What the app tells scripts and tests about itself as it goes: the page publishes it into its
/// DOM (`web`), the desktop app has nobody to tell. Each platform's `Publisher` implements it.
pub trait Publish {
    /// A connect run finished (or a loaded pair was evaluated): its result and where its time went.
    fn result(&self, result: &ConnectResult, timing: &RunTiming);
    /// A loss plane finished.
    fn plane(&self, plane: &Plane, timing: &RunTiming);
    /// A job failed.
    fn failure(&self, error: &AppError);
    /// The tour's state, every frame: each platform takes from the guide what it publishes, so
    /// that one with nobody to tell computes nothing.
    fn tour(&self, guide: &TourGuide, answers_shown: &std::collections::BTreeSet<(usize, usize)>);
    /// The experiment on screen, the open tour step and whether a job runs, every frame.
    fn state(&self, config: &ConnectConfig, tour_step: Option<usize>, busy: bool);
}
