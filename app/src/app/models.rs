//! The trained models in memory and the model files the user hands over. The models are the
//! merged (or loaded) pairs of the connect result and the third model of its loss plane; they
//! are never stored: after a restart the results come back, the models after the next run. A
//! model file handed over (a typed path, or a file picked in the browser, which arrives a frame
//! later) waits in an inbox until the app reads it into its slot of a pair.

use super::Notice;
use crate::AppResult;
use crate::platform::{self, ModelInbox, PickedModel};
use wsa_core::experiment::connect::{Endpoint, TrainedPair};
use wsa_core::model::HostParams;

#[derive(Default)]
pub struct Models {
    /// The merged (or loaded) pairs of the connect result, one per method.
    pub pairs: Vec<TrainedPair>,
    /// The third model of the loss plane (a trained control point), which turns a clicked grid
    /// point into a model.
    pub plane_third: Option<HostParams>,
    /// Model files the user handed over, not yet read.
    picked: ModelInbox,
}

/// A model file read into its slot of a method's pair: the pair to evaluate again.
pub struct LoadedPair {
    /// Index into the result's methods.
    pub method: usize,
    pub pair: TrainedPair,
    /// What the loading converted or left out, when anything.
    pub notice: Option<Notice>,
}

impl Models {
    /// Asks for a model file for slot `slot` of method `method`'s pair: the file at
    /// `typed_path` natively, the browser's file picker on the page.
    pub fn pick(&self, method: usize, slot: Endpoint, typed_path: &str, ctx: &egui::Context) {
        platform::pick_model(&self.picked, typed_path, method, slot, ctx);
    }

    /// The model files handed over since the last call.
    pub fn take_picked(&self) -> Vec<AppResult<PickedModel>> {
        self.picked.lock().map(|mut inbox| std::mem::take(&mut *inbox)).unwrap_or_default()
    }

    /// Reads a model file handed over into its slot of its method's pair (the engine's errors
    /// name the file and what is wrong with it); the error is the notice that says why not.
    pub fn read_picked(&self, picked: AppResult<PickedModel>) -> Result<LoadedPair, Notice> {
        let error = |text: String| Notice { text, is_error: true };
        let PickedModel { method, slot, origin, bytes } =
            picked.map_err(|e| error(format!("The model was not loaded: {e}")))?;
        let Some(pair) = self.pairs.get(method) else {
            return Err(error("Loading needs the trained pair in memory: press Run first.".into()));
        };
        let model = wsa_core::io::params_from_safetensors(&bytes, &pair.a.layout, &origin)
            .map_err(|e| error(format!("Could not load {} into slot {}: {e}", origin.display(), slot.label())))?;
        let notice = model
            .report
            .notice()
            .map(|notice| Notice { text: format!("{}: {notice}", origin.display()), is_error: false });
        Ok(LoadedPair { method, pair: pair.replaced(slot, model.params), notice })
    }
}
