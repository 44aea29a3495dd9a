//! Export figures (PNG) and results (CSV/JSON), save models as safetensors, and load a
//! safetensors model into slot A or B of a pair (re-evaluated in the background).

use super::{Action, Export, View};
use crate::platform;
use egui::Ui;
use wsa_core::experiment::connect::Endpoint;

pub fn show(app: &mut View<'_>, ui: &mut Ui) {
    if !platform::EXPORTS_TO_FOLDER {
        ui.label("Exports download through the browser.");
    } else {
        ui.horizontal(|ui| {
            let name = ui.label("Export folder:");
            ui.text_edit_singleline(&mut app.settings.export_dir).labelled_by(name.id);
        });
    }
    let Some(result) = app.results.connect() else {
        ui.label("No results yet: press Run.");
        return;
    };
    ui.horizontal(|ui| {
        let figures = ui.button("Export figures (PNG)");
        super::publish_target("export-figures", &figures);
        if figures.clicked() {
            app.act(Action::Export(Export::Figures));
        }
        let tables = ui.button("Export results (CSV/JSON)");
        super::publish_target("export-results", &tables);
        if tables.clicked() {
            app.act(Action::Export(Export::Results));
        }
        let models = ui.add_enabled(!app.models.is_empty(), egui::Button::new("Save models (safetensors)"));
        super::publish_target("save-models", &models);
        if models.clicked() {
            app.act(Action::Export(Export::Models));
        }
    });
    let method = app.settings.method.min(result.methods.len().saturating_sub(1));
    let name = result.methods[method].method;
    let index = app.settings.alpha_index.min(result.methods[method].path.len().saturating_sub(1));
    let alpha = result.methods[method].path[index].alpha;
    if app.models.get(method).is_some() {
        let label = format!("Save the merged {name} model at α = {alpha:.2}");
        let merged = ui.button(label);
        super::publish_target("save-merged", &merged);
        if merged.clicked() {
            app.act(Action::Export(Export::Merged { method, index }));
        }
    }
    ui.separator();
    ui.strong(format!("Load a model into the {name} pair"));
    ui.label("Any safetensors file with this architecture's parameter names and shapes (PyTorch layout) loads.");
    if !platform::PICKS_FILES_IN_DIALOG {
        ui.horizontal(|ui| {
            let name = ui.label("Model file:");
            ui.text_edit_singleline(&mut app.settings.model_path).labelled_by(name.id);
        });
    }
    ui.horizontal(|ui| {
        for slot in Endpoint::ALL {
            let enabled = !app.is_busy() && app.models.get(method).is_some();
            // Where the button opens a file dialog, the file arrives a frame later.
            let label = if platform::PICKS_FILES_IN_DIALOG {
                format!("Load into {}…", slot.label())
            } else {
                format!("Load into {}", slot.label())
            };
            let load = ui.add_enabled(enabled, egui::Button::new(label));
            super::publish_target(&format!("load-{}", slot.name().to_ascii_lowercase()), &load);
            if load.clicked() {
                app.act(Action::LoadModel { method, slot });
            }
        }
    });
    if app.models.is_empty() {
        ui.label("(Loading needs the trained pair in memory: press Run first.)");
    }
}
