//! Draws figures with plotters: into a bitmap encoded as PNG natively (`png` feature), or as
//! SVG, which the page turns into a PNG (plotters' wasm build measures text with the browser's
//! canvas and cannot draw text into a bitmap; the browser draws an SVG's text with its own
//! fonts). The app draws the same descriptions with egui_plot.

use crate::figure::{Dash, Figure, LegendPlace, Panel};
use crate::forest::Forest;
use crate::palette::{self, Rgb};
use crate::{FigureError, Result};
use plotters::coord::Shift;
use plotters::element::{Drawable, PointCollection};
use plotters::prelude::*;
use plotters_backend::{BackendCoord, DrawingErrorKind};

/// A legend swatch's length (two of the dashed line's dashes, four of the dotted line's dots),
/// and the radius of the mark on it, in pixels.
const SWATCH_PX: i32 = 21;
const SWATCH_MARK_PX: i32 = 5;

/// Pixels drawn and skipped in turn along a line of `dash` (a solid line: all drawn).
fn dash_pattern(dash: Dash) -> Option<(u32, u32)> {
    match dash {
        Dash::Solid => None,
        Dash::Dashed => Some((8, 5)),
        Dash::Dotted => Some((2, 4)),
    }
}

/// A figure ready to be drawn by either backend: a described figure, or a forest plot (a
/// layout of its own, drawn only here).
pub enum Image {
    Figure(Figure),
    Forest(Forest),
}

impl Image {
    pub fn size(&self) -> (u32, u32) {
        match self {
            Image::Figure(f) => (f.size[0], f.size[1]),
            Image::Forest(f) => f.size(),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&rgb(palette::PAPER)).map_err(draw_err)?;
        match self {
            Image::Figure(f) => draw_figure(root, f)?,
            Image::Forest(f) => f.draw(root)?,
        }
        root.present().map_err(draw_err)
    }
}

/// The image as SVG, and its size in pixels.
pub fn svg(image: &Image) -> Result<String> {
    let (w, h) = image.size();
    let mut svg = String::new();
    image.draw(&SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area())?;
    Ok(svg)
}

/// The image drawn into a bitmap, as PNG.
#[cfg(feature = "png")]
pub fn png(image: &Image) -> Result<Vec<u8>> {
    register_font();
    let (w, h) = image.size();
    let mut buffer = vec![0u8; (w * h * 3) as usize];
    image.draw(&BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area())?;
    encode_png(&buffer, w, h, ::png::ColorType::Rgb)
}

/// Registers the embedded font once, so that bitmap figures have text on every machine.
#[cfg(feature = "png")]
fn register_font() {
    static REGISTER_FONT: std::sync::Once = std::sync::Once::new();
    REGISTER_FONT.call_once(|| {
        // The font is embedded and known to be valid; a failure would only lose the labels.
        let _ = plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, crate::FONT);
    });
}

/// A PNG of 8-bit RGBA pixels, e.g. a region of a screenshot of the app.
pub fn encode_rgba(buffer: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    encode_png(buffer, width, height, ::png::ColorType::Rgba)
}

fn encode_png(buffer: &[u8], width: u32, height: u32, color: ::png::ColorType) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut encoder = ::png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(color);
    encoder.set_depth(::png::BitDepth::Eight);
    let png_err = |e: ::png::EncodingError| FigureError::draw("a PNG", e);
    let mut writer = encoder.write_header().map_err(png_err)?;
    writer.write_image_data(buffer).map_err(png_err)?;
    writer.finish().map_err(png_err)?;
    Ok(bytes)
}

/// A mark centred on `at` (a point of the chart, or a pixel of an area), `r` pixels in radius:
/// filled, or open (its outline on the paper's colour, so that a line through it does not fill
/// it). The polygons are sized to come near the circle's area. An element of its own rather than
/// plotters' shapes composed: a composed element carries its backend's type, which plotters'
/// series then require to live forever.
pub(crate) struct MarkElement<C> {
    pub at: C,
    pub r: i32,
    pub mark: palette::Mark,
    pub color: RGBAColor,
}

impl<'a, C: 'a> PointCollection<'a, C> for &'a MarkElement<C> {
    type Point = &'a C;
    type IntoIter = std::iter::Once<&'a C>;
    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.at)
    }
}

