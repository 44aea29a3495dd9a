//! Live training curves (train loss and test accuracy per epoch for A and B of every trained
//! pair, plain and WSA), from the running job or, when idle, from the last result.

use super::View;
use super::figure::color;
use super::png_button;
use egui::Ui;
use egui_plot::{Legend, Line, LineStyle, Plot, PlotPoints};
use wsa_core::experiment::connect::{Endpoint, EpochRecord};
use wsa_core::experiment::method::Training;
use wsa_figures::palette;

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
                ui.label(title);
                Plot::new(("curves", title))
                    .width(width)
                    .height(260.0)
                    .legend(Legend::default())
                    .x_axis_label("epoch")
                    .show(ui, |plot| {
                        for pair in Training::ALL {
                            for model in Endpoint::ALL {
                                let pts: Vec<[f64; 2]> = records
                                    .iter()
                                    .filter(|(p, r)| *p == pair && r.model == model)
                                    .map(|(_, r)| [r.epoch as f64, value(r)])
                                    .collect();
                                if pts.is_empty() {
                                    continue;
                                }
                                let color = color(palette::endpoint(model));
                                let style =
                                    if pair == Training::Plain { LineStyle::dashed_loose() } else { LineStyle::Solid };
                                plot.line(
                                    Line::new(format!("{} {}", pair.name(), model.label()), PlotPoints::from(pts))
                                        .color(color)
                                        .style(style)
                                        .width(2.0),
                                );
                            }
                        }
                    });
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
