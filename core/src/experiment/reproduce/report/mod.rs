//! From finished cells to the report: every metric of every variant summarised over seeds, the
//! paired differences each family is about (WSA minus its baseline on the same seed) with 95%
//! confidence intervals and Holm's correction, a tally per comparison, and the pooled claims;
//! [`markdown`] renders it as `results.md`. Figures are drawn by the app's exporter from
//! [`Report::figure`].

mod markdown;

pub use markdown::{Context, markdown};

use super::{CellExperiment, CellRecord, Direction, Family, Metric, Pool, PoolClaim, Rules, Variant};
use crate::experiment::connect::PairDifference;
use crate::experiment::federated::{AggregationKind, Divergence};
use crate::experiment::method::{Method, Training};
use crate::experiment::stats::{self, PairedDifference, Pooled, SignedRank, Summary, Verdict};
use serde::{Deserialize, Serialize};

/// What a family's tables show and compare.
struct FamilyView {
    /// The columns of the family's table.
    metrics: &'static [Metric],
    /// (variant, baseline): differences variant minus baseline.
    comparisons: &'static [(Variant, Variant)],
    compared_metrics: &'static [Metric],
    /// The metric of the family's figure, and its axis label.
    figure: (Metric, &'static str),
}

const CONNECT_METRICS: &[Metric] =
    &[Metric::AccuracyA, Metric::AccuracyB, Metric::LossBarrier, Metric::AccuracyBarrier, Metric::ScopeDistance];

const PLAIN: Variant = Variant::Method(Method::PLAIN);
const WSA: Variant = Variant::Method(Method::WSA);
const WM: Variant = Variant::Method(Method::WM);
const WM_REPAIR: Variant = Variant::Method(Method::WM_REPAIR);
const RESCALE: Variant = Variant::Method(Method::RESCALE);
const FEDAVG: Variant = Variant::Federated { aggregation: AggregationKind::FedAvg, wsa: false };
const FEDPROX: Variant = Variant::Federated { aggregation: AggregationKind::FedProx, wsa: false };

fn view(family: Family) -> FamilyView {
    match family {
        Family::Connect => FamilyView {
            metrics: CONNECT_METRICS,
            comparisons: &[
                (WSA, PLAIN),
                (WM, PLAIN),
                (Variant::Method(Method::WM_WSA), WM),
                (Variant::Method(Method::WM_WSA), PLAIN),
                (RESCALE, PLAIN),
                (Variant::Method(Method::RESCALE_WSA), RESCALE),
                (Variant::Method(Method::REPAIR), PLAIN),
                (WM_REPAIR, WM),
                (Variant::Method(Method::WM_WSA), WM_REPAIR),
                (Variant::Method(Method::WM_WSA_REPAIR), WM_REPAIR),
            ],
            compared_metrics: &[Metric::LossBarrier, Metric::AccuracyBarrier],
            figure: (Metric::LossBarrier, "loss barrier (mean over seeds, bar from the lowest to the highest seed)"),
        },
        Family::Fed => FamilyView {
            metrics: &[
                Metric::FinalAccuracy,
                Metric::BestAccuracy,
                Metric::Last10Accuracy,
                Metric::RoundsToTarget,
                Metric::GlobalStd,
                Metric::ClientSpread,
            ],
            comparisons: &[
                (Variant::Federated { aggregation: AggregationKind::FedAvg, wsa: true }, FEDAVG),
                (Variant::Federated { aggregation: AggregationKind::FedProx, wsa: true }, FEDPROX),
                (FEDPROX, FEDAVG),
            ],
            compared_metrics: &[Metric::Last10Accuracy, Metric::FinalAccuracy, Metric::BestAccuracy],
            figure: (Metric::Last10Accuracy, "mean test accuracy of the last 10 rounds"),
        },
        Family::Ablation => FamilyView {
            metrics: CONNECT_METRICS,
            comparisons: &[(WSA, PLAIN)],
            compared_metrics: &[Metric::LossBarrier, Metric::AccuracyBarrier],
            figure: (Metric::LossBarrier, "loss barrier (mean over seeds, bar from the lowest to the highest seed)"),
        },
        Family::Gaussianity => FamilyView {
            metrics: &[Metric::MeanAbsKurtosis, Metric::MeanKs],
            comparisons: &[(Variant::Trained, Variant::AtInit)],
            compared_metrics: &[Metric::MeanKs, Metric::MeanAbsKurtosis],
            figure: (Metric::MeanKs, "mean KS distance to the fitted Gaussian"),
        },
    }
}

/// One metric of one variant of one row, over seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub variant: Variant,
    /// A [`Metric`]'s name, or a per-layer key of the Gaussianity family (`metric::ks_of`).
    pub metric: String,
    pub summary: Summary,
}

/// A paired difference `variant - baseline` of one metric in one row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub variant: Variant,
    pub baseline: Baseline,
    pub metric: Metric,
    pub difference: PairedDifference,
    /// The p-value after Holm's correction over the family's rows of this comparison and metric.
    #[serde(default = "one")]
    pub holm_p: f64,
    /// The verdict at the spec's level after that correction.
    #[serde(default = "too_few")]
    pub corrected: Verdict,
    /// The smallest true difference this row could detect with 80% power (infinite with fewer
    /// than two seeds).
    #[serde(default, deserialize_with = "crate::experiment::stats::unbounded_above_if_null")]
    pub detectable: f64,
    /// The label of an earlier row of the same group whose comparison this one repeats: the
    /// same runs on the same seeds (a row that varies only what one of its two variants does not
    /// read, e.g. λ for the variants without WSA). Shown with that row's verdict, but kept out of
    /// Holm's family, the tallies and the pools, so that one test is not counted twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<String>,
}

/// What a comparison measures its variant against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Baseline {
    /// Another variant of the same row, on the same seeds.
    Variant(Variant),
    /// The same variant in another row of the group, on the same seeds (an ablation against the
    /// group's first row, its default settings).
    Row { variant: Variant, row: String },
}

/// "wm", or "wsa with `row`"; padded as the formatter asks (the CLI's tallies align it).
impl std::fmt::Display for Baseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Baseline::Variant(variant) => f.pad(&variant.name()),
            Baseline::Row { variant, row } => f.pad(&format!("{} with `{row}`", variant.name())),
        }
    }
}

