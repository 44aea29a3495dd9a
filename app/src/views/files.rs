//! Export figures (PNG) and results (CSV/JSON), save models as safetensors, and load a
//! safetensors model into slot A or B of a pair (re-evaluated in the background).

use crate::app::{Notice, WsaLabApp};
use crate::export;
use egui::Ui;
use std::path::PathBuf;
use wsa_core::experiment::connect::TrainedPair;
use wsa_core::io;

fn report(app: &mut WsaLabApp, outcome: Result<Vec<String>, String>, dir: &std::path::Path) {
    app.notices.push(match outcome {
        // The browser finishes a download (and draws an archive's figures) after this returns.
        Ok(names) if cfg!(target_arch = "wasm32") => {
            let _ = dir;
            Notice { text: format!("Download started: {}", names.join(", ")), is_error: false }
        }
        Ok(names) => Notice { text: format!("Wrote {} to {}", names.join(", "), dir.display()), is_error: false },
        Err(e) => Notice { text: e, is_error: true },
    });
}

pub fn show(app: &mut WsaLabApp, ui: &mut Ui) {
    if cfg!(target_arch = "wasm32") {
        ui.label("Exports download through the browser.");
    } else {
        ui.horizontal(|ui| {
            let name = ui.label("Export folder:");
            ui.text_edit_singleline(&mut app.settings.export_dir).labelled_by(name.id);
        });
    }
    let dir = PathBuf::from(&app.settings.export_dir);
    let Some(result) = app.settings.last_result.clone() else {
        ui.label("No results yet: press Run.");
        return;
    };
    ui.horizontal(|ui| {
        let figures = ui.button("Export figures (PNG)");
        super::publish_target("export-figures", &figures);
        if figures.clicked() {
            let outcome = export::write_figures(&dir, &result);
            report(app, outcome, &dir);
        }
        let tables = ui.button("Export results (CSV/JSON)");
        super::publish_target("export-results", &tables);
        if tables.clicked() {
            let outcome = export::write_tables(&dir, &result, None);
            report(app, outcome, &dir);
        }
        let models = ui.add_enabled(!app.models.is_empty(), egui::Button::new("Save models (safetensors)"));
        super::publish_target("save-models", &models);
        if models.clicked() {
            let outcome = export::write_models(&dir, &app.models);
            report(app, outcome, &dir);
        }
    });
    let method = app.settings.method.min(result.methods.len().saturating_sub(1));
    let name = result.methods[method].name;
    let index = app.settings.alpha_index.min(result.methods[method].path.len().saturating_sub(1));
    let alpha = result.methods[method].path[index].alpha;
    if let Some(pair) = app.models.get(method) {
        let label = format!("Save the merged {name} model at α = {alpha:.2}");
        let merged = ui.button(label);
        super::publish_target("save-merged", &merged);
        if merged.clicked() {
            let file = format!("models/{name}-merged-alpha{alpha:.2}.safetensors");
            let outcome = pair
                .a
                .interpolate(&pair.b, alpha)
                .and_then(|merged| io::model_bytes(&merged))
                .map_err(|e| e.to_string())
                .and_then(|bytes| export::save(&dir, &file, &bytes))
                .map(|()| vec![file]);
            report(app, outcome, &dir);
        }
    }
    ui.separator();
    ui.strong(format!("Load a model into the {name} pair"));
    ui.label("Any safetensors file with this architecture's parameter names and shapes (PyTorch layout) loads.");
    #[cfg(not(target_arch = "wasm32"))]
    ui.horizontal(|ui| {
        let name = ui.label("Model file:");
        ui.text_edit_singleline(&mut app.settings.model_path).labelled_by(name.id);
    });
    ui.horizontal(|ui| {
        for slot in ["A", "B"] {
            let enabled = !app.is_busy() && app.models.get(method).is_some();
            // In a browser the button opens the file picker; the file arrives a frame later.
            let label =
                if cfg!(target_arch = "wasm32") { format!("Load into {slot}…") } else { format!("Load into {slot}") };
            let load = ui.add_enabled(enabled, egui::Button::new(label));
            super::publish_target(&format!("load-{}", slot.to_lowercase()), &load);
            if load.clicked() {
                #[cfg(not(target_arch = "wasm32"))]
                load_into(app, ui.ctx(), method, slot);
                #[cfg(target_arch = "wasm32")]
                crate::web::pick_model(std::sync::Arc::clone(&app.picked_model), method, slot, ui.ctx().clone());
            }
        }
    });
    if app.models.is_empty() {
        ui.label("(Loading needs the trained pair in memory: press Run first.)");
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn load_into(app: &mut WsaLabApp, ctx: &egui::Context, method: usize, slot: &str) {
    let path = PathBuf::from(app.settings.model_path.trim());
    match std::fs::read(&path) {
        Ok(bytes) => load_bytes_into(app, ctx, method, slot, &path, &bytes),
        Err(e) => app.notices.push(Notice {
            text: format!("Could not load {} into slot {slot}: {}", path.display(), wsa_core::WsaError::io(&path, e)),
            is_error: true,
        }),
    }
}

/// Loads the safetensors `bytes` (from `origin`: a path, or a file the browser handed over)
/// into slot A or B of method `method`'s pair and re-evaluates it (aligning B to A again as the
/// method says) in the background.
pub fn load_bytes_into(
    app: &mut WsaLabApp,
    ctx: &egui::Context,
    method: usize,
    slot: &str,
    origin: &std::path::Path,
    bytes: &[u8],
) {
    let Some(pair) = app.models.get(method) else { return };
    match io::params_from_safetensors(bytes, &pair.a.layout, origin) {
        Ok(loaded) => {
            let (a, b) = if slot == "A" { (loaded, pair.b.clone()) } else { (pair.a.clone(), loaded) };
            let pair = TrainedPair { method: pair.method, a, b };
            app.start_reevaluation(ctx, method, pair);
        }
        Err(e) => app.notices.push(Notice {
            text: format!("Could not load {} into slot {slot}: {e}", origin.display()),
            is_error: true,
        }),
    }
}
