//! Draws a panel of a figure described by `wsa_figures` (series with their colour, dash, points
//! and band; a heat map; stacked bars; labels) with egui_plot: the same description the
//! exported PNGs are drawn from, so the window and the files show the same figure.

use egui::{Color32, Ui};
use egui_plot::{
    Bar, BarChart, ColorConflictHandling, Corner, FilledArea, Heatmap, Legend, Line, LineStyle, MarkerShape, Plot,
    PlotPoint, PlotPoints, PlotResponse, PlotUi, Points, Text,
};
use wsa_figures::figure::{Dash, Heatmap as HeatmapDescription, LegendPlace, Panel};
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
    // A series' band, line and points share one legend entry. egui_plot greys an entry whose
    // items differ in colour (the band is the line's colour, faint): the last item drawn, the
    // line or its points, gives the swatch its series' colour instead.
    let legend = Legend::default().color_conflict_handling(ColorConflictHandling::PickLast);
    match panel.legend {
        LegendPlace::UpperRight => plot = plot.legend(legend.position(Corner::RightTop)),
        LegendPlace::LowerRight => plot = plot.legend(legend.position(Corner::RightBottom)),
        LegendPlace::UpperLeft => plot = plot.legend(legend.position(Corner::LeftTop)),
        LegendPlace::LowerLeft => plot = plot.legend(legend.position(Corner::LeftBottom)),
        LegendPlace::Hidden => {}
    }
    // The plot's own background (egui_plot paints it with this colour), for open marks.
    let background = ui.visuals().extreme_bg_color;
    plot.show(ui, move |plot| {
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
        for series in &panel.series {
            let stroke = color(series.color).gamma_multiply(series.opacity);
            // The line, its points and its band share the name: one legend entry.
            if let Some(band) = &series.band {
                let xs: Vec<f64> = band.iter().map(|b| b[0]).collect();
                let lows: Vec<f64> = band.iter().map(|b| b[1]).collect();
                let highs: Vec<f64> = band.iter().map(|b| b[2]).collect();
                plot.add(
                    FilledArea::new(series.name.as_str(), &xs, &lows, &highs)
                        .fill_color(stroke.gamma_multiply(palette::BAND_OPACITY)),
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
                        .style(style),
                );
            }
            if series.mark_radius > 0.0 {
                let (shape, scale) = marker_shape(series.mark.shape);
                let radius = series.mark_radius * scale;
                plot.points(
                    Points::new(series.name.as_str(), PlotPoints::from(series.points.clone()))
                        .color(stroke)
                        .radius(radius)
                        .shape(shape),
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
    })
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
    use wsa_figures::figure::Series;

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
