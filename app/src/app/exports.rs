//! Saving what the user asks to keep: the Files tab's figures, tables, models and merged model,
//! and a plot saved as shown. Each goes where this platform saves (files in the export folder,
//! or downloads) and ends in a notice; a plot's ends outside a frame, so its notice waits here
//! for the next one.

use super::Notice;
use crate::views::Export;
use crate::{AppError, AppResult, platform};
use std::path::Path;
use std::sync::{Arc, Mutex};
use wsa_core::experiment::connect::{ConnectResult, TrainedPair};
use wsa_core::experiment::method::Method;
use wsa_core::model::HostParams;
use wsa_figures::files;

#[derive(Default)]
pub struct Exports {
    /// Notices of saves that ended outside a frame (a plot PNG written from a screenshot).
    ended: Arc<Mutex<Vec<Notice>>>,
}

impl Exports {
    /// Saves the screen region `rect` (a plot) as `<dir>/<name>.png`, from a screenshot of the
    /// next frame: what is written is exactly what the user sees.
    pub fn save_plot_png(&self, ctx: &egui::Context, dir: &Path, name: &str, rect: egui::Rect) {
        let dir = dir.to_path_buf();
        let file = format!("{name}.png");
        let path = dir.join(&file);
        let pixels_per_point = ctx.pixels_per_point();
        let ended = Arc::clone(&self.ended);
        let repaint = ctx.clone();
        ctx.request_screenshot(move |image| {
            let region = image.region(&rect, Some(pixels_per_point));
            let [width, height] = region.size;
            let rgba: Vec<u8> = region.pixels.iter().flat_map(|c| c.to_array()).collect();
            let written = wsa_figures::render::encode_rgba(&rgba, width as u32, height as u32)
                .map_err(AppError::from)
                .and_then(|bytes| platform::save_file(&dir, &file, &bytes));
            let notice = match written {
                Ok(()) => Notice { text: format!("Wrote {}", path.display()), is_error: false },
                Err(e) => Notice { text: format!("Could not save the plot: {e}"), is_error: true },
            };
            if let Ok(mut ended) = ended.lock() {
                ended.push(notice);
            }
            repaint.request_repaint();
        });
    }

    /// The notices of saves that ended since the last call.
    pub fn take_notices(&self) -> Vec<Notice> {
        self.ended.lock().map(|mut ended| std::mem::take(&mut *ended)).unwrap_or_default()
    }

    /// Saves the Files tab's `export` of `result` (and its `models`) into `dir`; the notice
    /// says what was saved or why not. Nothing for a merged model whose pair is not in memory.
    pub fn export(&self, export: Export, dir: &Path, result: &ConnectResult, models: &[TrainedPair]) -> Option<Notice> {
        let outcome = match export {
            Export::Figures => platform::save_files(dir, "figures", files::connect_figures(result)),
            Export::Results => files::connect_tables(result, None)
                .map_err(AppError::from)
                .and_then(|f| platform::save_files(dir, "results", f)),
            Export::Models => {
                files::models(models).map_err(AppError::from).and_then(|f| platform::save_files(dir, "models", f))
            }
            Export::Merged { method, index } => {
                let (pair, m) = (models.get(method)?, result.methods.get(method)?);
                let alpha = m.path.get(index).map_or(0.5, |p| p.alpha);
                let file = merged_file_name(m.method, alpha);
                pair.a
                    .interpolate(&pair.b, alpha)
                    .map_err(AppError::from)
                    .and_then(|merged| save_model(dir, &file, &merged))
            }
        };
        Some(saved_notice(outcome, dir))
    }

    /// Saves a merged model a job formed (its BatchNorm statistics re-estimated) as `file`.
    pub fn save_merged(&self, dir: &Path, file: &str, model: &HostParams) -> Notice {
        saved_notice(save_model(dir, file, model), dir)
    }
}

/// Where the merged model of `method` at `alpha` is saved, in the export folder.
pub fn merged_file_name(method: Method, alpha: f64) -> String {
    format!("models/{method}-merged-alpha{alpha:.2}.safetensors")
}

fn save_model(dir: &Path, file: &str, model: &HostParams) -> AppResult<Vec<String>> {
    let bytes = wsa_core::io::model_bytes(model)?;
    platform::save_file(dir, file, &bytes)?;
    Ok(vec![file.to_string()])
}

fn saved_notice(outcome: AppResult<Vec<String>>, dir: &Path) -> Notice {
    match outcome {
        Ok(names) => Notice { text: platform::saved_notice(&names, dir), is_error: false },
        Err(e) => Notice { text: e.to_string(), is_error: true },
    }
}
