//! The tour's panel above the views: the step's idea, the question to answer before running,
//! Run, then what to look at and the step's claim checked on the run's own seeds; Back, Next,
//! Restart and Leave, each also on a key ([`keys`]), so that a teacher at a projector drives
//! the tour from the keyboard. Every word shown here comes from the tour's file (`tour.ron` or a
//! translation of it: the step's texts and `Tour::words`); nothing here says anything about the
//! method.

use super::{Action, TourAction, View};
use crate::tour::{ClaimCheck, Exercise, PanelWords, StepRun, fill, keys, numbered};
use egui::{Color32, Key, RichText, Ui};

/// The colour that marks what a step asks to look at.
pub const MARK: Color32 = super::figure::color(wsa_figures::palette::MARK);

/// What the tour's keys ask for this frame. Keys meant for a widget stay there: typed into a
/// text field (a file path, the hidden widths), moving a focused slider, in an open drop-down
/// list, or held with Ctrl, Alt or Cmd (the browser's and the system's shortcuts).
fn handle_keys(app: &mut View<'_>, ui: &Ui, index: usize, total: usize, runs: bool) {
    let ctx = ui.ctx();
    let widget_has_keys = std::mem::replace(&mut app.state.focus_last_frame, ctx.memory(|m| m.focused().is_some()))
        || ctx.egui_wants_keyboard_input()
        || egui::Popup::is_any_open(ctx);
    let shortcut_of_another = ui.input(|i| i.modifiers.ctrl || i.modifiers.alt || i.modifiers.command);
    if widget_has_keys || shortcut_of_another {
        return;
    }
    // Shift is let through: ? is Shift+/ on many keyboards.
    let pressed = |key: Key| ui.input_mut(|i| i.consume_key(egui::Modifiers::NONE, key));
    // (Each check consumes its key: the list's state is asked first, so that an Esc meant to
    // leave is not consumed by it.)
    if app.state.tour_keys_open && pressed(Key::Escape) {
        // Esc closes the list of keys first.
        app.state.tour_keys_open = false;
    } else if pressed(Key::ArrowRight) && index + 1 < total {
        app.act(Action::Tour(TourAction::Go(index + 1)));
    } else if pressed(Key::ArrowLeft) && index > 0 {
        app.act(Action::Tour(TourAction::Go(index - 1)));
    } else if pressed(Key::R) && runs && !app.is_busy() {
        app.act(Action::Tour(TourAction::Run));
    } else if pressed(Key::Escape) {
        app.act(Action::Tour(TourAction::Leave));
    }
    if pressed(Key::Questionmark) {
        app.state.tour_keys_open = !app.state.tour_keys_open;
    }
}

/// The tour's panel: a region of the accessibility tree labelled with the tour's name, so that a
/// screen reader (and the tests) find the tour's words in one place.
pub fn panel(app: &mut View<'_>, ui: &mut Ui) {
    let region = egui::UiBuilder::new()
        .accessibility_role(egui::accesskit::Role::Region)
        .accessibility_label(app.tour.tour().words.panel.start.as_str());
    ui.scope_builder(region, |ui| panel_contents(app, ui));
}

fn panel_contents(app: &mut View<'_>, ui: &mut Ui) {
    let guide = app.tour;
    let words = &guide.tour().words.panel;
    let Some((index, step)) = guide.open_step() else { return };
    let total = guide.steps().len();
    let answered = guide.answered();
    let runs = !matches!(step.run, StepRun::Free);
    handle_keys(app, ui, index, total, runs);
    if app.state.tour_keys_open {
        let mut open = true;
        let window = egui::Window::new(&words.keys_title).id(egui::Id::unique("tour-keys-window"));
        window.open(&mut open).collapsible(false).resizable(false).show(ui.ctx(), |ui| {
            egui::Grid::new("tour-keys").show(ui, |ui| {
                for (key, what) in keys(words) {
                    ui.label(RichText::new(key).strong().monospace());
                    ui.label(what);
                    ui.end_row();
                }
            });
        });
        app.state.tour_keys_open = open;
    }
    let narrow = super::is_narrow(ui);
    super::row(ui, narrow, |ui| {
        ui.label(RichText::new(words.step_of(index + 1, total)).strong());
        ui.heading(&step.title);
        super::at_right_end(ui, narrow, |ui| {
            if ui.button(&words.leave).clicked() {
                app.act(Action::Tour(TourAction::Leave));
            }
            if ui.add_enabled(index + 1 < total, egui::Button::new(&words.next)).clicked() {
                app.act(Action::Tour(TourAction::Go(index + 1)));
            }
            if ui.add_enabled(index > 0, egui::Button::new(&words.back)).clicked() {
                app.act(Action::Tour(TourAction::Go(index - 1)));
            }
            if ui.add_enabled(index > 0, egui::Button::new(&words.restart)).clicked() {
                app.act(Action::Tour(TourAction::Go(0)));
            }
            if ui.button(&words.glossary).on_hover_text(&words.glossary_hint).clicked() {
                app.state.glossary_open = !app.state.glossary_open;
                app.state.glossary_term = None;
            }
            let keys_button = ui.button(&words.keys).on_hover_text(&words.keys_hint);
            if keys_button.clicked() {
                app.state.tour_keys_open = !app.state.tour_keys_open;
            }
        });
    });
    ui.label(&step.text);
    let terms = guide.tour().terms_of(step);
    if !terms.is_empty() {
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(&words.terms).weak());
            for term in terms {
                if ui.small_button(&term.term).on_hover_text(&term.meaning).clicked() {
                    app.state.glossary_open = true;
                    app.state.glossary_term = Some(term.term.clone());
                    app.state.glossary_scroll = true;
                }
            }
        });
    }
    glossary(app, ui);
    if !step.predict.is_empty() {
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(&words.predict).strong().color(MARK));
            ui.label(&step.predict);
        });
        // Written down before the run, so that the answer is compared with it, not with memory.
        ui.horizontal(|ui| {
            let label = ui.label(&words.your_prediction);
            let prediction = app.state.predictions.entry(index).or_default();
            let field = egui::TextEdit::singleline(prediction).hint_text(&words.prediction_hint);
            ui.add_enabled(!answered, field).labelled_by(label.id);
        });
    }
    ui.horizontal(|ui| {
        if runs {
            let label = if answered { &words.run_again } else { &words.run };
            if ui.add_enabled(!app.is_busy(), egui::Button::new(RichText::new(label).strong())).clicked() {
                app.act(Action::Tour(TourAction::Run));
            }
        }
        if app.is_busy() {
            ui.label(RichText::new(fill(&words.running, &[("stage", &app.live.stage)])).weak());
        }
    });
    if answered && !step.look.is_empty() {
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(&words.look).strong().color(MARK));
            ui.label(&step.look);
        });
        if let Some(prediction) = app.state.predictions.get(&index).filter(|p| !p.trim().is_empty()) {
            ui.horizontal_wrapped(|ui| {
                ui.label(RichText::new(&words.you_predicted).strong());
                ui.label(prediction.as_str());
            });
        }
        for check in guide.checks() {
            claim_line(ui, words, check);
        }
    }
    for (k, task) in step.exercises.iter().enumerate() {
        exercise(app, ui, words, index, k, task);
    }
}

