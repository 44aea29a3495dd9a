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
            let (lo, hi) = result
                .methods
                .iter()
                .filter_map(|m| m.curve.as_ref())
                .flat_map(|c| c.path.iter().map(|p| if is_loss { p.loss } else { p.accuracy }))
                .fold((lo, hi), |(lo, hi), x| (lo.min(x), hi.max(x)));
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
                let color = rgb(palette::method(v.method));
                let barrier = if is_loss { &v.loss_barrier } else { &v.accuracy_barrier };
                let label = format!("{} (λ={}) barrier {}", v.method, v.lambda, mean_std(barrier, 3));
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
            // Each method's trained curve (the first seed's), dashed in the method's colour.
            for m in &result.methods {
                let Some(curve) = &m.curve else { continue };
                let color = rgb(palette::method(m.method));
                let barrier = if is_loss { curve.barriers.loss } else { curve.barriers.accuracy };
                let point = |p: &wsa_core::merge::PathPoint| (p.alpha, if is_loss { p.loss } else { p.accuracy });
                chart
                    .draw_series(DashedLineSeries::new(curve.path.iter().map(point), 8, 5, color.stroke_width(2)))
                    .map_err(draw_err)?
                    .label(format!("{} {} curve barrier {barrier:.3}", m.method, curve.kind.name()))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 8, y)], color.stroke_width(2)));
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

/// The loss plane: test loss on the grid as a heat map (log scale, viridis-like, with its colour
/// bar), the line A-B, the curve when there is one, and the three models labelled.
pub fn plane(plane: &wsa_core::experiment::plane::Plane) -> Result<Figure> {
    let (nx, ny) = (plane.xs.len(), plane.ys.len());
    let logs = plane.log_loss();
    let (lo, hi) = logs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x)));
    let shade = |x: f64| {
        let t = if hi > lo { (x - lo) / (hi - lo) } else { 0.0 };
        // Dark blue (low loss) through teal and green to yellow (high loss).
        let stops =
            [(68.0, 1.0, 84.0), (59.0, 82.0, 139.0), (33.0, 145.0, 140.0), (94.0, 201.0, 98.0), (253.0, 231.0, 37.0)];
        let at = t.clamp(0.0, 1.0) * (stops.len() - 1) as f64;
        let (k, f) = ((at.floor() as usize).min(stops.len() - 2), at - at.floor());
        let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
        RGBColor(mix(stops[k].0, stops[k + 1].0), mix(stops[k].1, stops[k + 1].1), mix(stops[k].2, stops[k + 1].2))
    };
    let step = |v: &[f64]| if v.len() > 1 { v[1] - v[0] } else { 1.0 };
    let (dx, dy) = (step(&plane.xs), step(&plane.ys));
    render!((900u32, 760u32), |root| {
        let (main, bar) = root.split_horizontally(790);
        let mut chart = ChartBuilder::on(&main)
            .margin(14)
            .caption("test loss on the plane through A, B and the third model", ("sans-serif", 18))
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(
                (plane.xs[0] - dx / 2.0)..(plane.xs[nx - 1] + dx / 2.0),
                (plane.ys[0] - dy / 2.0)..(plane.ys[ny - 1] + dy / 2.0),
            )
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .x_desc("along B − A")
            .y_desc("toward the third model")
            .disable_mesh()
            .draw()
            .map_err(draw_err)?;
        chart
            .draw_series((0..ny).flat_map(|j| (0..nx).map(move |i| (i, j))).map(|(i, j)| {
                let (x, y) = (plane.xs[i], plane.ys[j]);
                Rectangle::new(
                    [(x - dx / 2.0, y - dy / 2.0), (x + dx / 2.0, y + dy / 2.0)],
                    shade(logs[j * nx + i]).filled(),
                )
            }))
            .map_err(draw_err)?;
        let a = &plane.models[0];
        let b = &plane.models[1];
        chart
            .draw_series(std::iter::once(PathElement::new(vec![(a.x, a.y), (b.x, b.y)], WHITE.stroke_width(2))))
            .map_err(draw_err)?;
        if let Some((_, path)) = &plane.curve {
            chart
                .draw_series(DashedLineSeries::new(path.iter().map(|p| (p[0], p[1])), 8, 5, WHITE.stroke_width(2)))
                .map_err(draw_err)?;
        }
        // Each label a little above and right of its point (in data units: a share of the axes).
        let (offset_x, offset_y) = ((plane.xs[nx - 1] - plane.xs[0]) * 0.012, (plane.ys[ny - 1] - plane.ys[0]) * 0.025);
        for m in &plane.models {
            chart.draw_series(std::iter::once(Circle::new((m.x, m.y), 6, WHITE.filled()))).map_err(draw_err)?;
            let at = (m.x + offset_x, m.y + offset_y);
            chart
                .draw_series(std::iter::once(Text::new(
                    m.label.clone(),
                    at,
                    ("sans-serif", 18).into_font().color(&WHITE),
                )))
                .map_err(draw_err)?;
        }
        // The colour bar: loss on the same log scale.
        let mut scale = ChartBuilder::on(&bar)
            .margin_top(44)
            .margin_bottom(54)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..1.0, lo.exp()..hi.exp())
            .map_err(draw_err)?;
        scale
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_desc("test loss")
            .y_label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .draw()
            .map_err(draw_err)?;
        let rows = 100;
        scale
            .draw_series((0..rows).map(|r| {
                let (l0, l1) = (lo + (hi - lo) * r as f64 / rows as f64, lo + (hi - lo) * (r + 1) as f64 / rows as f64);
                Rectangle::new([(0.0, l0.exp()), (1.0, l1.exp())], shade((l0 + l1) / 2.0).filled())
            }))
            .map_err(draw_err)?;
    })
}

