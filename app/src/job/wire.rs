//! The page's worker protocol: jobs and their messages as plain data. Everything is JSON but the
//! model weights, which travel as one `f32` array per model: the page posts those as typed
//! arrays (moved, not copied into text), and JSON could not carry a NaN weight anyway. Pure
//! Rust, so that it is tested natively; `web::worker` only moves the two parts.

// Each message is built once and serialised at once: boxing the large variants would only add
// noise.
#![allow(clippy::large_enum_variant)]

use super::{JobMessage, JobOutput, JobRequest};
use crate::error::{AppError, AppResult};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use wsa_core::device::DeviceChoice;
use wsa_core::experiment::Event;
use wsa_core::experiment::connect::{ConnectConfig, ConnectOutcome, ConnectResult, MethodResult, TrainedPair};
use wsa_core::experiment::federated::{Aggregation, FedConfig, FedOutcome, FedResult};
use wsa_core::experiment::method::Method;
use wsa_core::experiment::plane::{Plane, PlaneConfig, PlaneOutcome};
use wsa_core::model::{HostParams, ModelLayout};

/// A message in two parts: its JSON, and the weights it refers to by index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Packed {
    pub json: String,
    pub arrays: Vec<Vec<f32>>,
}

/// From the page to its worker.
#[derive(Debug, PartialEq)]
pub enum ToWorker {
    /// Start job number `job`.
    Run { job: u64, request: JobRequest, device: DeviceChoice, flops_per_step: Option<f64> },
    /// Stop job number `job` (a finished or unknown job is ignored).
    Cancel { job: u64 },
}

/// From the worker to the page: a message of job number `job`.
#[derive(Debug, PartialEq)]
pub struct FromWorker {
    pub job: u64,
    pub message: JobMessage,
}

/// A model in the JSON part: its layout, and where its weights are.
#[derive(Serialize, Deserialize)]
struct ModelRef {
    layout: ModelLayout,
    array: usize,
}

#[derive(Serialize, Deserialize)]
struct PairRef {
    method: Method,
    a: ModelRef,
    b: ModelRef,
}

#[derive(Serialize, Deserialize)]
enum RequestData {
    Connect(ConnectConfig),
    Federated { config: FedConfig, variants: Vec<(Aggregation, bool)> },
    Reevaluate { config: ConnectConfig, method_index: usize, pair: PairRef },
    Plane { config: ConnectConfig, pair: PairRef, plane: PlaneConfig },
}

#[derive(Serialize, Deserialize)]
enum ToWorkerData {
    Run { job: u64, request: RequestData, device: DeviceChoice, flops_per_step: Option<f64> },
    Cancel { job: u64 },
}

#[derive(Serialize, Deserialize)]
enum OutputData {
    Connect { result: ConnectResult, models: Vec<PairRef> },
    Federated { result: FedResult, initial: ModelRef, finals: Vec<(String, ModelRef)> },
    Reevaluated { method_index: usize, result: MethodResult, pair: PairRef },
    Plane { method: Method, plane: Plane, third: ModelRef },
}

#[derive(Serialize, Deserialize)]
enum MessageData {
    Device(String),
    Restarted {
        device: String,
        failure: String,
    },
    Event(Event),
    /// An error crosses as its message (`AppError::InWorker` on the page).
    Finished(Result<OutputData, String>),
}

#[derive(Serialize, Deserialize)]
struct FromWorkerData {
    job: u64,
    message: MessageData,
}

/// Collects the weights of the models a message holds.
#[derive(Default)]
struct Packer {
    arrays: Vec<Vec<f32>>,
}

impl Packer {
    fn model(&mut self, params: &HostParams) -> ModelRef {
        self.arrays.push(params.values.concat());
        ModelRef { layout: params.layout.as_ref().clone(), array: self.arrays.len() - 1 }
    }

    fn pair(&mut self, pair: &TrainedPair) -> PairRef {
        PairRef { method: pair.method, a: self.model(&pair.a), b: self.model(&pair.b) }
    }

    fn finish(self, json: Result<String, serde_json::Error>) -> AppResult<Packed> {
        let json = json.map_err(|e| AppError::Worker(format!("a message could not be encoded: {e}")))?;
        Ok(Packed { json, arrays: self.arrays })
    }
}

/// Hands out the weights of a received message, each once.
struct Unpacker {
    arrays: Vec<Option<Vec<f32>>>,
}

