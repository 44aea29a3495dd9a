//! Experiments as plain serde configs with a seed, run with an observer that sees their events
//! and may cancel. The CLI, the app and saved files all carry the same structs.

pub mod connect;
pub mod curve;
pub mod federated;
pub mod method;
pub mod patch;
pub mod plane;
pub mod reproduce;
pub mod seeds;
pub mod stats;
pub mod versioned;
mod warm_up;

pub use versioned::Versioned;
pub use warm_up::warm_up;

use crate::cancel::{Cancel, Silent};
use crate::data::DatasetSpec;
use crate::model::{ModelConfig, ModelLayout};

/// Training work per step for `device::select_for`; `None` when the model does not fit the
/// data or the user's data files cannot be read (the run itself then reports why).
fn flops_per_step(model: &ModelConfig, dataset: &DatasetSpec, batch: usize) -> Option<f64> {
    let (shape, classes) = dataset.sample_shape_and_classes().ok()?;
    let layout = ModelLayout::new(model, &shape, classes).ok()?;
    Some(layout.training_flops_per_sample() * batch as f64)
}

/// What a running experiment reports. Serde, so that the page's worker can post it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    /// A new stage starts, e.g. "training plain pair".
    Stage(String),
    /// One model of the pair trained as `pair` finished an epoch (of `epochs`).
    Epoch { pair: method::Training, epochs: usize, record: connect::EpochRecord },
    /// One federated round ended; the global model reached `test_accuracy`.
    Round { run: String, round: usize, rounds: usize, test_accuracy: f64 },
    /// A run over several seeds starts seed `seed`, the `index`-th of `total` (from 0).
    Seed { index: usize, total: usize, seed: u64 },
    /// A run over several seeds finished one that was not the last: the result so far (the
    /// first seed's details, every finished seed's numbers).
    SeedResult(Box<connect::ConnectResult>),
    /// Row `row` (from 0) of the `rows` of a loss plane's grid was evaluated.
    PlaneRow { row: usize, rows: usize },
    /// One point of a method's interpolation path was evaluated.
    PathPoint { method: method::Method, index: usize, total: usize },
}

/// Receives an experiment's events; through [`Cancel`] it may also stop the run (checked
/// between steps).
pub trait Observer: Cancel {
    fn on_event(&mut self, _event: &Event) {}
}

impl Observer for Silent {}

/// Keeps the stages a run announces (tests read what a run said it did).
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Stages(pub(crate) Vec<String>);

#[cfg(test)]
impl Cancel for Stages {}

#[cfg(test)]
impl Observer for Stages {
    fn on_event(&mut self, event: &Event) {
        if let Event::Stage(stage) = event {
            self.0.push(stage.clone());
        }
    }
}