/// One panel per layer: histograms of A, B (and B before alignment, when the method aligned it)
/// and the midpoint, with the target Gaussian.
pub fn histograms(variant: &MethodResult) -> Result<Figure> {
    let n = variant.layers.len().max(1);
    let cols = n.min(3);
    let rows = n.div_ceil(cols);
    render!((440 * cols as u32, 320 * rows as u32 + 40), |root| {
        let title = format!("weight scopes · {} (λ = {}) · A, B, midpoint and target", variant.method, variant.lambda);
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
/// the left, as wide as the longest needs), a point per variant at its mean over seeds with a bar
/// from the lowest to the highest seed (never below a barrier's zero, as mean ± std can be), the
/// variants of a row stacked around its line, and the legend in a column of its own to the right
/// of the data.
pub fn seed_summary(data: &wsa_core::experiment::reproduce::report::FigureData) -> Result<Figure> {
    use wsa_core::experiment::stats::Summary;
    /// Width of a character of the row labels (13 px sans-serif), generously.
    const LABEL_CHAR_PX: usize = 7;
    const LEGEND_PX: u32 = 190;
    let rows = data.rows.len().max(1);
    let height = (120 + 34 * rows).clamp(320, 2400) as u32;
    let label_px =
        (data.rows.iter().map(|l| l.chars().count()).max().unwrap_or(10) * LABEL_CHAR_PX + 24).clamp(200, 900);
    let width = 730 + label_px as u32 + LEGEND_PX;
    let all: Vec<Summary> = data.series.iter().flat_map(|(_, s)| s.iter().flatten().copied()).collect();
    // The bars span the seeds' range: the axis must hold min and max, which `range` reads as
    // mean ± std, so each summary is handed to it as its range.
    let spans: Vec<Summary> =
        all.iter().map(|s| Summary { mean: 0.5 * (s.min + s.max), std: 0.5 * (s.max - s.min), ..*s }).collect();
    let axis = ValueAxis::for_values(&all);
    render!((width, height), |root| {
        let (lo, hi) = axis.range(&spans);
        let (plot, legend) = root.split_horizontally((width - LEGEND_PX) as i32);
        // Row 0 at the top.
        let mut chart = ChartBuilder::on(&plot)
            .margin(14)
            .caption(&data.title, ("sans-serif", 20))
            .x_label_area_size(40)
            .y_label_area_size(label_px as u32)
            .build_cartesian_2d(TickedRange { range: lo..hi, ticks: axis.ticks(lo, hi) }, (rows as f64 - 0.5)..-0.5)
            .map_err(draw_err)?;
        let labels = data.rows.clone();
        let x_desc = match axis.symlog {
            Some(_) => format!("{} (symmetric log scale)", data.y_label),
            None => data.y_label.clone(),
        };
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .x_label_formatter(&|t| tick_label(axis.value_at(*t)))
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
            let at = |x: f64| axis.axis_of(x).clamp(lo, hi);
            chart
                .draw_series(
                    placed
                        .iter()
                        .map(|&(y, s)| PathElement::new(vec![(at(s.min), y), (at(s.max), y)], color.stroke_width(2))),
                )
                .map_err(draw_err)?;
            chart
                .draw_series(placed.iter().map(|&(y, s)| Circle::new((at(s.mean), y), 4, color.filled())))
                .map_err(draw_err)?;
            let y = 60 + 24 * k as i32;
            legend.draw(&Circle::new((16, y), 5, color.filled())).map_err(draw_err)?;
            legend.draw(&Text::new(variant.clone(), (28, y - 8), ("sans-serif", 15))).map_err(draw_err)?;
        }
        for (i, line) in ["dot: mean over seeds", "bar: lowest to highest seed"].into_iter().enumerate() {
            let y = 60 + 24 * data.series.len() as i32 + 8 + 16 * i as i32;
            legend.draw(&Text::new(line, (8, y), ("sans-serif", 12))).map_err(draw_err)?;
        }
    })
}

/// The value axis of a forest plot: linear, or symmetric-log (linear near zero, logarithmic
/// beyond `c`) when the values span orders of magnitude, so that one wild row (rescaling's
/// barriers in the hundreds beside barriers of 0.01) does not squash every other row onto a
/// point while it is still drawn where it is.
#[derive(Clone, Copy, Debug, PartialEq)]
struct ValueAxis {
    /// `Some(c)`: x maps to sign(x) log10(1 + |x| / c).
    symlog: Option<f64>,
}

impl ValueAxis {
    /// Symmetric-log when the widest interval end is over 100 times the median |mean|, with `c`
    /// a tenth of that median (so the typical row sits on the logarithmic part).
    fn for_values(summaries: &[wsa_core::experiment::stats::Summary]) -> Self {
        let mut magnitudes: Vec<f64> =
            summaries.iter().map(|s| s.mean.abs()).filter(|m| m.is_finite() && *m > 0.0).collect();
        if magnitudes.is_empty() {
            return Self { symlog: None };
        }
        magnitudes.sort_by(f64::total_cmp);
        let median = magnitudes[magnitudes.len() / 2];
        let widest = summaries.iter().map(|s| s.mean.abs() + s.std).filter(|x| x.is_finite()).fold(0.0, f64::max);
        Self { symlog: (widest > 100.0 * median).then_some(median / 10.0) }
    }

    fn axis_of(self, x: f64) -> f64 {
        match self.symlog {
            None => x,
            Some(c) => x.signum() * (1.0 + x.abs() / c).log10(),
        }
    }

    fn value_at(self, t: f64) -> f64 {
        match self.symlog {
            None => t,
            Some(c) => t.signum() * (10f64.powf(t.abs()) - 1.0) * c,
        }
    }

    /// The axis range (in axis units) holding every mean ± std, padded.
    fn range(self, summaries: &[wsa_core::experiment::stats::Summary]) -> (f64, f64) {
        let (lo, hi) = summaries
            .iter()
            .filter(|s| s.mean.is_finite() && s.std.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
                (lo.min(self.axis_of(s.mean - s.std)), hi.max(self.axis_of(s.mean + s.std)))
            });
        let (lo, hi) = if lo.is_finite() && hi.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let pad = ((hi - lo) * 0.06).max(1e-3);
        (lo - pad, hi + pad)
    }

    /// Tick positions (axis units) between `lo` and `hi`: 0 and the powers of ten on a
    /// symmetric-log axis (those crowding near zero, closer than a twentieth of the axis to the
    /// next one out, left out), 1-2-5 steps on a linear one.
    fn ticks(self, lo: f64, hi: f64) -> Vec<f64> {
        match self.symlog {
            Some(_) => {
                let (a, b) = (self.value_at(lo), self.value_at(hi));
                let top = a.abs().max(b.abs()).max(f64::MIN_POSITIVE).log10().ceil() as i32;
                let gap = (hi - lo) / 20.0;
                let mut ticks = vec![0.0];
                for sign in [1.0, -1.0] {
                    // From the largest power down, each kept only when clear of the last kept.
                    let mut last = f64::INFINITY;
                    for k in (top - 8..=top).rev() {
                        let t = self.axis_of(sign * 10f64.powi(k));
                        if (a..=b).contains(&self.value_at(t)) && (last - t).abs() >= gap && t.abs() >= gap {
                            ticks.push(t);
                            last = t;
                        }
                    }
                }
                ticks.sort_by(f64::total_cmp);
                ticks
            }
            None => {
                let raw = (hi - lo) / 8.0;
                let power = 10f64.powf(raw.log10().floor());
                let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|s| *s >= raw).unwrap_or(raw);
                let first = (lo / step).ceil() as i64;
                let last = (hi / step).floor() as i64;
                (first..=last).map(|i| i as f64 * step).collect()
            }
        }
    }
}

