//! `wsa-lab reproduce`: the paper's claims (method.md) measured over seeds. A spec (committed
//! as `experiments/reproduce.json`, and `experiments/reproduce-quick.json` for `--quick`) names
//! four families of experiments; each family is a list of groups, each group a base experiment
//! config and rows that change it (a JSON merge patch), and every row runs once per seed: one
//! *cell*. A cell's outcome is a few numbers per method (or federated variant), written as its
//! own file keyed by the hash of the cell's config, so that a run interrupted at any point
//! resumes where it stopped. [`report`] turns the cells into tables with paired confidence
//! intervals.
//!
//! Its parts: `spec` (what runs, and the rules and pools the report judges by), `cell` (a cell,
//! its key and its record), [`metric`] and `variant` (what a record's numbers are), `store`
//! (the cell files), `runner` (running cells) and [`report`].

mod cell;
pub mod metric;
pub mod report;
mod runner;
mod spec;
mod store;
mod variant;

pub use cell::{Cell, CellExperiment, CellRecord, VariantOutcome};
pub use metric::Metric;
pub use runner::{CellProgress, SERIES_ACCURACY, run_all, run_cell};
pub use spec::{Direction, FULL_SPEC, Family, Group, Pool, PoolClaim, QUICK_SPEC, Row, Rules, Spec};
pub use store::{PAIRS_IN_PROGRESS, Quarantined, Store, Stored};
pub use variant::Variant;

/// The version of specs and cell files this build writes.
pub const REPRODUCE_VERSION: u32 = 1;
