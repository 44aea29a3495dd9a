//! The page's worker protocol: a job ([`ToWorker`]) and each of its messages ([`FromWorker`])
//! cross as one block of JSON bytes, which the page posts as a transferred buffer (moved, not
//! copied). The job types serialise themselves, down to the engine's models, whose weights go as
//! base64 blocks of little-endian bytes (`wsa_core::model::HostParams`): they read back bit for
//! bit, NaN included; errors read back as the typed errors they were (an i/o error with its kind
//! where it is one of the common kinds, else as `Other`). JSON rather than a binary
//! format because the page already carries serde_json's code for every one of these types (its
//! results and settings are JSON): MessagePack added 5.7% to the compressed page, JSON 0.9% (the
//! errors' serde and the base64 coder).
//! Pure Rust, so that it is tested natively; `web::worker` only moves the bytes.

use super::{JobMessage, JobRequest};
use crate::error::{AppError, AppResult};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wsa_core::device::DeviceChoice;

/// From the page to its worker.
// Each message is built once and serialised at once: boxing the request would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Start job number `job`.
    Run { job: u64, request: JobRequest, device: DeviceChoice, flops_per_step: Option<f64> },
    /// Stop job number `job` (a finished or unknown job is ignored).
    Cancel { job: u64 },
}

/// From the worker to the page: a message of job number `job`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct FromWorker {
    pub job: u64,
    pub message: JobMessage,
}

/// `message` as the bytes that cross.
pub fn pack<T: Serialize>(message: &T) -> AppResult<Vec<u8>> {
    serde_json::to_vec(message).map_err(|e| AppError::Worker(format!("a message could not be encoded: {e}")))
}

/// The message `bytes` hold; damaged bytes are an error that says what is wrong.
pub fn unpack<T: DeserializeOwned>(bytes: &[u8]) -> AppResult<T> {
    serde_json::from_slice(bytes).map_err(|e| AppError::Worker(format!("a message did not read: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobOutput;
    use wsa_core::WsaError;
    use wsa_core::cancel::Silent;
    use wsa_core::device;
    use wsa_core::experiment::Event;
    use wsa_core::experiment::connect::{self, ConnectConfig};
    use wsa_core::experiment::federated::{self, Aggregation, FedConfig};
    use wsa_core::experiment::method::Method;
    use wsa_core::experiment::plane::PlaneOutcome;

    fn small_connect() -> ConnectConfig {
        let mut config = ConnectConfig::default();
        config.train.epochs = 1;
        config.data.max_train = Some(200);
        config.data.max_test = Some(100);
        config.path.points = 3;
        config
    }

    fn cross<T: Serialize + DeserializeOwned>(message: &T) -> T {
        unpack(&pack(message).expect("packs")).expect("unpacks")
    }

    /// A real outcome, every model in it, every event kind and a typed error cross the
    /// protocol unchanged, bit for bit (NaN weights included, which JSON numbers could not
    /// carry; the plane's non-finite losses cross as `null`, as they are saved).
    #[test]
    fn outcomes_events_and_errors_cross_unchanged() {
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
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let messages = vec![
            JobMessage::Device("CPU".into()),
            JobMessage::Restarted { device: "CPU".into(), failure: "lost".into() },
            JobMessage::Event(Event::Stage("loading".into())),
            JobMessage::Event(Event::Epoch { pair: outcome.result.pairs[0].training, epochs: 1, record }),
            JobMessage::Event(Event::Round { run: "fedavg".into(), round: 1, rounds: 2, test_accuracy: 0.5 }),
            JobMessage::Event(Event::PathPoint { method: Method::DEFAULT[2], index: 0, total: 3 }),
            JobMessage::Event(Event::Seed { index: 1, total: 3, seed: 7 }),
            JobMessage::Event(Event::SeedResult(Box::new(outcome.result.clone()))),
            JobMessage::Finished(Err(WsaError::io("assets/x/images.gz", missing).within("seed 2").into())),
            JobMessage::Finished(Err(AppError::browser("download x", "HTTP 404"))),
            // A divergence's loss is NaN or infinite, which JSON numbers cannot carry.
            JobMessage::Finished(Err(WsaError::Diverged { model: "B".into(), step: 40, value: f32::NAN }.into())),
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
            let received = cross(&sent);
            // PartialEq fails on NaN: compare the Debug texts, which print every value exactly
            // (and every variant of an error, down to an i/o error's kind).
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
            JobRequest::Reevaluate { config: config.clone(), method_index: 2, pair: outcome.models[2].clone() },
            JobRequest::MergedModel {
                config: config.clone(),
                pair: outcome.models[1].clone(),
                alpha: 0.25,
                file: "models/wsa-merged-alpha0.25.safetensors".into(),
                files: None,
            },
            // A pair the user brought, with the bytes of a dropped data file (any bytes: a
            // file's bytes cross as they are).
            JobRequest::GivenPair {
                pair: wsa_core::experiment::connect::GivenPair {
                    a: outcome.models[0].a.clone(),
                    b: outcome.models[0].b.clone(),
                    names: ["a.safetensors".into(), "b.safetensors".into()],
                },
                files: Some({
                    let mut files = wsa_core::data::Memory::default();
                    files.insert("table.csv", (0..=255u8).chain([0, 10, 13]).collect());
                    files
                }),
                config,
            },
        ];
        for (job, request) in requests.into_iter().enumerate() {
            let sent = ToWorker::Run { job: job as u64, request, device: DeviceChoice::Cpu, flops_per_step: Some(1e6) };
            assert_eq!(cross(&sent), sent);
        }
        let cancel = ToWorker::Cancel { job: 7 };
        assert_eq!(cross(&cancel), cancel);
        // An error reaches the page as the error it was, not only as its message.
        let failed = FromWorker { job: 3, message: JobMessage::Finished(Err(WsaError::Cancelled.into())) };
        let received: FromWorker = cross(&failed);
        assert!(matches!(received.message, JobMessage::Finished(Err(AppError::Engine(WsaError::Cancelled)))));
    }

    /// Damaged messages are errors that say what is wrong, never a panic or a wrong model.
    #[test]
    fn damaged_messages_are_refused() {
        let config = small_connect();
        let outcome = wsa_core::wait(connect::run(&config, &device::cpu(), &mut Silent)).expect("connect run");
        let refused = |pair: &connect::TrainedPair| {
            // Serialising checks nothing; reading the message back must.
            let output = JobOutput::Reevaluated {
                method_index: 0,
                result: Box::new(outcome.result.methods[0].clone()),
                pair: Box::new(pair.clone()),
            };
            let sent = FromWorker { job: 1, message: JobMessage::Finished(Ok(output)) };
            unpack::<FromWorker>(&pack(&sent).expect("packs")).expect_err("a model that does not fit").to_string()
        };
        let mut short = outcome.models[1].clone();
        short.b.values[0].pop();
        let error = refused(&short);
        assert!(error.contains("did not read") && error.contains("weights; its shape"), "{error}");
        let mut missing = outcome.models[0].clone();
        missing.a.values.pop();
        let error = refused(&missing);
        assert!(error.contains("weight blocks for a model of"), "{error}");
        let sent = FromWorker { job: 1, message: JobMessage::Finished(Ok(JobOutput::Connect(Box::new(outcome)))) };
        let mut cut = pack(&sent).expect("packs");
        cut.truncate(cut.len() / 2);
        assert!(unpack::<FromWorker>(&cut).expect_err("cut bytes").to_string().contains("did not read"));
    }
}
