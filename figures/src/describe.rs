//! The figures of WSA Lab's results, described once: the path and the barriers, the weight
//! scopes of a layer, the scope trajectories, the loss plane, the federated rounds and the
//! clients' labels; the scopes of two checkpoints of any architecture. The exported files and the app's views draw these same descriptions.

use crate::figure::{Axis, Bar, BarGroup, Dash, Figure, Heatmap, Label, LegendPlace, Panel, Series, density, extent};
use crate::palette::{self, Rgb};
use wsa_core::checkpoint::{Comparison, TensorComparison};
use wsa_core::experiment::connect::{ConnectResult, Endpoint, EpochRecord, LayerComparison, MethodResult};
use wsa_core::experiment::federated::FedResult;
use wsa_core::experiment::method::{Alignment, Method, Training};
use wsa_core::experiment::plane::Plane;
use wsa_core::experiment::reproduce::report::RowReport;
use wsa_core::experiment::reproduce::{Metric as ReproduceMetric, SERIES_ACCURACY};
use wsa_core::experiment::seeds::{PathSpread, Summary, mean_std};

/// A line's width, and a marked one's (a tour step's "look here").
const LINE: f32 = 2.5;
const MARKED_LINE: f32 = 5.0;
const CURVE: f32 = 2.0;
const MARKED_CURVE: f32 = 4.0;

/// What the path figure draws heavier: a method's line, or its curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marked {
    Line(Method),
    Curve(Method),
}

/// Which of the path's two measures a panel shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    Loss,
    Accuracy,
}

impl Measure {
    pub const ALL: [Measure; 2] = [Measure::Loss, Measure::Accuracy];

    pub fn name(self) -> &'static str {
        match self {
            Measure::Loss => "test loss",
            Measure::Accuracy => "test accuracy",
        }
    }

    fn of_spread(self, p: &PathSpread) -> Summary {
        match self {
            Measure::Loss => p.loss,
            Measure::Accuracy => p.accuracy,
        }
    }

    fn of_point(self, p: &wsa_core::merge::PathPoint) -> f64 {
        match self {
            Measure::Loss => p.loss,
            Measure::Accuracy => p.accuracy,
        }
    }
}

/// Test loss and accuracy against α, one line per method with the barrier in its legend entry:
/// for a run over several seeds shown together (`seed` None) the mean line and a band from the
/// lowest to the highest seed, barriers as mean ± std; each method's trained curve dashed; and,
/// dotted, each method's chord between its ends, which its barrier is measured from.
pub fn paths(result: &ConnectResult, seed: Option<usize>, marked: Option<Marked>) -> Figure {
    let mut title = format!("{} · pair differs in {}", result.dataset, result.difference);
    if result.seeds.len() > 1 && seed.is_none() {
        title.push_str(&format!(" · mean and min-max band over {}", result.seeds_label()));
    }
    Figure {
        title,
        size: [1200, 480],
        columns: 2,
        panels: Measure::ALL.iter().map(|&m| path_panel(result, seed, m, marked)).collect(),
    }
}

