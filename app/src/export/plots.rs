//! The figures of a run (paths, weight scopes, federated rounds and clients), drawn with
//! plotters in the app's palette. Natively into a bitmap, encoded here as PNG; in a browser as
//! SVG, which the page turns into a PNG (`web::download_archive`): plotters' wasm build measures
//! text with the browser's canvas and cannot draw text into a bitmap, and the browser draws an
//! SVG's text with its own fonts.

use crate::AppError;
use crate::palette::{self, Rgb};
use crate::platform::{self, render_figure as render};
use plotters::prelude::*;
use wsa_core::experiment::connect::{ConnectResult, MethodResult};
use wsa_core::experiment::seeds::{PathSpread, mean_std};

type Result<T> = crate::AppResult<T>;

/// DejaVu Sans: the plots' font, and the app's fallback for glyphs egui's own fonts lack (the
/// box drawing of shader compiler messages, for one).
pub(crate) const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// A drawn figure, ready to be saved as `<name>.png` (`export::Content::Figure`): its image as
/// this platform draws it (`platform::render_figure`: a PNG natively, an SVG on the page).
pub struct Figure {
    pub image: platform::FigureImage,
}

const fn rgb([r, g, b]: Rgb) -> RGBColor {
    RGBColor(r, g, b)
}

const MODEL_A: RGBColor = rgb(palette::MODEL_A);
const MODEL_B: RGBColor = rgb(palette::MODEL_B);
const MERGED: RGBColor = rgb(palette::MERGED);
const B_UNALIGNED: RGBColor = rgb(palette::B_UNALIGNED);

/// A PNG of 8-bit RGBA pixels, e.g. a region of a screenshot of the app.
pub fn encode_rgba(buffer: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    encode_png(buffer, width, height, png::ColorType::Rgba)
}

/// A PNG of 8-bit pixels of `color` type (RGB for a figure drawn natively).
pub(crate) fn encode_png(buffer: &[u8], width: u32, height: u32, color: png::ColorType) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    let png_err = |e: png::EncodingError| AppError::figure("a PNG", e);
    let mut writer = encoder.write_header().map_err(png_err)?;
    writer.write_image_data(buffer).map_err(png_err)?;
    writer.finish().map_err(png_err)?;
    Ok(bytes)
}

fn draw_err<E: std::fmt::Debug>(e: E) -> AppError {
    AppError::figure("a figure", format!("{e:?}"))
}

/// Test loss and accuracy against alpha, one line per method, with the barriers in the legend;
/// for a run over several seeds the mean line, the band from the lowest to the highest seed,
/// and the barriers as mean ± std.
pub fn paths(result: &ConnectResult) -> Result<Figure> {
    let shown = result.shown(None);
    render!((1200u32, 480u32), |root| {
        let mut title = format!("{} · pair differs in {}", result.dataset, result.difference);
        if result.seeds.len() > 1 {
            title.push_str(&format!(" · mean and min-max band over {}", result.seeds_label()));
        }
        let root = root.titled(&title, ("sans-serif", 20)).map_err(draw_err)?;
        let panels = root.split_evenly((1, 2));
        let alphas: Vec<f64> = shown.iter().flat_map(|v| v.path.iter().map(|p| p.alpha)).collect();
        let (a0, a1) = alphas.iter().fold((0.0f64, 1.0f64), |(lo, hi), &a| (lo.min(a), hi.max(a)));
        for (panel, is_loss) in panels.iter().zip([true, false]) {
            let value = |p: &PathSpread| if is_loss { p.loss } else { p.accuracy };
            let (lo, hi) = shown
                .iter()
                .flat_map(|v| v.path.iter().map(value))
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x.min), hi.max(x.max)));
            let pad = ((hi - lo) * 0.08).max(1e-3);
            let (lo, hi) =
                if is_loss { ((lo - pad).max(0.0), hi + pad) } else { ((lo - pad).max(0.0), (hi + pad).min(1.0)) };
            let mut chart = ChartBuilder::on(panel)
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .caption(
                    if is_loss { "test loss along the path" } else { "test accuracy along the path" },
                    ("sans-serif", 18),
                )
                .build_cartesian_2d(a0..a1, lo..hi)
                .map_err(draw_err)?;
            chart
                .configure_mesh()
                .x_desc("alpha (0 = A, 1 = B)")
                .y_desc(if is_loss { "cross-entropy" } else { "accuracy" })
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(draw_err)?;
            for v in &shown {
                let color = rgb(palette::method(v.name));
                let barrier = if is_loss { &v.loss_barrier } else { &v.accuracy_barrier };
                let label = format!("{} (λ={}) barrier {}", v.name, v.lambda, mean_std(barrier, 3));
                if barrier.n > 1 {
                    let upper = v.path.iter().map(|p| (p.alpha, value(p).max));
                    let lower = v.path.iter().rev().map(|p| (p.alpha, value(p).min));
                    chart
                        .draw_series(std::iter::once(Polygon::new(
                            upper.chain(lower).collect::<Vec<_>>(),
                            color.mix(0.18),
                        )))
                        .map_err(draw_err)?;
                }
                chart
                    .draw_series(LineSeries::new(
                        v.path.iter().map(|p| (p.alpha, value(p).mean)),
                        color.stroke_width(3),
                    ))
                    .map_err(draw_err)?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3)));
                chart
                    .draw_series(v.path.iter().map(|p| Circle::new((p.alpha, value(p).mean), 3, color.filled())))
                    .map_err(draw_err)?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(if is_loss { SeriesLabelPosition::UpperRight } else { SeriesLabelPosition::LowerRight })
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(draw_err)?;
        }
    })
}

