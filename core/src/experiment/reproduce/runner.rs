//! Running cells: one cell's experiment reduced to its numbers per variant, and every cell of a
//! spec that the store does not hold yet, each saved as it finishes.

use super::{
    Cell, CellExperiment, CellRecord, Family, Metric, Quarantined, REPRODUCE_VERSION, Store, Stored, Variant,
    VariantOutcome, metric,
};
use crate::device::ComputeDevice;
use crate::error::{Result, WsaError};
use crate::experiment::Observer;
use crate::experiment::connect::{self, CheckpointFolder, ConnectConfig, ConnectResult, PairCheckpoints};
use crate::experiment::federated::{self, Aggregation, FedResult};
use crate::experiment::method::Method;
use crate::model::ModelLayout;
use crate::scope;
use std::sync::Arc;

/// Runs one cell on `device`, its trained pairs kept in `checkpoints` and those kept there by a
/// stopped run of the cell taken up; `seconds` is left at zero for the caller, who has the
/// clock.
pub async fn run_cell(
    cell: &Cell,
    device: &ComputeDevice,
    observer: &mut dyn Observer,
    checkpoints: &dyn PairCheckpoints,
) -> Result<CellRecord> {
    let (variants, warnings, device_name) = match &cell.experiment {
        CellExperiment::Connect(config) if cell.family == Family::Gaussianity => {
            let outcome = connect::run_resumable(config, device, observer, checkpoints).await?;
            (gaussianity_outcomes(config, &outcome.result)?, outcome.result.warnings, outcome.result.device)
        }
        CellExperiment::Connect(config) => {
            let outcome = connect::run_resumable(config, device, observer, checkpoints).await?;
            (connect_outcomes(&outcome.result), outcome.result.warnings, outcome.result.device)
        }
        CellExperiment::Fed(config) => {
            // FedProx's mu is the config's, or the default when the base config names FedAvg.
            let variants = config.variants(true, federated::DEFAULT_MU);
            let outcome = federated::run(config, &variants, device, observer).await?;
            (fed_outcomes(&outcome.result, &variants), Vec::new(), outcome.result.device)
        }
    };
    Ok(CellRecord {
        version: REPRODUCE_VERSION,
        hash: cell.hash(),
        cell: cell.clone(),
        device: device_name,
        seconds: 0.0,
        variants,
        warnings,
        pairs_resumed: 0,
    })
}

fn connect_outcomes(result: &ConnectResult) -> Vec<VariantOutcome> {
    result
        .methods
        .iter()
        .map(|m| {
            let mut outcome = VariantOutcome::new(Variant::Method(m.method));
            outcome.set(Metric::AccuracyA, m.endpoint_a.accuracy);
            outcome.set(Metric::AccuracyB, m.endpoint_b.accuracy);
            outcome.set(Metric::LossBarrier, m.barriers.loss);
            outcome.set(Metric::AccuracyBarrier, m.barriers.accuracy);
            outcome.set(Metric::ScopeDistance, m.scope_distance);
            let midpoint = m.path.iter().min_by(|p, q| (p.alpha - 0.5).abs().total_cmp(&(q.alpha - 0.5).abs()));
            if let Some(mid) = midpoint {
                let (a, b) = (m.endpoint_a.accuracy, m.endpoint_b.accuracy);
                outcome.set(Metric::MidpointLoss, mid.loss);
                outcome.set(Metric::MidpointAccuracy, mid.accuracy);
                outcome.set(Metric::MidpointOverEndpointsAccuracy, mid.accuracy - 0.5 * (a + b));
                outcome.set(Metric::MidpointOverBestAccuracy, mid.accuracy - a.max(b));
            }
            outcome
        })
        .collect()
}

