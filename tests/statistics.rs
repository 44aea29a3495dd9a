//! The lab's statistics against SciPy's on a fixed table: `stats::paired_difference` against
//! `scipy.stats.ttest_rel` (p-value and 95% interval) and `stats::wilcoxon_signed_rank` against
//! `scipy.stats.wilcoxon` (its defaults: zeros dropped, exact without ties up to 50 pairs, else
//! the normal approximation without continuity correction). SciPy runs from `STATS_PYTHON`
//! (`.ci/run` installs SciPy into the Flower venv and points this at it). The test is ignored
//! unless asked for (`--include-ignored`, as `.ci/run` does); asked for, it fails without
//! `STATS_PYTHON`. The same functions are checked against hand-computed values in their own
//! unit tests.

use std::io::Write;
use std::process::{Command, Stdio};
use wsa_core::experiment::stats;

/// Tables with what the report meets: small and large, ties in |d|, zeros, both signs, and a
/// barrier-like pair list with one outlier.
fn table() -> serde_json::Value {
    let mut state: u64 = 29;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut sixty = Vec::new();
    for _ in 0..60 {
        let y = next();
        sixty.push([y - 0.05 + 0.2 * (next() - 0.5), y]);
    }
    serde_json::json!({
        "five": [[1.1, 1.0], [1.3, 1.0], [1.2, 1.0], [1.4, 1.0], [1.0, 1.05]],
        "barriers": [[0.41, 0.52], [0.38, 0.47], [0.55, 0.50], [0.12, 0.31], [0.44, 0.49], [3.8, 0.61], [0.29, 0.35], [0.33, 0.40]],
        "ties_and_zero": [[1.0, 0.0], [-1.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.5, 0.5], [3.0, 0.0], [-0.5, 0.0]],
        "sixty": sixty,
    })
}

#[test]
#[ignore = "needs SciPy (STATS_PYTHON); CI runs it"]
fn paired_t_and_signed_rank_agree_with_scipy() {
    let python = std::env::var_os("STATS_PYTHON")
        .expect("STATS_PYTHON names a Python with SciPy 1.14 (.ci/run installs it into the Flower venv)");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/stats_reference.py");
    let table = table();
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    child.stdin.take().expect("stdin").write_all(table.to_string().as_bytes()).expect("write");
    let out = child.wait_with_output().expect("scipy");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let scipy: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for (name, pairs) in table.as_object().expect("table") {
        let pairs: Vec<(f64, f64)> = pairs
            .as_array()
            .expect("pairs")
            .iter()
            .map(|p| (p[0].as_f64().expect("x"), p[1].as_f64().expect("y")))
            .collect();
        let reference = &scipy[name];
        let close = |ours: f64, key: &str, tolerance: f64| {
            let theirs = reference[key].as_f64().expect("number");
            assert!(
                (ours - theirs).abs() <= tolerance * theirs.abs().max(1e-3),
                "{name} {key}: ours {ours}, SciPy {theirs}"
            );
        };
        let d = stats::paired_difference(&pairs).expect("pairs");
        close(d.p, "t_p", 1e-6);
        close(d.low, "low", 1e-6);
        close(d.high, "high", 1e-6);
        let diffs: Vec<f64> = pairs.iter().map(|(x, y)| x - y).collect();
        let w = stats::wilcoxon_signed_rank(&diffs).expect("diffs");
        close(w.statistic, "wilcoxon_statistic", 1e-9);
        // The normal approximation's p goes through erfc (1.2e-7 absolute); the exact one is a count.
        close(w.p, "wilcoxon_p", if w.exact { 1e-9 } else { 1e-5 });
    }
}
