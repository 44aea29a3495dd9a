//! The report as Markdown (`results.md`): how the numbers were made, the rules they are judged
//! by, the pooled claims, then per family its figure, tally, summaries and paired differences.

use super::{Baseline, ClaimVerdict, FamilyReport, Report, RowReport, RowStatus, distinct, view};
use crate::experiment::reproduce::{CellRecord, Family, Metric, Quarantined, Rules, SERIES_ACCURACY, Variant, metric};
use crate::experiment::stats::{Summary, Verdict};
use std::fmt::Write as _;

/// A number for a table: three decimals, or two significant digits in scientific notation for
/// small non-zero values (scope distances); round-off below 1e-12 is zero.
fn number(x: f64) -> String {
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
    pub quarantined: &'a [Quarantined],
    /// Folder of the figures, relative to the Markdown file (e.g. `figures`).
    pub figures: &'a str,
}

/// The Markdown report: how it was made, the rules it judges by, the pooled claims, then per
/// family a figure, the tally, the summaries (with the cells left out) and the paired
/// differences.
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
    let resumed: Vec<&CellRecord> = records.iter().filter(|r| r.pairs_resumed > 0).collect();
    if !resumed.is_empty() {
        let labels: Vec<String> = resumed.iter().map(|r| r.cell.label()).collect();
        let _ = writeln!(
            s,
            "- {} cell(s) took up a pair trained before a stop, so their time (and the sums above and below) leaves out that pair's training: {}",
            resumed.len(),
            labels.join("; ")
        );
    }
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
    compute_by_group(&mut s, records);
    let _ = writeln!(s, "- every cell's config and numbers: `cells/<hash>.json`; all summaries: `summary.json`\n");
    rules_section(&mut s, &report.rules);
    pools_section(&mut s, report);
    for f in &report.families {
        family_section(&mut s, f, context);
    }
    s
}

/// The compute time of each group, summed over its cells (each cell ran on one process), with
/// the median cell: the measured cost of each part of the spec.
fn compute_by_group(s: &mut String, records: &[CellRecord]) {
    let mut groups: Vec<(Family, &str, Vec<f64>)> = Vec::new();
    for r in records {
        match groups.iter_mut().find(|(f, g, _)| *f == r.cell.family && *g == r.cell.group) {
            Some((.., seconds)) => seconds.push(r.seconds),
            None => groups.push((r.cell.family, &r.cell.group, vec![r.seconds])),
        }
    }
    let _ = writeln!(s, "- compute per group (summed over its cells; median cell):");
    for (family, group, mut seconds) in groups {
        seconds.sort_by(f64::total_cmp);
        let total: f64 = seconds.iter().sum();
        let median = seconds[seconds.len() / 2];
        let _ = writeln!(
            s,
            "  - {} · {group}: {} cells, {:.2} h (median {median:.0} s)",
            family.name(),
            seconds.len(),
            total / 3600.0
        );
    }
}

/// The rules, stated before any table (they are the spec's, fixed before the cells ran).
fn rules_section(s: &mut String, rules: &Rules) {
    let _ = writeln!(s, "## How rows and claims are judged\n");
    let _ = writeln!(
        s,
        "These rules come from the spec and were fixed before its cells ran.\n\n\
         - **Entries** are mean ± sample std over a row's valid seeds. A **comparison** is the *paired* difference \
         (variant minus baseline on the same seed, data split and initialisation) with its 95% t-interval and \
         two-sided p-value; \"detectable\" is the smallest true difference the row's test finds with 80% power \
         ((t(0.975, n−1) + t(0.8, n−1)) · sd / √n).\n\
         - **Invalid cells**: a cell where an endpoint (A or B of any method) scores a test accuracy below \
         {}× chance did not learn; it is left out of every summary, interval and count, and listed under its row. \
         A connect or ablation row with fewer than {} valid seeds reads **invalid**.\n\
         - **No scope mismatch to remove**: a row whose plain pair's mean scope distance is below {} is shown, \
         but its WSA comparisons (a method with WSA against the same method without) are not counted or pooled.\n\
         - **Data-split pairs** (A and B on different halves of the data) are judged by the merged model itself: \
         its loss and accuracy at α = 0.5, against the other methods' and against the endpoints' mean and the \
         better endpoint; a barrier measured against the endpoints is floored at zero there.\n\
         - **Multiple comparisons**: within a family, the rows of one comparison and metric are one family of \
         tests, corrected by Holm's step-down method; a row is significant when its corrected p is below {}. \
         Tables show the raw interval and p and the corrected p; tallies count corrected verdicts. A comparison \
         that repeats an earlier row's of its group to the last bit (the same runs: the row varies only what \
         neither variant reads, such as λ for runs without WSA) is shown with that row's verdict and counted \
         once.\n\
         - **Diverged runs**: a federated run whose loss becomes NaN or infinite stops there and records no \
         numbers; it is listed under its row, and a comparison with that variant on either side rests on the \
         other seeds, so it is shown but not counted (a run that survives is not a fair sample of its method).\n\
         - **Pools**: rows that replicate one condition are pooled per claim by a random-effects meta-analysis \
         (DerSimonian-Laird between-row variance; Hartung-Knapp 95% interval with k−1 degrees of freedom, since \
         the rows are few and differ in data and model, so their true effects may differ), absolute and relative \
         to each row's baseline mean; with the count of seed pairs below and above zero and Wilcoxon's \
         signed-rank p over every pair's relative difference.\n\
         - **A claim is supported** when its pooled interval excludes zero in the claimed direction and no counted \
         row goes significantly against it (after Holm); **contradicted** when the pooled interval excludes zero \
         the other way; otherwise **not shown**.\n",
        rules.learned_over_chance,
        rules.min_valid_seeds,
        number(rules.scope_mismatch_below),
        rules.alpha,
    );
}

