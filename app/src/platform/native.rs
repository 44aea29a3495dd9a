//! The desktop: exports are files written atomically into the export folder, figures PNGs drawn
//! here, model files read from a typed path.

use super::{ModelInbox, PickedModel};
use crate::AppResult;
use crate::export::Content;
use std::path::Path;

/// Exports are written into a folder the user chooses (the Files tab's export folder).
pub const EXPORTS_TO_FOLDER: bool = true;

/// The fetched data sets (full MNIST, Fashion-MNIST) can be read here.
pub const READS_FETCHED_DATA: bool = true;

/// A drawn figure: the PNG file.
pub type FigureImage = Vec<u8>;

/// Saves a set of files (`set`, e.g. "figures") under `out`, each written atomically; returns
/// what was saved, for the notice.
pub fn save_files(out: &Path, _set: &str, files: Vec<(String, Content)>) -> AppResult<Vec<String>> {
    for (name, content) in &files {
        let bytes = match content {
            Content::Bytes(bytes) => bytes,
            Content::Figure(figure) => &figure.image,
        };
        wsa_core::io::write_atomic(&out.join(name), bytes)?;
    }
    Ok(files.into_iter().map(|(name, _)| name).collect())
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
pub fn publish_failure(_error: &crate::AppError) {}
pub fn publish_state(_config: &wsa_core::experiment::connect::ConnectConfig, _busy: bool) {}

/// Saves one file as `out/name`, written atomically.
pub fn save_file(out: &Path, name: &str, bytes: &[u8]) -> AppResult<()> {
    Ok(wsa_core::io::write_atomic(&out.join(name), bytes)?)
}

/// Registers the plots' embedded font once, so that bitmap figures have text on every machine.
pub fn ensure_font() {
    static REGISTER_FONT: std::sync::Once = std::sync::Once::new();
    REGISTER_FONT.call_once(|| {
        // The font is embedded and known to be valid; a failure would only lose the labels.
        let _ = plotters::style::register_font(
            "sans-serif",
            plotters::style::FontStyle::Normal,
            crate::export::plots::FONT,
        );
    });
}

/// Draws a figure of `$size` (width, height) pixels into a bitmap and encodes it as a PNG:
/// `$draw` is a block that draws on `$root`, a white drawing area, and may return early with an
/// error. A macro rather than a function because the block is compiled for this platform's
/// plotters backend (a closure cannot be generic over the backend).
macro_rules! render_figure {
    ($size:expr, |$root:ident| $draw:block) => {{
        let (w, h): (u32, u32) = $size;
        crate::platform::ensure_font();
        let mut buffer = vec![0u8; (w * h * 3) as usize];
        {
            let $root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
            $root.fill(&WHITE).map_err(draw_err)?;
            $draw
            $root.present().map_err(draw_err)?;
        }
        Ok(Figure { image: crate::export::plots::encode_png(&buffer, w, h, png::ColorType::Rgb)? })
    }};
}
pub(crate) use render_figure;

/// Model files are named by a path typed into the Files tab.
pub const PICKS_FILES_IN_DIALOG: bool = false;

/// Computes `work` on a thread of its own and repaints `wake` when it is done.
pub fn compute<T: Send + Sync + 'static>(
    wake: &egui::Context,
    work: impl FnOnce() -> T + Send + 'static,
) -> super::Pending<T> {
    let slot = std::sync::Arc::new(std::sync::OnceLock::new());
    let (filled, wake) = (std::sync::Arc::clone(&slot), wake.clone());
    let spawned = std::thread::Builder::new().name("wsa-lab-derive".into()).spawn(move || {
        let _ = filled.set(work());
        wake.request_repaint();
    });
    if let Err(e) = spawned {
        eprintln!("no thread for a background computation: {e}");
    }
    super::Pending(slot)
}
