//! The views. Each draws from the app's state and may change settings or start a job; none
//! does heavy work.

pub mod federated;
pub mod files;
pub mod path;
pub mod regions;
pub mod scopes;
pub mod setup;
pub mod training;

use crate::app::{FrameStats, Notice, WsaLabApp};
use crate::palette;
use crate::state::Tab;
use egui::{Color32, RichText};
use wsa_core::device::DeviceChoice;
use wsa_core::experiment::method::Method;

pub const A_COLOR: Color32 = color(palette::MODEL_A);
pub const B_COLOR: Color32 = color(palette::MODEL_B);
pub const MERGED_COLOR: Color32 = color(palette::MERGED);
pub const TARGET_COLOR: Color32 = color(palette::TARGET);
pub const B_UNALIGNED_COLOR: Color32 = color(palette::B_UNALIGNED);

/// One colour per class (up to 10), for decision regions and label distributions.
pub const CLASS_COLORS: [Color32; 10] = {
    let mut colors = [Color32::BLACK; 10];
    let mut i = 0;
    while i < 10 {
        colors[i] = color(palette::CLASSES[i]);
        i += 1;
    }
    colors
};

/// The federated runs of a comparison, in order.
pub const RUN_COLORS: [Color32; 4] =
    [color(palette::RUNS[0]), color(palette::RUNS[1]), color(palette::RUNS[2]), color(palette::RUNS[3])];

const fn color([r, g, b]: palette::Rgb) -> Color32 {
    Color32::from_rgb(r, g, b)
}

pub fn method_color(method: Method) -> Color32 {
    color(palette::method(method))
}

pub fn show(app: &mut WsaLabApp, ui: &mut egui::Ui) {
    egui::Panel::top("top_bar").show(ui, |ui| top_bar(app, ui));
    egui::Panel::left("setup").default_size(300.0).show(ui, |ui| {
        egui::ScrollArea::vertical().show(ui, |ui| setup::show(app, ui));
    });
    egui::CentralPanel::default().show(ui, |ui| {
        notices(app, ui);
        tabs(app, ui);
        ui.separator();
        egui::ScrollArea::vertical().show(ui, |ui| match app.settings.tab {
            Tab::Path => path::show(app, ui),
            Tab::Scopes => scopes::show(app, ui),
            Tab::Training => training::show(app, ui),
            Tab::Regions => regions::show(app, ui),
            Tab::Federated => federated::show(app, ui),
            Tab::Files => files::show(app, ui),
        });
    });
    if app.settings.debug_overlay {
        debug_overlay(app, ui.ctx());
    }
}

fn top_bar(app: &mut WsaLabApp, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.heading("WSA Lab");
        ui.separator();
        let busy = app.is_busy();
        if ui
            .add_enabled(!busy, egui::Button::new("Run"))
            .on_hover_text("Train A and B for the chosen methods, align B to A as each says, then evaluate every path")
            .clicked()
        {
            app.start_run(ui.ctx());
        }
        if let Some(job) = &app.job {
            let cancel = ui.button("Cancel");
            publish_target("cancel", &cancel);
            if cancel.clicked() {
                job.cancel();
            }
            let fraction = app.live.fraction();
            ui.add(egui::ProgressBar::new(fraction).desired_width(180.0).show_percentage());
            let label = if app.live.stage.is_empty() { job.label.clone() } else { app.live.stage.clone() };
            ui.label(format!("{label} ({:.0} s)", job.started.elapsed().as_secs_f32()));
        }
        ui.separator();
        egui::ComboBox::from_label("Device").selected_text(device_label(app.settings.device)).show_ui(ui, |ui| {
            for choice in [DeviceChoice::Cpu, DeviceChoice::Auto, DeviceChoice::Gpu] {
                ui.selectable_value(&mut app.settings.device, choice, device_label(choice));
            }
        });
        if !app.device_label.is_empty() {
            ui.label(RichText::new(&app.device_label).weak());
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            ui.checkbox(&mut app.settings.debug_overlay, "debug overlay");
        });
    });
}

fn device_label(choice: DeviceChoice) -> &'static str {
    match choice {
        DeviceChoice::Cpu => "CPU",
        DeviceChoice::Auto => "auto (GPU for large models)",
        DeviceChoice::Gpu => "GPU (wgpu)",
    }
}

fn tabs(app: &mut WsaLabApp, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        for (tab, label) in [
            (Tab::Path, "Interpolation path"),
            (Tab::Scopes, "Weight scopes"),
            (Tab::Training, "Training"),
            (Tab::Regions, "Decision regions"),
            (Tab::Federated, "Federated"),
            (Tab::Files, "Files"),
        ] {
            let response = ui.selectable_value(&mut app.settings.tab, tab, label);
            if tab == Tab::Files {
                publish_target("files-tab", &response);
            }
        }
    });
}

/// Publishes where a control is on screen for the browser test (see `web::publish_target`): a
/// page drawn on a canvas has no DOM element to click. Natively nothing.
pub(crate) fn publish_target(name: &str, response: &egui::Response) {
    #[cfg(target_arch = "wasm32")]
    crate::web::publish_target(name, response.rect.center());
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (name, response);
}

fn notices(app: &mut WsaLabApp, ui: &mut egui::Ui) {
    let mut dismissed = None;
    for (i, Notice { text, is_error }) in app.notices.iter().enumerate() {
        ui.horizontal(|ui| {
            let color = if *is_error { Color32::from_rgb(200, 40, 40) } else { ui.visuals().text_color() };
            ui.label(RichText::new(text).color(color));
            if ui.small_button("dismiss").on_hover_text("dismiss").clicked() {
                dismissed = Some(i);
            }
        });
    }
    if let Some(i) = dismissed {
        app.notices.remove(i);
    }
}

fn debug_overlay(app: &WsaLabApp, ctx: &egui::Context) {
    egui::Area::new(egui::Id::unique("debug_overlay")).anchor(egui::Align2::RIGHT_BOTTOM, [-8.0, -8.0]).show(
        ctx,
        |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                let (mean_build, max_build) = FrameStats::summary(&app.frames.build_ms);
                let (mean_gap, max_gap) = FrameStats::summary(&app.frames.intervals_ms);
                ui.monospace(format!("UI build  {mean_build:5.2} ms mean, {max_build:5.2} ms max"));
                ui.monospace(format!("frame gap {mean_gap:5.1} ms mean, {max_gap:5.1} ms max"));
                ui.monospace(format!("(last {} frames; training: {})", app.frames.build_ms.len(), app.is_busy()));
            });
        },
    );
}

/// A label in a plot legend-like row: a coloured square and text.
pub fn swatch(ui: &mut egui::Ui, color: Color32, text: &str) -> egui::Response {
    ui.horizontal(|ui| {
        let (rect, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
        ui.painter().rect_filled(rect, 2.0, color);
        ui.label(text);
    })
    .response
}

/// A "Save PNG" button under a plot just drawn (whose screen rectangle is `rect`); returns the
/// request, to be passed to [`WsaLabApp::save_plot_png`] once the view no longer borrows the app.
pub fn png_button(ui: &mut egui::Ui, name: &str, rect: egui::Rect) -> Option<(String, egui::Rect)> {
    ui.small_button("Save PNG")
        .on_hover_text("Save this plot, as shown, into the export folder (Files tab)")
        .clicked()
        .then(|| (name.to_string(), rect))
}
