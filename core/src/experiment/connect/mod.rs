//! The mode-connectivity experiment (method.md section 5): a pair A, B that differ in one
//! condition, trained once for each training the configured methods need (plain, WSA), B
//! aligned to A as each method says (not at all, weight matching, rescaling), and each method's
//! linear path evaluated: barriers, per-layer scopes, histograms and the scope distance.
//!
//! Its parts: `pair` (what A and B differ in), `config`, `training` (A and B side by side, with or
//! without WSA), `alignment` (B to A as a method says), `evaluation` (a method's path, barriers
//! and scopes), `result` (what it returns), `run` (the experiment over its seeds) and `given` (a pair the user
//! brings, evaluated with the methods that need no training).

mod alignment;
mod checkpoints;
mod config;
mod evaluation;
mod given;
mod pair;
mod result;
mod run;
mod training;

pub use checkpoints::{CheckpointFolder, Kept, NoCheckpoints, PairCheckpoints, PairKey, SavedPair};
pub use config::ConnectConfig;
pub(crate) use config::is_one_seed;
pub use given::{GIVEN_PAIR_METHODS, GivenPair, evaluate_given_pair};
pub use pair::{DataDifference, PairDifference, initial_params};
pub use result::{
    AlignmentReport, ConnectOutcome, ConnectResult, Endpoint, EpochRecord, Histograms, LayerComparison, MethodResult,
    PairCurves, TrainedPair,
};
pub use run::{evaluate_pair, merged_model, run, run_resumable};
