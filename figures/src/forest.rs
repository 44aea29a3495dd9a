//! A family of `wsa-lab reproduce` as a forest plot: rows of labelled intervals on a value axis
//! that turns symmetric-log when the values span orders of magnitude. A layout of its own
//! (labels as wide as the longest, a legend column beside the data), drawn by plotters only: the
//! app shows the report as a table.

use crate::Result;
use crate::palette;
use crate::render::{MarkElement, draw_err, rgb};
use plotters::coord::Shift;
use plotters::prelude::*;
use wsa_core::experiment::reproduce::report::FigureData;

/// The row labels' type size: read on a projector across a room.
const LABEL_FONT_PX: u32 = 16;
/// Width of a character of the row labels, generously.
const LABEL_CHAR_PX: usize = 8;
const LEGEND_PX: u32 = 230;
/// A mark's radius (half its width), in pixels.
const MARK_PX: i32 = 6;
/// The legend's layout: its first entry's line, the step between entries, and the notes' step.
const LEGEND_TOP_PX: i32 = 64;
const LEGEND_ENTRY_PX: i32 = 28;
const LEGEND_NOTE_PX: i32 = 20;

/// One line per row of the family (labels on the left, as wide as the longest needs), a mark
/// per variant at its mean over seeds with a bar from the lowest to the highest seed (never below
/// a barrier's zero, as mean ± std can be), the variants of a row stacked around its line, and
/// the legend in a column of its own to the right of the data. Each variant has its colour and
/// a mark of its own (`palette::Mark`), so that near colours are told apart by shape or fill.
pub struct Forest {
    pub data: FigureData,
}

impl Forest {
    fn label_px(&self) -> usize {
        (self.data.rows.iter().map(|l| l.chars().count()).max().unwrap_or(10) * LABEL_CHAR_PX + 24).clamp(200, 1300)
    }

    pub fn size(&self) -> (u32, u32) {
        let rows = self.data.rows.len().max(1);
        let data_px = (130 + 38 * rows).clamp(320, 2600);
        // Tall enough for the legend's entries and its three notes at most, with a margin.
        let legend_px = (LEGEND_TOP_PX + LEGEND_ENTRY_PX * self.data.series.len() as i32 + 8 + 3 * LEGEND_NOTE_PX + 20)
            .max(0) as usize;
        ((730 + self.label_px()) as u32 + LEGEND_PX, data_px.max(legend_px) as u32)
    }

    pub(crate) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        use wsa_core::experiment::stats::Summary;
        let data = &self.data;
        let rows = data.rows.len().max(1);
        let label_px = self.label_px();
        let (width, _) = self.size();
        let all: Vec<Summary> = data.series.iter().flat_map(|(_, s)| s.iter().flatten().copied()).collect();
        // The bars span the seeds' range: the axis must hold min and max, which `range` reads as
        // mean ± std, so each summary is handed to it as its range.
        let spans: Vec<Summary> =
            all.iter().map(|s| Summary { mean: 0.5 * (s.min + s.max), std: 0.5 * (s.max - s.min), ..*s }).collect();
        let axis = ValueAxis::for_values(&all);
        {
            let (lo, hi) = axis.range(&spans);
            let (plot, legend) = root.split_horizontally((width - LEGEND_PX) as i32);
            // Row 0 at the top.
            let mut chart = ChartBuilder::on(&plot)
                .margin(14)
                .caption(&data.title, ("sans-serif", 24))
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
                .y_label_style(("sans-serif", LABEL_FONT_PX))
                .x_label_style(("sans-serif", 15))
                .axis_desc_style(("sans-serif", 16))
                .y_label_formatter(&|y| {
                    let i = y.round();
                    let on_row = (y - i).abs() < 1e-6 && i >= 0.0;
                    if on_row { labels.get(i as usize).cloned().unwrap_or_default() } else { String::new() }
                })
                .light_line_style(rgb(palette::GRID))
                .draw()
                .map_err(draw_err)?;
            let n = data.series.len().max(1) as f64;
            let styles = series_styles(&data.series.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>());
            for (k, ((variant, summaries), &(color, mark))) in data.series.iter().zip(&styles).enumerate() {
                let offset = (k as f64 - (n - 1.0) / 2.0) * (0.7 / n);
                let placed: Vec<(f64, Summary)> =
                    summaries.iter().enumerate().filter_map(|(i, s)| s.map(|s| (i as f64 + offset, s))).collect();
                let at = |x: f64| axis.axis_of(x).clamp(lo, hi);
                chart
                    .draw_series(
                        placed.iter().map(|&(y, s)| {
                            PathElement::new(vec![(at(s.min), y), (at(s.max), y)], color.stroke_width(3))
                        }),
                    )
                    .map_err(draw_err)?;
                chart
                    .draw_series(placed.iter().filter(|(_, s)| s.mean.is_finite()).map(|&(y, s)| MarkElement {
                        at: (at(s.mean), y),
                        r: MARK_PX,
                        mark,
                        color: color.to_rgba(),
                    }))
                    .map_err(draw_err)?;
                let y = LEGEND_TOP_PX + LEGEND_ENTRY_PX * k as i32;
                legend
                    .draw(&MarkElement { at: (18, y), r: MARK_PX, mark, color: color.to_rgba() })
                    .map_err(draw_err)?;
                legend.draw(&Text::new(variant.clone(), (34, y - 9), ("sans-serif", 17))).map_err(draw_err)?;
            }
            let mut notes = vec!["mark: mean over seeds", "bar: lowest to highest seed"];
            if styles.iter().any(|(_, mark)| mark.open) {
                notes.push("open mark: trained with WSA");
            }
            for (i, line) in notes.into_iter().enumerate() {
                let y = LEGEND_TOP_PX + LEGEND_ENTRY_PX * data.series.len() as i32 + 8 + LEGEND_NOTE_PX * i as i32;
                legend.draw(&Text::new(line, (8, y), ("sans-serif", 14))).map_err(draw_err)?;
            }
        }
        Ok(())
    }
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

/// Each variant's colour and mark: a method's own where the variant is a method, else the k-th
/// variant's run colour and its mark among the variants that are not methods
/// (`palette::variant_marks`).
fn series_styles(variants: &[&str]) -> Vec<(RGBColor, palette::Mark)> {
    use wsa_core::experiment::method::Method;
    let others: Vec<&str> = variants.iter().copied().filter(|v| Method::from_name(v).is_err()).collect();
    let other_marks = palette::variant_marks(&others);
    variants
        .iter()
        .enumerate()
        .map(|(k, variant)| match Method::from_name(variant) {
            Ok(m) => (rgb(palette::method(m)), palette::method_mark(m)),
            Err(_) => {
                let index = others.iter().position(|o| o == variant).unwrap_or(0);
                (rgb(crate::describe::run_color(k)), other_marks[index])
            }
        })
        .collect()
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
