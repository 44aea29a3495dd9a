//! The views. Each draws from a [`View`]: the app's state at this frame, read-only (the results
//! too: shared, never copied), except the settings (the selections and the experiment being set
//! up) and the views' own editing state.
//! What a click asks for — run, cancel, export, load a model, save a plot — a view returns as
//! an [`Action`], which the app carries out after the frame is drawn. Derived data (decision
//! regions, merged-model histograms, file checks) comes ready from `derived`; what a view
//! computes is only the description of its figures (`wsa_figures::describe`, drawn by
//! [`figure`]) and its tables, from results already in memory.

pub mod federated;
pub mod figure;
pub mod files;
pub mod given;
pub mod path;
pub mod plane;
pub mod regions;
pub mod scopes;
pub mod setup;
pub mod tour;
pub mod training;

use crate::app::{FrameStats, GivenFiles, LiveRun, Notice, TourGuide};
use crate::derived::Derived;
use crate::job::Job;
use crate::results::Results;
use crate::state::{Settings, Tab};
use egui::{Color32, RichText};
use wsa_core::device::DeviceChoice;
use wsa_core::experiment::connect::Endpoint;
use wsa_core::experiment::method::Method;
use wsa_figures::palette;

pub fn method_color(method: Method) -> Color32 {
    figure::color(palette::method(method))
}

/// What a click in a view asks the app to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Train and evaluate the configured experiment.
    Run,
    /// Federated learning with the Federated tab's settings.
    RunFederated,
    Cancel,
    /// Save the plot drawn in `rect` as `<export folder>/<name>.png`, as shown.
    SavePlot {
        name: String,
        rect: egui::Rect,
    },
    Export(Export),
    /// Load a model file into slot A or B of method `method`'s pair.
    LoadModel {
        method: usize,
        slot: Endpoint,
    },
    /// Dismiss notice number `index`.
    Dismiss(usize),
    /// Every experiment setting back to its default (`Settings::reset_experiment`).
    ResetToDefaults,
    /// Compute the loss plane of the selected method's pair.
    RunPlane,
    /// Ask for the user's files (Your models tab): a dialog in the page, the typed path natively.
    PickGivenFiles,
    /// Forget the files handed over.
    ClearGivenFiles,
    /// Evaluate the pair of models handed over.
    CompareGivenPair,
    Tour(TourAction),
}

/// What the tour's controls ask for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TourAction {
    /// Open step number (from 0).
    Go(usize),
    /// Run the open step's experiment.
    Run,
    /// Set up and run exercise number (from 0) of the open step.
    RunExercise(usize),
    Leave,
}

/// The files the Files tab saves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Export {
    Figures,
    Results,
    Models,
    /// The merged model of method `method` at path point `index`.
    Merged {
        method: usize,
        index: usize,
    },
}

/// What the views edit that is not a setting: text being typed before it parses.
#[derive(Default)]
pub struct ViewState {
    /// The hidden widths / conv channels as typed, applied when valid.
    pub widths_text: String,
    /// The tour's list of keys is open (`?`).
    pub tour_keys_open: bool,
    /// On a narrow screen (a phone), the setup is shown in place of the views.
    pub setup_open: bool,
    /// The tour's glossary is open, at this term when one was clicked.
    pub glossary_open: bool,
    pub glossary_term: Option<String>,
    /// The glossary still has to scroll to `glossary_term` (once, then the reader scrolls).
    pub glossary_scroll: bool,
    /// What the student predicted at each tour step (by index), shown beside the answer. Kept
    /// for this session only: a class's answers are not the user's preferences.
    pub predictions: std::collections::BTreeMap<usize, String>,
    /// The exercises whose answers the student asked to see, as (step, exercise) indices.
    pub answers_shown: std::collections::BTreeSet<(usize, usize)>,
    /// A widget had the keyboard's focus at the end of the last frame: the tour's keys are then
    /// that widget's (egui drops the focus on Esc before this frame's widgets run, so this
    /// frame's focus alone would let the Esc that ends an edit also leave the tour).
    pub focus_last_frame: bool,
}

/// A frame's view of the app (see the module's documentation).
pub struct View<'a> {
    pub settings: &'a mut Settings,
    pub state: &'a mut ViewState,
    pub results: &'a Results,
    pub live: &'a LiveRun,
    pub job: Option<&'a Job>,
    pub models: &'a [wsa_core::experiment::connect::TrainedPair],
    pub derived: &'a Derived,
    pub notices: &'a [Notice],
    pub frames: &'a FrameStats,
    pub device_label: &'a str,
    pub tour: &'a TourGuide,
    /// The files of models the user brought, and what was read from them.
    pub given: &'a GivenFiles,
    /// What the view asks for; [`View::act`] adds to it.
    actions: Vec<Action>,
}

