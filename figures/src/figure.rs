//! A figure as data: what is drawn (series with their colour, dash, points and band; a heat
//! map; stacked bars; labels), on which axes, with which legend. `describe` builds these from
//! results; `render` (plotters) and the app (egui_plot) draw them, so both show the same thing.

use crate::palette::{Mark, Rgb, SEQUENTIAL};
use wsa_core::scope::Scope;

/// One or more panels under a title, laid out in rows of `columns`.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub title: String,
    /// Width and height in pixels, as exported.
    pub size: [u32; 2],
    pub columns: usize,
    pub panels: Vec<Panel>,
}

/// One pair of axes and what is drawn on them.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Panel {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    pub heatmap: Option<Heatmap>,
    pub bars: Vec<BarGroup>,
    pub labels: Vec<Label>,
    pub legend: LegendPlace,
    /// One unit is as long on the x axis as on the y axis (the loss plane, whose axes are both
    /// distances in weight space): every renderer widens the shorter range to keep it so.
    pub equal_scales: bool,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Axis {
    pub label: String,
    /// What the axis spans at least (the data may reach beyond on screen, where one can zoom).
    pub range: [f64; 2],
    /// Ticks at whole numbers only (rounds, clients).
    pub whole_numbers: bool,
}

impl Axis {
    pub fn new(label: impl Into<String>, range: [f64; 2]) -> Self {
        Self { label: label.into(), range, whole_numbers: false }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Dash {
    #[default]
    Solid,
    Dashed,
    Dotted,
}

/// A line (and/or its points) with an optional band around it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Series {
    /// The legend's entry (every named series has one unless the panel hides its legend; an
    /// empty name has none); the line, its points and its band share it.
    pub name: String,
    pub color: Rgb,
    /// Drawn at this share of full strength (1 = the colour itself).
    pub opacity: f32,
    pub dash: Dash,
    /// Line width in pixels; 0 draws the points alone.
    pub width: f32,
    pub points: Vec<[f64; 2]>,
    /// Radius of a mark at every point, in pixels; 0 for none.
    pub mark_radius: f32,
    /// The marks' shape and fill (a filled circle unless said otherwise).
    pub mark: Mark,
    /// (x, low, high): the band drawn under the line.
    pub band: Option<Vec<[f64; 3]>>,
}

impl Series {
    pub fn line(name: impl Into<String>, color: Rgb, width: f32, points: Vec<[f64; 2]>) -> Self {
        Self { name: name.into(), color, opacity: 1.0, width, points, ..Self::default() }
    }

    pub fn dashed(self, dash: Dash) -> Self {
        Self { dash, ..self }
    }

    pub fn with_opacity(self, opacity: f32) -> Self {
        Self { opacity, ..self }
    }

    /// A mark of `radius` pixels at every point (a filled circle unless `with_mark` says).
    pub fn with_marks(self, radius: f32) -> Self {
        Self { mark_radius: radius, ..self }
    }

    /// The marks' shape and fill.
    pub fn with_mark(self, mark: Mark) -> Self {
        Self { mark, ..self }
    }
}

/// Values on a regular grid, coloured by the sequential scale between `range`'s ends, with a
/// colour bar beside the panel.
#[derive(Clone, Debug, PartialEq)]
pub struct Heatmap {
    /// Row-major, `columns` per row, the first row at the lowest y.
    pub values: Vec<f64>,
    pub columns: usize,
    /// The centre of the first cell, and the cells' width and height.
    pub origin: [f64; 2],
    pub cell: [f64; 2],
    pub range: [f64; 2],
    /// The colour bar's label.
    pub label: String,
    /// The values are natural logarithms: the colour bar shows exp of them.
    pub log: bool,
}

impl Heatmap {
    pub fn color_of(&self, value: f64) -> Rgb {
        let [lo, hi] = self.range;
        sequential(if hi > lo { (value - lo) / (hi - lo) } else { 0.0 })
    }
}

/// One class of stacked bars (the label counts of the clients, say).
#[derive(Clone, Debug, PartialEq)]
pub struct BarGroup {
    pub name: String,
    pub color: Rgb,
    pub width: f64,
    pub bars: Vec<Bar>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bar {
    pub x: f64,
    pub bottom: f64,
    pub height: f64,
    /// Drawn faded (`palette::FADED_OPACITY`): what is left out.
    pub faded: bool,
}

/// A named point: a dot and its text, `offset` (data units) up and right of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub text: String,
    pub at: [f64; 2],
    pub offset: [f64; 2],
    pub color: Rgb,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LegendPlace {
    #[default]
    UpperRight,
    LowerRight,
    UpperLeft,
    LowerLeft,
    /// No legend: the panel's title or a colour bar says what is drawn.
    Hidden,
}

impl LegendPlace {
    const CORNERS: [LegendPlace; 4] =
        [LegendPlace::UpperRight, LegendPlace::LowerRight, LegendPlace::UpperLeft, LegendPlace::LowerLeft];