/// One measure of [`paths`].
pub fn path_panel(result: &ConnectResult, seed: Option<usize>, measure: Measure, marked: Option<Marked>) -> Panel {
    let shown = result.shown(seed);
    let curves = result.curves_shown(seed);
    let mut series = Vec::new();
    let mut chords = false;
    for v in &shown {
        let barrier = match measure {
            Measure::Loss => &v.loss_barrier,
            Measure::Accuracy => &v.accuracy_barrier,
        };
        let value = |p: &PathSpread| measure.of_spread(p);
        let width = if marked == Some(Marked::Line(v.method)) { MARKED_LINE } else { LINE };
        let mut line = Series::line(
            format!("{} (λ = {}) barrier {}", v.method, v.lambda, mean_std(barrier, 3)),
            palette::method(v.method),
            width,
            v.path.iter().map(|p| [p.alpha, value(p).mean]).collect(),
        )
        .with_marks(4.0)
        .with_mark(palette::method_mark(v.method));
        if barrier.n > 1 {
            line.band = Some(v.path.iter().map(|p| [p.alpha, value(p).min, value(p).max]).collect());
        }
        series.push(line);
        let at = |alpha: f64| v.path.iter().find(|p| (p.alpha - alpha).abs() < 1e-9).map(|p| value(p).mean);
        if let (Some(a), Some(b)) = (at(0.0), at(1.0)) {
            // No legend entry: the panel's title says what the dotted lines are.
            series
                .push(Series::line("", palette::method(v.method), 1.5, vec![[0.0, a], [1.0, b]]).dashed(Dash::Dotted));
            chords = true;
        }
    }
    for (method, curve) in &curves {
        let barrier = match measure {
            Measure::Loss => curve.barriers.loss,
            Measure::Accuracy => curve.barriers.accuracy,
        };
        let width = if marked == Some(Marked::Curve(*method)) { MARKED_CURVE } else { CURVE };
        series.push(
            Series::line(
                format!("{method} {} curve, barrier {barrier:.3}", curve.kind.name()),
                palette::method(*method),
                width,
                curve.path.iter().map(|p| [p.alpha, measure.of_point(p)]).collect(),
            )
            .dashed(Dash::Dashed),
        );
    }
    let alphas = extent(series.iter().flat_map(|s| s.points.iter().map(|p| p[0])), [0.0, 1.0]);
    let values = series.iter().flat_map(|s| {
        let band = s.band.iter().flatten().flat_map(|b| [b[1], b[2]]);
        s.points.iter().map(|p| p[1]).chain(band)
    });
    let [lo, hi] = extent(values, [0.0, 1.0]);
    let pad = ((hi - lo) * 0.08).max(1e-3);
    // Accuracy from 0 to 1 always: an axis starting near the endpoints' accuracy makes a dip of
    // a point or two look like a collapse.
    let (bottom, top) = match measure {
        Measure::Loss => ((lo - pad).max(0.0), hi + pad),
        Measure::Accuracy => (0.0, 1.0),
    };
    let panel = Panel {
        title: format!(
            "{} along the path{}",
            measure.name(),
            // A path whose grid misses α = 0 or 1 has no chord drawn.
            if chords { " · dotted: the chord between the ends" } else { "" }
        ),
        x: Axis::new("α (0 = A, 1 = B)", [alphas[0].min(0.0), alphas[1].max(1.0)]),
        y: Axis::new(
            match measure {
                Measure::Loss => "cross-entropy",
                Measure::Accuracy => "accuracy",
            },
            [bottom, top],
        ),
        series,
        ..Panel::default()
    };
    let preferred = match measure {
        Measure::Loss => LegendPlace::UpperRight,
        Measure::Accuracy => LegendPlace::LowerRight,
    };
    Panel { legend: LegendPlace::least_covering(&panel, preferred), ..panel }
}

/// The histogram of the model compared with A and B in a scopes panel: the midpoint stored in
/// the result, or a merged model computed elsewhere (another α, a plane point).
#[derive(Clone, Debug, PartialEq)]
pub struct MergedHistogram<'a> {
    pub counts: &'a [u64],
    pub low: f64,
    pub high: f64,
    pub label: String,
}

impl<'a> MergedHistogram<'a> {
    /// The midpoint the result stores for `layer`.
    pub fn stored(layer: &'a LayerComparison) -> Self {
        let h = &layer.histogram;
        Self { counts: &h.merged, low: h.low, high: h.high, label: "midpoint".to_string() }
    }
}