impl Unpacker {
    fn new(arrays: Vec<Vec<f32>>) -> Self {
        Self { arrays: arrays.into_iter().map(Some).collect() }
    }

    fn model(&mut self, model: ModelRef) -> AppResult<HostParams> {
        let flat = self
            .arrays
            .get_mut(model.array)
            .and_then(Option::take)
            .ok_or_else(|| AppError::Worker(format!("a message lacks weight array {}", model.array)))?;
        let expected: usize = model.layout.params.iter().map(|p| p.numel()).sum();
        if flat.len() != expected {
            return Err(AppError::Worker(format!("a message holds {} weights for a model of {expected}", flat.len())));
        }
        let mut rest = flat.as_slice();
        let mut values = Vec::with_capacity(model.layout.params.len());
        for spec in &model.layout.params {
            let (these, after) = rest.split_at(spec.numel());
            values.push(these.to_vec());
            rest = after;
        }
        Ok(HostParams { layout: Arc::new(model.layout), values })
    }

    fn pair(&mut self, pair: PairRef) -> AppResult<TrainedPair> {
        Ok(TrainedPair { method: pair.method, a: self.model(pair.a)?, b: self.model(pair.b)? })
    }
}

fn unreadable(e: serde_json::Error) -> AppError {
    AppError::Worker(format!("a message did not read: {e}"))
}

impl ToWorker {
    pub fn pack(&self) -> AppResult<Packed> {
        let mut packer = Packer::default();
        let data = match self {
            ToWorker::Cancel { job } => ToWorkerData::Cancel { job: *job },
            ToWorker::Run { job, request, device, flops_per_step } => ToWorkerData::Run {
                job: *job,
                device: *device,
                flops_per_step: *flops_per_step,
                request: match request {
                    JobRequest::Connect(config) => RequestData::Connect(config.clone()),
                    JobRequest::Federated { config, variants } => {
                        RequestData::Federated { config: config.clone(), variants: variants.clone() }
                    }
                    JobRequest::Reevaluate { config, method_index, pair } => RequestData::Reevaluate {
                        config: config.clone(),
                        method_index: *method_index,
                        pair: packer.pair(pair),
                    },
                    JobRequest::Plane { config, pair, plane } => {
                        RequestData::Plane { config: config.clone(), pair: packer.pair(pair), plane: plane.clone() }
                    }
                },
            },
        };
        let json = serde_json::to_string(&data);
        packer.finish(json)
    }

    pub fn unpack(packed: Packed) -> AppResult<Self> {
        let data: ToWorkerData = serde_json::from_str(&packed.json).map_err(unreadable)?;
        let mut unpacker = Unpacker::new(packed.arrays);
        Ok(match data {
            ToWorkerData::Cancel { job } => ToWorker::Cancel { job },
            ToWorkerData::Run { job, request, device, flops_per_step } => ToWorker::Run {
                job,
                device,
                flops_per_step,
                request: match request {
                    RequestData::Connect(config) => JobRequest::Connect(config),
                    RequestData::Federated { config, variants } => JobRequest::Federated { config, variants },
                    RequestData::Reevaluate { config, method_index, pair } => {
                        JobRequest::Reevaluate { config, method_index, pair: unpacker.pair(pair)? }
                    }
                    RequestData::Plane { config, pair, plane } => {
                        JobRequest::Plane { config, pair: unpacker.pair(pair)?, plane }
                    }
                },
            },
        })
    }
}

impl FromWorker {
    pub fn pack(&self) -> AppResult<Packed> {
        let mut packer = Packer::default();
        let message = match &self.message {
            JobMessage::Device(device) => MessageData::Device(device.clone()),
            JobMessage::Restarted { device, failure } => {
                MessageData::Restarted { device: device.clone(), failure: failure.clone() }
            }
            JobMessage::Event(event) => MessageData::Event(event.clone()),
            JobMessage::Finished(Err(e)) => MessageData::Finished(Err(e.to_string())),
            JobMessage::Finished(Ok(output)) => MessageData::Finished(Ok(match output {
                JobOutput::Connect(outcome) => OutputData::Connect {
                    result: outcome.result.clone(),
                    models: outcome.models.iter().map(|pair| packer.pair(pair)).collect(),
                },
                JobOutput::Federated(outcome) => OutputData::Federated {
                    result: outcome.result.clone(),
                    initial: packer.model(&outcome.initial),
                    finals: outcome.finals.iter().map(|(name, model)| (name.clone(), packer.model(model))).collect(),
                },
                JobOutput::Reevaluated { method_index, result, pair } => OutputData::Reevaluated {
                    method_index: *method_index,
                    result: result.as_ref().clone(),
                    pair: packer.pair(pair),
                },
                JobOutput::Plane { method, outcome } => OutputData::Plane {
                    method: *method,
                    plane: outcome.plane.clone(),
                    third: packer.model(&outcome.third),
                },
            })),
        };
        let json = serde_json::to_string(&FromWorkerData { job: self.job, message });
        packer.finish(json)
    }

