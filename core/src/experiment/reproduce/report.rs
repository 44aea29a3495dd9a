//! From finished cells to the report: every metric of every variant summarised over seeds, the
//! paired differences each family is about (WSA minus its baseline on the same seed) with 95%
//! confidence intervals, a tally per comparison, and the Markdown of `results.md`. Figures are
//! drawn by the app's exporter from [`Report::figure`].

use super::stats::{self, PairedDifference, Summary, Verdict};
use super::{AT_INIT, CellRecord, Family, TRAINED, metric};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// What a family's tables show and compare.
struct FamilyView {
    /// (metric, column heading).
    metrics: &'static [(&'static str, &'static str)],
    /// (variant, baseline): differences variant minus baseline.
    comparisons: &'static [(&'static str, &'static str)],
    compared_metrics: &'static [&'static str],
    /// The metric of the family's figure, and its axis label.
    figure: (&'static str, &'static str),
}

const CONNECT_METRICS: &[(&str, &str)] = &[
    (metric::ACCURACY_A, "acc A"),
    (metric::ACCURACY_B, "acc B"),
    (metric::LOSS_BARRIER, "loss barrier"),
    (metric::ACCURACY_BARRIER, "acc barrier"),
    (metric::SCOPE_DISTANCE, "scope distance"),
];

fn view(family: Family) -> FamilyView {
    match family {
        Family::Connect => FamilyView {
            metrics: CONNECT_METRICS,
            comparisons: &[
                ("wsa", "plain"),
                ("wm", "plain"),
                ("wm+wsa", "wm"),
                ("wm+wsa", "plain"),
                ("rescale", "plain"),
                ("rescale+wsa", "rescale"),
            ],
            compared_metrics: &[metric::LOSS_BARRIER, metric::ACCURACY_BARRIER],
            figure: (metric::LOSS_BARRIER, "loss barrier (mean ± std over seeds)"),
        },
        Family::Fed => FamilyView {
            metrics: &[
                (metric::FINAL_ACCURACY, "final acc"),
                (metric::BEST_ACCURACY, "best acc"),
                (metric::LAST10_ACCURACY, "last-10 mean acc"),
                (metric::ROUNDS_TO_TARGET, "rounds to target"),
            ],
            comparisons: &[("fedavg+wsa", "fedavg"), ("fedprox+wsa", "fedprox"), ("fedprox", "fedavg")],
            compared_metrics: &[metric::LAST10_ACCURACY, metric::FINAL_ACCURACY, metric::BEST_ACCURACY],
            figure: (metric::LAST10_ACCURACY, "mean test accuracy of the last 10 rounds"),
        },
        Family::Ablation => FamilyView {
            metrics: CONNECT_METRICS,
            comparisons: &[("wsa", "plain")],
            compared_metrics: &[metric::LOSS_BARRIER, metric::ACCURACY_BARRIER],
            figure: (metric::LOSS_BARRIER, "loss barrier (mean ± std over seeds)"),
        },
        Family::Gaussianity => FamilyView {
            metrics: &[(metric::MEAN_ABS_KURTOSIS, "mean abs excess kurtosis"), (metric::MEAN_KS, "mean KS distance")],
            comparisons: &[(TRAINED, AT_INIT)],
            compared_metrics: &[metric::MEAN_KS, metric::MEAN_ABS_KURTOSIS],
            figure: (metric::MEAN_KS, "mean KS distance to the fitted Gaussian"),
        },
    }
}

/// One metric of one variant of one row, over seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub variant: String,
    pub metric: String,
    pub summary: Summary,
}

/// A paired difference `variant - baseline` of one metric in one row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub variant: String,
    pub baseline: String,
    pub metric: String,
    pub difference: PairedDifference,
}

/// One row of a group: its seeds, summaries and comparisons.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowReport {
    pub group: String,
    pub row: String,
    pub seeds: Vec<u64>,
    /// Variants in the order the cells list them.
    pub variants: Vec<String>,
    pub aggregates: Vec<Aggregate>,
    pub comparisons: Vec<Comparison>,
    pub seconds: f64,
}

