//! The app's error: the engine's typed [`WsaError`] (files, configs, data, the device), and
//! what only the app does (figures, the page's worker, the browser, its links and tour). Every
//! message names what failed and, where there is one, the fix.

use serde::{Deserialize, Serialize};
use wsa_core::WsaError;

/// Serde, so that the page's worker posts a job's error to the page as it is (`job::wire`).
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum AppError {
    /// From the engine: a bad file or config, missing data, a failed device, a cancel.
    #[error(transparent)]
    Engine(#[from] WsaError),

    /// A figure that could not be drawn or encoded.
    #[error("could not draw {figure}: {reason}")]
    Figure { figure: String, reason: String },

    /// The engine (or a driver under it) panicked: the job ends, the app stays.
    #[error("the computation failed: {0}; please report it with the config that caused it")]
    Crashed(String),

    /// The job's worker (a thread natively, the page's Web Worker in a browser) could not be
    /// started, reached or understood, or stopped without a result.
    #[error("the background worker failed: {0}; reload the page (or restart the app) and run again")]
    Worker(String),

    /// Something the browser refused: a download, a file, a fetch.
    #[error("the browser could not {action}: {reason}")]
    Browser { action: String, reason: String },

    /// A file handed to the page over the size it keeps in memory.
    #[error(
        "{name} holds {} MiB, over the page's limit of {} MiB for one file (it stays in the browser's memory); compare large checkpoints with the desktop app or `wsa-lab scopes`",
        size >> 20,
        limit >> 20
    )]
    TooLarge { name: String, size: u64, limit: u64 },

    /// No native window: no display, or the windowing system refused one.
    #[error("{0}")]
    NoWindow(String),

    /// What the user asked for cannot be done as asked: a command-line argument of the app's
    /// binary, decision regions of a data set that is not 2-D.
    #[error("{0}")]
    Usage(String),

    /// A page link that does not open what it names (`link`): its notice says what opened
    /// instead.
    #[error(transparent)]
    Link(#[from] crate::link::LinkError),

    /// The tour file does not make a usable tour (`tour`): a build defect, which the tests catch.
    #[error(transparent)]
    Tour(#[from] crate::tour::TourError),
}

impl AppError {
    pub fn figure(figure: &str, reason: impl std::fmt::Display) -> Self {
        AppError::Figure { figure: figure.to_string(), reason: reason.to_string() }
    }

    pub fn browser(action: &str, reason: impl std::fmt::Display) -> Self {
        AppError::Browser { action: action.to_string(), reason: reason.to_string() }
    }

    /// Whether the compute device failed (the only error that sends a GPU job to the CPU).
    pub fn is_device_failure(&self) -> bool {
        matches!(self, AppError::Engine(e) if e.is_device_failure())
    }
}

/// A figure or file set that could not be made: the engine's errors stay the engine's.
impl From<wsa_figures::FigureError> for AppError {
    fn from(error: wsa_figures::FigureError) -> Self {
        match error {
            wsa_figures::FigureError::Engine(e) => AppError::Engine(e),
            wsa_figures::FigureError::Draw { figure, reason } => AppError::Figure { figure, reason },
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// Errors are compared by their message: what a user sees.
impl PartialEq for AppError {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}