/// A linear range whose ticks are given: plotters' own f64 range picks its ticks itself, and
/// its key-point wrapper has no label formatting.
struct TickedRange {
    range: std::ops::Range<f64>,
    ticks: Vec<f64>,
}

impl plotters::coord::ranged1d::Ranged for TickedRange {
    type ValueType = f64;
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;

    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }

    fn map(&self, value: &f64, (from, to): (i32, i32)) -> i32 {
        let fraction = (value - self.range.start) / (self.range.end - self.range.start);
        from + (fraction * f64::from(to - from)).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }
}

/// A tick's value, in as few digits as it needs.
fn tick_label(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let digits = (2 - value.abs().log10().floor() as i32).clamp(0, 10) as usize;
    let text = format!("{value:.digits$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}

/// A method's own colour when the variant is a method's name, else the k-th run colour.
fn series_color(variant: &str, k: usize) -> RGBColor {
    match wsa_core::experiment::method::Method::from_name(variant) {
        Ok(m) => rgb(palette::method(m)),
        Err(_) => rgb(palette::RUNS[k % palette::RUNS.len()]),
    }
}

#[cfg(test)]
mod tests {
    use super::{ValueAxis, tick_label};
    use wsa_core::experiment::stats::summarize;

    #[test]
    fn values_spanning_orders_of_magnitude_get_a_symmetric_log_axis() {
        let rows: Vec<_> = [[0.01, 0.03], [0.02, 0.04], [0.0, 0.02], [0.3, 0.5], [100.0, 400.0]]
            .iter()
            .map(|v| summarize(v).expect("values"))
            .collect();
        let axis = ValueAxis::for_values(&rows);
        // The median |mean| of 0.02, 0.03, 0.01, 0.4 and 250 is 0.03: c = 0.003.
        let c = axis.symlog.expect("symmetric log");
        assert!((c - 0.003).abs() < 1e-12, "{c}");
        for x in [-3.0, -0.01, 0.0, 0.002, 0.5, 250.0] {
            assert!((axis.value_at(axis.axis_of(x)) - x).abs() < 1e-9 * f64::max(x.abs(), 1.0), "{x}");
        }
        let (lo, hi) = axis.range(&rows);
        assert!(axis.value_at(hi) > 250.0 + 212.0 && axis.value_at(lo) < 0.01 - 0.0141, "every interval on the axis");
        let ticks: Vec<String> = axis.ticks(lo, hi).iter().map(|&t| tick_label(axis.value_at(t))).collect();
        for expected in ["0", "0.1", "1", "100"] {
            assert!(ticks.iter().any(|t| t == expected), "{expected} not in {ticks:?}");
        }
        // Values on one scale stay linear, with 1-2-5 ticks.
        let linear = ValueAxis::for_values(&rows[..4]);
        assert_eq!(linear.symlog, None);
        let ticks: Vec<String> = linear.ticks(0.0, 0.5).iter().map(|&t| tick_label(t)).collect();
        assert_eq!(ticks, ["0", "0.1", "0.2", "0.3", "0.4", "0.5"]);
    }
}