/// One layer's weight scopes: histograms of A, B (and of B before alignment, dashed, when the
/// method aligned it) and of `merged`, as densities, with the Gaussian fits of A and B (dotted,
/// faded) and, where the method has a target scope, its Gaussian (dashed): the one WSA trained A
/// and B toward, or the one rescaling mapped them onto. A plain pair had none, and drawing one
/// would suggest it had.
pub fn histogram_panel(layer: &LayerComparison, merged: &MergedHistogram<'_>, method: Method) -> Panel {
    let h = &layer.histogram;
    let mut series = vec![
        Series::line("A", palette::MODEL_A, 2.0, density(&h.a, h.low, h.high)),
        Series::line("B", palette::MODEL_B, 2.0, density(&h.b, h.low, h.high)),
    ];
    if let Some(counts) = &h.b_unaligned {
        series.push(
            Series::line("B before alignment", palette::B_UNALIGNED, 2.0, density(counts, h.low, h.high))
                .dashed(Dash::Dashed),
        );
    }
    series.push(Series::line(
        merged.label.clone(),
        palette::MERGED,
        2.0,
        density(merged.counts, merged.low, merged.high),
    ));
    let (low, high) = (merged.low.min(h.low), merged.high.max(h.high));
    if has_target(method) {
        series.push(
            Series::line("target N(μ*, σ*²)", palette::TARGET, 1.5, crate::figure::gaussian(layer.target, low, high))
                .dashed(Dash::Dashed),
        );
    }
    for (report, color, name) in [(&layer.a, palette::MODEL_A, "A fit"), (&layer.b, palette::MODEL_B, "B fit")] {
        series.push(
            Series::line(name, color, 1.5, crate::figure::gaussian(report.scope, h.low, h.high))
                .dashed(Dash::Dotted)
                .with_opacity(0.5),
        );
    }
    let peak = extent(series.iter().flat_map(|s| s.points.iter().map(|p| p[1])), [0.0, 1.0])[1];
    let panel = Panel {
        title: format!("{} (n = {})", layer.path, layer.a.count),
        x: Axis::new("weight value", [low, high]),
        y: Axis::new("density", [0.0, peak * 1.1]),
        series,
        ..Panel::default()
    };
    Panel { legend: LegendPlace::least_covering(&panel, LegendPlace::UpperRight), ..panel }
}

/// Whether `method`'s A and B had a target scope: WSA's, trained toward, or rescaling's, mapped
/// onto.
pub fn has_target(method: Method) -> bool {
    method.training == Training::Wsa || method.alignment == Alignment::Rescale
}

/// A method's weight scopes, one panel per layer with its stored midpoint.
pub fn histograms(method: &MethodResult) -> Figure {
    let n = method.layers.len().max(1);
    let columns = n.min(3);
    let rows = n.div_ceil(columns);
    Figure {
        title: format!(
            "weight scopes · {} (λ = {}) · A, B, midpoint{}",
            method.method,
            method.lambda,
            if has_target(method.method) { " and target" } else { "" }
        ),
        size: [440 * columns as u32, 320 * rows as u32 + 40],
        columns,
        panels: method.layers.iter().map(|l| histogram_panel(l, &MergedHistogram::stored(l), method.method)).collect(),
    }
}

/// The tensors of two checkpoints whose scopes differ most (`top` of them, the largest
/// symmetric KL first): per tensor A's and B's histograms as densities, with their Gaussian
/// fits dotted, so a reader sees which layers an averaging merge will hurt and how.
pub fn checkpoint_scopes(comparison: &Comparison, top: usize) -> Figure {
    let shown: Vec<&TensorComparison> = comparison.by_difference().into_iter().take(top.max(1)).collect();
    let n = shown.len().max(1);
    let columns = n.min(3);
    let rows = n.div_ceil(columns);
    let panels = shown
        .iter()
        .map(|t| {
            let (low, high) = (t.histogram_low, t.histogram_high);
            let mut series = vec![
                Series::line("A", palette::MODEL_A, 2.0, density(&t.histogram_a, low, high)),
                Series::line("B", palette::MODEL_B, 2.0, density(&t.histogram_b, low, high)),
            ];
            for (stats, color, name) in [(&t.a, palette::MODEL_A, "A fit"), (&t.b, palette::MODEL_B, "B fit")] {
                series.push(
                    Series::line(name, color, 1.5, crate::figure::gaussian(stats.scope(), low, high))
                        .dashed(Dash::Dotted)
                        .with_opacity(0.5),
                );
            }
            let peak = extent(series.iter().flat_map(|s| s.points.iter().map(|p| p[1])), [0.0, 1.0])[1];
            let panel = Panel {
                title: format!("{} · sym. KL {:.3}", t.name, t.symmetric_kl),
                x: Axis::new("weight value", [low, high]),
                y: Axis::new("density", [0.0, peak * 1.1]),
                series,
                ..Panel::default()
            };
            Panel { legend: LegendPlace::least_covering(&panel, LegendPlace::UpperRight), ..panel }
        })
        .collect();
    Figure {
        title: format!("weight scopes · the {} tensors whose scopes differ most · A and B", shown.len()),
        size: [440 * columns as u32, 320 * rows as u32 + 40],
        columns,
        panels,
    }
}