impl<DB: DrawingBackend, C> Drawable<DB> for MarkElement<C> {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut points: I,
        backend: &mut DB,
        _: (u32, u32),
    ) -> std::result::Result<(), DrawingErrorKind<DB::ErrorType>> {
        use palette::Shape;
        let Some((x, y)) = points.next() else { return Ok(()) };
        let r = self.r;
        let paper = rgb(palette::PAPER).to_rgba();
        let outline = self.color.stroke_width(2);
        let corners: Vec<(i32, i32)> = match self.mark.shape {
            Shape::Circle => {
                let radius = r.max(1) as u32;
                if !self.mark.open {
                    return backend.draw_circle((x, y), radius, &self.color, true);
                }
                backend.draw_circle((x, y), radius, &paper, true)?;
                return backend.draw_circle((x, y), radius, &outline, false);
            }
            Shape::Square => vec![(-r + 1, -r + 1), (r - 1, -r + 1), (r - 1, r - 1), (-r + 1, r - 1)],
            Shape::Diamond => vec![(0, -r - 1), (r + 1, 0), (0, r + 1), (-r - 1, 0)],
            Shape::TriangleUp => vec![(0, -r - 1), (r + 1, r - 1), (-r - 1, r - 1)],
            Shape::TriangleDown => vec![(0, r + 1), (r + 1, -r + 1), (-r - 1, -r + 1)],
        };
        let placed: Vec<BackendCoord> = corners.iter().map(|&(dx, dy)| (x + dx, y + dy)).collect();
        if !self.mark.open {
            return backend.fill_polygon(placed, &self.color);
        }
        backend.fill_polygon(placed.iter().copied(), &paper)?;
        backend.draw_path(placed.iter().chain(placed.first()).copied(), &outline)
    }
}

/// A series' legend swatch, drawn from its point: a stretch of its line in its dash (where it
/// has a line), under its mark (where it has marks) a little larger than the plot's, so that
/// the dash, the mark's shape and its fill read as on the plot.
struct SwatchElement {
    at: (i32, i32),
    line: Option<(Dash, ShapeStyle)>,
    mark: Option<(palette::Mark, RGBAColor)>,
}

impl<'a> PointCollection<'a, (i32, i32)> for &'a SwatchElement {
    type Point = &'a (i32, i32);
    type IntoIter = std::iter::Once<&'a (i32, i32)>;
    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.at)
    }
}

impl<DB: DrawingBackend> Drawable<DB> for SwatchElement {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut points: I,
        backend: &mut DB,
        size: (u32, u32),
    ) -> std::result::Result<(), DrawingErrorKind<DB::ErrorType>> {
        let Some((x, y)) = points.next() else { return Ok(()) };
        if let Some((dash, style)) = self.line {
            let (on, off) = dash_pattern(dash).map_or((SWATCH_PX, 0), |(on, off)| (on as i32, off as i32));
            for start in (0..SWATCH_PX).step_by((on + off) as usize) {
                backend.draw_line((x + start, y), (x + (start + on).min(SWATCH_PX), y), &style)?;
            }
        }
        if let Some((mark, color)) = self.mark {
            let centre = std::iter::once((x + SWATCH_PX / 2, y));
            MarkElement { at: (), r: SWATCH_MARK_PX, mark, color }.draw(centre, backend, size)?;
        }
        Ok(())
    }
}

pub(crate) fn draw_err<E: std::fmt::Debug>(e: E) -> FigureError {
    FigureError::draw("a figure", format!("{e:?}"))
}

pub(crate) const fn rgb([r, g, b]: Rgb) -> RGBColor {
    RGBColor(r, g, b)
}

/// Width of the colour bar beside a heat map.
const COLOR_BAR_PX: u32 = 130;

/// Type sizes in pixels, large enough to read from the back of a classroom when the figure is
/// projected at its own size; the smaller set for figures of more than two panels.
struct Type {
    caption: u32,
    axis: u32,
    ticks: u32,
    legend: u32,
    margin: u32,
    x_labels: u32,
    y_labels: u32,
}

const TYPE: Type = Type { caption: 21, axis: 18, ticks: 16, legend: 16, margin: 12, x_labels: 56, y_labels: 76 };
const SMALL_TYPE: Type = Type { caption: 18, axis: 16, ticks: 14, legend: 14, margin: 10, x_labels: 48, y_labels: 66 };
/// A figure's title, above all its panels.
const TITLE_PX: u32 = 24;

/// The ranges of a panel with `equal_scales`: the shorter one widened about its centre until a
/// unit spans as many pixels on either axis, for a plotting area of `width` x `height` pixels.
fn equal_scales(x: [f64; 2], y: [f64; 2], width: f64, height: f64) -> ([f64; 2], [f64; 2]) {
    let (per_px_x, per_px_y) = ((x[1] - x[0]) / width.max(1.0), (y[1] - y[0]) / height.max(1.0));
    let widen = |r: [f64; 2], span: f64| {
        let centre = (r[0] + r[1]) / 2.0;
        [centre - span / 2.0, centre + span / 2.0]
    };
    if !(per_px_x > 0.0 && per_px_y > 0.0) {
        (x, y)
    } else if per_px_x > per_px_y {
        (x, widen(y, per_px_x * height))
    } else {
        (widen(x, per_px_y * width), y)
    }
}