impl RowReport {
    pub fn summary(&self, variant: &str, metric: &str) -> Option<Summary> {
        self.aggregates.iter().find(|a| a.variant == variant && a.metric == metric).map(|a| a.summary)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FamilyReport {
    pub family: Family,
    pub rows: Vec<RowReport>,
}

/// How often a comparison came out each way over a family's rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub variant: String,
    pub baseline: String,
    pub metric: String,
    pub lower: usize,
    pub higher: usize,
    pub no_significant_difference: usize,
    pub too_few_seeds: usize,
}

impl FamilyReport {
    /// Per (comparison, metric), in the family's order, the count of rows per verdict.
    pub fn tallies(&self) -> Vec<Tally> {
        let v = view(self.family);
        let mut out = Vec::new();
        for &(variant, baseline) in v.comparisons {
            for &m in v.compared_metrics {
                let mut t =
                    Tally { variant: variant.into(), baseline: baseline.into(), metric: m.into(), ..Tally::default() };
                for c in self.rows.iter().flat_map(|r| &r.comparisons) {
                    if c.variant == variant && c.baseline == baseline && c.metric == m {
                        match c.difference.verdict {
                            Verdict::Lower => t.lower += 1,
                            Verdict::Higher => t.higher += 1,
                            Verdict::NoSignificantDifference => t.no_significant_difference += 1,
                            Verdict::TooFewSeeds => t.too_few_seeds += 1,
                        }
                    }
                }
                if t.lower + t.higher + t.no_significant_difference + t.too_few_seeds > 0 {
                    out.push(t);
                }
            }
        }
        out
    }
}

/// Everything the report says, as summary.json holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub families: Vec<FamilyReport>,
}

/// The data of a family's figure: one point with an error bar per row and variant.
pub struct FigureData {
    pub title: String,
    pub y_label: String,
    pub rows: Vec<String>,
    /// (variant, per row: the summary when the row has that variant).
    pub series: Vec<(String, Vec<Option<Summary>>)>,
}

impl Report {
    /// Groups `records` by family and row (first appearance order) and summarises them.
    pub fn new(records: &[CellRecord]) -> Report {
        let mut families = Vec::new();
        for family in Family::ALL {
            let mine: Vec<&CellRecord> = records.iter().filter(|r| r.cell.family == family).collect();
            if mine.is_empty() {
                continue;
            }
            let keys = distinct(mine.iter().map(|r| (r.cell.group.as_str(), r.cell.row.as_str())));
            let cells_of = |group: &str, row: &str| -> Vec<&CellRecord> {
                mine.iter().copied().filter(|r| r.cell.group == group && r.cell.row == row).collect()
            };
            let mut rows: Vec<RowReport> =
                keys.iter().map(|&(group, row)| row_report(family, group, row, &cells_of(group, row))).collect();
            if family == Family::Ablation {
                // Each setting against the group's first row (the default settings), WSA to WSA
                // on the same seed: does the change itself help?
                for (report, &(group, row)) in rows.iter_mut().zip(&keys) {
                    let Some(&(_, first)) = keys.iter().find(|(g, _)| *g == group) else { continue };
                    if first == row {
                        continue;
                    }
                    let (mine, reference) = (cells_of(group, row), cells_of(group, first));
                    for &m in view(family).compared_metrics {
                        let pairs = paired(&values(&mine, "wsa", m), &values(&reference, "wsa", m));
                        if let Some(difference) = stats::paired_difference(&pairs) {
                            report.comparisons.push(Comparison {
                                variant: "wsa".into(),
                                baseline: format!("wsa with `{first}`"),
                                metric: m.into(),
                                difference,
                            });
                        }
                    }
                }
            }
            families.push(FamilyReport { family, rows });
        }
        Report { families }
    }