/// A claim checked on a run: held on every seed or not, and the numbers.
fn claim_line(ui: &mut Ui, words: &PanelWords, check: &ClaimCheck) {
    let (mark, color) = if check.holds_everywhere() {
        ("✔", super::figure::color(wsa_figures::palette::HELD))
    } else {
        ("✘", super::figure::color(wsa_figures::palette::NOT_HELD))
    };
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(format!("{mark} {}", words.in_this_run)).strong().color(color));
        ui.label(check.line());
    });
}

/// Exercise `k` of step `step`: its task, a button that sets its experiment up and runs it, and
/// its answer behind a button, with the answer's claims checked on the student's run once that
/// is in (hidden until asked for, so that the student predicts first).
fn exercise(app: &mut View<'_>, ui: &mut Ui, words: &PanelWords, step: usize, k: usize, exercise: &Exercise) {
    ui.separator();
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(numbered(&words.exercise, k + 1)).strong().color(MARK));
        ui.label(&exercise.task);
    });
    let shown = app.state.answers_shown.contains(&(step, k));
    ui.horizontal(|ui| {
        let run = egui::Button::new(numbered(&words.run_exercise, k + 1));
        if ui.add_enabled(!app.is_busy(), run).on_hover_text(&words.run_exercise_hint).clicked() {
            app.act(Action::Tour(TourAction::RunExercise(k)));
        }
        let label = numbered(if shown { &words.hide_answer } else { &words.show_answer }, k + 1);
        if ui.button(label).clicked() {
            if shown {
                app.state.answers_shown.remove(&(step, k));
            } else {
                app.state.answers_shown.insert((step, k));
            }
        }
    });
    if !shown {
        return;
    }
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(&words.answer).strong());
        ui.label(&exercise.answer);
    });
    match app.results.connect().filter(|result| exercise.is_answered_by(Some(result))) {
        Some(result) => {
            for check in exercise.check_claims(result) {
                claim_line(ui, words, &check);
            }
        }
        None => {
            ui.label(RichText::new(&words.run_exercise_first).weak());
        }
    }
}

/// The tour's glossary in a window of its own, the term clicked (if any) marked.
fn glossary(app: &mut View<'_>, ui: &Ui) {
    if !app.state.glossary_open {
        return;
    }
    let mut open = true;
    let chosen = app.state.glossary_term.clone();
    let scroll = std::mem::take(&mut app.state.glossary_scroll);
    let window = egui::Window::new(&app.tour.tour().words.panel.glossary).id(egui::Id::unique("tour-glossary-window"));
    window.open(&mut open).default_width(460.0).vscroll(true).show(ui.ctx(), |ui| {
        for term in &app.tour.tour().glossary {
            let name = RichText::new(&term.term).strong();
            let name = if chosen.as_deref() == Some(term.term.as_str()) { name.color(MARK) } else { name };
            let heading = ui.label(name);
            if scroll && chosen.as_deref() == Some(term.term.as_str()) {
                heading.scroll_to_me(Some(egui::Align::TOP));
            }
            ui.label(&term.meaning);
            ui.add_space(6.0);
        }
    });
    app.state.glossary_open = open;
}

/// What the views show instead of a tab while the open step has not run: the question first.
/// `true` when it drew that.
pub fn waiting_for_run(app: &View<'_>, ui: &mut Ui) -> bool {
    let Some((_, step)) = app.tour.open_step() else { return false };
    if app.is_busy() || app.tour.answered() {
        return false;
    }
    ui.add_space(40.0);
    ui.vertical_centered(|ui| {
        ui.label(RichText::new(&step.predict).size(20.0));
        ui.add_space(10.0);
        ui.label(RichText::new(&app.tour.tour().words.panel.think_first).weak());
    });
    true
}

/// A label beside the marked element: "▶ look here", in the mark's colour.
pub fn mark_label(ui: &mut Ui, text: &str) {
    ui.label(RichText::new(format!("▶ {text}")).strong().color(MARK));
}
