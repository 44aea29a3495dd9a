//! Draws a panel of a figure described by `wsa_figures` (series with their colour, dash, points
//! and band; a heat map; stacked bars; labels) with egui_plot: the same description the
//! exported PNGs are drawn from, so the window and the files show the same figure.

use egui::{Color32, Pos2, Rect, Role, Shape, Stroke, Ui, WidgetInfo, pos2, vec2};
use egui_plot::{
    Bar, BarChart, FilledArea, Heatmap, Line, LineStyle, MarkerShape, Plot, PlotPoint, PlotPoints, PlotResponse,
    PlotUi, Points, Text,
};
use std::collections::BTreeSet;
use wsa_figures::figure::{Dash, Heatmap as HeatmapDescription, LegendPlace, Panel, Series};
use wsa_figures::palette::{self, Rgb};

pub const fn color([r, g, b]: Rgb) -> Color32 {
    Color32::from_rgb(r, g, b)
}

/// egui_plot's shape for a figure's mark, and its radius for a circle of radius 1: egui_plot
/// fits every shape inside the circle, so the others are enlarged to come near its area, as the
/// exported figures draw them.
fn marker_shape(shape: palette::Shape) -> (MarkerShape, f32) {
    match shape {
        palette::Shape::Circle => (MarkerShape::Circle, 1.0),
        palette::Shape::Square => (MarkerShape::Square, 1.25),
        palette::Shape::TriangleUp => (MarkerShape::Up, 1.5),
        palette::Shape::Diamond => (MarkerShape::Diamond, 1.25),
        palette::Shape::TriangleDown => (MarkerShape::Down, 1.5),
    }
}

/// How big a panel is drawn.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    pub height: f32,
    /// The available width when `None`.
    pub width: Option<f32>,
}

impl Size {
    pub fn height(height: f32) -> Self {
        Self { height, width: None }
    }
}

/// Draws `panel` as plot `id`; `extra` adds what only the window has (the selected α, a
/// pointer reading) and its return value comes back in the response.
pub fn draw<'a, R>(
    ui: &mut Ui,
    id: &str,
    panel: &'a Panel,
    size: Size,
    extra: impl FnOnce(&mut PlotUi<'a>) -> R + 'a,
) -> PlotResponse<R> {
    draw_with_window_entries(ui, id, panel, size, &[], extra)
}

/// An item only the window draws (by `extra`), with its legend entry: a line of its colour.
pub struct WindowEntry {
    pub name: &'static str,
    pub color: Color32,
}

