//! `wsa-lab flower`: the steps of a federated run that the Flower apps in `flower/` hand to the
//! engine, one process per step and everything through files, so that every number of a Flower
//! federation comes from the same code as `wsa-lab fed`:
//!
//! - `init` (server): the initial global model and target scope;
//! - `train` (a client): local training from the broadcast model toward the broadcast target,
//!   on the client's shard of the seeded split (or on its own data), returning the model, its
//!   sample count and its scopes;
//! - `round` (server): the test metrics of the global model the strategy averaged, and the
//!   round's record, written as `wsa-lab fed` writes its results (summary.json, rounds.csv, ...);
//! - `serve`: the three steps above for as long as the caller wants, one request a line on
//!   standard input, keeping the config's data, split and device between them. The Flower apps
//!   talk to one such process for the whole federation (flower/wsa_flower/bridge.py), so that a
//!   client reads and splits its data once rather than every round; each step runs the same code
//!   as its one-shot command.
//!
//! Server and clients read the same config and derive the same split from its seed
//! ([`Federation::prepare`]); only models and scopes travel.

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use wsa_core::cancel::Silent;
use wsa_core::data::{self, DataConfig};
use wsa_core::device::{self, ComputeDevice};
use wsa_core::experiment::Versioned;
use wsa_core::experiment::federated::{self, FedConfig, FedTarget, Federation, LocalRun, RoundRecord, RoundScopes};
use wsa_core::io::{load_model_for, save_model, write_atomic};
use wsa_core::model::HostParams;
use wsa_core::scope::{Scope, device_scopes};
use wsa_core::train::{DeviceData, evaluate};
use wsa_figures::files;

#[derive(clap::Args)]
pub struct FlowerArgs {
    #[command(subcommand)]
    step: Step,
}