/// Written as it reads ([`Baseline`]'s `Display`), as summary.json always had it.
impl Serialize for Baseline {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Baseline {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let variant = |name: &str| Variant::from_name(name).map_err(serde::de::Error::custom);
        match text.split_once(" with `").and_then(|(v, rest)| Some((v, rest.strip_suffix('`')?))) {
            Some((v, row)) => Ok(Baseline::Row { variant: variant(v)?, row: row.to_string() }),
            None => Ok(Baseline::Variant(variant(&text)?)),
        }
    }
}

fn one() -> f64 {
    1.0
}

fn too_few() -> Verdict {
    Verdict::TooFewSeeds
}

/// A cell left out of its row, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvalidCell {
    pub seed: u64,
    pub reason: String,
}

/// A variant's run that diverged on one seed of a row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DivergedRun {
    pub seed: u64,
    pub variant: Variant,
    pub divergence: Divergence,
}

/// What a row can say, by the spec's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowStatus {
    Valid,
    /// Fewer valid seeds than the rules ask for: no verdict.
    Invalid,
    /// Plain training leaves no scope mismatch between A and B: shown, but WSA's comparisons
    /// are not counted.
    NoScopeMismatch,
}

/// One row of a group: its seeds, summaries and comparisons.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowReport {
    pub group: String,
    pub row: String,
    /// The valid seeds (those the summaries and comparisons use).
    pub seeds: Vec<u64>,
    /// Variants in the order the cells list them.
    pub variants: Vec<Variant>,
    pub aggregates: Vec<Aggregate>,
    pub comparisons: Vec<Comparison>,
    pub seconds: f64,
    #[serde(default)]
    pub invalid: Vec<InvalidCell>,
    #[serde(default = "valid")]
    pub status: RowStatus,
    /// A and B trained on different data: judged by the merged model (the midpoint) itself,
    /// since a barrier measured against the endpoints is floored at zero there.
    #[serde(default)]
    pub data_split: bool,
    /// Per-round series of the row's federated runs, over its seeds (rows whose cells recorded
    /// them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<RoundSeries>,
    /// The runs that diverged: their seeds have no numbers for that variant, so its comparisons
    /// rest on the other seeds and are not counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diverged: Vec<DivergedRun>,
}

/// One per-round series of a variant (`key`: `SERIES_ACCURACY` or a [`Metric`]'s name) over a
/// row's seeds: per round the mean, lowest and highest seed, as far as every seed has rounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundSeries {
    pub variant: Variant,
    pub key: String,
    pub seeds: usize,
    pub mean: Vec<f64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
}

impl RoundSeries {
    /// Over the seeds' series (`None` for none); each round over every seed, so the series ends
    /// where the shortest does.
    fn over(variant: Variant, key: &str, per_seed: &[&Vec<f64>]) -> Option<RoundSeries> {
        let rounds = per_seed.iter().map(|s| s.len()).min().filter(|&n| n > 0)?;
        let at = |r: usize| per_seed.iter().map(move |s| s[r]);
        let n = per_seed.len() as f64;
        Some(RoundSeries {
            variant,
            key: key.to_string(),
            seeds: per_seed.len(),
            mean: (0..rounds).map(|r| at(r).sum::<f64>() / n).collect(),
            min: (0..rounds).map(|r| at(r).fold(f64::INFINITY, f64::min)).collect(),
            max: (0..rounds).map(|r| at(r).fold(f64::NEG_INFINITY, f64::max)).collect(),
        })
    }
}

fn valid() -> RowStatus {
    RowStatus::Valid
}

impl RowReport {
    pub fn summary(&self, variant: Variant, metric: Metric) -> Option<Summary> {
        self.summary_of(variant, metric.name())
    }

    /// The summary of a metric by its key (a per-layer key too).
    pub fn summary_of(&self, variant: Variant, key: &str) -> Option<Summary> {
        self.aggregates.iter().find(|a| a.variant == variant && a.metric == key).map(|a| a.summary)
    }

    /// Whether the row's `variant - baseline` comparisons count toward tallies and pools: the
    /// row is valid, and a comparison of WSA against its own method without WSA needs a scope
    /// mismatch to remove.
    pub fn counts_for(&self, variant: Variant, baseline: &Baseline) -> bool {
        if !self.diverged_seeds(variant, baseline).is_empty() {
            return false;
        }
        match self.status {
            RowStatus::Valid => true,
            RowStatus::Invalid => false,
            RowStatus::NoScopeMismatch => !adds_wsa(variant, baseline),
        }
    }

    pub fn label(&self) -> String {
        format!("{} · {}", self.group, self.row)
    }

    /// The seeds on which `variant` or `baseline`'s variant diverged: a comparison between
    /// them would judge only the runs that survived, so it is shown but not counted. (A
    /// `Baseline::Row` is looked up in this row too: ablations, the only rows with one, are
    /// connect experiments, which do not diverge into a result.)
    pub fn diverged_seeds(&self, variant: Variant, baseline: &Baseline) -> Vec<u64> {
        let other = match baseline {
            Baseline::Variant(v) | Baseline::Row { variant: v, .. } => *v,
        };
        let mut seeds: Vec<u64> =
            self.diverged.iter().filter(|d| d.variant == variant || d.variant == other).map(|d| d.seed).collect();
        seeds.sort_unstable();
        seeds.dedup();
        seeds
    }

    /// Where the figure of its per-round series goes, under the report's figures (`None` for a
    /// row without them): `fed-rounds/`, the row's place in its family (`index`, so that two
    /// labels alike in their ASCII letters and digits stay apart) and its label in lower-case
    /// letters and digits.
    pub fn rounds_figure(&self, index: usize) -> Option<String> {
        if self.rounds.is_empty() {
            return None;
        }
        let mut slug = String::new();
        for c in self.label().chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        Some(format!("fed-rounds/{index:02}-{}.png", slug.trim_end_matches('-')))
    }

    /// The per-round series of `variant` named `key`.
    pub fn round_series(&self, variant: Variant, key: &str) -> Option<&RoundSeries> {
        self.rounds.iter().find(|r| r.variant == variant && r.key == key)
    }
}