/// [`draw`], the legend also listing `window_entries`.
pub fn draw_with_window_entries<'a, R>(
    ui: &mut Ui,
    id: &str,
    panel: &'a Panel,
    size: Size,
    window_entries: &[WindowEntry],
    extra: impl FnOnce(&mut PlotUi<'a>) -> R + 'a,
) -> PlotResponse<R> {
    let mut plot = Plot::new(id)
        .height(size.height)
        .x_axis_label(panel.x.label.as_str())
        .y_axis_label(panel.y.label.as_str())
        .include_x(panel.x.range[0])
        .include_x(panel.x.range[1])
        .include_y(panel.y.range[0])
        .include_y(panel.y.range[1])
        .allow_scroll(false);
    if panel.equal_scales {
        plot = plot.data_aspect(1.0);
    }
    if let Some(width) = size.width {
        plot = plot.width(width);
    }
    // The legend is ours (`legend`), drawn over the plot once it is shown: egui_plot's draws
    // every entry as a circle, which drops the dashes and the marks' shapes that tell the series
    // apart without their colours. Its entries hide and show their series, and one under the
    // pointer or the keyboard's focus highlights its series, as egui_plot's did.
    let state_id = ui.make_persistent_id((id, "legend"));
    let state: LegendState = ui.data(|d| d.get_temp(state_id)).unwrap_or_default();
    let (left_out, highlighted) = (state.hidden.clone(), state.highlighted.clone());
    let highlighted_before = highlighted.clone();
    // The plot's own background (egui_plot paints it with this colour), for open marks.
    let background = ui.visuals().extreme_bg_color;
    let response = plot.show(ui, move |plot| {
        if let Some(heatmap) = &panel.heatmap {
            let stops: Vec<Color32> = palette::SEQUENTIAL.iter().map(|&c| color(c)).collect();
            let [dx, dy] = heatmap.cell;
            plot.add(
                Heatmap::new(heatmap.values.clone(), heatmap.columns)
                    .palette(&stops)
                    .show_labels(false)
                    .at(PlotPoint::new(heatmap.origin[0] - dx / 2.0, heatmap.origin[1] - dy / 2.0))
                    .tile_size(dx as f32, dy as f32)
                    .name(&heatmap.label),
            );
        }
        for group in &panel.bars {
            let fill = color(group.color);
            let bars = group
                .bars
                .iter()
                .map(|b| {
                    let shade = if b.faded { fill.gamma_multiply(palette::FADED_OPACITY) } else { fill };
                    Bar::new(b.x, b.height).base_offset(b.bottom).width(group.width).fill(shade)
                })
                .collect();
            plot.bar_chart(BarChart::new(group.name.as_str(), bars).color(fill));
        }
        for series in panel.series.iter().filter(|s| !left_out.contains(&s.name)) {
            let stroke = color(series.color).gamma_multiply(series.opacity);
            let highlight = highlighted.as_ref() == Some(&series.name);
            // The line, its points and its band share the name: one legend entry.
            if let Some(band) = &series.band {
                let xs: Vec<f64> = band.iter().map(|b| b[0]).collect();
                let lows: Vec<f64> = band.iter().map(|b| b[1]).collect();
                let highs: Vec<f64> = band.iter().map(|b| b[2]).collect();
                plot.add(
                    FilledArea::new(series.name.as_str(), &xs, &lows, &highs)
                        .fill_color(stroke.gamma_multiply(palette::BAND_OPACITY))
                        .highlight(highlight),
                );
            }
            if series.width > 0.0 {
                let style = match series.dash {
                    Dash::Solid => LineStyle::Solid,
                    Dash::Dashed => LineStyle::dashed_dense(),
                    Dash::Dotted => LineStyle::dotted_dense(),
                };
                plot.line(
                    Line::new(series.name.as_str(), PlotPoints::from(series.points.clone()))
                        .color(stroke)
                        .width(series.width)
                        .style(style)
                        .highlight(highlight),
                );
            }
            if series.mark_radius > 0.0 {
                let (shape, scale) = marker_shape(series.mark.shape);
                let radius = series.mark_radius * scale;
                plot.points(
                    Points::new(series.name.as_str(), PlotPoints::from(series.points.clone()))
                        .color(stroke)
                        .radius(radius)
                        .shape(shape)
                        .highlight(highlight),
                );
                if series.mark.open {
                    // An open mark: the plot's background over the mark's middle, which leaves a
                    // ring a line through it does not fill (egui_plot's own outline is a fifth of
                    // the radius, under a pixel here). No name: not in the legend.
                    plot.points(
                        Points::new("", PlotPoints::from(series.points.clone()))
                            .color(background)
                            .radius(radius * 0.55)
                            .shape(shape),
                    );
                }
            }
        }
        for label in &panel.labels {
            let ink = color(label.color);
            plot.points(Points::new(label.text.as_str(), PlotPoints::from(vec![label.at])).color(ink).radius(5.0));
            let at = PlotPoint::new(label.at[0] + label.offset[0], label.at[1] + label.offset[1]);
            plot.text(Text::new(label.text.as_str(), at, label.text.as_str()).color(ink));
        }
        extra(plot)
    });
    if panel.legend != LegendPlace::Hidden {
        let mut state = state;
        legend(ui, state_id, *response.transform.frame(), panel, window_entries, &mut state);
        if state.highlighted != highlighted_before {
            // The plot drew this frame's highlight before the legend knew it: once more.
            ui.ctx().request_repaint();
        }
        ui.data_mut(|d| d.insert_temp(state_id, state));
    }
    response
}

