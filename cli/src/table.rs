//! The table `wsa-lab connect` prints at the end of a run.

use std::fmt::Write as _;
use wsa_core::experiment::connect::ConnectResult;
use wsa_core::experiment::seeds::mean_std;

/// The table printed at the end of a run: each number as mean ± std over the seeds when the
/// run had several (the spread `ConnectResult::shown` gives), else the one seed's value.
pub fn table(result: &ConnectResult) -> String {
    let mut s = String::new();
    let seeds = result.seeds.len().max(1);
    let (wide, digits) = if seeds > 1 { (17, 4) } else { (13, 4) };
    let _ = writeln!(
        s,
        "{:<11} {:>7} {:>wide$} {:>wide$} {:>wide$} {:>wide$} {:>wide$}",
        "method", "lambda", "acc A", "acc B", "loss barrier", "acc barrier", "scope dist"
    );
    for v in result.shown(None) {
        let _ = writeln!(
            s,
            "{:<11} {:>7} {:>wide$} {:>wide$} {:>wide$} {:>wide$} {:>wide$}",
            v.method.name(),
            v.lambda,
            mean_std(&v.accuracy_a, digits),
            mean_std(&v.accuracy_b, digits),
            mean_std(&v.loss_barrier, digits),
            mean_std(&v.accuracy_barrier, digits),
            mean_std(&v.scope_distance, 5),
        );
    }
    if seeds > 1 {
        let _ = writeln!(s, "(mean ± sample std over {}; every seed's numbers in seeds.csv)", result.seeds_label());
    }
    let curves: Vec<_> = result.methods.iter().filter_map(|m| m.curve.as_ref().map(|c| (m, c))).collect();
    if let Some((_, first)) = curves.first() {
        let _ = writeln!(s, "\n{} curves ({}):", first.kind.name(), result.seeds_label());
        let _ = writeln!(
            s,
            "{:<11} {:>13} {:>13} {:>12} {:>12} {:>15} {:>15}",
            "method",
            "line loss b.",
            "curve loss b.",
            "line acc b.",
            "curve acc b.",
            "line mean loss",
            "curve mean loss"
        );
        for (m, c) in curves {
            let _ = writeln!(
                s,
                "{:<11} {:>13.4} {:>13.4} {:>12.4} {:>12.4} {:>15.4} {:>15.4}",
                m.method.name(),
                m.barriers.loss,
                c.barriers.loss,
                m.barriers.accuracy,
                c.barriers.accuracy,
                c.line_mean_loss,
                c.mean_loss
            );
        }
    }
    s
}

/// The table `wsa-lab fed` prints: one row per federated run.
pub fn fed_table(result: &wsa_core::experiment::federated::FedResult) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{:<14} {:>10} {:>10} {:>16}", "method", "final acc", "best acc", "rounds to target");
    for run in &result.runs {
        let to_target = match (result.config.target_accuracy, run.rounds_to_target) {
            (None, _) => "-".to_string(),
            (Some(_), Some(r)) => r.to_string(),
            (Some(_), None) => "not reached".to_string(),
        };
        let (last, best) = run.accuracies_text();
        let _ = writeln!(s, "{:<14} {last:>10} {best:>10} {to_target:>16}", run.name);
    }
    if let Some(t) = result.config.target_accuracy {
        let _ = writeln!(s, "(target accuracy {t})");
    }
    for (name, divergence) in result.runs.iter().filter_map(|r| r.diverged.as_ref().map(|d| (&r.name, d))) {
        let _ = writeln!(
            s,
            "{name} stopped in round {}: {} (its numbers are its rounds before)",
            divergence.round, divergence.reason
        );
    }
    if !result.seeds.is_empty() {
        let _ = writeln!(s, "\nfinal test accuracy at each seed (the files are seed {}'s):", result.config.seed);
        let _ = write!(s, "{:<6}", "seed");
        for run in &result.runs {
            let _ = write!(s, " {:>14}", run.name);
        }
        s.push('\n');
        for seed in &result.seeds {
            let _ = write!(s, "{:<6}", seed.seed);
            for run in &seed.runs {
                let stopped = if run.diverged_in_round.is_some() { "*" } else { "" };
                let accuracy = run.final_accuracy_if_any().map_or("–".to_string(), |a| format!("{a:.4}"));
                let _ = write!(s, " {:>14}", format!("{accuracy}{stopped}"));
            }
            s.push('\n');
        }
        if result.seeds.iter().any(|seed| seed.runs.iter().any(|r| r.diverged_in_round.is_some())) {
            s.push_str("(* diverged: the accuracy of its rounds before)\n");
        }
        for line in result.seed_comparisons() {
            let _ = writeln!(s, "{line}");
        }
    }
    s
}
