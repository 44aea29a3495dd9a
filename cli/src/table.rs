//! The table `wsa-lab connect` prints at the end of a run.

use std::fmt::Write as _;
use wsa_core::experiment::connect::ConnectResult;

/// The table printed at the end of a run.
pub fn table(result: &ConnectResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<8} {:>7} {:>8} {:>8} {:>13} {:>12} {:>11}",
        "variant", "lambda", "acc A", "acc B", "loss barrier", "acc barrier", "scope dist"
    );
    for v in &result.variants {
        let _ = writeln!(
            s,
            "{:<8} {:>7} {:>8.4} {:>8.4} {:>13.4} {:>12.4} {:>11.5}",
            v.name,
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