    pub fn unpack(packed: Packed) -> AppResult<Self> {
        let data: FromWorkerData = serde_json::from_str(&packed.json).map_err(unreadable)?;
        let mut unpacker = Unpacker::new(packed.arrays);
        let message = match data.message {
            MessageData::Device(device) => JobMessage::Device(device),
            MessageData::Restarted { device, failure } => JobMessage::Restarted { device, failure },
            MessageData::Event(event) => JobMessage::Event(event),
            MessageData::Finished(Err(e)) => JobMessage::Finished(Err(AppError::InWorker(e))),
            MessageData::Finished(Ok(output)) => JobMessage::Finished(Ok(match output {
                OutputData::Connect { result, models } => JobOutput::Connect(Box::new(ConnectOutcome {
                    result,
                    models: models.into_iter().map(|pair| unpacker.pair(pair)).collect::<Result<_, _>>()?,
                })),
                OutputData::Federated { result, initial, finals } => JobOutput::Federated(Box::new(FedOutcome {
                    result,
                    initial: unpacker.model(initial)?,
                    finals: finals
                        .into_iter()
                        .map(|(name, model)| Ok((name, unpacker.model(model)?)))
                        .collect::<AppResult<_>>()?,
                })),
                OutputData::Reevaluated { method_index, result, pair } => JobOutput::Reevaluated {
                    method_index,
                    result: Box::new(result),
                    pair: Box::new(unpacker.pair(pair)?),
                },
                OutputData::Plane { method, plane, third } => JobOutput::Plane {
                    method,
                    outcome: Box::new(PlaneOutcome { plane, third: unpacker.model(third)? }),
                },
            })),
        };
        Ok(FromWorker { job: data.job, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsa_core::cancel::Silent;
    use wsa_core::device;
    use wsa_core::experiment::connect;
    use wsa_core::experiment::federated;

    fn small_connect() -> ConnectConfig {
        let mut config = ConnectConfig::default();
        config.train.epochs = 1;
        config.data.max_train = Some(200);
        config.data.max_test = Some(100);
        config.path.points = 3;
        config
    }

    /// A real outcome, every model in it, and every event kind cross the protocol unchanged,
    /// bit for bit (NaN weights included, which JSON could not carry).
    #[test]
    fn outcomes_and_events_cross_unchanged() {
        let config = small_connect();
        let mut outcome = wsa_core::wait(connect::run(&config, &device::cpu(), &mut Silent)).expect("connect run");
        outcome.models[0].b.values[0][3] = f32::NAN;
        let reevaluated = JobOutput::Reevaluated {
            method_index: 1,
            result: Box::new(outcome.result.methods[1].clone()),
            pair: Box::new(outcome.models[1].clone()),
        };
        let fed = FedConfig { data: config.data.clone(), rounds: 1, clients: 2, ..FedConfig::default() };
        let variants = vec![(Aggregation::FedAvg, true)];
        let fed_outcome =
            wsa_core::wait(federated::run(&fed, &variants, &device::cpu(), &mut Silent)).expect("fed run");
        let record = outcome.result.pairs[0].curves[0].clone();
        let messages = vec![
            JobMessage::Device("CPU".into()),
            JobMessage::Restarted { device: "CPU".into(), failure: "lost".into() },
            JobMessage::Event(Event::Stage("loading".into())),
            JobMessage::Event(Event::Epoch { pair: outcome.result.pairs[0].training, epochs: 1, record }),
            JobMessage::Event(Event::Round { run: "fedavg".into(), round: 1, rounds: 2, test_accuracy: 0.5 }),
            JobMessage::Event(Event::PathPoint { method: Method::DEFAULT[2], index: 0, total: 3 }),
            JobMessage::Event(Event::Seed { index: 1, total: 3, seed: 7 }),
            JobMessage::Event(Event::SeedResult(Box::new(outcome.result.clone()))),
            JobMessage::Finished(Err(AppError::InWorker("failed".into()))),
            JobMessage::Finished(Ok(reevaluated)),
            JobMessage::Finished(Ok(JobOutput::Plane {
                method: Method::WSA,
                outcome: Box::new(PlaneOutcome {
                    third: outcome.models[2].a.clone(),
                    plane: wsa_core::experiment::plane::Plane {
                        xs: vec![-1.0, 0.5],
                        ys: vec![0.0, 2.0],
                        loss: vec![0.1, 0.2, 0.3, f64::NAN],
                        accuracy: vec![0.9, 0.8, 0.7, 0.0],
                        models: vec![wsa_core::experiment::plane::PlanePoint { label: "A".into(), x: 0.0, y: 0.0 }],
                        curve: Some((wsa_core::experiment::curve::CurveKind::Bezier, vec![[0.0, 0.0], [0.5, 1.0]])),
                    },
                }),
            })),
            JobMessage::Finished(Ok(JobOutput::Federated(Box::new(fed_outcome)))),
            JobMessage::Finished(Ok(JobOutput::Connect(Box::new(outcome)))),
        ];
        for (job, message) in messages.into_iter().enumerate() {
            let sent = FromWorker { job: job as u64, message };
            let received = FromWorker::unpack(sent.pack().expect("packs")).expect("unpacks");
            // PartialEq fails on NaN: compare the Debug texts, which print every value exactly.
            assert_same(&format!("{received:?}"), &format!("{sent:?}"));
        }
    }

    /// Equal texts, or a failure showing where they part (the texts run to megabytes).
    fn assert_same(got: &str, expected: &str) {
        if let Some(at) = got
            .bytes()
            .zip(expected.bytes())
            .position(|(g, e)| g != e)
            .or((got.len() != expected.len()).then_some(got.len().min(expected.len())))
        {
            let around =
                |s: &str| s.get(at.saturating_sub(200)..(at + 80).min(s.len())).unwrap_or_default().to_string();
            panic!("differs at byte {at}:\n got      …{}\n expected …{}", around(got), around(expected));
        }
    }

    #[test]
    fn requests_cross_unchanged() {
        let config = small_connect();
        let outcome = wsa_core::wait(connect::run(&config, &device::cpu(), &mut Silent)).expect("connect run");
        let requests = vec![
            JobRequest::Connect(config.clone()),
            JobRequest::Federated { config: FedConfig::default(), variants: federated::comparison(0.01) },
            JobRequest::Plane {
                config: config.clone(),
                pair: outcome.models[1].clone(),
                plane: wsa_core::experiment::plane::PlaneConfig { grid: 3, margin: 0.5 },
            },
            JobRequest::Reevaluate { config, method_index: 2, pair: outcome.models[2].clone() },
        ];
        for (job, request) in requests.into_iter().enumerate() {
            let sent = ToWorker::Run { job: job as u64, request, device: DeviceChoice::Cpu, flops_per_step: Some(1e6) };
            assert_eq!(ToWorker::unpack(sent.pack().expect("packs")).expect("unpacks"), sent);
        }
        let cancel = ToWorker::Cancel { job: 7 };
        // Any error reaches the page as its message.
        let failed = FromWorker { job: 3, message: JobMessage::Finished(Err(wsa_core::WsaError::Cancelled.into())) };
        assert_eq!(FromWorker::unpack(failed.pack().expect("packs")).expect("unpacks"), failed);
        assert_eq!(ToWorker::unpack(cancel.pack().expect("packs")).expect("unpacks"), cancel);
    }

    /// Damaged messages are errors that say what is wrong, never a panic or a wrong model.
    #[test]
    fn damaged_messages_are_refused() {
        let config = small_connect();
        let outcome = wsa_core::wait(connect::run(&config, &device::cpu(), &mut Silent)).expect("connect run");
        let sent = FromWorker { job: 1, message: JobMessage::Finished(Ok(JobOutput::Connect(Box::new(outcome)))) };
        let packed = sent.pack().expect("packs");
        let mut short = packed.clone();
        short.arrays[0].pop();
        assert!(FromWorker::unpack(short).expect_err("a short array").to_string().contains("weights for a model of"));
        let mut missing = packed.clone();
        missing.arrays.truncate(1);
        assert!(FromWorker::unpack(missing).expect_err("a missing array").to_string().contains("lacks weight array 1"));
        let mut cut = packed;
        cut.json.truncate(cut.json.len() / 2);
        assert!(FromWorker::unpack(cut).expect_err("cut JSON").to_string().contains("did not read"));
    }
}