#[derive(clap::Subcommand)]
enum Step {
    /// The server's start: writes `global.safetensors` (the initial model) and `target.json`
    /// (its scopes, the first target) into --out.
    Init {
        #[command(flatten)]
        run: RunArgs,
        #[arg(long)]
        out: PathBuf,
    },
    /// One client's local training in one round: reads the global model and the target, writes
    /// `params.safetensors` and `reply.json` (sample count, scopes) into --out.
    Train {
        #[command(flatten)]
        run: RunArgs,
        /// This client's index in the split (Flower's partition-id).
        #[arg(long, value_parser = crate::args::whole::<usize>)]
        client: usize,
        #[arg(long, value_parser = crate::args::whole::<usize>)]
        round: usize,
        #[arg(long)]
        global: PathBuf,
        #[arg(long)]
        target: PathBuf,
        /// Train on the whole training set of the config's dataset read from this folder (a
        /// deployment's own data, laid out as `scripts/fetch-data.sh` does) instead of the
        /// client's shard of the seeded split.
        #[arg(long)]
        own_data: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// The server's end of a round: evaluates the averaged global model on the test set and
    /// adds the round to the results in --out (the files of `wsa-lab fed`, plus
    /// `flower-rounds.json`, the rounds so far); prints the metrics as JSON.
    Round {
        #[command(flatten)]
        run: RunArgs,
        #[arg(long, value_parser = crate::args::whole::<usize>)]
        round: usize,
        /// The global model the strategy averaged from the replies.
        #[arg(long)]
        global: PathBuf,
        /// The replies that went into it (`reply.json` of each client, as a JSON list).
        #[arg(long)]
        replies: PathBuf,
        /// The target the strategy fused from the replies' scopes (for the next round).
        #[arg(long)]
        target: PathBuf,
        /// Wall time of the federation so far, for summary.json.
        #[arg(long, value_parser = crate::args::number)]
        seconds: Option<f64>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Serves the steps above from standard input until it closes, keeping the config's data,
    /// split and device between them: one request a line, `{"step": ["train", "--config", ...]}`
    /// (a step's arguments as on the command line), one reply a line on standard output,
    /// `{"ok": true, "output": ...}` (what the step prints, or null) or `{"ok": false, "error":
    /// "..."}`.
    Serve,
}

/// A request line of `serve`, parsed as the command line of the one-shot step.
#[derive(Parser)]
#[command(name = "wsa-lab flower", no_binary_name = true)]
struct StepLine {
    #[command(subcommand)]
    step: Step,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    step: Vec<String>,
}

/// What the steps of one process keep between them: the last config's data, split and device
/// (keyed by the config's text and the device asked for: a client receives the config in a new
/// file every round, and an edited config is read afresh), and the last client's own data. One
/// of each: a process serves one federation.
#[derive(Default)]
struct Prepared {
    federation: Option<PreparedFederation>,
    /// The folder, the config's data section (as JSON) and the set read from it.
    own_data: Option<(PathBuf, String, wsa_core::data::Dataset)>,
}

struct PreparedFederation {
    /// The config's text and the device asked for.
    key: (String, String),
    config: FedConfig,
    federation: Federation,
    device: ComputeDevice,
}

/// What every step reads: the federation's config and where to compute.
#[derive(clap::Args)]
struct RunArgs {
    /// The federated config (as `wsa-lab fed --print-config` writes): the same file for the
    /// server and every client.
    #[arg(long)]
    config: PathBuf,
    /// auto, cpu or gpu.
    #[arg(long, default_value = "auto")]
    device: String,
}

impl RunArgs {
    /// The config, its federation and the device, from `slot` when the same config (its text)
    /// and device were asked for before.
    fn prepare<'a>(
        &self,
        slot: &'a mut Option<PreparedFederation>,
    ) -> Result<(&'a FedConfig, &'a Federation, &'a ComputeDevice)> {
        let text = std::fs::read_to_string(&self.config)
            .with_context(|| format!("reading the federated config {}", self.config.display()))?;
        let key = (text, self.device.clone());
        if slot.as_ref().is_none_or(|prepared| prepared.key != key) {
            // The old federation's data is dropped before the new one is read.
            *slot = None;
            let (config, federation, device) = self.prepare_afresh()?;
            *slot = Some(PreparedFederation { key, config, federation, device });
        }
        let prepared = slot.as_ref().expect("prepared above");
        Ok((&prepared.config, &prepared.federation, &prepared.device))
    }

    fn prepare_afresh(&self) -> Result<(FedConfig, Federation, ComputeDevice)> {
        let config = FedConfig::read_file(&self.config)?;
        if config.target != FedTarget::Fused {
            bail!(
                "{}: a Flower run's strategy fuses the target from the clients' scopes, so its \
                 `target` must be `fused` (not `{}`); run other targets with `wsa-lab fed`",
                self.config.display(),
                config.target.name()
            );
        }
        if config.seeds != 1 {
            bail!(
                "{}: a Flower federation runs one seed, so its `seeds` must be 1 (not {}); run it once \
                 per seed with another `seed`, or use `wsa-lab fed --seeds`",
                self.config.display(),
                config.seeds
            );
        }
        let federation = Federation::prepare(&config)?;
        let device = device::select_for(self.device.parse()?, config.flops_per_step())?;
        Ok((config, federation, device))
    }
}

/// `target.json`: a scope per layer, with the layers' paths so that a target of another model
/// is refused by name rather than misapplied.
#[derive(Serialize, Deserialize)]
struct Target {
    layers: Vec<String>,
    scopes: Vec<Scope>,
}

/// `reply.json`: what a client returns beside its model.
#[derive(Clone, Serialize, Deserialize)]
struct Reply {
    client: usize,
    round: usize,
    /// Its training samples: the weight of its model and scopes at the server.
    samples: usize,
    /// Its trained model's scope per layer (the layers of `target.json`).
    scopes: Vec<Scope>,
    /// Seconds of local training.
    seconds: f64,
}

pub fn run(args: FlowerArgs) -> Result<()> {
    if let Step::Serve = args.step {
        return serve();
    }
    if let Some(output) = execute(args.step, &mut Prepared::default())? {
        println!("{output}");
    }
    Ok(())
}

/// Runs one step; returns what it prints.
fn execute(step: Step, prepared: &mut Prepared) -> Result<Option<serde_json::Value>> {
    match step {
        Step::Init { run, out } => init(&run, &out, prepared).map(Some),
        Step::Train { run, client, round, global, target, own_data, out } => {
            train(&run, &ClientStep { client, round, global, target, own_data }, &out, prepared).map(|()| None)
        }
        Step::Round { run, round, global, replies, target, seconds, out } => {
            end_round(&run, &RoundStep { round, global, replies, target, seconds }, &out, prepared).map(Some)
        }
        Step::Serve => bail!("`serve` is the loop that runs the steps, not a step it can run"),
    }
}

/// `wsa-lab flower serve`: a step per request line until standard input closes; every line,
/// an empty one too, gets one reply line. A request that fails is answered with its error and
/// the loop goes on; a reply that cannot be written (the caller is gone) ends it. Nothing else
/// may write to standard output here: no step prints (they return what the one-shot commands
/// print).
fn serve() -> Result<()> {
    let mut prepared = Prepared::default();
    let mut output = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading a request from standard input")?;
        let reply = match serve_one(&line, &mut prepared) {
            Ok(printed) => serde_json::json!({ "ok": true, "output": printed }),
            Err(error) => serde_json::json!({ "ok": false, "error": crate::args::one_line(&error) }),
        };
        writeln!(output, "{reply}").and_then(|()| output.flush()).context("answering on standard output")?;
    }
    Ok(())
}