/// A training curve per trained model: `value` of its records (`records`: the pair each was
/// trained in, and the record) per epoch, A's and B's in their colours, the plain pair's dashed
/// and the WSA pair's solid; the legend where it covers the least.
pub fn training_panel(records: &[(Training, &EpochRecord)], label: &str, value: fn(&EpochRecord) -> f64) -> Panel {
    let mut series = Vec::new();
    for pair in Training::ALL {
        for model in Endpoint::ALL {
            let points: Vec<[f64; 2]> = records
                .iter()
                .filter(|(p, r)| *p == pair && r.model == model)
                .map(|(_, r)| [r.epoch as f64, value(r)])
                .collect();
            if points.is_empty() {
                continue;
            }
            let dash = if pair == Training::Plain { Dash::Dashed } else { Dash::Solid };
            let name = format!("{} {}", pair.name(), model.label());
            series.push(Series::line(name, palette::endpoint(model), 2.0, points).dashed(dash));
        }
    }
    let epochs = extent(series.iter().flat_map(|s| s.points.iter().map(|p| p[0])), [0.0, 1.0]);
    let values = extent(series.iter().flat_map(|s| s.points.iter().map(|p| p[1])), [0.0, 1.0]);
    let panel = Panel {
        title: label.to_string(),
        x: Axis { whole_numbers: true, ..Axis::new("epoch", epochs) },
        y: Axis::new(label, values),
        series,
        ..Panel::default()
    };
    Panel { legend: LegendPlace::least_covering(&panel, LegendPlace::UpperRight), ..panel }
}

/// One layer's scope over training: A's and B's std (solid) and mean (dashed) per epoch.
pub fn trajectory_panel(curves: &[EpochRecord], layer: usize) -> Panel {
    let mut series = Vec::new();
    for model in Endpoint::ALL {
        let color = palette::endpoint(model);
        let records: Vec<_> = curves.iter().filter(|c| c.model == model && c.scopes.len() > layer).collect();
        let at = |f: fn(&wsa_core::scope::Scope) -> f64| {
            records.iter().map(|c| [c.epoch as f64, f(&c.scopes[layer])]).collect::<Vec<_>>()
        };
        series.push(Series::line(format!("{} std", model.label()), color, 2.0, at(|s| s.std)));
        series.push(Series::line(format!("{} mean", model.label()), color, 1.5, at(|s| s.mean)).dashed(Dash::Dashed));
    }
    let epochs = extent(series.iter().flat_map(|s| s.points.iter().map(|p| p[0])), [0.0, 1.0]);
    let values = extent(series.iter().flat_map(|s| s.points.iter().map(|p| p[1])), [0.0, 1.0]);
    Panel {
        title: "scope over training (std; dashed: mean)".to_string(),
        x: Axis { whole_numbers: true, ..Axis::new("epoch", epochs) },
        y: Axis::new("weight value", values),
        series,
        ..Panel::default()
    }
}