/// Each pool's claims: the pooled differences and the verdict.
fn pools_section(s: &mut String, report: &Report) {
    if report.pools.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Pooled claims\n");
    let _ = writeln!(
        s,
        "| pool | claim | rows | pairs | pooled difference [95% CI] | relative to baseline [95% CI] | pairs below / above 0 | Wilcoxon p | rows against | verdict |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for pool in &report.pools {
        for c in &pool.claims {
            let direction = c.claim.direction.name();
            let absolute = c.absolute.map_or("–".to_string(), |p| {
                let scale = p.low.abs().max(p.high.abs());
                format!(
                    "{} [{}, {}]",
                    number_like(p.mean, scale),
                    number_like(p.low, scale),
                    number_like(p.high, scale)
                )
            });
            let relative = c.relative.map_or("–".to_string(), |p| {
                format!("{:+.1}% [{:+.1}%, {:+.1}%]", 100.0 * p.mean, 100.0 * p.low, 100.0 * p.high)
            });
            let wilcoxon = c.signed_rank.map_or("–".to_string(), |w| p_value(w.p));
            let verdict = match c.verdict {
                ClaimVerdict::Supported | ClaimVerdict::Contradicted => format!("**{}**", c.verdict.label()),
                _ => c.verdict.label().to_string(),
            };
            let _ = writeln!(
                s,
                "| {} ({}) | {} − {} {} is {direction} | {} | {} | {absolute} | {relative} | {} / {} | {wilcoxon} | {} | {verdict} |",
                pool.label,
                pool.family.name(),
                c.claim.variant,
                c.claim.baseline,
                c.claim.metric.label(),
                c.rows.len(),
                c.pairs,
                c.below,
                c.above,
                if c.against.is_empty() { "none".to_string() } else { c.against.join("; ") }
            );
        }
    }
    let _ = writeln!(s, "\nRows of each pool:\n");
    for pool in &report.pools {
        let rows = distinct(pool.claims.iter().flat_map(|c| c.rows.iter().cloned()));
        let _ = write!(s, "- {}: {}", pool.label, if rows.is_empty() { "none".to_string() } else { rows.join("; ") });
        let stopped = distinct(pool.claims.iter().flat_map(|c| c.left_out_diverged.iter().cloned()));
        if !stopped.is_empty() {
            let _ = write!(s, " (left out, a run diverged: {})", stopped.join("; "));
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s);
}

fn p_value(p: f64) -> String {
    if p < 0.001 { "< 0.001".to_string() } else { format!("{p:.3}") }
}

fn family_section(s: &mut String, f: &FamilyReport, context: &Context) {
    let fv = view(f.family);
    let _ = writeln!(s, "## {} (`{}`)\n", f.family.label(), f.family.name());
    let _ = writeln!(s, "![{}]({}/{}.png)\n", f.family.label(), context.figures, f.family.name());
    let tallies = f.tallies();
    if !tallies.is_empty() {
        let _ = writeln!(
            s,
            "| comparison | metric | lower | higher | no significant difference | too few seeds | not counted |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        for t in &tallies {
            let _ = writeln!(
                s,
                "| {} − {} | {} | {} | {} | {} | {} | {} |",
                t.variant,
                t.baseline,
                t.metric.label(),
                t.lower,
                t.higher,
                t.no_significant_difference,
                t.too_few_seeds,
                t.not_counted
            );
        }
        let _ = writeln!(
            s,
            "\n(rows where the difference is significantly below / above zero after Holm's correction; not \
             counted: invalid rows, rows without a scope mismatch for a WSA comparison, comparisons with a \
             run that diverged, and repeats of an earlier row's runs)\n"
        );
    }
    let _ = write!(s, "| group | row | variant | seeds |");
    for m in fv.metrics {
        let _ = write!(s, " {} |", m.label());
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "|---|---|---|---|{}", "---|".repeat(fv.metrics.len()));
    for r in &f.rows {
        for &v in &r.variants {
            let n = fv.metrics.iter().filter_map(|&m| r.summary(v, m)).map(|x| x.n).max().unwrap_or(0);
            let _ = write!(s, "| {} | {}{} | {} | {} |", r.group, r.row, status_note(r), v, n);
            for &m in fv.metrics {
                let _ = write!(s, " {} |", mean_std(r.summary(v, m)));
            }
            let _ = writeln!(s);
        }
    }
    let _ = writeln!(s);
    let left_out: Vec<&RowReport> = f.rows.iter().filter(|r| !r.invalid.is_empty()).collect();
    if !left_out.is_empty() {
        let _ = writeln!(s, "Cells left out (invalid):\n");
        for r in left_out {
            for cell in &r.invalid {
                let _ = writeln!(s, "- {} · {} · seed {}: {}", r.group, r.row, cell.seed, cell.reason);
            }
        }
        let _ = writeln!(s);
    }
    let stopped: Vec<&RowReport> = f.rows.iter().filter(|r| !r.diverged.is_empty()).collect();
    if !stopped.is_empty() {
        let _ = writeln!(s, "Runs that diverged (no numbers; their comparisons are not counted):\n");
        for r in stopped {
            for run in &r.diverged {
                let (round, reason) = (run.divergence.round, &run.divergence.reason);
                let _ = writeln!(
                    s,
                    "- {} · {} · seed {} · {}: round {round}, {reason}",
                    r.group, r.row, run.seed, run.variant
                );
            }
        }
        let _ = writeln!(s);
    }
    let split: Vec<&RowReport> = f.rows.iter().filter(|r| r.data_split).collect();
    if !split.is_empty() {
        let _ = writeln!(s, "Data-split rows, the merged model (α = 0.5) against its endpoints:\n");
        let _ = writeln!(
            s,
            "| group | row | variant | midpoint acc | midpoint − endpoints' mean acc | midpoint − better endpoint acc | midpoint loss |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        for r in split {
            for &v in &r.variants {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    r.group,
                    r.row,
                    v,
                    mean_std(r.summary(v, Metric::MidpointAccuracy)),
                    mean_std(r.summary(v, Metric::MidpointOverEndpointsAccuracy)),
                    mean_std(r.summary(v, Metric::MidpointOverBestAccuracy)),
                    mean_std(r.summary(v, Metric::MidpointLoss)),
                );
            }
        }
        let _ = writeln!(s);
    }
    if f.family == Family::Gaussianity {
        layer_table(s, f);
    }
    rounds_section(s, f, context);
    let _ = writeln!(
        s,
        "| group | row | difference | metric | mean | 95% CI | p | Holm p | detectable (80%) | seeds | verdict |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &f.rows {
        for c in &r.comparisons {
            let d = &c.difference;
            let scale = d.low.abs().max(d.high.abs());
            let (ci, p, holm, detectable) = if d.n < 2 {
                ("–".to_string(), "–".to_string(), "–".to_string(), "–".to_string())
            } else {
                (
                    format!("[{}, {}]", number_like(d.low, scale), number_like(d.high, scale)),
                    p_value(d.p),
                    match &c.repeats {
                        Some(row) => format!("not counted: the runs of {row}"),
                        None if r.counts_for(c.variant, &c.baseline) => p_value(c.holm_p),
                        None => match r.diverged_seeds(c.variant, &c.baseline).as_slice() {
                            [] => "not counted".to_string(),
                            seeds => format!("not counted: diverged on {} of {} seeds", seeds.len(), r.seeds.len()),
                        },
                    },
                    number_like(c.detectable, scale),
                )
            };
            let counted = c.repeats.is_some() || r.counts_for(c.variant, &c.baseline);
            let stopped = r.diverged_seeds(c.variant, &c.baseline);
            let verdict = match (r.status, c.corrected) {
                (RowStatus::Invalid, _) => "invalid".to_string(),
                // Not judged: the raw verdict, plainly, and why (Holm's correction left it out).
                _ if !counted && !stopped.is_empty() => format!(
                    "not counted (raw: {}; diverged on {} of {} seeds)",
                    d.verdict.label(),
                    stopped.len(),
                    r.seeds.len()
                ),
                _ if !counted => format!("not counted (raw: {})", d.verdict.label()),
                (_, Verdict::Lower | Verdict::Higher) => format!("**{}**", c.corrected.label()),
                (_, v) if d.verdict != Verdict::NoSignificantDifference && d.verdict != v => {
                    format!("{} (raw: {})", v.label(), d.verdict.label())
                }
                (_, v) => v.label().to_string(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} − {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.group,
                r.row,
                c.variant,
                c.baseline,
                c.metric.label(),
                number(d.mean),
                ci,
                p,
                holm,
                detectable,
                d.n,
                verdict
            );
        }
        // A comparison with no seed left (its variant diverged on every one) has no difference to
        // show, but the table still says why it is missing.
        for &(variant, baseline) in fv.comparisons {
            let compared =
                r.comparisons.iter().any(|c| c.variant == variant && c.baseline == Baseline::Variant(baseline));
            let stopped = r.diverged_seeds(variant, &Baseline::Variant(baseline));
            if !compared && !stopped.is_empty() {
                let _ = writeln!(
                    s,
                    "| {} | {} | {variant} − {baseline} | all | – | – | – | not counted | – | 0 | diverged on {} of {} seeds |",
                    r.group,
                    r.row,
                    stopped.len(),
                    r.seeds.len()
                );
            }
        }
    }
    let _ = writeln!(s);
}

/// Federated rows that recorded their rounds: a figure of accuracy, the global model's std and the
/// clients' spread per round, and the first and last round of each in a table.
fn rounds_section(s: &mut String, f: &FamilyReport, context: &Context) {
    let rows: Vec<(usize, &RowReport)> = f.rows.iter().enumerate().filter(|(_, r)| !r.rounds.is_empty()).collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "Per round (mean over seeds): the global test accuracy, the global model's weight std (mean over the \
         scoped layers) and the clients' spread around their fused scope (mean symmetric KL over layers):\n"
    );
    let _ = writeln!(
        s,
        "| group | row | variant | seeds | accuracy: round 1 → last | global std: round 1 → last | spread: round 1 → last |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    let ends = |r: &RowReport, v: Variant, key: &str| match r.round_series(v, key) {
        Some(series) => match (series.mean.first(), series.mean.last()) {
            (Some(&first), Some(&last)) => format!("{} → {}", number(first), number(last)),
            _ => "–".into(),
        },
        None => "–".into(),
    };
    for (_, r) in &rows {
        for &v in &r.variants {
            let seeds = r.round_series(v, SERIES_ACCURACY).map_or(0, |series| series.seeds);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.group,
                r.row,
                v,
                seeds,
                ends(r, v, SERIES_ACCURACY),
                ends(r, v, Metric::GlobalStd.name()),
                ends(r, v, Metric::ClientSpread.name())
            );
        }
    }
    let _ = writeln!(s);
    for (index, r) in rows {
        if let Some(figure) = r.rounds_figure(index) {
            let _ = writeln!(s, "![{}, per round]({}/{figure})\n", r.label(), context.figures);
        }
    }
}

