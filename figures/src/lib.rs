//! # wsa-figures
//!
//! WSA Lab's figures and result files, with no UI. Each figure is described once, as data
//! ([`figure`]: panels of series with their colour, dash, points and band, axes, labels, a heat
//! map or bars), built from the engine's results by [`describe`], and drawn by two renderers:
//! plotters here ([`render`]: a PNG natively, an SVG the page turns into a PNG) and egui_plot in
//! the app (`wsa-lab-app`, `views/figure.rs`). Every colour comes from [`palette`]. [`files`]
//! lays out what a run leaves behind (summary.json, CSVs, figures, models). The CLI and the app
//! both use it; it depends on the engine only.

pub mod describe;
mod error;
pub mod figure;
pub mod files;
pub mod forest;
pub mod palette;
pub mod render;

pub use error::{FigureError, Result};

/// DejaVu Sans: the figures' font, and the app's fallback for glyphs egui's own fonts lack (the
/// box drawing of shader compiler messages, for one).
pub const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
