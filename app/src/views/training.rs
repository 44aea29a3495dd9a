//! Live training curves (train loss and test accuracy per epoch for A and B of every trained
//! pair, plain and WSA), from the running job or, when idle, from the last result.

use super::View;
use super::figure::{self, Size};
use super::png_button;
use egui::Ui;
use wsa_core::experiment::connect::EpochRecord;
use wsa_core::experiment::method::Training;
use wsa_figures::describe;

pub fn show(app: &mut View<'_>, ui: &mut Ui) {
    let records: Vec<(Training, &EpochRecord)> = if app.is_busy() {
        app.live.epochs.iter().map(|(pair, record)| (*pair, record)).collect()
    } else if let Some(result) = app.results.connect() {
        result.pairs.iter().flat_map(|p| p.curves.iter().map(move |c| (p.training, c))).collect()
    } else {
        Vec::new()
    };
    if app.is_busy() {
        let seed = app.live.seed.map(|(i, n, seed)| format!(" (seed {seed}, {} of {n})", i + 1)).unwrap_or_default();
        ui.label(format!("{} — {} epochs finished{seed}", app.live.stage, app.live.epochs.len()));
    } else if let Some(result) = app.results.connect().filter(|r| r.seeds.len() > 1) {
        ui.label(format!(
            "The curves of seed {}, the first of {} (the Path tab shows all).",
            result.config.seed,
            result.seeds_label()
        ));
    }
    if records.is_empty() {
        ui.label("No training yet.");
        return;
    }
    let width = (ui.available_width() / 2.0 - 8.0).max(200.0);
    let mut save = None;
    ui.horizontal(|ui| {
        for (title, value) in [
            ("train loss", (|r: &EpochRecord| r.train_loss) as fn(&EpochRecord) -> f64),
            ("test accuracy", |r| r.test_accuracy),
        ] {
            ui.vertical(|ui| {
                let panel = describe::training_panel(&records, title, value);
                ui.label(title);
                figure::draw(
                    ui,
                    &format!("curves {title}"),
                    &panel,
                    Size { height: 260.0, width: Some(width) },
                    |_| (),
                );
                if let Some(request) = png_button(ui, &format!("training-{}", title.replace(' ', "-")), ui.min_rect()) {
                    save = Some(request);
                }
            });
        }
    });
    ui.label(
        "Dashed: the plain pair (λ = 0); solid: the WSA pair. Methods that only align B share their pair's training.",
    );
    if let Some(action) = save {
        app.act(action);
    }
}