/// The loss plane: test loss on the grid as a heat map (log scale, with its colour bar), the
/// line A-B, the curve when there is one, the three models named, and `selected` (a grid
/// point's column and row) marked.
pub fn plane(plane: &Plane, selected: Option<(usize, usize)>) -> Figure {
    let (nx, ny) = (plane.xs.len(), plane.ys.len());
    let logs = plane.log_loss();
    let range = extent(logs.iter().copied(), [0.0, 1.0]);
    let step = |v: &[f64]| if v.len() > 1 { v[1] - v[0] } else { 1.0 };
    let (dx, dy) = (step(&plane.xs), step(&plane.ys));
    let first = |v: &[f64]| v.first().copied().unwrap_or(0.0);
    let last = |v: &[f64]| v.last().copied().unwrap_or(1.0);
    let mut series = Vec::new();
    if let [a, b, ..] = plane.models.as_slice() {
        series.push(Series::line("line A-B", palette::ON_HEATMAP, 2.0, vec![[a.x, a.y], [b.x, b.y]]));
    }
    if let Some((kind, path)) = &plane.curve {
        series.push(
            Series::line(format!("{} curve", kind.name()), palette::ON_HEATMAP, 2.0, path.clone()).dashed(Dash::Dashed),
        );
    }
    if let Some((i, j)) = selected.filter(|&(i, j)| i < nx && j < ny) {
        series.push(
            Series::line("selected point", palette::SELECTED_POINT, 0.0, vec![[plane.xs[i], plane.ys[j]]])
                .with_marks(7.0),
        );
    }
    // Each name a little above and right of its point (a share of the axes).
    let offset = [(last(&plane.xs) - first(&plane.xs)) * 0.012, (last(&plane.ys) - first(&plane.ys)) * 0.025];
    let labels = plane
        .models
        .iter()
        .map(|m| Label { text: m.label.clone(), at: [m.x, m.y], offset, color: palette::ON_HEATMAP })
        .collect();
    let panel = Panel {
        title: "test loss on the plane through A, B and the third model".to_string(),
        // Both axes on one scale: units of distance in weight space.
        x: Axis::new(
            "along B − A (distance in weight space)",
            [first(&plane.xs) - dx / 2.0, last(&plane.xs) + dx / 2.0],
        ),
        y: Axis::new("toward the third model", [first(&plane.ys) - dy / 2.0, last(&plane.ys) + dy / 2.0]),
        series,
        heatmap: Some(Heatmap {
            values: logs,
            columns: nx,
            origin: [first(&plane.xs), first(&plane.ys)],
            cell: [dx, dy],
            range,
            label: "test loss".to_string(),
            log: true,
        }),
        labels,
        legend: LegendPlace::Hidden,
        equal_scales: true,
        ..Panel::default()
    };
    // As tall as the plane's shape asks at this width (equal scales), within reason: about 760
    // pixels of plot across, plus the type, the margins and the colour bar.
    let (width, height) = (panel.x.range[1] - panel.x.range[0], panel.y.range[1] - panel.y.range[0]);
    let plot_height = if width > 0.0 { (760.0 * height / width).clamp(260.0, 760.0) } else { 640.0 };
    Figure { title: String::new(), size: [1000, plot_height as u32 + 120], columns: 1, panels: vec![panel] }
}

/// The colour of the `k`-th run of a federated comparison.
pub fn run_color(k: usize) -> Rgb {
    palette::RUNS[k % palette::RUNS.len()]
}

/// Global test accuracy per round, one line per federated run (`marked` heavier), each named
/// with its final accuracy.
pub fn fed_accuracy(result: &FedResult, marked: Option<&str>) -> Figure {
    let series: Vec<Series> = result
        .runs
        .iter()
        .enumerate()
        .map(|(k, run)| {
            let width = if marked == Some(run.name.as_str()) { MARKED_LINE } else { LINE };
            Series::line(
                match &run.diverged {
                    Some(d) => format!("{} (diverged in round {})", run.name, d.round),
                    None => format!("{} (final {:.4})", run.name, run.final_accuracy),
                },
                run_color(k),
                width,
                run.rounds.iter().map(|r| [r.round as f64, r.test_accuracy]).collect(),
            )
        })
        .collect();
    let panel = Panel {
        title: "global test accuracy per round".to_string(),
        x: Axis { whole_numbers: true, ..Axis::new("round", [0.0, (result.config.rounds as f64).max(1.0)]) },
        y: Axis::new("test accuracy", [0.0, 1.0]),
        series,
        ..Panel::default()
    };
    let panel = Panel { legend: LegendPlace::least_covering(&panel, LegendPlace::LowerRight), ..panel };
    Figure {
        title: format!("{} · {} clients", result.dataset, result.config.clients),
        size: [900, 520],
        columns: 1,
        panels: vec![panel],
    }
}

