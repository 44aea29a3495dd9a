//! What can go wrong while laying out or drawing a run's files.

use wsa_core::WsaError;

#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    /// From the engine: a result that would not serialise, a model that would not encode, a
    /// file that could not be written.
    #[error(transparent)]
    Engine(#[from] WsaError),

    /// A figure that could not be drawn or encoded.
    #[error("could not draw {figure}: {reason}")]
    Draw { figure: String, reason: String },
}

impl FigureError {
    pub fn draw(figure: &str, reason: impl std::fmt::Display) -> Self {
        FigureError::Draw { figure: figure.to_string(), reason: reason.to_string() }
    }
}

pub type Result<T> = std::result::Result<T, FigureError>;
