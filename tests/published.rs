//! What the tour (in English and in its translations), its guide and the hand-written part of
//! docs/results.md say about the reproduction, checked against the report it points to
//! (docs/results/summary.json, written by `wsa-lab reproduce --publish`). Each check names the
//! sentence it holds to: when the sentence is edited the test fails until its check is updated
//! with it, and when a rerun of the reproduction changes a verdict the sentence quotes, the test
//! fails until the sentence says what the report says.

use std::path::Path;
use wsa_core::experiment::Versioned;
use wsa_core::experiment::federated::AggregationKind;
use wsa_core::experiment::method::Method;
use wsa_core::experiment::reproduce::report::{Baseline, ClaimVerdict, Comparison, PooledClaim, Report, RowReport};
use wsa_core::experiment::reproduce::{Cell, CellRecord, FULL_SPEC, Family, Metric, Spec, Variant};
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

/// The row's comparison `variant - baseline` of `metric`.
fn comparison(row: &RowReport, variant: Method, baseline: Method, metric: Metric) -> &Comparison {
    row.comparisons
        .iter()
        .find(|c| {
            c.variant == Variant::Method(variant)
                && c.baseline == Baseline::Variant(Variant::Method(baseline))
                && c.metric == metric
        })
        .unwrap_or_else(|| panic!("{}: no {} − {} on {}", row.row, variant.name(), baseline.name(), metric.name()))
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
/// rounds, with the rows' labels and mean differences: the rows whose test counts (not a repeat
/// of an earlier row's runs, no run diverged), since only those were corrected.
fn federated_verdicts(report: &Report, variant: Variant, baseline: Variant) -> Vec<(&RowReport, Verdict, f64)> {
    let family = report.family(Family::Fed).expect("the federated family");
    family
        .rows
        .iter()
        .filter_map(|row| {
            let c = row.comparisons.iter().find(|c| {
                c.variant == variant && c.baseline == Baseline::Variant(baseline) && c.metric == Metric::Last10Accuracy
            })?;
            if c.repeats.is_some() || !row.counts_for(c.variant, &c.baseline) {
                return None;
            }
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
    says(
        "tour/tour.de.ron",
        "fand sie auf den meisten Seeds solcher Paare niedriger, aber nicht verlässlich: Das zusammengefasste Intervall enthält die Null",
    );
    let hyper = pooled(&report, "hyperparameter pairs", "wsa", "plain", Metric::LossBarrier);
    let pooled_interval = hyper.absolute.as_ref().expect("pooled");
    assert!(hyper.below > hyper.above, "most seed pairs lower: {} below, {} above", hyper.below, hyper.above);
    assert!(pooled_interval.low < 0.0 && pooled_interval.high > 0.0, "includes zero: {pooled_interval:?}");
    says(
        "tour/tour.ron",
        "Where A and B also start from different weights, WSA with weight matching lowered it significantly.",
    );
    says(
        "tour/tour.de.ron",
        "Wo A und B zudem von verschiedenen Gewichten aus starten, senkte WSA zusammen mit Weight Matching die Barriere signifikant.",
    );
    let combined = pooled(&report, "different init + learning rate", "wm+wsa", "wm", Metric::LossBarrier);
    assert!(combined.absolute.as_ref().expect("pooled").high < 0.0, "{combined:?}");
    says(
        "tour/tour.ron",
        "Pooled over such pairs on Fashion-MNIST and MNIST, our reproduction (docs/results.md) found wm+wsa's loss barrier significantly lower than wm's.",
    );
    says(
        "tour/tour.de.ron",
        "Zusammengefasst über solche Paare auf Fashion-MNIST und MNIST fand unsere Reproduktion (docs/results.md) die Verlustbarriere von wm+wsa signifikant niedriger als die von wm.",
    );
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
    says(
        "tour/tour.de.ron",
        "senkte Weight Matching sie bei jedem Paar zufälliger Starts, über alle Paare zusammengefasst fast vollständig.",
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
        "Our reproduction on Fashion-MNIST (docs/results.md: five seeds a row, up to 100 clients and 100 rounds, corrected for multiple comparisons) found no setting where adding WSA to FedAvg or to FedProx (FedAvg with a pull toward the global model) significantly raised the accuracy of the last ten rounds; where it changed it significantly, it lowered it.",
    );
    says(
        "tour/tour.de.ron",
        "Unsere Reproduktion auf Fashion-MNIST (docs/results.md: fünf Seeds pro Zeile, bis zu 100 Clients und 100 Runden, korrigiert für multiple Vergleiche) fand keine Einstellung, in der das Hinzufügen von WSA zu FedAvg oder zu FedProx (FedAvg mit einem Zug hin zum globalen Modell) die Genauigkeit der letzten zehn Runden signifikant erhöhte; wo es sie signifikant veränderte, senkte es sie.",
    );
    says(
        "docs/tour.md",
        "step 9: no significant federated gain from WSA in any setting, and significant losses in some",
    );
    let mut lowered = 0;
    for aggregation in [AggregationKind::FedAvg, AggregationKind::FedProx] {
        let verdicts = federated_verdicts(&report, federated(aggregation, true), federated(aggregation, false));
        assert!(!verdicts.is_empty());
        for (row, verdict, _) in &verdicts {
            assert_ne!(*verdict, Verdict::Higher, "{aggregation:?}+WSA raised it in {} · {}", row.group, row.row);
            lowered += usize::from(*verdict == Verdict::Lower);
        }
    }
    assert!(lowered > 0, "\"where it changed it significantly\": somewhere it did");
    let family = report.family(Family::Fed).expect("the federated family");
    for row in &family.rows {
        assert_eq!(row.seeds.len(), 5, "five seeds: {} · {}", row.group, row.row);
    }
    assert!(family.rows.iter().any(|r| r.group.contains("100 clients") && r.group.contains("100 rounds")));
}

#[test]
fn the_federated_guide_says_where_the_global_target_diverges() {
    let report = report();
    says(
        "docs/federated.md",
        "both WSA runs diverged on every seed of that row in docs/results.md, and the fused target, which keeps the spread of the clients' means, on none.",
    );
    assert_global_target_diverged_everywhere(&report);
    let fused = protocol_row(&report, "Dirichlet 0.1");
    assert!(!fused.seeds.is_empty() && fused.diverged.is_empty(), "the fused target did not diverge");
}

/// The protocol group's row `row`.
fn protocol_row<'a>(report: &'a Report, row: &str) -> &'a RowReport {
    let family = report.family(Family::Fed).expect("the federated family");
    family
        .rows
        .iter()
        .find(|r| r.group.contains("the usual protocol") && r.row == row)
        .unwrap_or_else(|| panic!("no protocol row `{row}`"))
}

/// With the global model's scope as target at Dirichlet 0.1, both WSA variants diverged on every
/// seed of the row.
fn assert_global_target_diverged_everywhere(report: &Report) {
    let global = protocol_row(report, "Dirichlet 0.1 · target: the global model's scope");
    assert!(!global.seeds.is_empty());
    for wsa in [federated(AggregationKind::FedAvg, true), federated(AggregationKind::FedProx, true)] {
        let mut stopped: Vec<u64> = global.diverged.iter().filter(|d| d.variant == wsa).map(|d| d.seed).collect();
        stopped.sort_unstable();
        assert_eq!(stopped, global.seeds, "{wsa} diverged on every seed of the row");
    }
}

#[test]
fn the_results_preface_says_how_far_the_protocol_group_got() {
    let report = report();
    says("docs/results.md", "Every one of its rows has five seeds.");
    let family = report.family(Family::Fed).expect("the federated family");
    let protocol: Vec<&RowReport> = family.rows.iter().filter(|r| r.group.contains("the usual protocol")).collect();
    // Every row of the spec's group is in the report, each with five seeds.
    let spec = Spec::from_json(FULL_SPEC).expect("spec");
    let group = spec.fed.iter().find(|g| g.label.contains("the usual protocol")).expect("the protocol group");
    assert_eq!(protocol.len(), group.rows.len(), "every protocol row in the report");
    for row in protocol {
        assert_eq!(row.seeds.len(), 5, "{}", row.row);
    }
    says("docs/results.md", "With the global model's scope as target, every WSA run at Dirichlet 0.1 diverged");
    assert_global_target_diverged_everywhere(&report);
    says("docs/results.md", "and so did one FedProx run without WSA (μ 0.1, seed 3, round 28)");
    let fedprox = family.rows.iter().find(|r| r.row == "Dirichlet 0.1 · FedProx μ 0.1").expect("the FedProx μ 0.1 row");
    let stopped: Vec<(u64, Variant, usize)> =
        fedprox.diverged.iter().map(|d| (d.seed, d.variant, d.divergence.round)).collect();
    assert_eq!(stopped, vec![(3, federated(AggregationKind::FedProx, false), 28)]);
}

#[test]
fn the_results_preface_describes_the_deeper_network_the_spec_trains() {
    says(
        "docs/results.md",
        "a ResNet with GroupNorm (three residual stages of 16, 32 and 64 channels) trained 4 epochs on the full Fashion-MNIST training set, on the learning-rate pair and the combined pair, with weight matching, WSA and REPAIR",
    );
    let spec = Spec::from_json(FULL_SPEC).expect("spec");
    let group = spec.connect.iter().find(|g| g.label.contains("ResNet-GN")).expect("the deeper network's group");
    let base = &group.base;
    assert_eq!(base["train"]["epochs"], 4);
    assert_eq!(base["data"]["dataset"]["name"], "fashion-mnist");
    assert!(base["data"].get("max_train").is_none_or(serde_json::Value::is_null), "the full training set");
    let residual_widths: Vec<u64> = base["model"]["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter(|l| l["type"] == "residual")
        .map(|l| l["layers"][0]["channels"].as_u64().expect("channels"))
        .collect();
    assert_eq!(residual_widths, [16, 32, 64], "three residual stages");
    let labels: Vec<&str> = group.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["learning rate 0.01 vs 0.05", "different init + learning rate 0.01 vs 0.05"]);
    let methods: Vec<&str> = base["methods"].as_array().expect("methods").iter().filter_map(|m| m.as_str()).collect();
    assert!(methods.contains(&"wm") && methods.contains(&"wsa") && methods.contains(&"wm+repair"), "{methods:?}");
    // "all 10 of its cells are in the report (five seeds of each row). WSA − plain shows no
    // significant difference in either barrier in either row; pooled over the two rows, the
    // "deeper network" claims that WSA lowers the loss barrier, with or without weight matching,
    // read "not shown", while REPAIR after weight matching lowering it reads "supported", every
    // one of the ten pairs lower; and after weight matching, WSA leaves a higher accuracy barrier
    // than REPAIR does in both rows (Holm-corrected)."
    says("docs/results.md", "all 10 of its cells are in the report (five seeds of each row)");
    says("docs/results.md", "WSA − plain shows no significant difference in either barrier in either row");
    let report = report();
    let connect = report.family(Family::Connect).expect("the connect family");
    let rows: Vec<&RowReport> = connect.rows.iter().filter(|r| r.group == group.label).collect();
    let valid_per_row: Vec<(&str, usize, usize)> =
        rows.iter().map(|r| (r.row.as_str(), r.seeds.len(), r.invalid.len())).collect();
    assert_eq!(
        valid_per_row,
        [("learning rate 0.01 vs 0.05", 5, 0), ("different init + learning rate 0.01 vs 0.05", 5, 0)],
        "the sentence says every cell is in, five valid seeds a row: it is stale"
    );
    for row in &rows {
        for metric in [Metric::LossBarrier, Metric::AccuracyBarrier] {
            let c = comparison(row, Method::WSA, Method::PLAIN, metric);
            assert_eq!(
                c.corrected,
                Verdict::NoSignificantDifference,
                "{}: the sentence says no significant difference in {metric:?}",
                row.row
            );
            assert_eq!(
                c.difference.verdict,
                Verdict::NoSignificantDifference,
                "{}: nor before the correction ({metric:?})",
                row.row
            );
        }
        let wsa_after_matching = comparison(row, Method::WM_WSA, Method::WM_REPAIR, Metric::AccuracyBarrier);
        assert_eq!(
            wsa_after_matching.corrected,
            Verdict::Higher,
            "{}: the sentence says WSA after weight matching leaves a higher accuracy barrier than REPAIR (Holm)",
            row.row
        );
    }
    says(
        "docs/results.md",
        "the \"deeper network\" claims that WSA lowers the loss barrier, with or without weight matching, read \"not shown\", while REPAIR after weight matching lowering it reads \"supported\", every one of the ten pairs lower",
    );
    says(
        "docs/results.md",
        "and after weight matching, WSA leaves a higher accuracy barrier than REPAIR does in both rows (Holm-corrected)",
    );
    says(
        "docs/results.md",
        "4 epochs is what the budget allows, not full convergence (the report states each model's accuracy), and the weight-decay pair and MNIST are left out of this network",
    );
    let deeper = "deeper network (ResNet-GN 16-32-64)";
    for (variant, baseline, verdict) in [
        ("wsa", "plain", ClaimVerdict::NotShown),
        ("wm+wsa", "wm", ClaimVerdict::NotShown),
        ("wm+repair", "wm", ClaimVerdict::Supported),
    ] {
        let claim = pooled(&report, deeper, variant, baseline, Metric::LossBarrier);
        assert_eq!(claim.rows.len(), 2, "pooled over the two rows");
        assert_eq!(claim.verdict, verdict, "{variant} − {baseline}: {claim:?}");
    }
    let repair = pooled(&report, deeper, "wm+repair", "wm", Metric::LossBarrier);
    assert_eq!((repair.pairs, repair.below), (10, 10), "the sentence says every one of the ten pairs is lower");
    let spec_cells: usize = group.rows.len() * spec.seeds as usize;
    assert_eq!(spec_cells, 10, "the sentence says the group has 10 cells");
    // The pools registered before it do not take its rows.
    for pool in spec.pools.iter().filter(|p| p.family == Family::Connect && !p.label.starts_with("deeper network")) {
        assert!(group.rows.iter().all(|r| !pool.takes(&group.label, &r.label)), "pool `{}` takes it", pool.label);
    }
}

/// The reproduction guide's first lines say what the full spec costs: at least the committed
/// cells' compute summed, as the report's compute line sums it (a cell that took up a pair kept
/// before a stop leaves that pair's training out), in whole hours of one core.
#[test]
fn the_reproduce_guide_says_what_the_full_spec_costs() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/results/cells");
    let cells: Vec<CellRecord> = std::fs::read_dir(&folder)
        .expect("docs/results/cells")
        .map(|entry| entry.expect("a cell file").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a cell");
            CellRecord::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect();
    let mut committed: Vec<&str> = cells.iter().map(|c| c.hash.as_str()).collect();
    let mut spec: Vec<String> =
        Spec::from_json(FULL_SPEC).expect("spec").cells(&[]).expect("cells").iter().map(Cell::hash).collect();
    committed.sort_unstable();
    spec.sort_unstable();
    assert_eq!(committed, spec, "the sentence gives the cost of the full spec: its cells, each once, and no other");
    let seconds: f64 = cells.iter().map(|c| c.seconds).sum();
    let hours = (seconds / 3600.0).floor() as u64;
    says("docs/reproduce.md", &format!("every claim over 5 seeds (over {hours} h of one core)"));
    // "a cell of the deeper network (over an hour here, most of it training)": every one that
    // trained both its pairs in one go.
    says("docs/reproduce.md", "a cell of the deeper network (over an hour here, most of it training)");
    let deeper: Vec<f64> = cells
        .iter()
        .filter(|c| c.cell.group.contains("ResNet-GN") && c.pairs_resumed == 0)
        .map(|c| c.seconds)
        .collect();
    assert!(!deeper.is_empty() && deeper.iter().all(|&s| s > 3600.0), "{deeper:?}");
}