/// What a plot's legend keeps between frames: the series hidden, the one highlighted.
#[derive(Clone, Default)]
struct LegendState {
    hidden: BTreeSet<String>,
    highlighted: Option<String>,
}

/// A swatch's length and the radius of the mark on it, in points: about the exported figures'.
const SWATCH: f32 = 22.0;
const SWATCH_MARK: f32 = 5.0;

/// The legend of `panel` in its corner of `frame`: one entry per named series, its swatch drawn
/// as the series is (its dash, its mark's shape and fill, its colour), then the window's own
/// entries (labels). A series' entry is a checkbox for screen readers and the keyboard: pressing
/// it hides the series (its name joins `state.hidden`) or shows it again; under the pointer or
/// focused, it highlights the series (`state.highlighted`, drawn by the next frame's plot).
fn legend(ui: &mut Ui, id: egui::Id, frame: Rect, panel: &Panel, window: &[WindowEntry], state: &mut LegendState) {
    let LegendState { hidden, highlighted } = state;
    *highlighted = None;
    // One entry per name (a series' line, points and band share theirs), in the panel's order.
    let mut seen = BTreeSet::new();
    let named: Vec<&Series> = panel.series.iter().filter(|s| !s.name.is_empty() && seen.insert(&s.name)).collect();
    // Names go with a run's numbers: forget the hidden ones the panel no longer has.
    hidden.retain(|name| seen.contains(name));
    let names: Vec<&str> = named.iter().map(|s| s.name.as_str()).chain(window.iter().map(|w| w.name)).collect();
    if names.is_empty() {
        return;
    }
    let (padding, gap, inset) = (6.0, 6.0, frame.shrink(8.0));
    // A name wider than the plot leaves room for is cut short ("…"), whole on hover.
    let text_room = (inset.width() - 2.0 * padding - SWATCH - gap).max(40.0);
    let font = egui::TextStyle::Body.resolve(ui.style());
    let galleys: Vec<_> = names
        .iter()
        .map(|name| {
            let mut job =
                egui::text::LayoutJob::simple_singleline(name.to_string(), font.clone(), Color32::PLACEHOLDER);
            job.wrap = egui::text::TextWrapping::truncate_at_width(text_room);
            ui.painter().layout_job(job)
        })
        .collect();
    let row = galleys.iter().map(|g| g.size().y).fold(SWATCH_MARK * 2.0 + 4.0, f32::max);
    let text_width = galleys.iter().map(|g| g.size().x).fold(0.0, f32::max);
    let size = vec2(padding * 2.0 + SWATCH + gap + text_width, padding * 2.0 + row * names.len() as f32);
    let left = matches!(panel.legend, LegendPlace::UpperLeft | LegendPlace::LowerLeft);
    let top = matches!(panel.legend, LegendPlace::UpperLeft | LegendPlace::UpperRight);
    let corner = pos2(
        if left { inset.left() } else { inset.right() - size.x },
        if top { inset.top() } else { inset.bottom() - size.y },
    );
    let area = Rect::from_min_size(corner, size);
    let visuals = ui.visuals().clone();
    let painter = ui.painter_at(frame);
    painter.rect(
        area,
        3.0,
        visuals.extreme_bg_color.gamma_multiply(0.9),
        visuals.widgets.noninteractive.bg_stroke,
        egui::StrokeKind::Inside,
    );
    // The box takes the clicks and drags its entries do not, which would otherwise reach the
    // plot under it (a click there picks α on the path plot).
    ui.interact(area.intersect(frame), id.with("box"), egui::Sense::click_and_drag());
    for (k, (name, galley)) in names.iter().zip(galleys).enumerate() {
        let entry =
            Rect::from_min_size(corner + vec2(padding, padding + row * k as f32), vec2(size.x - 2.0 * padding, row));
        // What the plot's frame cuts off (a legend taller than a small plot) is not drawn, and
        // not pressed either.
        if !frame.contains_rect(entry) {
            continue;
        }
        let swatch = Rect::from_min_size(entry.min, vec2(SWATCH, row));
        let text_at = pos2(swatch.right() + gap, entry.center().y - galley.size().y / 2.0);
        let elided = galley.elided;
        let Some(series) = named.get(k) else {
            // A window entry: a label (what it marks is the window's to draw).
            let response = ui.interact(entry, id.with(k), egui::Sense::hover());
            response.widget_info(|| WidgetInfo::labeled(Role::Label, true, *name));
            if elided {
                response.on_hover_text(*name);
            }
            let ink = window[k - named.len()].color;
            painter.line_segment([swatch.left_center(), swatch.right_center()], Stroke::new(2.0, ink));
            painter.galley(text_at, galley, visuals.text_color());
            continue;
        };
        let mut response = ui.interact(entry, id.with(k), egui::Sense::click());
        if response.clicked() {
            if !hidden.remove(*name) {
                hidden.insert(name.to_string());
            }
            response.mark_changed();
        }
        let is_shown = !hidden.contains(*name);
        response.widget_info(|| WidgetInfo::selected(Role::CheckBox, true, is_shown, *name));
        if response.hovered() {
            painter.rect_filled(entry, 2.0, visuals.widgets.hovered.weak_bg_fill);
        }
        if (response.hovered() || response.has_focus()) && is_shown {
            *highlighted = Some(name.to_string());
        }
        if response.has_focus() {
            painter.rect_stroke(entry, 2.0, visuals.selection.stroke, egui::StrokeKind::Inside);
        }
        // A hidden series' swatch and name are faint, as egui_plot drew them.
        let faint = |c: Color32| if is_shown { c } else { c.gamma_multiply(0.3) };
        let ink = color(series.color).gamma_multiply(series.opacity);
        swatch_of(&painter, swatch, series, faint(ink), visuals.extreme_bg_color);
        painter.galley(text_at, galley, faint(visuals.text_color()));
        if elided {
            response.on_hover_text(*name);
        }
    }
}