fn draw_figure<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, figure: &Figure) -> Result<()> {
    let root = if figure.title.is_empty() {
        root.clone()
    } else {
        root.titled(&figure.title, ("sans-serif", TITLE_PX)).map_err(draw_err)?
    };
    let columns = figure.columns.max(1);
    let rows = figure.panels.len().div_ceil(columns).max(1);
    let small = figure.panels.len() > 2;
    for (area, panel) in root.split_evenly((rows, columns)).iter().zip(&figure.panels) {
        draw_panel(area, panel, small)?;
    }
    Ok(())
}

/// One panel; `small` when the figure has many (smaller type and margins).
fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel, small: bool) -> Result<()> {
    let (plot, bar) = match &panel.heatmap {
        Some(_) => {
            let (w, _) = area.dim_in_pixel();
            let (plot, bar) = area.split_horizontally(w.saturating_sub(COLOR_BAR_PX));
            (plot, Some(bar))
        }
        None => (area.clone(), None),
    };
    let t = if small { &SMALL_TYPE } else { &TYPE };
    let (x, y) = if panel.equal_scales {
        // The plotting area is the panel less its margins, tick label areas and caption (about
        // 1.5 lines of its type).
        let (w, h) = plot.dim_in_pixel();
        let width = f64::from(w) - f64::from(2 * t.margin + t.y_labels);
        let height = f64::from(h) - f64::from(2 * t.margin + t.x_labels) - 1.5 * f64::from(t.caption);
        equal_scales(panel.x.range, panel.y.range, width, height)
    } else {
        (panel.x.range, panel.y.range)
    };
    let ([x0, x1], [y0, y1]) = (x, y);
    let mut chart = ChartBuilder::on(&plot)
        .margin(t.margin)
        .x_label_area_size(t.x_labels)
        .y_label_area_size(t.y_labels)
        .caption(&panel.title, ("sans-serif", t.caption))
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(draw_err)?;
    {
        let whole = |v: &f64| format!("{v:.0}");
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(panel.x.label.as_str())
            .y_desc(panel.y.label.as_str())
            .label_style(("sans-serif", t.ticks))
            .axis_desc_style(("sans-serif", t.axis))
            .light_line_style(rgb(palette::GRID))
            .x_labels(if small { 5 } else { 10 })
            .y_labels(if small { 4 } else { 10 });
        if panel.x.whole_numbers {
            mesh.x_label_formatter(&whole);
        }
        if panel.y.whole_numbers {
            mesh.y_label_formatter(&whole);
        }
        if panel.heatmap.is_some() || !panel.bars.is_empty() {
            mesh.disable_x_mesh();
        }
        if panel.heatmap.is_some() {
            mesh.disable_y_mesh();
        }
        mesh.draw().map_err(draw_err)?;
    }
    if let Some(heatmap) = &panel.heatmap {
        let [dx, dy] = heatmap.cell;
        let cells = heatmap.values.iter().enumerate().map(|(k, &v)| {
            let (i, j) = (k % heatmap.columns.max(1), k / heatmap.columns.max(1));
            let (x, y) = (heatmap.origin[0] + i as f64 * dx, heatmap.origin[1] + j as f64 * dy);
            Rectangle::new(
                [(x - dx / 2.0, y - dy / 2.0), (x + dx / 2.0, y + dy / 2.0)],
                rgb(heatmap.color_of(v)).filled(),
            )
        });
        chart.draw_series(cells).map_err(draw_err)?;
    }
    for group in &panel.bars {
        let color = rgb(group.color);
        let half = group.width / 2.0;
        chart
            .draw_series(group.bars.iter().map(|b| {
                let style =
                    if b.faded { color.mix(f64::from(palette::FADED_OPACITY)).filled() } else { color.filled() };
                Rectangle::new([(b.x - half, b.bottom), (b.x + half, b.bottom + b.height)], style)
            }))
            .map_err(draw_err)?;
    }
    for series in &panel.series {
        let color = rgb(series.color).mix(f64::from(series.opacity));
        if let Some(band) = &series.band {
            let upper = band.iter().map(|b| (b[0], b[2]));
            let lower = band.iter().rev().map(|b| (b[0], b[1]));
            let fill = rgb(series.color).mix(f64::from(palette::BAND_OPACITY) * f64::from(series.opacity));
            chart
                .draw_series(std::iter::once(Polygon::new(upper.chain(lower).collect::<Vec<_>>(), fill)))
                .map_err(draw_err)?;
        }
        let width = series.width.round().max(1.0) as u32;
        let style = color.stroke_width(width);
        let points = series.points.iter().map(|p| (p[0], p[1]));
        let legend = panel.legend != LegendPlace::Hidden && !series.name.is_empty();
        if series.width > 0.0 {
            let line = match dash_pattern(series.dash) {
                None => chart.draw_series(LineSeries::new(points, style)).map_err(draw_err)?,
                Some((on, off)) => {
                    chart.draw_series(DashedLineSeries::new(points, on, off, style)).map_err(draw_err)?
                }
            };
            if legend && series.mark_radius <= 0.0 {
                // A line with marks gets its swatch with its marks, below.
                let swatch = Some((series.dash, style));
                line.label(series.name.as_str()).legend(move |(x, y)| SwatchElement {
                    at: (x, y),
                    line: swatch,
                    mark: None,
                });
            }
        }
        if series.mark_radius > 0.0 {
            let radius = series.mark_radius.round() as i32;
            let mark = series.mark;
            let finite = series.points.iter().filter(|p| p[0].is_finite() && p[1].is_finite());
            let marks = chart
                .draw_series(finite.map(|p| MarkElement { at: (p[0], p[1]), r: radius, mark, color }))
                .map_err(draw_err)?;
            if legend {
                let line = (series.width > 0.0).then_some((series.dash, color.stroke_width(2)));
                marks.label(series.name.as_str()).legend(move |(x, y)| SwatchElement {
                    at: (x, y),
                    line,
                    mark: Some((mark, color)),
                });
            }
        }
    }
    for label in &panel.labels {
        let color = rgb(label.color);
        let at = (label.at[0], label.at[1]);
        chart.draw_series(std::iter::once(Circle::new(at, 6, color.filled()))).map_err(draw_err)?;
        let text_at = (label.at[0] + label.offset[0], label.at[1] + label.offset[1]);
        let font = ("sans-serif", 18).into_font().color(&color);
        chart.draw_series(std::iter::once(Text::new(label.text.clone(), text_at, font))).map_err(draw_err)?;
    }
    if panel.legend != LegendPlace::Hidden && !panel.series.is_empty() {
        chart
            .configure_series_labels()
            .background_style(rgb(palette::PAPER).mix(0.85))
            .border_style(rgb(palette::INK))
            .position(match panel.legend {
                LegendPlace::LowerRight => SeriesLabelPosition::LowerRight,
                LegendPlace::UpperLeft => SeriesLabelPosition::UpperLeft,
                LegendPlace::LowerLeft => SeriesLabelPosition::LowerLeft,
                LegendPlace::UpperRight | LegendPlace::Hidden => SeriesLabelPosition::UpperRight,
            })
            .label_font(("sans-serif", t.legend))
            .draw()
            .map_err(draw_err)?;
    }
    if let (Some(heatmap), Some(bar)) = (&panel.heatmap, bar) {
        color_bar(&bar, heatmap)?;
    }
    Ok(())
}

