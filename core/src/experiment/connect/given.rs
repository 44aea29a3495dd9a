//! A pair the user brings: two trained models (`wsa-lab pair`, the app's dropped files), read
//! by `infer::read_user_model`. Nothing is trained, so only the methods that work on a given
//! pair apply (plain interpolation, weight matching, rescaling, REPAIR); each is evaluated as
//! [`evaluate_pair`](super::evaluate_pair) does, and the outcome is a connect run's, so every
//! table, figure and view of a connect result shows it.

use super::evaluation::EvaluatedPaths;
use super::run::evaluate_pair_on;
use super::{ConnectConfig, ConnectOutcome, ConnectResult, TrainedPair};
use crate::data::{self, DataSplit, FileSource};
use crate::device::ComputeDevice;
use crate::error::{Result, WsaError};
use crate::experiment::Observer;
use crate::experiment::method::{Method, Training};
use crate::experiment::versioned::CONNECT_VERSION;
use crate::model::{HostParams, ModelLayout};

/// The methods that need no training, in the order tables list them.
pub const GIVEN_PAIR_METHODS: [Method; 5] =
    [Method::PLAIN, Method::WM, Method::RESCALE, Method::REPAIR, Method::WM_REPAIR];

/// Two models of one architecture, with the names of the files they came from. Serde, so that
/// the page can post it to its worker.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GivenPair {
    pub a: HostParams,
    pub b: HostParams,
    /// What the result calls A and B (their file names).
    pub names: [String; 2],
}

impl GivenPair {
    /// The pair, once A and B are one model: the same parameters, and the same architecture
    /// around them (another activation, stride or pooling in a layout file would evaluate B as
    /// A's model).
    pub fn new(a: HostParams, b: HostParams, names: [String; 2]) -> Result<GivenPair> {
        a.layout.check_compatible(&b.layout)?;
        if a.layout.config != b.layout.config {
            return Err(WsaError::DifferentArchitectures { a: a.layout.config.label(), b: b.layout.config.label() });
        }
        Ok(GivenPair { a, b, names })
    }

    pub fn layout(&self) -> &ModelLayout {
        &self.a.layout
    }

    /// `base` (its data, seed, path and alignment settings) set up to evaluate this pair with
    /// `methods`: the pair's architecture in place of `base`'s; a WSA method is refused, since it
    /// trains the pair and a given pair is trained already.
    pub fn config(&self, mut base: ConnectConfig, methods: Vec<Method>) -> Result<ConnectConfig> {
        if let Some(trained) = methods.iter().find(|m| m.training == Training::Wsa) {
            let given = GIVEN_PAIR_METHODS.map(Method::name).join(",");
            return Err(WsaError::invalid(
                "methods",
                trained.name().to_string(),
                &format!("it trains the pair with WSA, and a given pair is trained already; compare it with {given}"),
            ));
        }
        base.model = self.a.layout.config.clone();
        base.methods = methods;
        base.validate()?;
        Ok(base)
    }

    /// Whether the data `split` (called `data` in the message) fits the models: as many values
    /// per sample as they take, as many classes as they give.
    pub fn check_fits(&self, data: &str, split: &DataSplit) -> Result<()> {
        let layout = self.layout();
        let inputs: usize = layout.sample_shape.iter().product();
        let (data_inputs, data_shape) = (split.train.dim(), &split.train.sample_shape);
        if inputs == data_inputs && layout.num_classes == split.train.num_classes {
            return Ok(());
        }
        Err(WsaError::DataDoesNotFit {
            data: data.to_string(),
            detail: format!(
                "the models take {inputs} inputs ({:?}) and give {} classes, but the data has {data_inputs} values per sample ({data_shape:?}) in {} classes",
                layout.sample_shape, layout.num_classes, split.train.num_classes
            ),
        })
    }
}

/// Evaluates `pair` with each of `config`'s methods (`config` as [`GivenPair::config`] made it)
/// on `config`'s data, a data set of files read from `files` (the disk, or the files a page
/// holds): a connect outcome with one pair per method, A and B as given (B aligned
/// as the method says). A model that scores under twice chance on the data is warned about: it
/// was likely trained on other data or another normalisation.
pub async fn evaluate_given_pair(
    config: &ConnectConfig,
    device: &ComputeDevice,
    pair: &GivenPair,
    files: &dyn FileSource,
    observer: &mut dyn Observer,
) -> Result<ConnectOutcome> {
    config.validate()?;
    let split = data::load_from(&config.data, config.seed, files)?;
    pair.check_fits(&split.name, &split)?;
    let mut methods = Vec::new();
    let mut models = Vec::new();
    let mut evaluated = EvaluatedPaths::default();
    for &method in &config.methods {
        let (result, aligned) =
            evaluate_pair_on(config, device, method, &pair.a, &pair.b, &split, &mut evaluated, observer)
                .await
                .map_err(|e| e.within(format!("method {method}")))?;
        methods.push(result);
        models.push(TrainedPair { method, ..aligned });
    }
    let chance = 1.0 / pair.layout().num_classes as f64;
    let mut warnings = Vec::new();
    if let Some(first) = methods.first() {
        for (name, accuracy) in [("A", first.endpoint_a.accuracy), ("B", first.endpoint_b.accuracy)] {
            if accuracy < 2.0 * chance {
                warnings.push(format!(
                    "model {name} scores {accuracy:.3} on this data, under twice chance ({chance:.3}): was it trained on this data, with this normalisation?"
                ));
            }
        }
    }
    let result = ConnectResult {
        version: CONNECT_VERSION,
        dataset: split.name.clone(),
        train_samples: split.train.len(),
        test_samples: split.test.len(),
        parameters: pair.layout().num_parameters(),
        device: device.description.clone(),
        difference: format!("a given pair: {} and {}", pair.names[0], pair.names[1]),
        pairs: Vec::new(),
        methods,
        warnings,
        seeds: Vec::new(),
        config: config.clone(),
    };
    Ok(ConnectOutcome { result, models })
}