/// A series' swatch in `rect`: a stretch of its line in its dash (where it has a line), under
/// its mark (where it has marks).
fn swatch_of(painter: &egui::Painter, rect: Rect, series: &Series, ink: Color32, background: Color32) {
    let (from, to) = (rect.left_center(), rect.right_center());
    if series.width > 0.0 {
        let stroke = Stroke::new(series.width.clamp(1.5, 3.0), ink);
        painter.extend(match series.dash {
            Dash::Solid => vec![Shape::line_segment([from, to], stroke)],
            // egui_plot's dense dashes and dots, as the plot draws them.
            Dash::Dashed => Shape::dashed_line(&[from, to], stroke, 5.0, 5.0 * 0.618),
            Dash::Dotted => Shape::dotted_line(&[from, to], ink, 5.0, stroke.width),
        });
    } else if series.mark_radius <= 0.0 {
        // Neither line nor marks (a band alone): a block of its colour.
        painter.rect_filled(
            rect.shrink2(vec2(2.0, rect.height() / 4.0)),
            1.0,
            ink.gamma_multiply(palette::BAND_OPACITY),
        );
    }
    if series.mark_radius > 0.0 {
        let centre = rect.center();
        let (shape, scale) = marker_shape(series.mark.shape);
        mark(painter, shape, centre, SWATCH_MARK * scale, ink);
        if series.mark.open {
            mark(painter, shape, centre, SWATCH_MARK * scale * 0.55, background);
        }
    }
}