/// The runs of `result`, run as `variants` (aggregation, with WSA) say, in their order.
fn fed_outcomes(result: &FedResult, variants: &[(Aggregation, bool)]) -> Vec<VariantOutcome> {
    result
        .runs
        .iter()
        .zip(variants)
        .map(|(run, &(aggregation, wsa))| {
            let mut outcome = VariantOutcome::new(Variant::Federated { aggregation: aggregation.kind(), wsa });
            if let Some(divergence) = &run.diverged {
                // Its numbers so far would compare a stopped run with finished ones: none.
                outcome.diverged = Some(divergence.clone());
                return outcome;
            }
            outcome.set(Metric::FinalAccuracy, run.final_accuracy);
            outcome.set(Metric::BestAccuracy, run.best_accuracy);
            outcome.set(Metric::Last10Accuracy, mean(run.rounds.iter().rev().take(10).map(|r| r.test_accuracy)));
            if let Some(round) = run.rounds_to_target {
                outcome.set(Metric::RoundsToTarget, round as f64);
            }
            // Means over the scoped layers, per round (a run has at least one round and layer).
            let global_std: Vec<f64> = run.rounds.iter().map(|r| mean(r.global.iter().map(|s| s.std))).collect();
            let spread: Vec<f64> = run.rounds.iter().map(|r| mean(r.client_spread.iter().copied())).collect();
            if let Some(&last) = global_std.last() {
                outcome.set(Metric::GlobalStd, last);
            }
            outcome.set(Metric::ClientSpread, mean(spread.iter().copied()));
            outcome.series.insert(SERIES_ACCURACY.to_string(), run.rounds.iter().map(|r| r.test_accuracy).collect());
            outcome.series.insert(Metric::GlobalStd.name().to_string(), global_std);
            outcome.series.insert(Metric::ClientSpread.name().to_string(), spread);
            outcome
        })
        .collect()
}

/// The key of a federated run's test accuracy per round in [`VariantOutcome::series`].
pub const SERIES_ACCURACY: &str = "test_accuracy";

/// The mean of `values` (0 when there are none).
fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(sum, n), v| (sum + v, n + 1));
    sum / n.max(1) as f64
}

/// Kurtosis and KS distance of each scoped layer of model A at initialisation and trained
/// (plain training: the first method's A).
fn gaussianity_outcomes(config: &ConnectConfig, result: &ConnectResult) -> Result<Vec<VariantOutcome>> {
    let plain = result.methods.iter().find(|m| m.method == Method::PLAIN).ok_or_else(|| {
        WsaError::invalid(
            "gaussianity cell `methods`",
            "its list",
            "must include `plain` (model A trained without WSA)",
        )
    })?;
    let (shape, classes) = config.data.dataset.sample_shape_and_classes()?;
    let layout = Arc::new(ModelLayout::new(&config.model, &shape, classes)?);
    let (init, _) = connect::initial_params(config, &layout);
    let layers = config.wsa.layers.select(&layout);
    let at_init = scope::layer_reports(&init, &layers);
    let trained: Vec<scope::LayerReport> = plain.layers.iter().map(|l| l.a.clone()).collect();
    let outcome = |variant: Variant, reports: &[scope::LayerReport]| {
        let mut outcome = VariantOutcome::new(variant);
        for r in reports {
            outcome.metrics.insert(metric::kurtosis_of(&r.path), r.fit.excess_kurtosis);
            outcome.metrics.insert(metric::ks_of(&r.path), r.fit.ks_distance);
        }
        let n = reports.len().max(1) as f64;
        outcome.set(Metric::MeanAbsKurtosis, reports.iter().map(|r| r.fit.excess_kurtosis.abs()).sum::<f64>() / n);
        outcome.set(Metric::MeanKs, reports.iter().map(|r| r.fit.ks_distance).sum::<f64>() / n);
        outcome
    };
    Ok(vec![outcome(Variant::AtInit, &at_init), outcome(Variant::Trained, &trained)])
}

/// What [`run_all`] reports besides the cells' own events.
pub trait CellProgress: Observer {
    /// Seconds on the caller's clock (the core has none): a cell's wall time is the difference.
    fn seconds(&self) -> f64;
    /// Cell `index` of `total` starts (`cached`: it finished in an earlier run and is read back).
    fn cell_started(&mut self, _index: usize, _total: usize, _cell: &Cell, _cached: bool) {}
    fn cell_finished(&mut self, _index: usize, _total: usize, _record: &CellRecord, _cached: bool) {}
    /// The cell's file was damaged and is now in the quarantine; the cell is computed again.
    fn cell_set_aside(&mut self, _cell: &Cell, _set_aside: &Quarantined) {}
    /// Something worth a line about the cell's kept pairs (one sentence): a pair taken up from a
    /// stopped run, one discarded or not kept, and why.
    fn cell_note(&mut self, _cell: &Cell, _note: &str) {}
}