    pub fn family(&self, family: Family) -> Option<&FamilyReport> {
        self.families.iter().find(|f| f.family == family)
    }

    pub fn figure(&self, family: Family) -> Option<FigureData> {
        let report = self.family(family)?;
        let (metric, y_label) = view(family).figure;
        let variants = distinct(report.rows.iter().flat_map(|r| r.variants.iter().cloned()));
        let series = variants
            .into_iter()
            .map(|v| {
                let points = report.rows.iter().map(|r| r.summary(&v, metric)).collect();
                (v, points)
            })
            .collect();
        Some(FigureData {
            title: family.title().to_string(),
            y_label: y_label.to_string(),
            rows: report.rows.iter().map(|r| format!("{} · {}", r.group, r.row)).collect(),
            series,
        })
    }
}

/// The distinct items in the order they first come.
fn distinct<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut kept = Vec::new();
    for item in items {
        if !kept.contains(&item) {
            kept.push(item);
        }
    }
    kept
}

fn row_report(family: Family, group: &str, row: &str, cells: &[&CellRecord]) -> RowReport {
    let variants = distinct(cells.iter().flat_map(|c| c.variants.iter().map(|v| v.variant.clone())));
    let metrics = distinct(cells.iter().flat_map(|c| c.variants.iter().flat_map(|v| v.metrics.keys().cloned())));
    let of = |variant: &str, metric: &str| values(cells, variant, metric);
    let mut aggregates = Vec::new();
    for v in &variants {
        for m in &metrics {
            let xs: Vec<f64> = of(v, m).into_iter().map(|(_, x)| x).collect();
            if let Some(summary) = stats::summarize(&xs) {
                aggregates.push(Aggregate { variant: v.clone(), metric: m.clone(), summary });
            }
        }
    }
    let fv = view(family);
    let mut comparisons = Vec::new();
    for &(variant, baseline) in fv.comparisons {
        for &m in fv.compared_metrics {
            let pairs = paired(&of(variant, m), &of(baseline, m));
            if let Some(difference) = stats::paired_difference(&pairs) {
                comparisons.push(Comparison {
                    variant: variant.into(),
                    baseline: baseline.into(),
                    metric: m.into(),
                    difference,
                });
            }
        }
    }
    let mut seeds: Vec<u64> = cells.iter().map(|c| c.cell.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    RowReport {
        group: group.into(),
        row: row.into(),
        seeds,
        variants,
        aggregates,
        comparisons,
        seconds: cells.iter().map(|c| c.seconds).sum(),
    }
}

/// (seed, value) of `metric` of `variant` in each of `cells` that has it.
fn values(cells: &[&CellRecord], variant: &str, metric: &str) -> Vec<(u64, f64)> {
    cells
        .iter()
        .filter_map(|c| c.variant(variant).and_then(|v| v.metrics.get(metric)).map(|&x| (c.cell.seed, x)))
        .collect()
}

/// (x, y) for every seed that both lists have.
fn paired(xs: &[(u64, f64)], ys: &[(u64, f64)]) -> Vec<(f64, f64)> {
    xs.iter().filter_map(|&(seed, x)| ys.iter().find(|(s, _)| *s == seed).map(|&(_, y)| (x, y))).collect()
}

/// A number for a table: three decimals, or two significant digits in scientific notation for
/// small non-zero values (scope distances); round-off below 1e-12 is zero.
pub fn number(x: f64) -> String {
    number_like(x, x)
}

/// `x` in the notation `scale` calls for, so that a mean and its std read alike.
fn number_like(x: f64, scale: f64) -> String {
    if x.abs() < 1e-12 {
        "0".into()
    } else if scale.abs() < 0.01 {
        format!("{x:.2e}")
    } else {
        format!("{x:.3}")
    }
}

fn mean_std(s: Option<Summary>) -> String {
    match s {
        None => "–".into(),
        Some(s) if s.n < 2 => number(s.mean),
        Some(s) => {
            let scale = s.mean.abs().max(s.std);
            format!("{} ± {}", number_like(s.mean, scale), number_like(s.std, scale))
        }
    }
}

fn heading(metric: &str) -> String {
    for family in Family::ALL {
        if let Some((_, label)) = view(family).metrics.iter().find(|(m, _)| *m == metric) {
            return (*label).to_string();
        }
    }
    metric.replace('_', " ")
}

/// How a report was made, for its first section.
pub struct Context<'a> {
    pub command: &'a str,
    pub date: &'a str,
    pub machine: &'a str,
    pub device: &'a str,
    pub description: &'a str,
    /// Wall time of this invocation and summed over all cells (earlier runs included).
    pub wall_seconds: f64,
    /// Cells of the spec not finished yet (`--report-only` before a run completed).
    pub missing: usize,
    /// Damaged cell files the store set aside (their cells were computed again).
    pub quarantined: &'a [super::Quarantined],
    /// Folder of the figures, relative to the Markdown file (e.g. `figures`).
    pub figures: &'a str,
}