fn serve_one(line: &str, prepared: &mut Prepared) -> Result<Option<serde_json::Value>> {
    let request: Request = serde_json::from_str(line).with_context(|| {
        format!("the request {line:?} is not a step: send {{\"step\": [\"train\", \"--config\", ...]}}, one a line")
    })?;
    let parsed = StepLine::try_parse_from(&request.step).map_err(|error| {
        let text = error.render().to_string();
        anyhow::anyhow!("{}", text.lines().next().unwrap_or("not a step").trim_start_matches("error: ").to_owned())
    })?;
    execute(parsed.step, prepared)
}

fn init(run: &RunArgs, out: &Path, prepared: &mut Prepared) -> Result<serde_json::Value> {
    let (config, federation, device) = run.prepare(&mut prepared.federation)?;
    let initial = federation.initial_model(config);
    let scopes = wsa_core::wait(device_scopes(&initial.to_device(&device.device), &federation.layers))?;
    save_model(&out.join("global.safetensors"), &initial)?;
    write_json(&out.join("target.json"), &Target { layers: federation.layer_paths(), scopes })?;
    Ok(serde_json::json!({
        "clients": config.clients,
        "active": federation.active,
        "layers": federation.layer_paths(),
        "run": federated::run_name(config.aggregation.kind(), config.use_wsa),
    }))
}

struct ClientStep {
    client: usize,
    round: usize,
    global: PathBuf,
    target: PathBuf,
    own_data: Option<PathBuf>,
}

fn train(run: &RunArgs, step: &ClientStep, out: &Path, prepared: &mut Prepared) -> Result<()> {
    let started = Instant::now();
    let (config, federation, device) = run.prepare(&mut prepared.federation)?;
    let client = step.client;
    if client >= config.clients {
        bail!(
            "client {client} does not exist: the config splits the data among {} clients (0..{}); check the \
             SuperNode's partition-id",
            config.clients,
            config.clients - 1
        );
    }
    if step.round == 0 {
        bail!("--round counts from 1");
    }
    let data_section = serde_json::to_string(&config.data)?;
    let data = match &step.own_data {
        Some(dir) => match prepared.own_data.take() {
            Some((read_from, section, data)) if read_from == *dir && section == data_section => data,
            _ => own_training_set(&config.data, dir, config.seed)?,
        },
        None if !federation.summaries[client].participates => bail!(
            "client {client} takes no part in this federation (it holds {} samples; min_client_samples is {})",
            federation.summaries[client].samples,
            config.min_client_samples
        ),
        None => federation.client_data(client),
    };
    let global = load_model_for(&step.global, &federation.layout)
        .with_context(|| format!("the global model the server sent ({})", step.global.display()))?
        .params;
    global.check_finite()?;
    let target = read_target(&step.target, federation)?;
    let dev = &device.device;
    let on_device = DeviceData::upload(&data, dev);
    let term = config.wsa.term(config.wsa.lambda, &federation.layers, &target.scopes);
    let local =
        LocalRun { aggregation: config.aggregation, wsa: config.use_wsa.then_some(&term), round: step.round, client };
    let trained =
        wsa_core::wait(federated::local_update(config, &local, &global.to_device(dev), &on_device, &mut Silent))?;
    let scopes = wsa_core::wait(device_scopes(&trained, &federation.layers))?;
    let trained: HostParams = wsa_core::wait(trained.to_host())?;
    save_model(&out.join("params.safetensors"), &trained)?;
    let reply =
        Reply { client, round: step.round, samples: on_device.len, scopes, seconds: started.elapsed().as_secs_f64() };
    write_json(&out.join("reply.json"), &reply)?;
    if let Some(dir) = &step.own_data {
        prepared.own_data = Some((dir.clone(), data_section, data));
    }
    Ok(())
}