/// Whether `variant` is `baseline` with WSA training added (wsa vs plain, wm+wsa vs wm, ...).
fn adds_wsa(variant: Variant, baseline: &Baseline) -> bool {
    match (variant, baseline) {
        (Variant::Method(v), Baseline::Variant(Variant::Method(b))) => {
            v.training == Training::Wsa
                && b.training == Training::Plain
                && v.alignment == b.alignment
                && v.repair == b.repair
        }
        _ => false,
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FamilyReport {
    pub family: Family,
    pub rows: Vec<RowReport>,
}

/// How often a comparison came out each way over a family's rows (after Holm's correction).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub variant: Variant,
    pub baseline: Baseline,
    pub metric: Metric,
    pub lower: usize,
    pub higher: usize,
    pub no_significant_difference: usize,
    pub too_few_seeds: usize,
    /// Rows not counted: invalid, or without a scope mismatch for a WSA comparison.
    #[serde(default)]
    pub not_counted: usize,
}

impl FamilyReport {
    /// Per (comparison, metric), in the family's order, the count of rows per corrected verdict.
    pub fn tallies(&self) -> Vec<Tally> {
        let mut out = Vec::new();
        for (variant, baseline, m) in comparison_keys(&self.rows) {
            let mut t = Tally {
                variant,
                baseline: baseline.clone(),
                metric: m,
                lower: 0,
                higher: 0,
                no_significant_difference: 0,
                too_few_seeds: 0,
                not_counted: 0,
            };
            for r in &self.rows {
                let mut compared = false;
                for c in
                    r.comparisons.iter().filter(|c| c.variant == variant && c.baseline == baseline && c.metric == m)
                {
                    compared = true;
                    if !r.counts_for(c.variant, &c.baseline) || c.repeats.is_some() {
                        t.not_counted += 1;
                        continue;
                    }
                    match c.corrected {
                        Verdict::Lower => t.lower += 1,
                        Verdict::Higher => t.higher += 1,
                        Verdict::NoSignificantDifference => t.no_significant_difference += 1,
                        Verdict::TooFewSeeds => t.too_few_seeds += 1,
                    }
                }
                // Its variant diverged on every seed: nothing to compare, and not counted.
                if !compared && !r.diverged_seeds(variant, &baseline).is_empty() {
                    t.not_counted += 1;
                }
            }
            out.push(t);
        }
        out
    }
}

/// The distinct (variant, baseline, metric) of `rows`' comparisons, in order of appearance.
fn comparison_keys(rows: &[RowReport]) -> Vec<(Variant, Baseline, Metric)> {
    distinct(rows.iter().flat_map(|r| r.comparisons.iter().map(|c| (c.variant, c.baseline.clone(), c.metric))))
}

/// What a pool says of one claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClaimVerdict {
    /// The pooled interval excludes zero in the claimed direction and no counted row is
    /// significantly against the claim after Holm's correction.
    Supported,
    /// The pooled interval excludes zero against the claim.
    Contradicted,
    /// Neither: the pooled interval contains zero, or a row goes significantly against it.
    NotShown,
    /// Fewer than two counted rows: nothing to pool.
    TooFewRows,
}

impl ClaimVerdict {
    pub fn label(self) -> &'static str {
        match self {
            ClaimVerdict::Supported => "supported",
            ClaimVerdict::Contradicted => "contradicted",
            ClaimVerdict::NotShown => "not shown",
            ClaimVerdict::TooFewRows => "too few rows",
        }
    }
}

/// One claim of a pool: the rows' paired differences pooled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PooledClaim {
    pub claim: PoolClaim,
    /// The rows pooled (valid, and counted for this comparison).
    pub rows: Vec<String>,
    /// Seed pairs over those rows.
    pub pairs: usize,
    /// The pooled difference; and relative to the baseline (each row's differences divided by
    /// its baseline mean), as a fraction.
    pub absolute: Option<Pooled>,
    pub relative: Option<Pooled>,
    /// Pairs whose difference is below zero, and above.
    pub below: usize,
    pub above: usize,
    /// Wilcoxon's signed-rank test over every pair's relative difference.
    pub signed_rank: Option<SignedRank>,
    /// Rows significantly against the claim after Holm's correction.
    pub against: Vec<String>,
    pub verdict: ClaimVerdict,
    /// Rows of the pool left out because the claim's variant or baseline diverged on some seed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out_diverged: Vec<String>,
}

/// A pool of the spec and its claims.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolReport {
    pub label: String,
    pub family: Family,
    pub claims: Vec<PooledClaim>,
}

/// Everything the report says, as summary.json holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    #[serde(default)]
    pub rules: Rules,
    pub families: Vec<FamilyReport>,
    #[serde(default)]
    pub pools: Vec<PoolReport>,
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
    /// Groups `records` by family and row (first appearance order), leaves out the cells that
    /// `rules` call invalid, summarises and compares the rest, corrects each family's tests
    /// with Holm, and pools the rows of each of `pools`.
    pub fn new(records: &[CellRecord], rules: &Rules, pools: &[Pool]) -> Report {
        let mut families = Vec::new();
        for family in Family::ALL {
            let mine: Vec<&CellRecord> = records.iter().filter(|r| r.cell.family == family).collect();
            if mine.is_empty() {
                continue;
            }
            let keys = distinct(mine.iter().map(|r| (r.cell.group.as_str(), r.cell.row.as_str())));
            let cells_of = |group: &str, row: &str| -> (Vec<&CellRecord>, Vec<InvalidCell>) {
                let mut kept = Vec::new();
                let mut invalid = Vec::new();
                for &r in mine.iter().filter(|r| r.cell.group == group && r.cell.row == row) {
                    match not_learned(r, rules) {
                        Some(reason) => invalid.push(InvalidCell { seed: r.cell.seed, reason }),
                        None => kept.push(r),
                    }
                }
                (kept, invalid)
            };
            let mut rows: Vec<RowReport> = keys
                .iter()
                .map(|&(group, row)| {
                    let (cells, invalid) = cells_of(group, row);
                    row_report(family, group, row, &cells, invalid, rules)
                })
                .collect();
            if family == Family::Ablation {
                // Each setting against the group's first row (the default settings), WSA to WSA
                // on the same seed: does the change itself help?
                for (report, &(group, row)) in rows.iter_mut().zip(&keys) {
                    let Some(&(_, first)) = keys.iter().find(|(g, _)| *g == group) else { continue };
                    if first == row {
                        continue;
                    }
                    let (mine, reference) = (cells_of(group, row).0, cells_of(group, first).0);
                    for &m in compared_metrics(family, report.data_split) {
                        let pairs = paired(&values(&mine, WSA, m.name()), &values(&reference, WSA, m.name()));
                        if let Some(difference) = stats::paired_difference(&pairs) {
                            let baseline = Baseline::Row { variant: WSA, row: first.to_string() };
                            report.comparisons.push(comparison(WSA, baseline, m, difference));
                        }
                    }
                }
            }
            mark_repeats(&mut rows);
            correct_with_holm(&mut rows, rules.alpha);
            copy_repeated_verdicts(&mut rows);
            families.push(FamilyReport { family, rows });
        }
        let pools = pools
            .iter()
            .filter_map(|pool| {
                let family = families.iter().find(|f| f.family == pool.family)?;
                let rows: Vec<&RowReport> = family.rows.iter().filter(|r| pool.takes(&r.group, &r.row)).collect();
                let claims = pool.claims.iter().map(|claim| pool_claim(claim, &rows, records)).collect();
                Some(PoolReport { label: pool.label.clone(), family: pool.family, claims })
            })
            .collect();
        Report { rules: rules.clone(), families, pools }
    }

    pub fn family(&self, family: Family) -> Option<&FamilyReport> {
        self.families.iter().find(|f| f.family == family)
    }

    pub fn figure(&self, family: Family) -> Option<FigureData> {
        let report = self.family(family)?;
        let (metric, y_label) = view(family).figure;
        let variants = distinct(report.rows.iter().flat_map(|r| r.variants.iter().copied()));
        let series = variants
            .into_iter()
            .map(|v| {
                let points = report.rows.iter().map(|r| r.summary(v, metric)).collect();
                (v.name(), points)
            })
            .collect();
        Some(FigureData {
            title: family.label().to_string(),
            y_label: y_label.to_string(),
            rows: report.rows.iter().map(RowReport::label).collect(),
            series,
        })
    }
}