/// The Markdown report: how it was made, then per family a figure, the summaries, the paired
/// differences and the tally.
pub fn markdown(report: &Report, records: &[CellRecord], context: &Context) -> String {
    let mut s = String::new();
    let cell_seconds: f64 = records.iter().map(|r| r.seconds).sum();
    let seeds = records.iter().map(|r| r.cell.seed).max().map_or(0, |m| m + 1);
    let _ = writeln!(s, "## How these numbers were made\n");
    if !context.description.is_empty() {
        let _ = writeln!(s, "{}\n", context.description);
    }
    let _ = writeln!(s, "- command: `{}`", context.command);
    let _ = writeln!(s, "- date: {}", context.date);
    let _ = writeln!(s, "- machine: {}; device: {}", context.machine, context.device);
    let _ = writeln!(
        s,
        "- {} cells over seeds 0..{}; compute time summed over cells {:.0} s ({:.2} h); this invocation's wall time {:.0} s",
        records.len(),
        seeds,
        cell_seconds,
        cell_seconds / 3600.0,
        context.wall_seconds
    );
    if context.missing > 0 {
        let _ = writeln!(
            s,
            "- **{} of the spec's {} cells have not run yet**: this report covers the finished ones; the same \
             command without `--report-only` runs the rest (finished cells are kept)",
            context.missing,
            context.missing + records.len()
        );
    }
    if !context.quarantined.is_empty() {
        let _ = writeln!(
            s,
            "- {} damaged cell file(s) were set aside and their cells computed again:",
            context.quarantined.len()
        );
        for set_aside in context.quarantined {
            let name = set_aside.file.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
            let _ = writeln!(s, "  - `cells/quarantine/{name}`: {}", set_aside.reason);
        }
    }
    let _ = writeln!(
        s,
        "- every cell's config and numbers: `cells/<hash>.json`; all summaries: `summary.json`\n\n\
         Each entry is mean ± sample std over seeds. A comparison is the *paired* difference (variant minus \
         baseline on the same seed, data split and initialisation) with its 95% t-interval; an interval \
         that contains zero reads \"no significant difference\", whatever the sign of the mean.\n"
    );
    for f in &report.families {
        let fv = view(f.family);
        let _ = writeln!(s, "## {} (`{}`)\n", f.family.title(), f.family.name());
        let _ = writeln!(s, "![{}]({}/{}.png)\n", f.family.title(), context.figures, f.family.name());
        let tallies = f.tallies();
        if !tallies.is_empty() {
            let _ = writeln!(s, "| comparison | metric | lower | higher | no significant difference | too few seeds |");
            let _ = writeln!(s, "|---|---|---|---|---|---|");
            for t in &tallies {
                let _ = writeln!(
                    s,
                    "| {} − {} | {} | {} | {} | {} | {} |",
                    t.variant,
                    t.baseline,
                    heading(&t.metric),
                    t.lower,
                    t.higher,
                    t.no_significant_difference,
                    t.too_few_seeds
                );
            }
            let _ = writeln!(s, "\n(rows of the family where the difference is significantly below / above zero)\n");
        }
        let _ = write!(s, "| group | row | variant | seeds |");
        for (_, label) in fv.metrics {
            let _ = write!(s, " {label} |");
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "|---|---|---|---|{}", "---|".repeat(fv.metrics.len()));
        for r in &f.rows {
            for v in &r.variants {
                let n = fv.metrics.iter().filter_map(|(m, _)| r.summary(v, m)).map(|x| x.n).max().unwrap_or(0);
                let _ = write!(s, "| {} | {} | {} | {} |", r.group, r.row, v, n);
                for (m, _) in fv.metrics {
                    let _ = write!(s, " {} |", mean_std(r.summary(v, m)));
                }
                let _ = writeln!(s);
            }
        }
        let _ = writeln!(s);
        if f.family == Family::Gaussianity {
            layer_table(&mut s, f);
        }
        let _ = writeln!(s, "| group | row | difference | metric | mean | 95% CI | seeds | verdict |");
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for r in &f.rows {
            for c in &r.comparisons {
                let d = &c.difference;
                let scale = d.low.abs().max(d.high.abs());
                let ci = if d.n < 2 {
                    "–".to_string()
                } else {
                    format!("[{}, {}]", number_like(d.low, scale), number_like(d.high, scale))
                };
                let verdict = match d.verdict {
                    Verdict::Lower | Verdict::Higher => format!("**{}**", d.verdict.label()),
                    _ => d.verdict.label().to_string(),
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} − {} | {} | {} | {} | {} | {} |",
                    r.group,
                    r.row,
                    c.variant,
                    c.baseline,
                    heading(&c.metric),
                    number(d.mean),
                    ci,
                    d.n,
                    verdict
                );
            }
        }
        let _ = writeln!(s);
    }
    s
}