/// A federated row of `wsa-lab reproduce` over its seeds, per round: the global test accuracy,
/// the global model's std and the clients' spread, one line per run (mean) with a band from the
/// lowest to the highest seed; runs with WSA dashed.
pub fn reproduce_rounds(row: &RowReport) -> Figure {
    let keys = [
        (SERIES_ACCURACY, "global test accuracy", "test accuracy"),
        (ReproduceMetric::GlobalStd.name(), "the global model's weight std", "std (mean over layers)"),
        (ReproduceMetric::ClientSpread.name(), "the clients' spread around their fusion", "symmetric KL"),
    ];
    let panels = keys
        .into_iter()
        .map(|(key, title, y_label)| {
            let series: Vec<Series> = row
                .variants
                .iter()
                .enumerate()
                .filter_map(|(k, &variant)| {
                    let s = row.round_series(variant, key)?;
                    let round = |r: usize| (r + 1) as f64;
                    let points = s.mean.iter().enumerate().map(|(r, &y)| [round(r), y]).collect();
                    let band = (0..s.mean.len()).map(|r| [round(r), s.min[r], s.max[r]]).collect();
                    let dash = if variant.name().ends_with("+wsa") { Dash::Dashed } else { Dash::Solid };
                    Some(Series {
                        band: Some(band),
                        ..Series::line(variant.name(), run_color(k), LINE, points).dashed(dash)
                    })
                })
                .collect();
            let rounds = series.iter().map(|s| s.points.len()).max().unwrap_or(1) as f64;
            let values = series.iter().flat_map(|s| s.band.iter().flatten().flat_map(|b| [b[1], b[2]]));
            let range = if key == SERIES_ACCURACY {
                [0.0, 1.0]
            } else {
                let [lo, hi] = extent(values, [0.0, 1.0]);
                let pad = ((hi - lo) * 0.08).max(1e-3);
                [(lo - pad).max(0.0), hi + pad]
            };
            let panel = Panel {
                title: title.to_string(),
                x: Axis { whole_numbers: true, ..Axis::new("round", [1.0, rounds.max(2.0)]) },
                y: Axis::new(y_label, range),
                series,
                ..Panel::default()
            };
            Panel { legend: LegendPlace::least_covering(&panel, LegendPlace::LowerRight), ..panel }
        })
        .collect();
    Figure { title: row.label(), size: [1500, 480], columns: 3, panels }
}