/// Why a cell did not learn by `rules` (an endpoint of any method below the accuracy floor),
/// or `None` when it did (federated and Gaussianity cells have no endpoints to judge).
fn not_learned(record: &CellRecord, rules: &Rules) -> Option<String> {
    let CellExperiment::Connect(config) = &record.cell.experiment else { return None };
    if record.cell.family == Family::Gaussianity {
        return None;
    }
    // A data set that cannot be read now (a user's file moved away) counts as one class: the
    // floor is then the strictest.
    let classes = config.data.dataset.sample_shape_and_classes().map_or(1, |(_, classes)| classes.max(1));
    let floor = rules.learned_over_chance / classes as f64;
    let failed: Vec<String> = record
        .variants
        .iter()
        .flat_map(|v| {
            [(Metric::AccuracyA, "A"), (Metric::AccuracyB, "B")].into_iter().filter_map(move |(m, slot)| {
                v.metric(m).filter(|a| a.is_nan() || *a < floor).map(|a| format!("{} {slot} {a:.3}", v.variant))
            })
        })
        .collect();
    (!failed.is_empty()).then(|| {
        format!(
            "did not learn: test accuracy {} below {floor:.2} ({}× chance)",
            failed.join(", "),
            rules.learned_over_chance
        )
    })
}

/// The metrics a row's comparisons test: the barriers, or for a data-split pair the merged
/// model itself.
fn compared_metrics(family: Family, data_split: bool) -> &'static [Metric] {
    match family {
        Family::Connect | Family::Ablation if data_split => &[Metric::MidpointLoss, Metric::MidpointAccuracy],
        _ => view(family).compared_metrics,
    }
}

fn comparison(variant: Variant, baseline: Baseline, metric: Metric, difference: PairedDifference) -> Comparison {
    Comparison {
        variant,
        baseline,
        metric,
        difference,
        holm_p: difference.p,
        corrected: difference.verdict,
        detectable: stats::minimal_detectable_effect(difference.n, difference.std),
        repeats: None,
    }
}

/// Marks each comparison that repeats one of an earlier row of its group ([`Comparison::repeats`]):
/// the same variant, baseline and metric with the same paired difference to the last bit, which
/// only the same runs give.
fn mark_repeats(rows: &mut [RowReport]) {
    for i in 0..rows.len() {
        for j in 0..rows[i].comparisons.len() {
            let c = &rows[i].comparisons[j];
            let earlier = rows[..i].iter().find(|r| {
                r.group == rows[i].group
                    && r.comparisons.iter().any(|e| {
                        e.repeats.is_none()
                            && e.variant == c.variant
                            && e.baseline == c.baseline
                            && e.metric == c.metric
                            && e.difference == c.difference
                    })
            });
            if let Some(earlier) = earlier.map(|r| r.row.clone()) {
                rows[i].comparisons[j].repeats = Some(earlier);
            }
        }
    }
}

/// A repeated comparison takes the corrected p and verdict of the one it repeats.
fn copy_repeated_verdicts(rows: &mut [RowReport]) {
    for i in 0..rows.len() {
        for j in 0..rows[i].comparisons.len() {
            let c = &rows[i].comparisons[j];
            let Some(row) = &c.repeats else { continue };
            let original = rows.iter().filter(|r| r.group == rows[i].group && &r.row == row).find_map(|r| {
                r.comparisons.iter().find(|e| {
                    e.repeats.is_none() && e.variant == c.variant && e.baseline == c.baseline && e.metric == c.metric
                })
            });
            if let Some((holm_p, corrected)) = original.map(|e| (e.holm_p, e.corrected)) {
                let c = &mut rows[i].comparisons[j];
                (c.holm_p, c.corrected) = (holm_p, corrected);
            }
        }
    }
}

/// Holm's correction over each family of tests: one comparison and metric across the rows that
/// count for it. Rows that do not count keep their raw p and verdict (shown, not judged).
fn correct_with_holm(rows: &mut [RowReport], alpha: f64) {
    for (variant, baseline, m) in comparison_keys(rows) {
        let mut places = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            if !r.counts_for(variant, &baseline) {
                continue;
            }
            for (j, c) in r.comparisons.iter().enumerate() {
                if c.variant == variant
                    && c.baseline == baseline
                    && c.metric == m
                    && c.difference.n >= 2
                    && c.repeats.is_none()
                {
                    places.push((i, j));
                }
            }
        }
        let raw: Vec<f64> = places.iter().map(|&(i, j)| rows[i].comparisons[j].difference.p).collect();
        for (&(i, j), adjusted) in places.iter().zip(stats::holm(&raw)) {
            let c = &mut rows[i].comparisons[j];
            c.holm_p = adjusted;
            c.corrected = if adjusted < alpha { c.difference.verdict } else { Verdict::NoSignificantDifference };
        }
    }
}

