//! What the tour, its guide and the hand-written part of docs/results.md say about the
//! reproduction, checked against the report it points to (docs/results/summary.json, written by
//! `wsa-lab reproduce --publish`). Each check names the sentence it holds to: when the sentence is
//! edited the test fails until its check is updated with it, and when a rerun of the reproduction
//! changes a verdict the sentence quotes, the test fails until the sentence says what the report
//! says.

use std::path::Path;
use wsa_core::experiment::federated::AggregationKind;
use wsa_core::experiment::reproduce::report::{Baseline, PooledClaim, Report, RowReport};
use wsa_core::experiment::reproduce::{Family, Metric, Variant};
use wsa_core::experiment::stats::Verdict;

fn repository_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn report() -> Report {
    serde_json::from_str(&repository_file("docs/results/summary.json")).expect("docs/results/summary.json is a report")
}

/// The pooled claim `variant - baseline` of `metric` in the pool `label`.
fn pooled<'a>(report: &'a Report, label: &str, variant: &str, baseline: &str, metric: Metric) -> &'a PooledClaim {
    let pool = report.pools.iter().find(|p| p.label == label).unwrap_or_else(|| panic!("no pool `{label}`"));
    pool.claims
        .iter()
        .find(|c| c.claim.variant.name() == variant && c.claim.baseline.name() == baseline && c.claim.metric == metric)
        .unwrap_or_else(|| panic!("pool `{label}` has no claim {variant} - {baseline} on {}", metric.name()))
}

/// The sentence is in the file, word for word, wherever its lines break (a sentence edited needs
/// its check edited too).
fn says(file: &str, sentence: &str) {
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words(&repository_file(file)).contains(&words(sentence)),
        "{file} no longer says \"{sentence}\": update this check with the sentence"
    );
}

/// The fed rows' corrected verdicts of `variant - baseline` on the mean accuracy of the last ten
/// rounds, with the rows' labels and mean differences.
fn federated_verdicts(report: &Report, variant: Variant, baseline: Variant) -> Vec<(&RowReport, Verdict, f64)> {
    let family = report.family(Family::Fed).expect("the federated family");
    family
        .rows
        .iter()
        .filter_map(|row| {
            let c = row.comparisons.iter().find(|c| {
                c.variant == variant && c.baseline == Baseline::Variant(baseline) && c.metric == Metric::Last10Accuracy
            })?;
            Some((row, c.corrected, c.difference.mean))
        })
        .collect()
}

fn federated(aggregation: AggregationKind, wsa: bool) -> Variant {
    Variant::Federated { aggregation, wsa }
}

#[test]
fn the_step_on_wsa_says_what_the_pooled_pairs_show() {
    let report = report();
    says(
        "tour/tour.ron",
        "found it lower on most seeds of such pairs, but not reliably: the pooled interval includes zero",
    );
    let hyper = pooled(&report, "hyperparameter pairs", "wsa", "plain", Metric::LossBarrier);
    let pooled_interval = hyper.absolute.as_ref().expect("pooled");
    assert!(hyper.below > hyper.above, "most seed pairs lower: {} below, {} above", hyper.below, hyper.above);
    assert!(pooled_interval.low < 0.0 && pooled_interval.high > 0.0, "includes zero: {pooled_interval:?}");
    says(
        "tour/tour.ron",
        "Where A and B also start from different weights, WSA with weight matching lowered it significantly.",
    );
    let combined = pooled(&report, "different init + learning rate", "wm+wsa", "wm", Metric::LossBarrier);
    assert!(combined.absolute.as_ref().expect("pooled").high < 0.0, "{combined:?}");
    says("docs/results.md", "runs on the combined pair, where the pooled WSA − plain loss barrier excludes zero");
    let combined = pooled(&report, "different init + learning rate", "wsa", "plain", Metric::LossBarrier);
    assert!(combined.absolute.as_ref().expect("pooled").high < 0.0, "{combined:?}");
}

#[test]
fn the_step_on_permutations_says_what_the_different_init_pairs_show() {
    let report = report();
    says(
        "tour/tour.ron",
        "weight matching lowered it on every pair of random starts, by nearly all of it pooled over them.",
    );
    let wm = pooled(&report, "different init", "wm", "plain", Metric::LossBarrier);
    assert!(wm.pairs > 0 && wm.below == wm.pairs && wm.above == 0, "every pair lower: {wm:?}");
    assert!(wm.relative.as_ref().expect("pooled").mean < -0.9, "nearly all of it: {wm:?}");
}

#[test]
fn the_federated_step_says_what_the_federated_rows_show() {
    let report = report();
    says(
        "tour/tour.ron",
        "found no significant difference from adding WSA to FedAvg in any of its settings; added to FedProx (FedAvg with a pull toward the global model), WSA lowered the accuracy of the last ten rounds significantly in all three of its ten-client settings, most under the strongest skew.",
    );
    says(
        "docs/tour.md",
        "no significant federated gain with FedAvg, and a significant loss with FedProx in its ten-client settings",
    );
    let fedavg = federated_verdicts(
        &report,
        federated(AggregationKind::FedAvg, true),
        federated(AggregationKind::FedAvg, false),
    );
    assert!(!fedavg.is_empty());
    for (row, verdict, _) in &fedavg {
        assert_eq!(*verdict, Verdict::NoSignificantDifference, "FedAvg+WSA in {}", row.row);
    }
    let fedprox = federated_verdicts(
        &report,
        federated(AggregationKind::FedProx, true),
        federated(AggregationKind::FedProx, false),
    );
    let ten_clients: Vec<_> = fedprox.iter().filter(|(row, ..)| row.group.contains("· 10 clients")).collect();
    assert_eq!(ten_clients.len(), 3, "three ten-client settings");
    assert!(
        ten_clients.iter().all(|(_, v, _)| *v == Verdict::Lower),
        "{:?}",
        ten_clients.iter().map(|(r, v, d)| (&r.row, v, d)).collect::<Vec<_>>()
    );
    let most = ten_clients.iter().min_by(|a, b| a.2.total_cmp(&b.2)).expect("a row");
    assert_eq!(most.0.row, "Dirichlet 0.1", "most under the strongest skew");
    // "Over five seeds": every federated row the sentence covers has five.
    says("tour/tour.ron", "Our reproduction over five seeds on Fashion-MNIST (docs/results.md)");
    for (row, ..) in &fedavg {
        assert_eq!(row.seeds.len(), 5, "{} · {}", row.group, row.row);
    }
}