/// What a row's label carries besides its name: why it is not judged as the others.
fn status_note(r: &RowReport) -> &'static str {
    match r.status {
        RowStatus::Valid => "",
        RowStatus::Invalid => " (invalid: too few valid seeds)",
        RowStatus::NoScopeMismatch => " (no scope mismatch to remove)",
    }
}

/// Gaussianity per layer: excess kurtosis and KS distance at init and trained.
fn layer_table(s: &mut String, f: &FamilyReport) {
    let _ = writeln!(s, "Per layer (model A):\n");
    let _ = writeln!(s, "| group | row | layer | kurtosis at init | kurtosis trained | KS at init | KS trained |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for r in &f.rows {
        let layers: Vec<&str> = r
            .aggregates
            .iter()
            .filter(|a| a.variant == Variant::Trained)
            .filter_map(|a| metric::layer_of_ks(&a.metric))
            .collect();
        for layer in layers {
            let k = metric::kurtosis_of(layer);
            let ks = metric::ks_of(layer);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.group,
                r.row,
                layer,
                mean_std(r.summary_of(Variant::AtInit, &k)),
                mean_std(r.summary_of(Variant::Trained, &k)),
                mean_std(r.summary_of(Variant::AtInit, &ks)),
                mean_std(r.summary_of(Variant::Trained, &ks))
            );
        }
    }
    let _ = writeln!(s);
}
