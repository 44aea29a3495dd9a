//! A long session in one process of its own (resident memory is the process's, so no other test
//! may run beside it): 50 experiments back to back in the desktop app.

mod common;
use common::{run_job, with_preset};
use egui_kittest::kittest::Queryable;

/// Resident memory of this process in bytes (Linux: /proc/self/statm's second field, in pages).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// A researcher's long session: 50 experiments back to back in one app, each with its own seed,
/// looking at the path and the scopes between runs. Resident memory is recorded after every run.
/// It swings by ±10 MiB from run to run (the allocator's pools), so the check compares the mean of
/// the last ten runs with that of runs 6-15 (after the first five have warmed fonts and caches):
/// a bound of 16 MiB over those 35 runs catches anything kept per run of 0.5 MiB or more (a
/// result kept per run would be that: each holds paths, histograms and per-seed layers).
#[test]
fn fifty_experiments_in_a_row_do_not_grow_memory() {
    const GROWTH_BOUND_MIB: f64 = 16.0;
    if resident_bytes().is_none() {
        eprintln!("no /proc/self/statm: the soak test measures Linux's resident memory only");
        return;
    }
    let mut harness = with_preset("Same start, different learning rates");
    harness.state_mut().settings.config.train.epochs = 2;
    harness.state_mut().settings.config.seeds = 1;
    let mut resident = Vec::new();
    for run in 0..50u64 {
        harness.state_mut().settings.config.seed = run;
        run_job(&mut harness, "Run");
        let tab = if run % 2 == 0 { "Weight scopes" } else { "Interpolation path" };
        harness.get_by_label(tab).click();
        harness.run_steps(2);
        resident.push(resident_bytes().expect("statm"));
    }
    let mib: Vec<f64> = resident.iter().map(|b| *b as f64 / (1 << 20) as f64).collect();
    let listed: Vec<String> = mib.iter().map(|m| format!("{m:.1}")).collect();
    eprintln!("soak: resident MiB after each of 50 runs: {}", listed.join(" "));
    let mean = |runs: &[f64]| runs.iter().sum::<f64>() / runs.len() as f64;
    let (settled, last) = (mean(&mib[5..15]), mean(&mib[40..]));
    assert!(
        last - settled <= GROWTH_BOUND_MIB,
        "resident memory grew from {settled:.1} MiB (runs 6-15) to {last:.1} MiB (runs 41-50), more than {GROWTH_BOUND_MIB} MiB: {}",
        listed.join(" ")
    );
    assert_eq!(harness.state().results.connect().map(|r| r.config.seed), Some(49));
}