impl<'a> View<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: &'a mut Settings,
        state: &'a mut ViewState,
        results: &'a Results,
        live: &'a LiveRun,
        job: Option<&'a Job>,
        models: &'a [wsa_core::experiment::connect::TrainedPair],
        derived: &'a Derived,
        notices: &'a [Notice],
        frames: &'a FrameStats,
        device_label: &'a str,
        tour: &'a TourGuide,
        given: &'a GivenFiles,
    ) -> Self {
        Self {
            settings,
            state,
            results,
            live,
            job,
            models,
            derived,
            notices,
            frames,
            device_label,
            tour,
            given,
            actions: Vec::new(),
        }
    }

    /// The open tour step, while the tour is open.
    pub fn tour_step(&self) -> Option<&'a crate::tour::Step> {
        self.tour.open_step().map(|(_, step)| step)
    }

    /// The open tour step once its answer is on screen: the views then mark its element.
    pub fn answered_tour_step(&self) -> Option<&'a crate::tour::Step> {
        self.tour.answered_step()
    }

    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    fn act(&mut self, action: Action) {
        self.actions.push(action);
    }
}

/// Below this width (in points) the setup and the views take turns in one column: a phone held
/// upright (390 points) has no room for the setup's 300 beside a figure.
const NARROW: f32 = 700.0;

/// Whether `ui` is too narrow for the setup beside the views, and for rows with controls at
/// their right end.
pub(super) fn is_narrow(ui: &egui::Ui) -> bool {
    ui.ctx().content_rect().width() < NARROW
}

/// A striped table that scrolls sideways where it is wider than the view (a phone), instead of
/// being cut at the edge.
pub(super) fn table<R>(ui: &mut egui::Ui, id: &str, add: impl FnOnce(&mut egui::Ui) -> R) -> R {
    egui::ScrollArea::horizontal()
        .id_salt(id)
        .show(ui, |ui| egui::Grid::new(id).striped(true).show(ui, add).inner)
        .inner
}

/// A row of controls: one line, or lines that wrap on a narrow screen.
pub(super) fn row<R>(ui: &mut egui::Ui, narrow: bool, add: impl FnOnce(&mut egui::Ui) -> R) -> R {
    if narrow { ui.horizontal_wrapped(add).inner } else { ui.horizontal(add).inner }
}

/// Adds `add` at the right end of the row; on a narrow screen, where the row wraps, in its flow
/// instead (a right-to-left block in a wrapping row is drawn over what comes before it).
pub(super) fn at_right_end<R>(ui: &mut egui::Ui, narrow: bool, add: impl FnOnce(&mut egui::Ui) -> R) -> R {
    if narrow { add(ui) } else { ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), add).inner }
}

/// Draws every view; returns what the user asked for.
pub fn show(mut view: View<'_>, ui: &mut egui::Ui) -> Vec<Action> {
    let app = &mut view;
    let narrow = is_narrow(ui);
    egui::Panel::top("top_bar").show(ui, |ui| top_bar(app, ui, narrow));
    if app.tour.step().is_some() {
        egui::Panel::top("tour").show(ui, |ui| tour::panel(app, ui));
    }
    if narrow && app.state.setup_open {
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| setup::show(app, ui));
        });
    } else {
        if !narrow {
            egui::Panel::left("setup").default_size(300.0).show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| setup::show(app, ui));
            });
        }
        central(app, ui);
    }
    if app.settings.debug_overlay {
        debug_overlay(app, ui.ctx());
    }
    drop_hint(ui.ctx());
    view.actions
}

/// The notices, the tabs and the open tab's view.
fn central(app: &mut View<'_>, ui: &mut egui::Ui) {
    egui::CentralPanel::default().show(ui, |ui| {
        notices(app, ui);
        tabs(app, ui);
        ui.separator();
        if tour::waiting_for_run(app, ui) {
            return;
        }
        egui::ScrollArea::vertical().show(ui, |ui| match app.settings.tab {
            Tab::Path => path::show(app, ui),
            Tab::Scopes => scopes::show(app, ui),
            Tab::Training => training::show(app, ui),
            Tab::Regions => regions::show(app, ui),
            Tab::Federated => federated::show(app, ui),
            Tab::Plane => plane::show(app, ui),
            Tab::Files => files::show(app, ui),
            Tab::Given => given::show(app, ui),
        });
    });
}