/// The heat map's scale: its values (exp of them for a log scale) against their colours.
fn color_bar<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, heatmap: &crate::figure::Heatmap) -> Result<()> {
    let [lo, hi] = heatmap.range;
    let shown = |v: f64| if heatmap.log { v.exp() } else { v };
    let mut scale = ChartBuilder::on(area)
        .margin_top(44)
        .margin_bottom(54)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..1.0, shown(lo)..shown(hi))
        .map_err(draw_err)?;
    scale
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc(heatmap.label.as_str())
        .y_label_style(("sans-serif", TYPE.ticks))
        .axis_desc_style(("sans-serif", TYPE.axis))
        .draw()
        .map_err(draw_err)?;
    let rows = 100;
    scale
        .draw_series((0..rows).map(|r| {
            let l0 = lo + (hi - lo) * f64::from(r) / f64::from(rows);
            let l1 = lo + (hi - lo) * f64::from(r + 1) / f64::from(rows);
            Rectangle::new([(0.0, shown(l0)), (1.0, shown(l1))], rgb(heatmap.color_of((l0 + l1) / 2.0)).filled())
        }))
        .map_err(draw_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit spans as many pixels across as up, the data's ranges kept inside and centred.
    #[test]
    fn equal_scales_widen_the_shorter_range_about_its_centre() {
        let (x, y) = equal_scales([-5.0, 31.0], [-4.0, 5.0], 760.0, 260.0);
        assert_eq!(x, [-5.0, 31.0]);
        assert!(((x[1] - x[0]) / 760.0 - (y[1] - y[0]) / 260.0).abs() < 1e-12, "{x:?} {y:?}");
        assert!((y[0] + y[1] - 1.0).abs() < 1e-12 && y[0] < -4.0 && y[1] > 5.0, "{y:?}");
        let (x, y) = equal_scales([0.0, 1.0], [0.0, 10.0], 500.0, 500.0);
        assert_eq!((x, y), ([-4.5, 5.5], [0.0, 10.0]));
        // Nothing to scale: the ranges as they are.
        assert_eq!(equal_scales([1.0, 1.0], [0.0, 2.0], 100.0, 100.0), ([1.0, 1.0], [0.0, 2.0]));
    }
}