    /// The corner of `panel` whose legend would cover the least of its data (points and bands),
    /// `preferred` on a tie: a legend over the lines hides what the figure is for, most of all
    /// on a projector. A legend is taken to cover 45% of the width and 35% of the height.
    pub fn least_covering(panel: &Panel, preferred: LegendPlace) -> LegendPlace {
        let ([x0, x1], [y0, y1]) = (panel.x.range, panel.y.range);
        let (width, height) = ((x1 - x0).max(f64::MIN_POSITIVE), (y1 - y0).max(f64::MIN_POSITIVE));
        let points: Vec<[f64; 2]> = panel
            .series
            .iter()
            .flat_map(|s| {
                let band = s.band.iter().flatten().flat_map(|b| [[b[0], b[1]], [b[0], b[2]]]);
                s.points.iter().copied().chain(band)
            })
            .map(|[x, y]| [(x - x0) / width, (y - y0) / height])
            .collect();
        let covered = |corner: LegendPlace| {
            let right = matches!(corner, LegendPlace::UpperRight | LegendPlace::LowerRight);
            let upper = matches!(corner, LegendPlace::UpperRight | LegendPlace::UpperLeft);
            points
                .iter()
                .filter(|[x, y]| {
                    let across = if right { *x >= 0.55 } else { *x <= 0.45 };
                    let up = if upper { *y >= 0.65 } else { *y <= 0.35 };
                    across && up
                })
                .count()
        };
        let mut best = preferred;
        for corner in std::iter::once(preferred).chain(Self::CORNERS) {
            if covered(corner) < covered(best) {
                best = corner;
            }
        }
        best
    }
}

/// A colour of the sequential scale, `t` from 0 (low) to 1 (high).
pub fn sequential(t: f64) -> Rgb {
    let at = t.clamp(0.0, 1.0) * (SEQUENTIAL.len() - 1) as f64;
    // The last segment ends at the last stop: t = 1 is its far end, not the start of another.
    let k = (at.floor() as usize).min(SEQUENTIAL.len() - 2);
    let f = at - k as f64;
    let (a, b) = (SEQUENTIAL[k], SEQUENTIAL[k + 1]);
    std::array::from_fn(|c| (f64::from(a[c]) + (f64::from(b[c]) - f64::from(a[c])) * f).round() as u8)
}

/// A histogram's counts over equal bins from `low` to `high` as a density: (bin centre, value)
/// integrating to 1, so that histograms of different sizes and a Gaussian share an axis.
pub fn density(counts: &[u64], low: f64, high: f64) -> Vec<[f64; 2]> {
    let total = counts.iter().sum::<u64>().max(1) as f64;
    let width = ((high - low) / counts.len().max(1) as f64).max(1e-12);
    counts.iter().enumerate().map(|(i, &c)| [low + (i as f64 + 0.5) * width, c as f64 / (total * width)]).collect()
}

/// The Gaussian of `scope` at 201 points from `low` to `high`.
pub fn gaussian(scope: Scope, low: f64, high: f64) -> Vec<[f64; 2]> {
    let s = scope.std.max(1e-12);
    (0..=200)
        .map(|i| {
            let x = low + (high - low) * f64::from(i) / 200.0;
            [x, (-(x - scope.mean).powi(2) / (2.0 * s * s)).exp() / (s * (2.0 * std::f64::consts::PI).sqrt())]
        })
        .collect()
}

/// The smallest and largest finite of `values`, or `fallback` when there is none.
pub fn extent(values: impl IntoIterator<Item = f64>, fallback: [f64; 2]) -> [f64; 2] {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo <= hi { [lo, hi] } else { fallback }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The legend goes to the emptiest corner, the preferred one when it is as empty as any.
    #[test]
    fn the_legend_goes_where_it_covers_the_least() {
        let panel = |points: Vec<[f64; 2]>| Panel {
            x: Axis::new("x", [0.0, 1.0]),
            y: Axis::new("y", [0.0, 1.0]),
            series: vec![Series::line("s", [0, 0, 0], 1.0, points)],
            ..Panel::default()
        };
        // A peak in the upper right and along the top: the lower left is empty.
        let peaked = panel(vec![[0.9, 0.9], [0.8, 0.95], [0.2, 0.9], [0.7, 0.2]]);
        assert_eq!(LegendPlace::least_covering(&peaked, LegendPlace::UpperRight), LegendPlace::LowerLeft);
        let empty = panel(vec![[0.5, 0.5]]);
        assert_eq!(LegendPlace::least_covering(&empty, LegendPlace::LowerRight), LegendPlace::LowerRight);
    }

    #[test]
    fn a_density_integrates_to_one_and_the_scale_ends_at_its_stops() {
        let d = density(&[1, 3, 0, 4], -1.0, 1.0);
        let area: f64 = d.iter().map(|p| p[1] * 0.5).sum();
        assert!((area - 1.0).abs() < 1e-12, "{area}");
        assert_eq!(d[0][0], -0.75);
        assert_eq!(sequential(0.0), SEQUENTIAL[0]);
        assert_eq!(sequential(1.0), SEQUENTIAL[4]);
        assert_eq!(sequential(0.5), SEQUENTIAL[2]);
        let g = gaussian(Scope { mean: 0.0, std: 1.0 }, -8.0, 8.0);
        let area: f64 = g.windows(2).map(|w| 0.5 * (w[0][1] + w[1][1]) * (w[1][0] - w[0][0])).sum();
        assert!((area - 1.0).abs() < 1e-3, "{area}");
        assert_eq!(extent([f64::NAN, 2.0, -1.0], [0.0, 1.0]), [-1.0, 2.0]);
        assert_eq!(extent([f64::NAN], [0.0, 1.0]), [0.0, 1.0]);
    }
}