/// A deployment's own training data: the whole training set of the config's (fetched) dataset
/// in `dir`, normalised by its own statistics.
fn own_training_set(data: &DataConfig, dir: &Path, seed: u64) -> Result<wsa_core::data::Dataset> {
    if !data.dataset.is_fetched() {
        bail!(
            "--own-data reads mnist or fashion-mnist from a folder, and the config's dataset `{}` is neither; \
             use one of them, or leave --own-data out to train on the seeded split",
            data.dataset.label()
        );
    }
    let own = DataConfig { data_dir: dir.to_path_buf(), max_train: None, ..data.clone() };
    Ok(data::load(&own, seed).with_context(|| format!("reading this client's own data in {}", dir.display()))?.train)
}

struct RoundStep {
    round: usize,
    global: PathBuf,
    replies: PathBuf,
    target: PathBuf,
    seconds: Option<f64>,
}

/// The rounds so far, kept in --out between the server's calls.
const ROUNDS_FILE: &str = "flower-rounds.json";

fn end_round(run: &RunArgs, step: &RoundStep, out: &Path, prepared: &mut Prepared) -> Result<serde_json::Value> {
    let (config, federation, device) = run.prepare(&mut prepared.federation)?;
    let replies: Vec<Reply> = read_json(&step.replies)?;
    if replies.is_empty() {
        bail!("round {}: no client replied, so there is no model to evaluate", step.round);
    }
    let target = read_target(&step.target, federation)?;
    for reply in &replies {
        if reply.round != step.round || reply.scopes.len() != federation.layers.len() {
            bail!(
                "the reply of client {} is for round {} with {} scopes; expected round {} with {} (one per layer)",
                reply.client,
                reply.round,
                reply.scopes.len(),
                step.round,
                federation.layers.len()
            );
        }
    }
    // Rounds so far; a round no client answered has no record, so the last one may be older
    // than the previous round.
    let rounds_file = out.join(ROUNDS_FILE);
    let mut rounds: Vec<RoundRecord> = if step.round == 1 { Vec::new() } else { read_json(&rounds_file)? };
    if rounds.last().is_some_and(|last| last.round >= step.round) {
        bail!(
            "{} already holds round {}: it belongs to another run; give the server a new output folder",
            rounds_file.display(),
            step.round
        );
    }
    let global = load_model_for(&step.global, &federation.layout)
        .with_context(|| format!("the averaged global model ({})", step.global.display()))?
        .params;
    let dev = &device.device;
    let test = DeviceData::upload(&federation.split.test, dev);
    let on_device = global.to_device(dev);
    let metrics = wsa_core::wait(evaluate(&federation.layout, &on_device.tensors, &test))?;
    let name = federated::run_name(config.aggregation.kind(), config.use_wsa);
    let clients = replies.iter().map(|r| r.client).collect();
    // The strategy's target is the fusion of these replies (every step refuses another target).
    let scopes = RoundScopes {
        clients: replies.iter().map(|r| r.scopes.clone()).collect(),
        fused: target.scopes.clone(),
        global: wsa_core::wait(device_scopes(&on_device, &federation.layers))?,
    };
    let record = federated::round_record(step.round, clients, metrics, target.scopes, scopes, &name)?;
    let spread = record.client_spread.iter().sum::<f64>() / record.client_spread.len().max(1) as f64;
    rounds.push(record);
    write_json(&rounds_file, &rounds)?;
    let result =
        federation.result(config, &device.description, vec![federated::finish_run(config, name.clone(), rounds)]);
    files::write(out, files::federated(&result, step.seconds)?)?;
    save_model(&out.join(format!("models/{name}.safetensors")), &global)?;
    Ok(serde_json::json!({
        "round": step.round,
        "test_loss": metrics.loss,
        "test_accuracy": metrics.accuracy,
        "mean_client_spread": spread,
    }))
}

fn read_target(path: &Path, federation: &Federation) -> Result<Target> {
    let target: Target = read_json(path)?;
    let expected = federation.layer_paths();
    if target.layers != expected || target.scopes.len() != expected.len() {
        bail!(
            "{}: a target scope for layers {:?}, but this model's scoped layers are {:?}: server and clients must \
             run the same config",
            path.display(),
            target.layers,
            expected
        );
    }
    if target.scopes.iter().any(|s| !(s.mean.is_finite() && s.std.is_finite() && s.std >= 0.0)) {
        bail!("{}: a target scope is not finite (or has a negative std)", path.display());
    }
    Ok(target)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not what this step expects", path.display()))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, &serde_json::to_vec_pretty(value)?)?;
    Ok(())
}