/// Runs every cell that `store` does not hold yet, saving each as it finishes; returns all the
/// records, in the cells' order. Stops at the first failing cell (the finished ones stay saved);
/// a damaged cell file is set aside and its cell computed again. A cell's trained pairs are kept
/// in the store while it computes (`Store::pair_checkpoints`), so that a cell stopped after its
/// first pair starts from its second when run again; they go once the cell is saved.
pub async fn run_all(
    cells: &[Cell],
    store: &Store,
    device: &ComputeDevice,
    progress: &mut dyn CellProgress,
) -> Result<Vec<CellRecord>> {
    let mut records = Vec::with_capacity(cells.len());
    for (index, cell) in cells.iter().enumerate() {
        if progress.is_cancelled() {
            return Err(WsaError::Cancelled);
        }
        let cached = match store.load(cell)? {
            Stored::Finished(record) => {
                // Pairs left behind by a run stopped between saving the cell and removing them.
                let leftover = store.pair_checkpoints(cell);
                if leftover.dir().exists() {
                    remove_kept_pairs(&leftover, cell, progress);
                }
                Some(*record)
            }
            Stored::Missing => None,
            Stored::SetAside(set_aside) => {
                progress.cell_set_aside(cell, &set_aside);
                None
            }
        };
        progress.cell_started(index, cells.len(), cell, cached.is_some());
        let (record, was_cached) = match cached {
            Some(record) => (record, true),
            None => {
                let started = progress.seconds();
                let checkpoints = store.pair_checkpoints(cell);
                let computed = run_cell(cell, device, &mut *progress, &checkpoints).await;
                for note in checkpoints.take_notes() {
                    progress.cell_note(cell, &note);
                }
                let mut record = computed.map_err(|e| e.within(cell.label()))?;
                record.seconds = progress.seconds() - started;
                record.pairs_resumed = checkpoints.pairs_read_back();
                store.save(&record)?;
                remove_kept_pairs(&checkpoints, cell, progress);
                (record, false)
            }
        };
        progress.cell_finished(index, cells.len(), &record, was_cached);
        records.push(record);
    }
    Ok(records)
}