/// One panel per layer: histograms of A, B (and B before alignment, when the method aligned it)
/// and the midpoint, with the target Gaussian.
pub fn histograms(variant: &MethodResult) -> Result<Figure> {
    let n = variant.layers.len().max(1);
    let cols = n.min(3);
    let rows = n.div_ceil(cols);
    render!((440 * cols as u32, 320 * rows as u32 + 40), |root| {
        let title = format!("weight scopes · {} (λ = {}) · A, B, midpoint and target", variant.name, variant.lambda);
        let root = root.titled(&title, ("sans-serif", 20)).map_err(draw_err)?;
        for (panel, layer) in root.split_evenly((rows, cols)).iter().zip(&variant.layers) {
            let hist = &layer.histogram;
            let bins = hist.a.len().max(1);
            let width = (hist.high - hist.low).max(1e-12) / bins as f64;
            let total = |counts: &[u64]| counts.iter().sum::<u64>().max(1) as f64;
            let density = |counts: &[u64]| -> Vec<(f64, f64)> {
                let t = total(counts);
                counts
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| (hist.low + (i as f64 + 0.5) * width, c as f64 / (t * width)))
                    .collect()
            };
            let (da, db, dm) = (density(&hist.a), density(&hist.b), density(&hist.merged));
            let du = hist.b_unaligned.as_deref().map(density);
            let target = layer.target;
            let gauss = |x: f64| {
                let s = target.std.max(1e-12);
                (-(x - target.mean).powi(2) / (2.0 * s * s)).exp() / (s * (2.0 * std::f64::consts::PI).sqrt())
            };
            let peak = da
                .iter()
                .chain(&db)
                .chain(&dm)
                .chain(du.iter().flatten())
                .map(|p| p.1)
                .fold(gauss(target.mean), f64::max);
            let mut chart = ChartBuilder::on(panel)
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .caption(format!("{} (n = {})", layer.path, layer.a.count), ("sans-serif", 15))
                .build_cartesian_2d(hist.low..hist.high, 0.0..peak * 1.1)
                .map_err(draw_err)?;
            chart
                .configure_mesh()
                .light_line_style(RGBColor(240, 240, 240))
                .x_labels(5)
                .y_labels(4)
                .draw()
                .map_err(draw_err)?;
            let unaligned = du.as_ref().map(|d| (d, B_UNALIGNED, "B before alignment"));
            for (series, color, name) in
                [(&da, MODEL_A, "A"), (&db, MODEL_B, "B"), (&dm, MERGED, "midpoint")].into_iter().chain(unaligned)
            {
                chart
                    .draw_series(LineSeries::new(series.iter().copied(), color.stroke_width(2)))
                    .map_err(draw_err)?
                    .label(name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
            }
            let steps = 200;
            let curve = (0..=steps).map(|i| {
                let x = hist.low + (hist.high - hist.low) * i as f64 / steps as f64;
                (x, gauss(x))
            });
            chart
                .draw_series(LineSeries::new(curve, BLACK.stroke_width(1)))
                .map_err(draw_err)?
                .label("target N(μ*, σ*²)")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .label_font(("sans-serif", 12))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(draw_err)?;
        }
    })
}

/// Global test accuracy per round, one line per federated run.
pub fn fed_accuracy(result: &wsa_core::experiment::federated::FedResult) -> Result<Figure> {
    render!((900u32, 520u32), |root| {
        let rounds = result.config.rounds as f64;
        let accs: Vec<f64> = result.runs.iter().flat_map(|r| r.rounds.iter().map(|x| x.test_accuracy)).collect();
        let lo = accs.iter().copied().fold(1.0f64, f64::min);
        let title = format!("{} · {} clients · global test accuracy per round", result.dataset, result.config.clients);
        let mut chart = ChartBuilder::on(&root)
            .margin(14)
            .caption(title, ("sans-serif", 20))
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..rounds.max(1.0), (lo - 0.02).max(0.0)..1.0)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .x_desc("round")
            .y_desc("test accuracy")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(draw_err)?;
        for (i, run) in result.runs.iter().enumerate() {
            let color = rgb(palette::RUNS[i % palette::RUNS.len()]);
            let style = if run.name.ends_with("+wsa") { color.stroke_width(3) } else { color.stroke_width(2) };
            chart
                .draw_series(LineSeries::new(run.rounds.iter().map(|r| (r.round as f64, r.test_accuracy)), style))
                .map_err(draw_err)?
                .label(format!("{} (final {:.4})", run.name, run.final_accuracy))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(draw_err)?;
    })
}