/// A filled mark of `shape` inside the circle of `radius` around `centre`, as egui_plot draws
/// the plot's.
fn mark(painter: &egui::Painter, shape: MarkerShape, centre: Pos2, radius: f32, fill: Color32) {
    let at = |dx: f32, dy: f32| centre + vec2(dx, dy) * radius;
    let (half, third) = (std::f32::consts::FRAC_1_SQRT_2, 3f32.sqrt() / 2.0);
    let corners = match shape {
        MarkerShape::Square => vec![at(-half, -half), at(half, -half), at(half, half), at(-half, half)],
        MarkerShape::Diamond => vec![at(0.0, -1.0), at(1.0, 0.0), at(0.0, 1.0), at(-1.0, 0.0)],
        MarkerShape::Up => vec![at(0.0, -1.0), at(third, 0.5), at(-third, 0.5)],
        MarkerShape::Down => vec![at(0.0, 1.0), at(-third, -0.5), at(third, -0.5)],
        _ => {
            painter.circle_filled(centre, radius, fill);
            return;
        }
    };
    painter.add(Shape::convex_polygon(corners, fill, Stroke::NONE));
}

/// The colour scale of `heatmap`, as the exported figure draws it beside the plot: a strip from
/// its lowest to its highest value with the values at both ends and the middle (exp of them for
/// a log scale), so that a colour on the plot reads as a number.
pub fn colour_bar(ui: &mut Ui, heatmap: &HeatmapDescription) {
    let [low, high] = heatmap.range;
    let shown = |v: f64| if heatmap.log { v.exp() } else { v };
    let scale = if heatmap.log { " (log scale)" } else { "" };
    ui.horizontal(|ui| {
        ui.label(format!("{}{scale}:", heatmap.label));
        ui.label(format!("{:.3}", shown(low)));
        let (rect, _) = ui.allocate_exact_size(egui::vec2(240.0, 14.0), egui::Sense::hover());
        const SEGMENTS: usize = 48;
        for k in 0..SEGMENTS {
            let t = (k as f64 + 0.5) / SEGMENTS as f64;
            let left = rect.left() + rect.width() * k as f32 / SEGMENTS as f32;
            let right = rect.left() + rect.width() * (k + 1) as f32 / SEGMENTS as f32;
            let segment = egui::Rect::from_min_max(egui::pos2(left, rect.top()), egui::pos2(right, rect.bottom()));
            ui.painter().rect_filled(segment, 0.0, color(wsa_figures::figure::sequential(t)));
        }
        ui.label(format!("{:.3}", shown(high)));
        ui.label(egui::RichText::new(format!("(middle {:.3})", shown((low + high) / 2.0))).weak());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_series(legend: LegendPlace) -> Panel {
        Panel {
            x: wsa_figures::figure::Axis::new("x", [0.0, 1.0]),
            y: wsa_figures::figure::Axis::new("y", [0.0, 1.0]),
            series: vec![
                Series::line("plain", [200, 60, 50], 2.0, vec![[0.0, 0.1], [0.2, 0.1]]),
                Series::line("wsa", [40, 100, 200], 2.0, vec![[0.0, 0.2], [0.2, 0.2]]).dashed(Dash::Dashed),
            ],
            legend,
            ..Panel::default()
        }
    }

    /// The legend's entries are checkboxes a screen reader names, one per named series, and a
    /// label per window entry; the one under the pointer highlights its series, and pressing one
    /// (pointer or keyboard) hides it, again shows it. A hidden legend has no entries.
    #[test]
    fn legend_entries_are_checkboxes_that_hide_and_show_their_series() {
        use egui_kittest::kittest::{NodeT, Queryable};
        let checked = |harness: &egui_kittest::Harness<'_>, name: &str| {
            let node = harness.get_by_label(name);
            assert_eq!(node.accesskit_node().role(), Role::CheckBox, "{name}");
            node.accesskit_node().toggled() == Some(egui::accesskit::Toggled::True)
        };
        let panel = two_series(LegendPlace::UpperRight);
        // Whether the plot under the legend saw a click (the path plot picks α with one).
        let plot_clicked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = plot_clicked.clone();
        // The series the legend highlights, as the plot reads it for the next frame.
        let highlighted = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let read = highlighted.clone();
        let mut harness = egui_kittest::Harness::builder().with_size([600.0, 400.0]).build_ui(move |ui| {
            let window = [WindowEntry { name: "selected α", color: Color32::GRAY }];
            let response = draw_with_window_entries(ui, "legend", &panel, Size::height(380.0), &window, |plot| {
                plot.response().clicked()
            });
            seen.fetch_or(response.inner, std::sync::atomic::Ordering::Relaxed);
            let state: LegendState =
                ui.data(|d| d.get_temp(ui.make_persistent_id(("legend", "legend")))).unwrap_or_default();
            *read.lock().expect("lock") = state.highlighted;
        });
        harness.run();
        assert_eq!(*highlighted.lock().expect("lock"), None);
        harness.get_by_label("wsa").hover();
        harness.run();
        assert_eq!(highlighted.lock().expect("lock").as_deref(), Some("wsa"), "the entry under the pointer");
        harness.get_by_label("selected α").click();
        harness.run();
        assert!(!plot_clicked.load(std::sync::atomic::Ordering::Relaxed), "a click on the legend stays there");
        assert!(checked(&harness, "plain") && checked(&harness, "wsa"));
        assert_eq!(harness.get_by_label("selected α").accesskit_node().role(), Role::Label);
        harness.get_by_label("wsa").click();
        harness.run();
        assert!(checked(&harness, "plain") && !checked(&harness, "wsa"));
        harness.get_by_label("wsa").focus();
        harness.run();
        harness.key_press(egui::Key::Space);
        harness.run();
        assert!(checked(&harness, "wsa"), "the keyboard shows it again");

        let hidden = two_series(LegendPlace::Hidden);
        let mut harness = egui_kittest::Harness::builder().with_size([600.0, 400.0]).build_ui(move |ui| {
            let _ = draw(ui, "no legend", &hidden, Size::height(380.0), |_| ());
        });
        harness.run();
        assert!(harness.query_by_label("plain").is_none());
    }

    /// With seed bands on, each legend swatch is drawn in its series' colour (egui_plot greyed
    /// an entry whose band and line differ in colour, so a legend identified nothing). The data
    /// lie in the lower left, so every pixel of these colours in the upper right, where the
    /// legend is, is a swatch.
    #[test]
    #[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
    fn legend_swatches_keep_their_series_colours_with_bands() {
        let colors: [Rgb; 2] = [[200, 60, 50], [40, 100, 200]];
        let series = colors
            .iter()
            .enumerate()
            .map(|(k, &c)| {
                let y = 0.1 + 0.05 * k as f64;
                let mut s = Series::line(format!("run {k}"), c, 2.0, vec![[0.0, y], [0.2, y]]);
                s.band = Some(vec![[0.0, y - 0.02, y + 0.02], [0.2, y - 0.02, y + 0.02]]);
                s
            })
            .collect();
        let panel = Panel {
            x: wsa_figures::figure::Axis::new("x", [0.0, 1.0]),
            y: wsa_figures::figure::Axis::new("y", [0.0, 1.0]),
            series,
            legend: LegendPlace::UpperRight,
            ..Panel::default()
        };
        let mut harness = egui_kittest::Harness::builder().with_size([600.0, 400.0]).build_ui(move |ui| {
            let _ = draw(ui, "legend", &panel, Size::height(380.0), |_| ());
        });
        harness.run();
        let image = harness.render().expect("renders (a wgpu adapter is needed)");
        let (width, height) = (image.width(), image.height());
        for (k, &[r, g, b]) in colors.iter().enumerate() {
            let near =
                |p: &[u8; 4]| [(p[0], r), (p[1], g), (p[2], b)].iter().all(|&(have, want)| have.abs_diff(want) <= 12);
            let in_legend = (width / 2..width)
                .flat_map(|x| (0..height / 3).map(move |y| (x, y)))
                .filter(|&(x, y)| near(&image.get_pixel(x, y).0))
                .count();
            assert!(in_legend >= 4, "run {k}'s legend swatch is not drawn in its colour {:?}", colors[k]);
        }
    }
}