fn top_bar(app: &mut View<'_>, ui: &mut egui::Ui, narrow: bool) {
    row(ui, narrow, |ui| {
        ui.heading("WSA Lab");
        ui.separator();
        if narrow {
            let label = if app.state.setup_open { "Show results" } else { "Show setup" };
            if ui.button(label).clicked() {
                app.state.setup_open = !app.state.setup_open;
            }
        }
        let busy = app.is_busy();
        if ui
            .add_enabled(!busy, egui::Button::new("Run"))
            .on_hover_text("Train A and B for the chosen methods, align B to A as each says, then evaluate every path")
            .clicked()
        {
            // In the tour, Run runs the open step (a plane or a federation included).
            let in_tour = app.tour_step().is_some_and(|s| !matches!(s.run, crate::tour::StepRun::Free));
            app.act(if in_tour { Action::Tour(TourAction::Run) } else { Action::Run });
        }
        if app.tour.step().is_none() {
            let words = &app.tour.tour().words.panel;
            let start = ui.button(&words.start).on_hover_text(&words.start_hint);
            publish_target("tour-start", &start);
            if start.clicked() {
                app.act(Action::Tour(TourAction::Go(0)));
            }
        }
        if let Some(job) = app.job {
            let cancel = ui.button("Cancel");
            publish_target("cancel", &cancel);
            if cancel.clicked() {
                app.act(Action::Cancel);
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
            ui.label(RichText::new(app.device_label).weak());
        }
        at_right_end(ui, narrow, |ui| {
            if !app.settings.classroom {
                ui.checkbox(&mut app.settings.debug_overlay, "debug overlay");
            }
            if app.settings.classroom_locked {
                app.settings.classroom = true;
                ui.label(RichText::new("classroom mode").weak()).on_hover_text(
                    "Locked on for this class (?classroom=locked in the page, --classroom-locked natively)",
                );
            } else {
                ui.checkbox(&mut app.settings.classroom, "classroom mode")
                    .on_hover_text("Show only what the experiment needs: no WSA switches, optimiser details or files");
            }
            if app.settings.classroom {
                projector_scale(ui);
            }
            let reset = ui
                .add_enabled(!app.is_busy(), egui::Button::new("Reset to defaults"))
                .on_hover_text("Every experiment setting back to its default (the device and classroom mode stay)");
            if reset.clicked() {
                app.act(Action::ResetToDefaults);
            }
        });
    });
}

/// The size of everything drawn (text, controls, figures) for a projector: egui's zoom, which
/// Ctrl +/− also sets (natively; in a browser those keys zoom the page, to the same effect).
fn projector_scale(ui: &mut egui::Ui) {
    let mut zoom = ui.ctx().zoom_factor();
    let slider = egui::Slider::new(&mut zoom, 0.75..=2.5).step_by(0.05).fixed_decimals(2).suffix("×");
    let label = ui.label("size");
    if ui
        .add(slider)
        .labelled_by(label.id)
        .on_hover_text("Text and figures larger for a projector (also Ctrl +/−)")
        .changed()
    {
        ui.ctx().set_zoom_factor(zoom);
    }
}

fn device_label(choice: DeviceChoice) -> &'static str {
    match choice {
        DeviceChoice::Cpu => "CPU",
        DeviceChoice::Auto => "auto (GPU for large models)",
        DeviceChoice::Gpu => "GPU (wgpu)",
    }
}

fn tabs(app: &mut View<'_>, ui: &mut egui::Ui) {
    // Wrapped: on a narrow screen the tabs take two or three lines.
    ui.horizontal_wrapped(|ui| {
        for (tab, label) in [
            (Tab::Path, "Interpolation path"),
            (Tab::Scopes, "Weight scopes"),
            (Tab::Training, "Training"),
            (Tab::Regions, "Decision regions"),
            (Tab::Federated, "Federated"),
            (Tab::Plane, "Loss plane"),
            (Tab::Files, "Files"),
            (Tab::Given, "Your models"),
        ] {
            if app.settings.classroom && matches!(tab, Tab::Files | Tab::Given) {
                continue;
            }
            let response = ui.selectable_value(&mut app.settings.tab, tab, label);
            match tab {
                Tab::Files => publish_target("files-tab", &response),
                Tab::Plane => publish_target("plane-tab", &response),
                Tab::Given => publish_target("given-tab", &response),
                _ => {}
            }
        }
    });
}

/// Publishes where a control is on screen for the browser test (`platform::publish_target`): a
/// page drawn on a canvas has no DOM element to click.
pub(crate) fn publish_target(name: &str, response: &egui::Response) {
    crate::platform::publish_target(name, response.rect.center());
}

fn notices(app: &mut View<'_>, ui: &mut egui::Ui) {
    let mut dismissed = None;
    for (i, Notice { text, is_error }) in app.notices.iter().enumerate() {
        ui.horizontal(|ui| {
            let color = if *is_error { figure::color(palette::ERROR) } else { ui.visuals().text_color() };
            ui.label(RichText::new(text).color(color));
            if ui.small_button("dismiss").on_hover_text("dismiss").clicked() {
                dismissed = Some(i);
            }
        });
    }
    if let Some(i) = dismissed {
        app.act(Action::Dismiss(i));
    }
}

/// While files are dragged over the window: where they go.
fn drop_hint(ctx: &egui::Context) {
    let hovering = ctx.input(|i| i.raw.hovered_files.len());
    if hovering == 0 {
        return;
    }
    egui::Area::new(egui::Id::unique("drop_hint")).anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0]).show(ctx, |ui| {
        egui::Frame::popup(ui.style()).show(ui, |ui| {
            ui.heading(format!("Drop {hovering} file(s): two models and their data go to Your models"));
        });
    });
}

fn debug_overlay(app: &View<'_>, ctx: &egui::Context) {
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
/// request, to be handed to [`View::act`] once the plot no longer borrows the view.
pub fn png_button(ui: &mut egui::Ui, name: &str, rect: egui::Rect) -> Option<Action> {
    ui.small_button("Save PNG")
        .on_hover_text("Save this plot, as shown, into the export folder (Files tab)")
        .clicked()
        .then(|| Action::SavePlot { name: name.to_string(), rect })
}