/// Accuracy per round as the rounds of a running federated job arrive: (run, round, accuracy).
pub fn live_rounds(rounds: &[(String, usize, f64)]) -> Panel {
    let mut names: Vec<&String> = Vec::new();
    for (name, _, _) in rounds {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let series = names
        .into_iter()
        .enumerate()
        .map(|(k, name)| {
            let own: Vec<&(String, usize, f64)> = rounds.iter().filter(|(n, _, _)| n == name).collect();
            // A federation at several seeds runs each variant again per seed: its current pass
            // (from its last round 1) is drawn.
            let pass = own.iter().rposition(|(_, round, _)| *round == 1).unwrap_or(0);
            let points = own[pass..].iter().map(|(_, r, a)| [*r as f64, *a]).collect();
            Series::line(name.clone(), run_color(k), 2.0, points)
        })
        .collect();
    Panel {
        title: "global test accuracy per round (running)".to_string(),
        x: Axis { whole_numbers: true, ..Axis::new("round", [0.0, 1.0]) },
        y: Axis::new("test accuracy", [0.0, 1.0]),
        series,
        legend: LegendPlace::LowerRight,
        ..Panel::default()
    }
}

/// One layer's scope std across rounds: each run's broadcast target (line; `FedConfig::target`
/// says which) and its clients' (dots).
pub fn fed_scopes(result: &FedResult, layer: usize) -> Panel {
    let mut series = Vec::new();
    for (k, run) in result.runs.iter().enumerate() {
        let target = run.rounds.iter().filter_map(|r| Some([r.round as f64, r.target.get(layer)?.std])).collect();
        series.push(Series::line(format!("{} target", run.name), run_color(k), 2.0, target));
        let clients = run
            .rounds
            .iter()
            .flat_map(|r| r.client_scopes.iter().filter_map(move |s| Some([r.round as f64, s.get(layer)?.std])))
            .collect();
        series.push(Series::line(format!("{} clients", run.name), run_color(k), 0.0, clients).with_marks(2.0));
    }
    let values = extent(series.iter().flat_map(|s| s.points.iter().map(|p| p[1])), [0.0, 1.0]);
    Panel {
        title: "scope std of the layer across rounds".to_string(),
        x: Axis { whole_numbers: true, ..Axis::new("round", [0.0, (result.config.rounds as f64).max(1.0)]) },
        y: Axis::new("std", values),
        series,
        ..Panel::default()
    }
}

/// The label distribution of every client as bars stacked by class (one colour per class;
/// faded: a client that does not take part).
pub fn client_labels(result: &FedResult) -> Figure {
    let classes = result.clients.first().map_or(0, |c| c.label_counts.len());
    let mut bottoms = vec![0.0; result.clients.len()];
    let bars = (0..classes)
        .map(|class| BarGroup {
            name: format!("class {class}"),
            color: palette::CLASSES[class % palette::CLASSES.len()],
            width: 0.8,
            bars: result
                .clients
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    let height = c.label_counts.get(class).copied().unwrap_or(0) as f64;
                    let bar = Bar { x: k as f64, bottom: bottoms[k], height, faded: !c.participates };
                    bottoms[k] += height;
                    bar
                })
                .collect(),
        })
        .collect();
    let most = result.clients.iter().map(|c| c.samples).max().unwrap_or(1).max(1) as f64;
    let panel = Panel {
        title: format!("label distribution per client ({})", result.config.split.describe()),
        x: Axis { whole_numbers: true, ..Axis::new("client", [-0.5, result.clients.len() as f64 - 0.5]) },
        y: Axis { whole_numbers: true, ..Axis::new("samples", [0.0, most * 1.05]) },
        bars,
        legend: LegendPlace::Hidden,
        ..Panel::default()
    };
    Figure { title: String::new(), size: [900, 480], columns: 1, panels: vec![panel] }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsa_core::cancel::Silent;
    use wsa_core::experiment::connect::{self, ConnectConfig};

    /// A tiny real run of every kind of method: which have a target scope to draw, and the path
    /// panels' dotted chords from each line's ends.
    #[test]
    fn only_methods_with_a_target_draw_one_and_each_line_has_its_chord() {
        let mut config = ConnectConfig::default();
        config.train.epochs = 1;
        config.data.max_train = Some(200);
        config.data.max_test = Some(100);
        config.path.points = 5;
        config.methods = vec![Method::PLAIN, Method::WSA, Method::RESCALE];
        let result =
            wsa_core::wait(connect::run(&config, &wsa_core::device::cpu(), &mut Silent)).expect("connect run").result;
        for method in &result.methods {
            let figure = histograms(method);
            let targets = figure.panels[0].series.iter().filter(|s| s.name.starts_with("target")).count();
            let expected = usize::from(method.method != Method::PLAIN);
            assert_eq!(targets, expected, "{}: {targets} target Gaussians", method.method);
        }
        let panel = path_panel(&result, None, Measure::Loss, None);
        let chords: Vec<_> = panel.series.iter().filter(|s| s.name.is_empty()).collect();
        assert_eq!(chords.len(), result.methods.len());
        for (chord, method) in chords.iter().zip(&result.methods) {
            let (first, last) = (method.path[0], method.path[method.path.len() - 1]);
            assert_eq!(chord.points, vec![[0.0, first.loss], [1.0, last.loss]], "{}", method.method);
        }
        assert!(panel.title.contains("dotted: the chord"));

        // The training curves: one line per trained model, the plain pair's dashed, each with
        // every epoch of its records.
        let records: Vec<_> = result.pairs.iter().flat_map(|p| p.curves.iter().map(move |c| (p.training, c))).collect();
        let curves = training_panel(&records, "test accuracy", |r| r.test_accuracy);
        let names: Vec<&str> = curves.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["plain A", "plain B", "wsa A", "wsa B"]);
        for series in &curves.series {
            let dash = if series.name.starts_with("plain") { Dash::Dashed } else { Dash::Solid };
            assert_eq!((series.dash, series.points.len()), (dash, config.train.epochs), "{}", series.name);
        }
    }
}