/// Gaussianity per layer: excess kurtosis and KS distance at init and trained.
fn layer_table(s: &mut String, f: &FamilyReport) {
    let _ = writeln!(s, "Per layer (model A):\n");
    let _ = writeln!(s, "| group | row | layer | kurtosis at init | kurtosis trained | KS at init | KS trained |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for r in &f.rows {
        let layers: Vec<&str> =
            r.aggregates.iter().filter(|a| a.variant == TRAINED).filter_map(|a| a.metric.strip_prefix("ks:")).collect();
        for layer in layers {
            let k = format!("kurtosis:{layer}");
            let ks = format!("ks:{layer}");
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.group,
                r.row,
                layer,
                mean_std(r.summary(AT_INIT, &k)),
                mean_std(r.summary(TRAINED, &k)),
                mean_std(r.summary(AT_INIT, &ks)),
                mean_std(r.summary(TRAINED, &ks))
            );
        }
    }
    let _ = writeln!(s);
}

#[cfg(test)]
mod tests {
    use super::super::{Cell, CellExperiment, REPRODUCE_VERSION, VariantOutcome};
    use super::*;
    use crate::experiment::connect::ConnectConfig;
    use std::collections::BTreeMap;

    fn record(family: Family, row: &str, seed: u64, barriers: &[(&str, f64)]) -> CellRecord {
        let cell = Cell {
            family,
            group: "g".into(),
            row: row.into(),
            seed,
            experiment: CellExperiment::Connect(ConnectConfig { seed, ..ConnectConfig::default() }),
        };
        CellRecord {
            version: REPRODUCE_VERSION,
            hash: cell.hash(),
            cell,
            device: "CPU".into(),
            seconds: 1.0,
            variants: barriers
                .iter()
                .map(|&(variant, b)| VariantOutcome {
                    variant: variant.into(),
                    metrics: BTreeMap::from([(metric::LOSS_BARRIER.to_string(), b)]),
                })
                .collect(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn rows_are_summarised_over_seeds_and_compared_pairwise() {
        // WSA lowers the barrier by 0.1, 0.3, 0.2, 0.4, 0.0 on seeds 0-4 (the hand-computed
        // interval of stats' test: mean -0.2, half-width 0.196293); weight matching ties.
        let plain = [1.0, 2.0, 1.5, 1.2, 0.8];
        let drop = [0.1, 0.3, 0.2, 0.4, 0.0];
        let records: Vec<CellRecord> = (0..5)
            .map(|s| {
                let p = plain[s as usize];
                record(Family::Connect, "lr", s, &[("plain", p), ("wsa", p - drop[s as usize]), ("wm", p)])
            })
            .collect();
        let report = Report::new(&records);
        let row = &report.family(Family::Connect).expect("connect").rows[0];
        assert_eq!(row.seeds, vec![0, 1, 2, 3, 4]);
        assert_eq!(row.variants, vec!["plain", "wsa", "wm"]);
        let summary = row.summary("plain", metric::LOSS_BARRIER).expect("plain");
        assert!((summary.mean - 1.3).abs() < 1e-12 && summary.n == 5, "{summary:?}");
        let wsa = row
            .comparisons
            .iter()
            .find(|c| c.variant == "wsa" && c.baseline == "plain" && c.metric == metric::LOSS_BARRIER)
            .expect("wsa - plain");
        assert!((wsa.difference.mean + 0.2).abs() < 1e-12, "{wsa:?}");
        assert!((wsa.difference.high - (-0.2 + 0.196_293)).abs() < 1e-5, "{wsa:?}");
        assert_eq!(wsa.difference.verdict, Verdict::Lower);
        let wm = row.comparisons.iter().find(|c| c.variant == "wm").expect("wm - plain");
        assert_eq!(wm.difference.verdict, Verdict::NoSignificantDifference);
        let tallies = report.families[0].tallies();
        let t = tallies.iter().find(|t| t.variant == "wsa" && t.metric == metric::LOSS_BARRIER).expect("tally");
        assert_eq!((t.lower, t.higher, t.no_significant_difference), (1, 0, 0));

        let context = Context {
            command: "wsa-lab reproduce",
            date: "2026-12-02",
            machine: "test",
            device: "CPU",
            description: "",
            wall_seconds: 5.0,
            missing: 0,
            quarantined: &[],
            figures: "figures",
        };
        let md = markdown(&report, &records, &context);
        assert!(md.contains("## Mode connectivity (`connect`)"), "{md}");
        assert!(
            md.contains("| g | lr | wsa − plain | loss barrier | -0.200 | [-0.396, -0.004] | 5 | **lower** |"),
            "{md}"
        );
        assert!(md.contains("| g | lr | plain | 5 |"), "{md}");
    }

    #[test]
    fn ablation_rows_are_also_compared_with_the_groups_first_row() {
        let records: Vec<CellRecord> = (0..3)
            .flat_map(|s| {
                let x = s as f64 * 0.1;
                [
                    record(Family::Ablation, "default", s, &[("plain", 1.0 + x), ("wsa", 0.5 + x)]),
                    record(Family::Ablation, "fixed", s, &[("plain", 1.0 + x), ("wsa", 0.9 + x + 0.01 * s as f64)]),
                ]
            })
            .collect();
        let report = Report::new(&records);
        let rows = &report.family(Family::Ablation).expect("ablation").rows;
        assert!(rows[0].comparisons.iter().all(|c| c.baseline == "plain"), "the first row is the reference");
        let against_default = rows[1]
            .comparisons
            .iter()
            .find(|c| c.baseline == "wsa with `default`" && c.metric == metric::LOSS_BARRIER)
            .expect("fixed vs default");
        assert!((against_default.difference.mean - 0.41).abs() < 1e-9, "{against_default:?}");
        assert_eq!(against_default.difference.verdict, Verdict::Higher);
    }
}
