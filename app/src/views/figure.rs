//! Draws a panel of a figure described by `wsa_figures` (series with their colour, dash, points
//! and band; a heat map; stacked bars; labels) with egui_plot: the same description the
//! exported PNGs are drawn from, so the window and the files show the same figure.

use egui::{Color32, Ui};
use egui_plot::{
    Bar, BarChart, Corner, FilledArea, Heatmap, Legend, Line, LineStyle, Plot, PlotPoint, PlotPoints, PlotResponse,
    PlotUi, Points, Text,
};
use wsa_figures::figure::{Dash, LegendPlace, Panel};
use wsa_figures::palette::{self, Rgb};

pub const fn color([r, g, b]: Rgb) -> Color32 {
    Color32::from_rgb(r, g, b)
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
    if let Some(width) = size.width {
        plot = plot.width(width);
    }
    match panel.legend {
        LegendPlace::UpperRight => plot = plot.legend(Legend::default().position(Corner::RightTop)),
        LegendPlace::LowerRight => plot = plot.legend(Legend::default().position(Corner::RightBottom)),
        LegendPlace::Hidden => {}
    }
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
            if series.marker > 0.0 {
                plot.points(
                    Points::new(series.name.as_str(), PlotPoints::from(series.points.clone()))
                        .color(stroke)
                        .radius(series.marker),
                );
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