/// Pools `claim` over `rows` (those that count for it): each row's mean paired difference with
/// its variance (std² / n), absolute and relative to the row's baseline mean.
fn pool_claim(claim: &PoolClaim, rows: &[&RowReport], records: &[CellRecord]) -> PooledClaim {
    let mut used = Vec::new();
    let (mut absolute, mut relative, mut all_relative) = (Vec::new(), Vec::new(), Vec::new());
    let (mut below, mut above, mut pairs_total) = (0, 0, 0);
    let mut against = Vec::new();
    let wrong_way = match claim.direction {
        Direction::Lower => Verdict::Higher,
        Direction::Higher => Verdict::Lower,
    };
    let baseline = Baseline::Variant(claim.baseline);
    let left_out_diverged =
        rows.iter().filter(|r| !r.diverged_seeds(claim.variant, &baseline).is_empty()).map(|r| r.label()).collect();
    for r in rows.iter().filter(|r| r.counts_for(claim.variant, &baseline)) {
        let Some(c) = r.comparisons.iter().find(|c| {
            c.variant == claim.variant && c.baseline == baseline && c.metric == claim.metric && c.repeats.is_none()
        }) else {
            continue;
        };
        let d = c.difference;
        if d.n < 2 {
            continue;
        }
        let cells: Vec<&CellRecord> = records
            .iter()
            // The row's seeds are its valid ones: the cells the rules left out are not among them.
            .filter(|x| x.cell.group == r.group && x.cell.row == r.row && r.seeds.contains(&x.cell.seed))
            .collect();
        let metric = claim.metric.name();
        let pairs = paired(&values(&cells, claim.variant, metric), &values(&cells, claim.baseline, metric));
        let baseline_values: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        let scale = stats::summarize(&baseline_values).map_or(0.0, |s| s.mean);
        absolute.push(d.estimate());
        if scale.abs() > 1e-12 {
            relative.push(d.relative_estimate(scale));
            all_relative.extend(pairs.iter().map(|(x, y)| (x - y) / scale.abs()));
        }
        below += d.below;
        above += d.above;
        pairs_total += d.n;
        if c.corrected == wrong_way {
            against.push(r.label());
        }
        used.push(r.label());
    }
    let absolute = stats::random_effects(&absolute);
    let relative = stats::random_effects(&relative);
    let verdict = match absolute {
        None => ClaimVerdict::TooFewRows,
        Some(p) => match (claim.direction, p.verdict) {
            (Direction::Lower, Verdict::Lower) | (Direction::Higher, Verdict::Higher) if against.is_empty() => {
                ClaimVerdict::Supported
            }
            (Direction::Lower, Verdict::Higher) | (Direction::Higher, Verdict::Lower) => ClaimVerdict::Contradicted,
            _ => ClaimVerdict::NotShown,
        },
    };
    PooledClaim {
        claim: claim.clone(),
        rows: used,
        pairs: pairs_total,
        absolute,
        relative,
        below,
        above,
        signed_rank: stats::wilcoxon_signed_rank(&all_relative),
        against,
        verdict,
        left_out_diverged,
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

fn row_report(
    family: Family,
    group: &str,
    row: &str,
    cells: &[&CellRecord],
    invalid: Vec<InvalidCell>,
    rules: &Rules,
) -> RowReport {
    let variants = distinct(cells.iter().flat_map(|c| c.variants.iter().map(|v| v.variant)));
    let metrics = distinct(cells.iter().flat_map(|c| c.variants.iter().flat_map(|v| v.metrics.keys().cloned())));
    let of = |variant: Variant, key: &str| values(cells, variant, key);
    let mut aggregates = Vec::new();
    for &v in &variants {
        for m in &metrics {
            let xs: Vec<f64> = of(v, m).into_iter().map(|(_, x)| x).collect();
            if let Some(summary) = stats::summarize(&xs) {
                aggregates.push(Aggregate { variant: v, metric: m.clone(), summary });
            }
        }
    }
    let data_split = cells.iter().any(|c| is_data_split(c));
    let keys = distinct(cells.iter().flat_map(|c| c.variants.iter().flat_map(|v| v.series.keys().cloned())));
    let mut rounds = Vec::new();
    for &v in &variants {
        for key in &keys {
            let per_seed: Vec<&Vec<f64>> =
                cells.iter().filter_map(|c| c.variant(v).and_then(|outcome| outcome.series.get(key))).collect();
            rounds.extend(RoundSeries::over(v, key, &per_seed));
        }
    }
    let mut comparisons = Vec::new();
    for &(variant, baseline) in view(family).comparisons {
        for &m in compared_metrics(family, data_split) {
            let pairs = paired(&of(variant, m.name()), &of(baseline, m.name()));
            if let Some(difference) = stats::paired_difference(&pairs) {
                comparisons.push(comparison(variant, Baseline::Variant(baseline), m, difference));
            }
        }
    }
    let mut seeds: Vec<u64> = cells.iter().map(|c| c.cell.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let diverged = cells
        .iter()
        .flat_map(|c| {
            c.variants.iter().filter_map(|v| {
                let divergence = v.diverged.clone()?;
                Some(DivergedRun { seed: c.cell.seed, variant: v.variant, divergence })
            })
        })
        .collect();
    let plain_scope = aggregates
        .iter()
        .find(|a| a.variant == PLAIN && a.metric == Metric::ScopeDistance.name())
        .map(|a| a.summary.mean);
    let status = if matches!(family, Family::Connect | Family::Ablation) && seeds.len() < rules.min_valid_seeds {
        RowStatus::Invalid
    } else if plain_scope.is_some_and(|d| d < rules.scope_mismatch_below) {
        RowStatus::NoScopeMismatch
    } else {
        RowStatus::Valid
    };
    RowReport {
        group: group.into(),
        row: row.into(),
        seeds,
        variants,
        aggregates,
        comparisons,
        seconds: cells.iter().map(|c| c.seconds).sum(),
        invalid,
        status,
        data_split,
        rounds,
        diverged,
    }
}

/// Whether the cell's A and B trained on different data (non-IID or disjoint halves).
fn is_data_split(record: &CellRecord) -> bool {
    matches!(&record.cell.experiment, CellExperiment::Connect(c) if matches!(c.pair, PairDifference::Data { .. }))
}

/// (seed, value) of the metric `key` of `variant` in each of `cells` that has it.
fn values(cells: &[&CellRecord], variant: Variant, key: &str) -> Vec<(u64, f64)> {
    cells
        .iter()
        .filter_map(|c| c.variant(variant).and_then(|v| v.metrics.get(key)).map(|&x| (c.cell.seed, x)))
        .collect()
}

/// (x, y) for every seed that both lists have.
fn paired(xs: &[(u64, f64)], ys: &[(u64, f64)]) -> Vec<(f64, f64)> {
    xs.iter().filter_map(|&(seed, x)| ys.iter().find(|(s, _)| *s == seed).map(|&(_, y)| (x, y))).collect()
}

#[cfg(test)]
mod tests {
    use super::super::{Cell, REPRODUCE_VERSION, VariantOutcome};
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
                    variant: Variant::from_name(variant).expect("a variant"),
                    metrics: BTreeMap::from([(Metric::LossBarrier.name().to_string(), b)]),
                    series: BTreeMap::new(),
                    diverged: None,
                })
                .collect(),
            warnings: Vec::new(),
            pairs_resumed: 0,
        }
    }

    #[test]
    fn rows_are_summarised_over_seeds_and_compared_pairwise() {
        // WSA lowers the barrier by 0.1, 0.3, 0.2, 0.4, 0.0 on seeds 0-4 (the hand-computed
        // interval of stats' test: mean -0.2, half-width 0.196324, p 0.0474); weight matching ties.
        let plain = [1.0, 2.0, 1.5, 1.2, 0.8];
        let drop = [0.1, 0.3, 0.2, 0.4, 0.0];
        let records: Vec<CellRecord> = (0..5)
            .map(|s| {
                let p = plain[s as usize];
                record(Family::Connect, "lr", s, &[("plain", p), ("wsa", p - drop[s as usize]), ("wm", p)])
            })
            .collect();
        let report = Report::new(&records, &Rules::default(), &[]);
        let row = &report.family(Family::Connect).expect("connect").rows[0];
        assert_eq!(row.seeds, vec![0, 1, 2, 3, 4]);
        assert_eq!(row.variants, vec![PLAIN, WSA, WM]);
        let summary = row.summary(PLAIN, Metric::LossBarrier).expect("plain");
        assert!((summary.mean - 1.3).abs() < 1e-12 && summary.n == 5, "{summary:?}");
        let wsa = row
            .comparisons
            .iter()
            .find(|c| c.variant == WSA && c.baseline == Baseline::Variant(PLAIN) && c.metric == Metric::LossBarrier)
            .expect("wsa - plain");
        assert!((wsa.difference.mean + 0.2).abs() < 1e-12, "{wsa:?}");
        assert!((wsa.difference.high - (-0.2 + 0.196_324)).abs() < 1e-5, "{wsa:?}");
        assert_eq!(wsa.difference.verdict, Verdict::Lower);
        let wm = row.comparisons.iter().find(|c| c.variant == WM).expect("wm - plain");
        assert_eq!(wm.difference.verdict, Verdict::NoSignificantDifference);
        let tallies = report.families[0].tallies();
        let t = tallies.iter().find(|t| t.variant == WSA && t.metric == Metric::LossBarrier).expect("tally");
        assert_eq!((t.lower, t.higher, t.no_significant_difference), (1, 0, 0));

        let md = markdown(&report, &records, &context());
        assert!(md.contains("## Mode connectivity (`connect`)"), "{md}");
        assert!(
            md.contains("| g | lr | wsa − plain | loss barrier | -0.200 | [-0.396, -0.004] | 0.047 | 0.047 | 0.263 | 5 | **lower** |"),
            "{md}"
        );
        assert!(md.contains("| g | lr | plain | 5 |"), "{md}");
    }

    /// A connect cell on the digits (10 classes) with these metrics per variant.
    fn cell(row: &str, seed: u64, variants: &[(&str, &[(Metric, f64)])]) -> CellRecord {
        let mut r = record(Family::Connect, row, seed, &[]);
        r.variants = variants
            .iter()
            .map(|(v, metrics)| VariantOutcome {
                variant: Variant::from_name(v).expect("a variant"),
                metrics: metrics.iter().map(|(m, x)| (m.name().to_string(), *x)).collect(),
                series: BTreeMap::new(),
                diverged: None,
            })
            .collect();
        r
    }

    #[test]
    fn a_cell_whose_endpoint_did_not_learn_is_left_out_and_listed() {
        // Seed 3's B stays at chance (0.10 < 2 × 1/10): left out of the row, listed with its
        // accuracy; the other four seeds are the same as in the test above.
        let plain = [1.0, 2.0, 1.5, 1.2, 0.8];
        let drop = [0.1, 0.3, 0.2, 0.4, 0.0];
        let records: Vec<CellRecord> = (0..5)
            .map(|s| {
                let b = if s == 3 { 0.10 } else { 0.9 };
                let p = plain[s as usize];
                let m = |barrier: f64| -> Vec<(Metric, f64)> {
                    vec![(Metric::LossBarrier, barrier), (Metric::AccuracyA, 0.9), (Metric::AccuracyB, b)]
                };
                let (pm, wm) = (m(p), m(p - drop[s as usize]));
                cell("lr", s, &[("plain", &pm), ("wsa", &wm)])
            })
            .collect();
        let report = Report::new(&records, &Rules::default(), &[]);
        let row = &report.family(Family::Connect).expect("connect").rows[0];
        assert_eq!(row.seeds, vec![0, 1, 2, 4]);
        assert_eq!(row.invalid.len(), 1);
        assert_eq!(row.invalid[0].seed, 3);
        assert!(
            row.invalid[0].reason.contains("plain B 0.100") && row.invalid[0].reason.contains("wsa B 0.100"),
            "{:?}",
            row.invalid
        );
        assert_eq!(row.summary(PLAIN, Metric::LossBarrier).expect("plain").n, 4);
        let wsa = row.comparisons.iter().find(|c| c.variant == WSA).expect("wsa");
        assert_eq!(wsa.difference.n, 4);
        assert!((wsa.difference.mean + 0.15).abs() < 1e-12, "{wsa:?}");
        assert_eq!(row.status, RowStatus::Valid);

        // With two of five at chance, three remain: still a row; with three, it is invalid.
        let mut worse = records.clone();
        for s in [0, 1] {
            worse[s].variants[0].set(Metric::AccuracyA, 0.05);
        }
        let report = Report::new(&worse, &Rules::default(), &[]);
        let row = &report.family(Family::Connect).expect("connect").rows[0];
        assert_eq!((row.seeds.len(), row.status), (2, RowStatus::Invalid));
        let md = markdown(&report, &worse, &context());
        assert!(md.contains("lr (invalid: too few valid seeds)"), "{md}");
        assert!(md.contains("- g · lr · seed 3: did not learn"), "{md}");
        assert!(md.contains("| invalid |"), "{md}");
    }

    #[test]
    fn a_run_that_diverged_is_listed_and_its_comparisons_are_shown_but_not_counted() {
        // Two federated rows, five seeds each; in row b, FedAvg+WSA diverges on seed 2.
        let fedavg_wsa = Variant::Federated { aggregation: AggregationKind::FedAvg, wsa: true };
        let records: Vec<CellRecord> = ["a", "b", "c"]
            .into_iter()
            .flat_map(|row| {
                (0..5u64).map(move |s| {
                    let base = 0.80 + 0.01 * s as f64;
                    let mut r = cell(row, s, &[("fedavg", &[(Metric::Last10Accuracy, base)])]);
                    r.cell.family = Family::Fed;
                    let mut wsa = VariantOutcome::new(fedavg_wsa);
                    if (row == "b" && s == 2) || row == "c" {
                        let reason = "training diverged: the loss became NaN at step 110 of model client 72".into();
                        wsa.diverged = Some(Divergence { round: 7, reason });
                    } else {
                        wsa.set(Metric::Last10Accuracy, base + 0.01 + 0.002 * s as f64);
                    }
                    r.variants.push(wsa);
                    r
                })
            })
            .collect();
        let pool = Pool {
            label: "federated".into(),
            family: Family::Fed,
            rows: vec!["*".into()],
            groups: Vec::new(),
            claims: vec![PoolClaim {
                variant: fedavg_wsa,
                baseline: FEDAVG,
                metric: Metric::Last10Accuracy,
                direction: Direction::Higher,
            }],
        };
        let report = Report::new(&records, &Rules::default(), &[pool]);
        let pooled = &report.pools[0].claims[0];
        assert_eq!(
            (pooled.rows.clone(), pooled.left_out_diverged.clone()),
            (vec!["g · a".to_string()], vec!["g · b".to_string(), "g · c".to_string()])
        );
        let fed = report.family(Family::Fed).expect("fed");
        let (a, b) = (&fed.rows[0], &fed.rows[1]);
        assert!(a.diverged.is_empty());
        assert_eq!(b.diverged.len(), 1);
        assert_eq!((b.diverged[0].seed, b.diverged[0].variant, b.diverged[0].divergence.round), (2, fedavg_wsa, 7));
        let compared = |r: &RowReport| {
            r.comparisons.iter().find(|c| c.variant == fedavg_wsa && c.metric == Metric::Last10Accuracy).cloned()
        };
        let (in_a, in_b) = (compared(a).expect("a"), compared(b).expect("b"));
        // Row b's comparison rests on the four seeds that finished and is not counted: row a's
        // Holm family is row a alone, so its corrected p is its raw p.
        assert_eq!((in_a.difference.n, in_b.difference.n), (5, 4));
        assert!(!b.counts_for(fedavg_wsa, &Baseline::Variant(FEDAVG)));
        assert_eq!(b.diverged_seeds(fedavg_wsa, &Baseline::Variant(FEDAVG)), vec![2]);
        assert_eq!(in_a.holm_p, in_a.difference.p);
        let tally = fed.tallies().into_iter().find(|t| t.variant == fedavg_wsa && t.metric == Metric::Last10Accuracy);
        // Row b (a seed diverged) and row c (every seed) are not counted; neither vanishes.
        assert_eq!(tally.map(|t| (t.higher, t.not_counted)), Some((1, 2)));
        let md = markdown(&report, &records, &context());
        assert!(md.contains("not counted: diverged on 1 of 5 seeds"), "{md}");
        // Row b's survivors differ significantly, but its line does not read as a verdict.
        let line_b =
            md.lines().find(|l| l.starts_with("| g | b | fedavg+wsa − fedavg | last-10")).expect("row b's line");
        assert!(
            !line_b.contains("**") && line_b.contains("not counted (raw: higher; diverged on 1 of 5 seeds)"),
            "{line_b}"
        );
        assert!(md.contains("- g · b · seed 2 · fedavg+wsa: round 7, training diverged"), "{md}");
        // Row c diverged on every seed: no difference to show, and the table says why.
        assert!(fed.rows[2].comparisons.iter().all(|c| c.variant != fedavg_wsa));
        assert!(md.contains("| g | c | fedavg+wsa − fedavg | all | – |"), "{md}");
        assert!(md.contains("diverged on 5 of 5 seeds |"), "{md}");
        assert!(md.contains("  - fed · g: 15 cells"), "{md}");
        assert!(md.contains("- federated: g · a (left out, a run diverged: g · b; g · c)"), "{md}");
    }

    fn context() -> Context<'static> {
        Context {
            command: "wsa-lab reproduce",
            date: "2026-12-04",
            machine: "test",
            device: "CPU",
            description: "",
            wall_seconds: 1.0,
            missing: 0,
            quarantined: &[],
            figures: "figures",
        }
    }

    #[test]
    fn rows_of_one_comparison_are_holm_corrected_and_pooled_as_the_spec_says() {
        // Four rows, five seeds each; WSA minus plain differs by row. Row "a" alone is
        // significant (p 0.0474 raw), but not after Holm over four rows (4 × 0.0474 > 0.05).
        let drops: [(&str, [f64; 5]); 4] = [
            ("a", [0.1, 0.3, 0.2, 0.4, 0.0]),
            ("b", [0.2, -0.1, 0.1, 0.0, 0.1]),
            ("c", [0.3, 0.1, -0.2, 0.2, 0.1]),
            ("different init", [0.0, 0.0, 0.0, 0.0, 0.0]),
        ];
        let records: Vec<CellRecord> = drops
            .iter()
            .flat_map(|(row, drop)| {
                (0..5u64).map(move |s| {
                    let scope = if *row == "different init" { 0.001 } else { 0.4 };
                    let p = 1.0 + 0.1 * s as f64;
                    let pm = [(Metric::LossBarrier, p), (Metric::ScopeDistance, scope)];
                    let wm = [(Metric::LossBarrier, p - drop[s as usize]), (Metric::ScopeDistance, scope)];
                    cell(row, s, &[("plain", &pm), ("wsa", &wm)])
                })
            })
            .collect();
        let claim =
            PoolClaim { variant: WSA, baseline: PLAIN, metric: Metric::LossBarrier, direction: Direction::Lower };
        let pool = Pool {
            label: "hyperparameter pairs".into(),
            family: Family::Connect,
            rows: vec!["a".into(), "b".into(), "c".into(), "different*".into()],
            groups: vec![],
            claims: vec![claim],
        };
        let report = Report::new(&records, &Rules::default(), std::slice::from_ref(&pool));
        let rows = &report.family(Family::Connect).expect("connect").rows;
        assert_eq!(rows[3].status, RowStatus::NoScopeMismatch);
        let a = rows[0].comparisons.iter().find(|c| c.variant == WSA).expect("a");
        assert_eq!(a.difference.verdict, Verdict::Lower);
        // Holm over the three counted rows: row a has the smallest p, times 3.
        assert!((a.holm_p - (3.0 * a.difference.p).min(1.0)).abs() < 1e-12, "{a:?}");
        assert_eq!(a.corrected, Verdict::NoSignificantDifference);
        let tally = &report.family(Family::Connect).expect("connect").tallies()[0];
        assert_eq!((tally.lower, tally.no_significant_difference, tally.not_counted), (0, 3, 1));

        // The pool: rows a, b, c (different init has no mismatch), means -0.2, -0.06, -0.1.
        let pooled = &report.pools[0].claims[0];
        assert_eq!(pooled.rows, vec!["g · a", "g · b", "g · c"]);
        assert_eq!((pooled.pairs, pooled.below, pooled.above), (15, 11, 2));
        let expected = stats::random_effects(
            &rows[..3]
                .iter()
                .map(|r| {
                    let d = r.comparisons.iter().find(|c| c.variant == WSA).expect("wsa").difference;
                    (d.mean, d.std * d.std / d.n as f64)
                })
                .collect::<Vec<_>>(),
        )
        .expect("pooled");
        assert_eq!(pooled.absolute, Some(expected));
        assert!(pooled.absolute.is_some_and(|p| p.mean < 0.0));
        assert_eq!(pooled.verdict, if expected.high < 0.0 { ClaimVerdict::Supported } else { ClaimVerdict::NotShown });
        let md = markdown(&report, &records, &context());
        assert!(
            md.contains("## Pooled claims")
                && md.contains("| hyperparameter pairs (connect) | wsa − plain loss barrier is lower | 3 | 15 |"),
            "{md}"
        );
        assert!(md.contains("different init (no scope mismatch to remove)"), "{md}");
    }

    /// A row that repeats an earlier row's runs (here "a again": the same plain and WSA numbers
    /// on the same seeds) is shown with that row's verdict but tested once: Holm's family, the
    /// tally and the pool count row "a" alone.
    #[test]
    fn a_comparison_that_repeats_an_earlier_rows_runs_is_counted_once() {
        let drop = [0.1, 0.3, 0.2, 0.4, 0.25];
        let records: Vec<CellRecord> = ["a", "a again", "b"]
            .iter()
            .flat_map(|row| {
                (0..5u64).map(move |s| {
                    let p = 1.0 + 0.1 * s as f64;
                    let shift = if *row == "b" { 0.05 * s as f64 } else { 0.0 };
                    let pm = [(Metric::LossBarrier, p), (Metric::ScopeDistance, 0.4)];
                    let wm = [(Metric::LossBarrier, p - drop[s as usize] + shift), (Metric::ScopeDistance, 0.4)];
                    cell(row, s, &[("plain", &pm), ("wsa", &wm)])
                })
            })
            .collect();
        let claim =
            PoolClaim { variant: WSA, baseline: PLAIN, metric: Metric::LossBarrier, direction: Direction::Lower };
        let pool = Pool {
            label: "all".into(),
            family: Family::Connect,
            rows: vec!["*".into()],
            groups: vec![],
            claims: vec![claim],
        };
        let report = Report::new(&records, &Rules::default(), std::slice::from_ref(&pool));
        let rows = &report.family(Family::Connect).expect("connect").rows;
        let wsa_of = |k: usize| rows[k].comparisons.iter().find(|c| c.variant == WSA).expect("wsa - plain").clone();
        let (a, again, b) = (wsa_of(0), wsa_of(1), wsa_of(2));
        assert_eq!(a.repeats, None);
        assert_eq!(again.repeats.as_deref(), Some("a"));
        assert_eq!(b.repeats, None);
        // Holm over two tests (a and b), not three; the repeat shows a's corrected verdict.
        let smaller = a.difference.p.min(b.difference.p);
        assert!((a.holm_p.min(b.holm_p) - (2.0 * smaller).min(1.0)).abs() < 1e-12, "{a:?} {b:?}");
        assert_eq!((again.holm_p, again.corrected), (a.holm_p, a.corrected));
        let tally = &report.family(Family::Connect).expect("connect").tallies()[0];
        assert_eq!(tally.not_counted, 1);
        assert_eq!(report.pools[0].claims[0].rows, vec!["g · a", "g · b"]);
        let md = markdown(&report, &records, &context());
        assert!(md.contains("not counted: the runs of a"), "{md}");
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
        let report = Report::new(&records, &Rules::default(), &[]);
        let rows = &report.family(Family::Ablation).expect("ablation").rows;
        assert!(
            rows[0].comparisons.iter().all(|c| c.baseline == Baseline::Variant(PLAIN)),
            "the first row is the reference"
        );
        let against_default = rows[1]
            .comparisons
            .iter()
            .find(|c| {
                c.baseline == Baseline::Row { variant: WSA, row: "default".into() } && c.metric == Metric::LossBarrier
            })
            .expect("fixed vs default");
        assert!((against_default.difference.mean - 0.41).abs() < 1e-9, "{against_default:?}");
        assert_eq!(against_default.difference.verdict, Verdict::Higher);
        // Written as it reads, and read back.
        let json = serde_json::to_value(&against_default.baseline).expect("serialise");
        assert_eq!(json, "wsa with `default`");
        assert_eq!(serde_json::from_value::<Baseline>(json).expect("read back"), against_default.baseline);
        assert_eq!(format!("{:<22}|", against_default.baseline), "wsa with `default`    |");
    }
}