/// The label distribution of every client as stacked bars (one colour per class).
pub fn client_labels(result: &wsa_core::experiment::federated::FedResult) -> Result<Figure> {
    render!((900u32, 480u32), |root| {
        let n = result.clients.len();
        let most = result.clients.iter().map(|c| c.samples).max().unwrap_or(1).max(1) as f64;
        let title = format!("label distribution per client ({:?})", result.config.split);
        let mut chart = ChartBuilder::on(&root)
            .margin(14)
            .caption(title, ("sans-serif", 18))
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..most * 1.05)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .x_desc("client")
            .y_desc("samples")
            .disable_x_mesh()
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(draw_err)?;
        for (k, client) in result.clients.iter().enumerate() {
            let mut bottom = 0.0;
            for (class, &count) in client.label_counts.iter().enumerate() {
                let top = bottom + count as f64;
                let mut color = rgb(palette::CLASSES[class % palette::CLASSES.len()]).filled();
                if !client.participates {
                    color = color.color.mix(0.3).filled();
                }
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(k as f64 - 0.4, bottom), (k as f64 + 0.4, top)],
                        color,
                    )))
                    .map_err(draw_err)?;
                bottom = top;
            }
        }
    })
}

/// A family of `wsa-lab reproduce` as a forest plot: one line per row of the family (labels on
/// the left), a point per variant at its mean over seeds with a bar of ± one standard
/// deviation, the variants of a row stacked around its line.
pub fn seed_summary(data: &wsa_core::experiment::reproduce::report::FigureData) -> Result<Figure> {
    use wsa_core::experiment::reproduce::stats::Summary;
    let rows = data.rows.len().max(1);
    let height = (120 + 34 * rows).clamp(320, 2400) as u32;
    render!((1200u32, height), |root| {
        let ends: Vec<(f64, f64)> = data
            .series
            .iter()
            .flat_map(|(_, s)| s.iter().flatten().map(|x| (x.mean - x.std, x.mean + x.std)))
            .collect();
        let lo = ends.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let hi = ends.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() && hi.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let pad = ((hi - lo) * 0.06).max(1e-3);
        // Row 0 at the top.
        let mut chart = ChartBuilder::on(&root)
            .margin(14)
            .caption(&data.title, ("sans-serif", 20))
            .x_label_area_size(40)
            .y_label_area_size(470)
            .build_cartesian_2d((lo - pad)..(hi + pad), (rows as f64 - 0.5)..-0.5)
            .map_err(draw_err)?;
        let labels = data.rows.clone();
        chart
            .configure_mesh()
            .x_desc(data.y_label.as_str())
            .disable_y_mesh()
            .y_labels(rows)
            .y_label_style(("sans-serif", 13))
            .y_label_formatter(&|y| {
                let i = y.round();
                let on_row = (y - i).abs() < 1e-6 && i >= 0.0;
                if on_row { labels.get(i as usize).cloned().unwrap_or_default() } else { String::new() }
            })
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(draw_err)?;
        let n = data.series.len().max(1) as f64;
        for (k, (variant, summaries)) in data.series.iter().enumerate() {
            let color = series_color(variant, k);
            let offset = (k as f64 - (n - 1.0) / 2.0) * (0.7 / n);
            let placed: Vec<(f64, Summary)> =
                summaries.iter().enumerate().filter_map(|(i, s)| s.map(|s| (i as f64 + offset, s))).collect();
            chart
                .draw_series(placed.iter().map(|&(y, s)| {
                    PathElement::new(vec![(s.mean - s.std, y), (s.mean + s.std, y)], color.stroke_width(2))
                }))
                .map_err(draw_err)?;
            chart
                .draw_series(placed.iter().map(|&(y, s)| Circle::new((s.mean, y), 4, color.filled())))
                .map_err(draw_err)?
                .label(variant.as_str())
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(draw_err)?;
    })
}

/// A method's own colour when the variant is a method's name, else the k-th run colour.
fn series_color(variant: &str, k: usize) -> RGBColor {
    match wsa_core::experiment::method::Method::from_name(variant) {
        Ok(m) => rgb(palette::method(m)),
        Err(_) => rgb(palette::RUNS[k % palette::RUNS.len()]),
    }
}