/// Removes a saved cell's kept pairs; where that fails the cell stays saved and the run goes on,
/// the folder named for the user to delete.
fn remove_kept_pairs(checkpoints: &CheckpointFolder, cell: &Cell, progress: &mut dyn CellProgress) {
    if let Err(e) = checkpoints.remove() {
        progress.cell_note(cell, &e.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::Silent;
    use crate::experiment::connect::NoCheckpoints;
    use crate::experiment::method::Training;
    use crate::experiment::reproduce::{QUICK_SPEC, Spec};
    use crate::experiment::{Stages, Versioned};

    impl CellProgress for Stages {
        fn seconds(&self) -> f64 {
            0.0
        }
    }

    /// Keeps the notes `run_all` passes on about kept pairs.
    #[derive(Default)]
    struct Notes(Vec<String>);
    impl crate::cancel::Cancel for Notes {}
    impl Observer for Notes {}
    impl CellProgress for Notes {
        fn seconds(&self) -> f64 {
            0.0
        }
        fn cell_note(&mut self, _cell: &Cell, note: &str) {
            self.0.push(note.to_string());
        }
    }

    /// The whole result, curves and target scopes included, of a run resumed after its plain
    /// pair is that of a run never stopped, also where the WSA pair's target is the plain A's
    /// frozen scope (the one place the second pair takes from the first).
    #[test]
    fn a_run_resumed_after_its_plain_pair_gives_the_whole_result_of_one_never_stopped() {
        let cell = Spec::from_json(QUICK_SPEC).expect("spec").cells(&[]).expect("cells").remove(0);
        let CellExperiment::Connect(config) = &cell.experiment else {
            panic!("the quick spec starts with a connect cell")
        };
        let device = crate::device::cpu();
        let dir = std::env::temp_dir().join(format!("wsa-lab-resumed-result-{}", std::process::id()));
        for (name, target) in [
            ("fused", config.wsa.target.clone()),
            ("frozen plain A", crate::wsa::TargetSource::Reference { model: None }),
        ] {
            let mut config = config.clone();
            config.wsa.target = target;
            let checkpoints = CheckpointFolder::new(dir.join("cell"));
            let whole = |checkpoints: &dyn PairCheckpoints| {
                let outcome = crate::wait(connect::run_resumable(&config, &device, &mut Silent, checkpoints));
                serde_json::to_value(outcome.expect("run").result).expect("json")
            };
            let never_stopped = whole(&connect::NoCheckpoints);
            // Compared whole, not printed whole (the result runs to some 100 kB).
            assert!(whole(&checkpoints) == never_stopped, "{name}: keeping pairs changed the result");
            std::fs::remove_file(checkpoints.path(config.seed, Training::Wsa)).expect("remove");
            assert!(whole(&checkpoints) == never_stopped, "{name}: the result resumed after the plain pair differs");
            assert_eq!(checkpoints.pairs_read_back(), 1, "{name}");
            checkpoints.remove().expect("remove");
        }
    }

    /// A cell stopped while it trained its WSA pair (only its plain pair kept) takes the plain
    /// pair up from its checkpoint and gives the numbers of the cell never stopped, bit for bit;
    /// a damaged checkpoint is trained again; `run_all` removes the pairs once the cell is saved.
    #[test]
    fn a_stopped_cell_takes_up_its_kept_pair_and_gives_the_numbers_of_one_never_stopped() {
        let cell = Spec::from_json(QUICK_SPEC).expect("spec").cells(&[]).expect("cells").remove(0);
        let CellExperiment::Connect(config) = &cell.experiment else {
            panic!("the quick spec starts with a connect cell")
        };
        assert_eq!(config.trainings(), [Training::Plain, Training::Wsa], "a cell that trains both pairs");
        let device = crate::device::cpu();
        let out = std::env::temp_dir().join(format!("wsa-lab-pair-checkpoints-{}", std::process::id()));
        std::fs::remove_dir_all(&out).ok();
        let store = Store::new(&out);
        let checkpoints: CheckpointFolder = store.pair_checkpoints(&cell);
        let kept = |training: Training| checkpoints.dir().join(format!("seed-{}-{}.json", cell.seed, training.name()));

        let never_stopped = crate::wait(run_cell(&cell, &device, &mut Stages::default(), &NoCheckpoints)).expect("run");
        assert!(!checkpoints.dir().exists(), "a run without checkpoints keeps none");
        let keeping = crate::wait(run_cell(&cell, &device, &mut Stages::default(), &checkpoints)).expect("run");
        assert_eq!(keeping.variants, never_stopped.variants, "keeping pairs changes no number");
        assert!(kept(Training::Plain).exists() && kept(Training::Wsa).exists(), "both pairs kept");

        // Stopped while the WSA pair trained: only the plain pair is there.
        std::fs::remove_file(kept(Training::Wsa)).expect("remove");
        let mut stages = Stages::default();
        let resumed = crate::wait(run_cell(&cell, &device, &mut stages, &checkpoints)).expect("run");
        assert_eq!(resumed.variants, never_stopped.variants, "resumed from the plain pair");
        assert_eq!(resumed.warnings, never_stopped.warnings);
        assert!(stages.0.iter().any(|s| s == "the plain pair: read back from its checkpoint"), "{:?}", stages.0);
        assert!(!stages.0.iter().any(|s| s.starts_with("training the plain pair")), "{:?}", stages.0);
        assert!(stages.0.iter().any(|s| s.starts_with("training the WSA pair")), "{:?}", stages.0);

        // A checkpoint cut short is not read: its pair trains again (the WSA pair kept by the
        // resumed run is taken up), and the numbers hold.
        let bytes = std::fs::read(kept(Training::Plain)).expect("read");
        std::fs::write(kept(Training::Plain), &bytes[..bytes.len() / 2]).expect("truncate");
        let mut stages = Stages::default();
        let retrained = crate::wait(run_cell(&cell, &device, &mut stages, &checkpoints)).expect("run");
        assert_eq!(retrained.variants, never_stopped.variants);
        assert!(
            stages.0.iter().any(|s| s.starts_with("the plain pair's checkpoint is not taken up")),
            "{:?}",
            stages.0
        );
        assert!(stages.0.iter().any(|s| s.starts_with("training the plain pair")), "{:?}", stages.0);
        assert!(stages.0.iter().any(|s| s == "the WSA pair: read back from its checkpoint"), "{:?}", stages.0);
        assert!(!stages.0.iter().any(|s| s.starts_with("training the WSA pair")), "{:?}", stages.0);

        // Through run_all: the record counts the pair taken up, the progress hears of it, and the
        // kept pairs go once the cell is saved.
        std::fs::remove_file(kept(Training::Wsa)).expect("remove");
        let mut notes = Notes::default();
        let records = crate::wait(run_all(std::slice::from_ref(&cell), &store, &device, &mut notes)).expect("run_all");
        assert_eq!(records[0].variants, never_stopped.variants);
        assert_eq!(records[0].pairs_resumed, 1, "the plain pair was taken up");
        assert!(
            notes.0.iter().any(|n| n.contains("the plain pair of seed") && n.contains("taken up")),
            "{:?}",
            notes.0
        );
        assert!(!checkpoints.dir().exists(), "the cell's pairs are removed once it is saved");
        assert!(!out.join(crate::experiment::reproduce::PAIRS_IN_PROGRESS).exists(), "and their emptied folder");
        std::fs::remove_dir_all(&out).ok();
    }
}
