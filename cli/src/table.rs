//! The table `wsa-lab connect` prints at the end of a run.

use std::fmt::Write as _;
use wsa_core::experiment::connect::ConnectResult;

/// The table printed at the end of a run.
pub fn table(result: &ConnectResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<11} {:>7} {:>8} {:>8} {:>13} {:>12} {:>11}",
        "method", "lambda", "acc A", "acc B", "loss barrier", "acc barrier", "scope dist"
    );
    for v in &result.methods {
        let _ = writeln!(
            s,
            "{:<11} {:>7} {:>8.4} {:>8.4} {:>13.4} {:>12.4} {:>11.5}",
            v.name.name(),
            v.lambda,
            v.endpoint_a.accuracy,
            v.endpoint_b.accuracy,
            v.barriers.loss,
            v.barriers.accuracy,
            v.scope_distance
        );
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
        let _ =
            writeln!(s, "{:<14} {:>10.4} {:>10.4} {:>16}", run.name, run.final_accuracy, run.best_accuracy, to_target);
    }
    if let Some(t) = result.config.target_accuracy {
        let _ = writeln!(s, "(target accuracy {t})");
    }
    s
}
