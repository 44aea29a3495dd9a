//! Federated learning with WSA (method.md section 6): clients from a seeded label split, rounds
//! of local training from the global weights, FedAvg or FedProx at the server, and, with WSA,
//! a target scope broadcast with the weights and fused from the clients' returned scopes.
//!
//! State per client is only its data (uploaded once). Optimiser state is not kept between
//! rounds: each round a client starts a fresh optimiser from the global weights.

use super::versioned::{FED_VERSION, Versioned};
use super::{Event, Observer};
use crate::data::{self, DataConfig, DataSplit, Dataset};
use crate::device::ComputeDevice;
use crate::error::{Result, WsaError};
use crate::merge::weighted_average;
use crate::model::{HostParams, ModelConfig, ModelLayout, Params};
use crate::rng::Rng;
use crate::scope::{Scope, device_scopes, fuse, symmetric_kl};
use crate::train::{DeviceData, Metrics, TrainConfig, Trainer, evaluate};
use crate::wsa::{WsaConfig, WsaTerm};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How the training set is divided among the clients.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ClientSplit {
    /// Each class divided among the clients in Dirichlet(alpha) proportions.
    Dirichlet { alpha: f64 },
    /// A uniform random partition.
    Iid,
    /// Each client holds shards of `classes_per_client` classes.
    Shards { classes_per_client: usize },
}

impl ClientSplit {
    /// In words, for figure titles and tables.
    pub fn describe(&self) -> String {
        match self {
            ClientSplit::Dirichlet { alpha } => format!("Dirichlet α = {alpha}"),
            ClientSplit::Iid => "IID".to_string(),
            ClientSplit::Shards { classes_per_client } => format!("shards of {classes_per_client} classes per client"),
        }
    }
}

/// What to do with clients that got fewer than `min_client_samples` samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SmallClients {
    /// Keep them (they train on what they have).
    #[default]
    Keep,
    /// Leave them out of every round (their samples are unused).
    Drop,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Aggregation {
    FedAvg,
    /// FedAvg with (mu/2) ||w - w_t||^2 added to every client's loss.
    FedProx {
        mu: f64,
    },
}

impl Aggregation {
    /// The rule without its parameter.
    pub fn kind(&self) -> AggregationKind {
        match self {
            Aggregation::FedAvg => AggregationKind::FedAvg,
            Aggregation::FedProx { .. } => AggregationKind::FedProx,
        }
    }
}

/// FedProx's mu where nothing else sets it (`wsa-lab fed --mu`, the app, reproduce's comparison
/// when the base config names FedAvg).
pub const DEFAULT_MU: f64 = 0.01;

/// An aggregation rule without its parameter: what a user chooses (`wsa-lab fed --method`, the
/// app's buttons) and what a run is named after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggregationKind {
    FedAvg,
    FedProx,
}

// Names: in run names, file names and on the command line; labels: as people write them.
crate::choices!(AggregationKind, "aggregation" {
    FedAvg => "fedavg", "FedAvg",
    FedProx => "fedprox", "FedProx",
});

/// Where the clients' WSA target comes from each round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FedTarget {
    /// Fused from the scopes the clients returned in the last round (method.md section 6).
    #[default]
    Fused,
    /// The scope of the global model the server broadcasts (its average of the clients).
    Global,
    /// The initial global model's scope, kept for the whole run.
    Initial,
}

crate::choices!(FedTarget, "federated target" {
    Fused => "fused", "fused from the clients",
    Global => "global", "the global model's scope",
    Initial => "initial", "the initial scope",
});

impl FedTarget {
    fn is_fused(&self) -> bool {
        *self == FedTarget::Fused
    }

    /// The target of the next round, from this round's scopes.
    fn next(self, round: &RoundScopes, initial: &[Scope]) -> Vec<Scope> {
        match self {
            FedTarget::Fused => round.fused.clone(),
            FedTarget::Global => round.global.clone(),
            FedTarget::Initial => initial.to_vec(),
        }
    }
}

impl AggregationKind {
    /// The rule, with `mu` as FedProx's proximal weight (FedAvg has none).
    pub fn with_mu(self, mu: f64) -> Aggregation {
        match self {
            AggregationKind::FedAvg => Aggregation::FedAvg,
            AggregationKind::FedProx => Aggregation::FedProx { mu },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FedConfig {
    pub version: u32,
    pub seed: u64,
    pub data: DataConfig,
    pub model: ModelConfig,
    /// Local training of each client; `epochs` is the number of local epochs E per round (0 is
    /// allowed: the clients then return the global model unchanged).
    pub local: TrainConfig,
    pub clients: usize,
    /// Share C of the clients sampled each round (at least one).
    pub fraction: f64,
    pub rounds: usize,
    pub split: ClientSplit,
    pub min_client_samples: usize,
    pub small_clients: SmallClients,
    pub aggregation: Aggregation,
    /// Whether clients add the WSA term toward the broadcast target.
    pub use_wsa: bool,
    /// lambda, KL direction, reduction, fusion rule and layer selection (`wsa.target` is not
    /// read: `target` below says where a federated target comes from).
    pub wsa: WsaConfig,
    /// Where the target comes from each round; left out of the file when fused, so that configs
    /// written before it existed keep their reproduce keys.
    #[serde(skip_serializing_if = "FedTarget::is_fused")]
    pub target: FedTarget,
    /// Report the first round reaching this test accuracy.
    pub target_accuracy: Option<f64>,
    /// Run the federation at this many seeds (`seed`, `seed` + 1, ...): the runs, rounds and
    /// models are seed `seed`'s, and `FedResult::seeds` holds every seed's accuracies, so that a
    /// comparison is judged over seeds. Left out of the file when 1, so that configs written
    /// before it existed keep their reproduce keys.
    #[serde(skip_serializing_if = "super::connect::is_one_seed")]
    pub seeds: usize,
}

impl Default for FedConfig {
    fn default() -> Self {
        Self {
            version: FED_VERSION,
            seed: 0,
            data: DataConfig::default(),
            model: ModelConfig::default(),
            local: TrainConfig { epochs: 2, learning_rate: 0.05, batch_size: 32, ..TrainConfig::default() },
            clients: 10,
            fraction: 1.0,
            rounds: 10,
            split: ClientSplit::Dirichlet { alpha: 0.5 },
            min_client_samples: 1,
            small_clients: SmallClients::Keep,
            aggregation: Aggregation::FedAvg,
            use_wsa: false,
            wsa: WsaConfig::default(),
            target: FedTarget::Fused,
            target_accuracy: None,
            seeds: 1,
        }
    }
}

/// Federated config files; one from a newer build is refused with a message.
impl Versioned for FedConfig {
    const KIND: &'static str = "federated config";
    const VERSION: u32 = FED_VERSION;
}

/// summary.json of a federated run.
impl Versioned for FedResult {
    const KIND: &'static str = "federated result";
    const VERSION: u32 = FED_VERSION;
}

impl FedConfig {
    pub fn validate(&self) -> Result<()> {
        if self.clients == 0 || self.clients > 10_000 {
            return Err(WsaError::invalid("clients", self.clients, "must be between 1 and 10000"));
        }
        if !(self.fraction.is_finite() && self.fraction > 0.0 && self.fraction <= 1.0) {
            return Err(WsaError::invalid("fraction", self.fraction, "must lie in (0, 1]"));
        }
        if self.rounds == 0 || self.rounds > 100_000 {
            return Err(WsaError::invalid("rounds", self.rounds, "must be between 1 and 100000"));
        }
        if self.seeds == 0 || self.seeds > 100 {
            return Err(WsaError::invalid("seeds", self.seeds, "must be between 1 and 100"));
        }
        if self.seed.checked_add(self.seeds as u64 - 1).is_none() {
            return Err(WsaError::invalid(
                "seed",
                self.seed,
                "leaves no room for the other seeds; choose a smaller one",
            ));
        }
        match self.split {
            ClientSplit::Dirichlet { alpha } if !(alpha.is_finite() && alpha > 0.0) => {
                return Err(WsaError::invalid("split.alpha", alpha, "the Dirichlet concentration must be > 0"));
            }
            ClientSplit::Shards { classes_per_client: 0 } => {
                return Err(WsaError::invalid("split.classes_per_client", 0, "must be at least 1"));
            }
            _ => {}
        }
        if let Aggregation::FedProx { mu } = self.aggregation
            && !(mu.is_finite() && mu >= 0.0)
        {
            return Err(WsaError::invalid("aggregation.mu", mu, "must be a finite number >= 0"));
        }
        self.wsa.validate()
    }
}

/// Client sample indices into `train`, seeded. Every sample is assigned exactly once.
pub fn split_clients(train: &Dataset, clients: usize, split: ClientSplit, seed: u64) -> Result<Vec<Vec<usize>>> {
    let mut rng = Rng::derive(seed, "client-split");
    let mut assigned: Vec<Vec<usize>> = vec![Vec::new(); clients];
    let by_class = |rng: &mut Rng| -> Vec<Vec<usize>> {
        let mut classes: Vec<Vec<usize>> = vec![Vec::new(); train.num_classes];
        for (i, &label) in train.labels.iter().enumerate() {
            classes[label as usize].push(i);
        }
        for members in &mut classes {
            rng.shuffle(members);
        }
        classes
    };
    match split {
        ClientSplit::Iid => {
            let mut order: Vec<usize> = (0..train.len()).collect();
            rng.shuffle(&mut order);
            for (k, i) in order.into_iter().enumerate() {
                assigned[k % clients].push(i);
            }
        }
        ClientSplit::Dirichlet { alpha } => {
            for members in by_class(&mut rng) {
                let shares = rng.dirichlet(alpha, clients);
                // Cut points from the cumulative shares: every sample goes to exactly one client.
                let mut start = 0usize;
                let mut cumulative = 0.0;
                for (k, share) in shares.iter().enumerate() {
                    cumulative += share;
                    let end = if k + 1 == clients {
                        members.len()
                    } else {
                        (cumulative * members.len() as f64).round() as usize
                    };
                    let end = end.clamp(start, members.len());
                    assigned[k].extend_from_slice(&members[start..end]);
                    start = end;
                }
            }
        }
        ClientSplit::Shards { classes_per_client } => {
            // Sort by class, cut into clients * classes_per_client shards, deal them out at random.
            let sorted: Vec<usize> = by_class(&mut rng).into_iter().flatten().collect();
            let shards = clients * classes_per_client;
            let mut order: Vec<usize> = (0..shards).collect();
            rng.shuffle(&mut order);
            for (slot, &shard) in order.iter().enumerate() {
                let start = shard * sorted.len() / shards;
                let end = (shard + 1) * sorted.len() / shards;
                assigned[slot % clients].extend_from_slice(&sorted[start..end]);
            }
        }
    }
    for client in &mut assigned {
        client.sort_unstable();
    }
    Ok(assigned)
}

/// One client's share: its size and labels per class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientSummary {
    pub samples: usize,
    pub label_counts: Vec<usize>,
    /// False when it was dropped for having fewer than `min_client_samples`.
    pub participates: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    pub round: usize,
    pub clients: Vec<usize>,
    pub test_loss: f64,
    pub test_accuracy: f64,
    /// The target scope broadcast for the next round (`FedConfig::target`; by default the
    /// fusion of this round's client scopes).
    pub target: Vec<Scope>,
    /// The scope of the global model after this round's aggregation (empty in results written
    /// before it was recorded).
    #[serde(default)]
    pub global: Vec<Scope>,
    /// Per layer, the mean over this round's clients of the symmetric KL between the client's
    /// scope and their fusion: how far the clients' scopes spread around it.
    pub client_spread: Vec<f64>,
    /// The scopes the clients returned (`client_scopes[i][l]`: the i-th client of `clients`,
    /// layer l).
    pub client_scopes: Vec<Vec<Scope>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FedRun {
    /// e.g. "fedavg", "fedprox+wsa".
    pub name: String,
    pub rounds: Vec<RoundRecord>,
    pub final_accuracy: f64,
    pub best_accuracy: f64,
    pub rounds_to_target: Option<usize>,
    /// Where the run stopped because its loss was no longer finite (`rounds` holds the rounds
    /// before it; the headline numbers are theirs). Absent for a run that finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged: Option<Divergence>,
}

impl FedRun {
    /// Its final and best test accuracy to four decimals, or "–" for both when it has no round to
    /// take them from (it diverged in its first): what tables print.
    pub fn accuracies_text(&self) -> (String, String) {
        if self.rounds.is_empty() {
            return ("–".into(), "–".into());
        }
        (format!("{:.4}", self.final_accuracy), format!("{:.4}", self.best_accuracy))
    }
}

/// Where and why a federated run diverged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// The round in which a client's or the global model's loss became NaN or infinite.
    pub round: usize,
    /// The sentence saying which model, at which step, and what to change.
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FedResult {
    pub version: u32,
    pub config: FedConfig,
    pub dataset: String,
    pub device: String,
    pub layers: Vec<String>,
    pub clients: Vec<ClientSummary>,
    pub runs: Vec<FedRun>,
    /// Every seed's accuracies, the first seed's included, when the config runs several
    /// (`FedConfig::seeds`); empty for one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seeds: Vec<FedSeed>,
}

/// One seed of a federation run at several: each variant's headline numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FedSeed {
    pub seed: u64,
    /// In the order of `FedResult::runs`.
    pub runs: Vec<FedSeedRun>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FedSeedRun {
    pub name: String,
    pub final_accuracy: f64,
    pub best_accuracy: f64,
    /// The round it diverged in, if it did (its accuracies are then those of its rounds before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged_in_round: Option<usize>,
}

impl FedSeedRun {
    /// Its final accuracy, or `None` when it diverged in its first round (it has none).
    pub fn final_accuracy_if_any(&self) -> Option<f64> {
        (self.diverged_in_round != Some(1)).then_some(self.final_accuracy)
    }

    /// Its final accuracy to four decimals, "–" without one.
    pub fn final_accuracy_text(&self) -> String {
        self.final_accuracy_if_any().map_or("–".to_string(), |a| format!("{a:.4}"))
    }

    /// `final_accuracy_text` and the round it diverged in.
    pub fn final_text(&self) -> String {
        let stopped = self.diverged_in_round.map_or(String::new(), |r| format!(" (diverged in round {r})"));
        self.final_accuracy_text() + &stopped
    }
}

impl FedSeed {
    fn of(result: &FedResult) -> FedSeed {
        let runs = result
            .runs
            .iter()
            .map(|run| FedSeedRun {
                name: run.name.clone(),
                final_accuracy: run.final_accuracy,
                best_accuracy: run.best_accuracy,
                diverged_in_round: run.diverged.as_ref().map(|d| d.round),
            })
            .collect();
        FedSeed { seed: result.config.seed, runs }
    }
}

impl FedResult {
    /// Over the seeds (`seeds`): the seeds on which run `name`'s final accuracy is above run
    /// `than`'s, and the seeds compared (those where neither diverged in its first round).
    pub fn seeds_higher(&self, name: &str, than: &str) -> (usize, usize) {
        let accuracy = |seed: &FedSeed, name: &str| seed.runs.iter().find(|r| r.name == name)?.final_accuracy_if_any();
        let pairs: Vec<(f64, f64)> =
            self.seeds.iter().filter_map(|seed| Some((accuracy(seed, name)?, accuracy(seed, than)?))).collect();
        (pairs.iter().filter(|(a, b)| a > b).count(), pairs.len())
    }
    /// Over the seeds, for each run with WSA beside its run without: the two runs' names, on how
    /// many seeds the one with WSA ended higher and on how many both have a final accuracy.
    pub fn seed_comparison_counts(&self) -> Vec<(&str, &str, usize, usize)> {
        if self.seeds.is_empty() {
            return Vec::new();
        }
        let with_wsa = self.runs.iter().filter_map(|r| Some((r.name.as_str(), r.name.strip_suffix("+wsa")?)));
        with_wsa
            .filter(|(_, without)| self.runs.iter().any(|r| r.name == *without))
            .map(|(with, without)| {
                let (higher, compared) = self.seeds_higher(with, without);
                (with, without, higher, compared)
            })
            .collect()
    }

    /// `seed_comparison_counts` in words: "fedavg+wsa ended higher than fedavg on 2 of 3 seeds."
    /// (what the app prints).
    pub fn seed_comparisons(&self) -> Vec<String> {
        self.seed_comparison_counts()
            .into_iter()
            .map(|(with, without, higher, compared)| {
                format!("{with} ended higher than {without} on {higher} of {compared} seeds.")
            })
            .collect()
    }
}

/// The result and the models: the common starting point and each run's final global model.
/// Serde, so that the page's worker can post it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct FedOutcome {
    pub result: FedResult,
    pub initial: HostParams,
    pub finals: Vec<(String, HostParams)>,
}

/// The variants `--compare` runs on one split and seed.
pub fn comparison(mu: f64) -> Vec<(Aggregation, bool)> {
    vec![
        (Aggregation::FedAvg, false),
        (Aggregation::FedAvg, true),
        (Aggregation::FedProx { mu }, false),
        (Aggregation::FedProx { mu }, true),
    ]
}

impl FedConfig {
    /// Work per local training step, for `device::select_for`.
    pub fn flops_per_step(&self) -> Option<f64> {
        super::flops_per_step(&self.model, &self.data.dataset, self.local.batch_size)
    }

    /// What to run: with `compare`, FedAvg and FedProx each with and without WSA (FedProx's mu
    /// from the config, else `default_mu`); otherwise the one configured method.
    pub fn variants(&self, compare: bool, default_mu: f64) -> Vec<(Aggregation, bool)> {
        if !compare {
            return vec![(self.aggregation, self.use_wsa)];
        }
        let mu = match self.aggregation {
            Aggregation::FedProx { mu } => mu,
            Aggregation::FedAvg => default_mu,
        };
        comparison(mu)
    }
}

/// The parts of a federation every process taking part derives alike from the config: the
/// data split, the model layout, the layers with a scope, each client's samples and who takes
/// part. `run` builds it once; the Flower bridge builds it in the server and in every client,
/// which is how they agree on the split without sending it.
pub struct Federation {
    pub split: DataSplit,
    pub layout: Arc<ModelLayout>,
    /// Indices into the layout of the layers with a scope (`wsa.layers`).
    pub layers: Vec<usize>,
    /// Client k's sample indices into `split.train`.
    pub assignment: Vec<Vec<usize>>,
    pub summaries: Vec<ClientSummary>,
    /// The clients that take part (not dropped, not empty), ascending.
    pub active: Vec<usize>,
}

impl Federation {
    pub fn prepare(config: &FedConfig) -> Result<Self> {
        config.validate()?;
        let split = data::load(&config.data, config.seed)?;
        let layout = Arc::new(ModelLayout::new(&config.model, &split.train.sample_shape, split.train.num_classes)?);
        let layers = config.wsa.layers.select(&layout);
        let assignment = split_clients(&split.train, config.clients, config.split, config.seed)?;
        let summaries: Vec<ClientSummary> = assignment
            .iter()
            .map(|indices| {
                let mut label_counts = vec![0; split.train.num_classes];
                for &i in indices {
                    label_counts[split.train.labels[i] as usize] += 1;
                }
                let too_small = config.small_clients == SmallClients::Drop && indices.len() < config.min_client_samples;
                let participates = !(indices.is_empty() || too_small);
                ClientSummary { samples: indices.len(), label_counts, participates }
            })
            .collect();
        let active: Vec<usize> = (0..config.clients).filter(|&k| summaries[k].participates).collect();
        if active.is_empty() {
            return Err(WsaError::invalid(
                "clients",
                config.clients,
                "no client has enough samples; lower min_client_samples",
            ));
        }
        Ok(Self { split, layout, layers, assignment, summaries, active })
    }

    /// The common starting model of every run on this config.
    pub fn initial_model(&self, config: &FedConfig) -> HostParams {
        self.layout.init(&mut Rng::derive(config.seed, "federated-init"))
    }

    /// Client k's training samples.
    pub fn client_data(&self, client: usize) -> Dataset {
        self.split.train.subset(&self.assignment[client])
    }

    /// The paths of the layers with a scope, in the order of every scope list.
    pub fn layer_paths(&self) -> Vec<String> {
        self.layers.iter().map(|&i| self.layout.params[i].path.clone()).collect()
    }

    /// summary.json's content for `runs` of this federation.
    pub fn result(&self, config: &FedConfig, device: &str, runs: Vec<FedRun>) -> FedResult {
        FedResult {
            version: FED_VERSION,
            config: config.clone(),
            dataset: self.split.name.clone(),
            device: device.to_string(),
            layers: self.layer_paths(),
            clients: self.summaries.clone(),
            runs,
            seeds: Vec::new(),
        }
    }
}

/// A run's name in results and file names, e.g. "fedavg", "fedprox+wsa".
pub fn run_name(aggregation: AggregationKind, use_wsa: bool) -> String {
    format!("{}{}", aggregation.name(), if use_wsa { "+wsa" } else { "" })
}

/// A finished run's headline numbers from its rounds (a run that diverged sets `diverged` after).
pub fn finish_run(config: &FedConfig, name: String, rounds: Vec<RoundRecord>) -> FedRun {
    let final_accuracy = rounds.last().map_or(0.0, |r| r.test_accuracy);
    let best_accuracy = rounds.iter().map(|r| r.test_accuracy).fold(0.0, f64::max);
    let rounds_to_target =
        config.target_accuracy.and_then(|t| rounds.iter().find(|r| r.test_accuracy >= t).map(|r| r.round));
    FedRun { name, rounds, final_accuracy, best_accuracy, rounds_to_target, diverged: None }
}

/// Per layer, the mean over the clients of the symmetric KL between a client's scope and their
/// fusion: how far the clients' scopes spread around it.
pub fn client_spread(client_scopes: &[Vec<Scope>], target: &[Scope]) -> Vec<f64> {
    (0..target.len())
        .map(|l| {
            client_scopes.iter().map(|s| symmetric_kl(s[l], target[l])).sum::<f64>() / client_scopes.len().max(1) as f64
        })
        .collect()
}

/// Runs `variants` (aggregation, with WSA) on one split and one initial model per seed: the
/// outcome's runs and models are the first seed's; with several seeds (`FedConfig::seeds`) the
/// result also holds every seed's accuracies.
pub async fn run(
    config: &FedConfig,
    variants: &[(Aggregation, bool)],
    device: &ComputeDevice,
    observer: &mut dyn Observer,
) -> Result<FedOutcome> {
    let mut outcome = run_seed(config, variants, device, observer).await?;
    if config.seeds > 1 {
        let mut seeds = vec![FedSeed::of(&outcome.result)];
        for k in 1..config.seeds as u64 {
            let other = FedConfig { seed: config.seed + k, seeds: 1, ..config.clone() };
            observer.on_event(&Event::Stage(format!("seed {} ({} of {})", config.seed + k, k + 1, config.seeds)));
            seeds.push(FedSeed::of(&run_seed(&other, variants, device, observer).await?.result));
        }
        outcome.result.seeds = seeds;
    }
    Ok(outcome)
}

/// The federation at `config.seed` alone.
async fn run_seed(
    config: &FedConfig,
    variants: &[(Aggregation, bool)],
    device: &ComputeDevice,
    observer: &mut dyn Observer,
) -> Result<FedOutcome> {
    observer.on_event(&Event::Stage(format!("loading {}", config.data.dataset.label())));
    let federation = Federation::prepare(config)?;
    let Federation { layout, layers, summaries, active, .. } = &federation;
    let dev = &device.device;
    // Client data is uploaded once and reused by every round of every variant.
    let client_data: Vec<Option<DeviceData>> = (0..config.clients)
        .map(|k| summaries[k].participates.then(|| DeviceData::upload(&federation.client_data(k), dev)))
        .collect();
    let test = DeviceData::upload(&federation.split.test, dev);
    let initial = federation.initial_model(config);
    let init = initial.to_device(dev);
    let per_round = ((config.fraction * config.clients as f64).round() as usize).clamp(1, active.len());

    let mut runs = Vec::new();
    let mut finals = Vec::new();
    for &(aggregation, use_wsa) in variants {
        let name = run_name(aggregation.kind(), use_wsa);
        observer.on_event(&Event::Stage(format!("federated training: {name}")));
        let mut rng = Rng::derive(config.seed, "client-sampling");
        let mut global = init.clone();
        let initial_scopes = device_scopes(&global, layers).await?;
        let mut target = initial_scopes.clone();
        let mut rounds = Vec::with_capacity(config.rounds);
        let mut diverged = None;
        for round in 1..=config.rounds {
            if observer.is_cancelled() {
                return Err(WsaError::Cancelled);
            }
            let mut pool = active.clone();
            rng.shuffle(&mut pool);
            let mut chosen = pool[..per_round].to_vec();
            chosen.sort_unstable();
            let term = config.wsa.term(config.wsa.lambda, layers, &target);
            let played = async {
                let mut updated = Vec::with_capacity(chosen.len());
                let mut weights = Vec::with_capacity(chosen.len());
                for &k in &chosen {
                    let Some(data) = &client_data[k] else { continue };
                    let client = LocalRun { aggregation, wsa: use_wsa.then_some(&term), round, client: k };
                    let params = local_update(config, &client, &global, data, &mut *observer).await?;
                    updated.push(params);
                    weights.push(data.len as f64);
                }
                let mut client_scopes: Vec<Vec<Scope>> = Vec::with_capacity(updated.len());
                for p in &updated {
                    client_scopes.push(device_scopes(p, layers).await?);
                }
                let refs: Vec<&Params> = updated.iter().collect();
                let next_global = weighted_average(&refs, &weights)?;
                // By default the next target fuses the clients' scopes, not the scope of the
                // averaged model (averaging shrinks the spread round after round);
                // `config.target` may say otherwise, for the ablation.
                let scopes = RoundScopes {
                    fused: fuse(&client_scopes, &weights, config.wsa.fusion)?,
                    global: device_scopes(&next_global, layers).await?,
                    clients: client_scopes,
                };
                let next_target = config.target.next(&scopes, &initial_scopes);
                let metrics = evaluate(layout, &next_global.tensors, &test).await?;
                let record = round_record(round, chosen.clone(), metrics, next_target.clone(), scopes, &name)?;
                Ok::<_, WsaError>((next_global, next_target, record))
            }
            .await;
            let (next_global, next_target, record) = match played {
                Ok(played) => played,
                // A run whose loss stops being finite is a result, not a failure of the whole
                // comparison: it keeps its rounds so far and says where it stopped.
                Err(error @ WsaError::Diverged { .. }) => {
                    observer.on_event(&Event::Stage(format!("{name} diverged in round {round}: {error}")));
                    diverged = Some(Divergence { round, reason: error.to_string() });
                    break;
                }
                Err(error) => return Err(error),
            };
            observer.on_event(&Event::Round {
                run: name.clone(),
                round,
                rounds: config.rounds,
                test_accuracy: record.test_accuracy,
            });
            (global, target) = (next_global, next_target);
            rounds.push(record);
        }
        finals.push((name.clone(), global.to_host().await?));
        runs.push(FedRun { diverged, ..finish_run(config, name, rounds) });
    }
    let result = federation.result(config, &device.description, runs);
    Ok(FedOutcome { result, initial, finals })
}

/// The scopes of one round, after the server's aggregation.
pub struct RoundScopes {
    /// What each client returned (in the order of the round's clients).
    pub clients: Vec<Vec<Scope>>,
    /// Their fusion (`wsa.fusion`).
    pub fused: Vec<Scope>,
    /// The averaged global model's.
    pub global: Vec<Scope>,
}

/// A round's record from the global model's test metrics, the target for the next round and the
/// round's scopes; a global model whose loss is not finite ends the run (`run`: its name).
pub fn round_record(
    round: usize,
    clients: Vec<usize>,
    metrics: Metrics,
    target: Vec<Scope>,
    scopes: RoundScopes,
    run: &str,
) -> Result<RoundRecord> {
    if !metrics.loss.is_finite() {
        return Err(WsaError::Diverged { model: format!("{run} global"), step: round, value: metrics.loss as f32 });
    }
    Ok(RoundRecord {
        round,
        clients,
        test_loss: metrics.loss,
        test_accuracy: metrics.accuracy,
        client_spread: client_spread(&scopes.clients, &scopes.fused),
        target,
        global: scopes.global,
        client_scopes: scopes.clients,
    })
}

/// Who trains locally, how, and in which round.
pub struct LocalRun<'a> {
    pub aggregation: Aggregation,
    /// The WSA term toward the broadcast target, when the run uses WSA.
    pub wsa: Option<&'a WsaTerm>,
    pub round: usize,
    pub client: usize,
}

/// One client's local training from the global weights; E = 0 returns them unchanged. Its data
/// order is seeded by (seed, round, client), so a client trains the same wherever it runs.
pub async fn local_update(
    config: &FedConfig,
    run: &LocalRun<'_>,
    global: &Params,
    data: &DeviceData,
    observer: &mut dyn Observer,
) -> Result<Params> {
    let LocalRun { aggregation, wsa, round, client } = *run;
    if config.local.epochs == 0 {
        return Ok(global.clone());
    }
    let local = TrainConfig { batch_size: config.local.batch_size.min(data.len), ..config.local.clone() };
    let order_seed = config.seed ^ ((round as u64) << 32) ^ client as u64;
    let mut trainer = Trainer::on_device(&format!("client {client}"), local, global.clone(), data.len, order_seed)?;
    if let Aggregation::FedProx { mu } = aggregation {
        trainer = trainer.with_proximal(global, mu);
    }
    while !trainer.finished() {
        trainer.train_step(data, wsa);
        observer.pause().await;
    }
    trainer.take_mean_loss().await?;
    Ok(trainer.params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labelled(n: usize, classes: usize) -> Dataset {
        Dataset {
            features: vec![0.0; n],
            labels: (0..n).map(|i| (i % classes) as u32).collect(),
            sample_shape: vec![1],
            num_classes: classes,
        }
    }

    #[test]
    fn every_split_assigns_each_sample_exactly_once_and_is_seeded() {
        let data = labelled(1000, 10);
        for split in
            [ClientSplit::Iid, ClientSplit::Dirichlet { alpha: 0.1 }, ClientSplit::Shards { classes_per_client: 2 }]
        {
            let a = split_clients(&data, 7, split, 3).expect("split");
            let mut all: Vec<usize> = a.iter().flatten().copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..1000).collect::<Vec<_>>(), "{split:?}");
            assert_eq!(a, split_clients(&data, 7, split, 3).expect("split"));
            assert_ne!(a, split_clients(&data, 7, split, 4).expect("split"), "{split:?}");
        }
    }

    #[test]
    fn large_alpha_is_close_to_uniform_and_small_alpha_is_skewed() {
        let data = labelled(10_000, 10);
        // Per client, the largest class share: 0.1 when uniform, near 1 when each client has one class.
        let max_share = |alpha: f64| {
            let clients = split_clients(&data, 10, ClientSplit::Dirichlet { alpha }, 1).expect("split");
            clients
                .iter()
                .filter(|c| !c.is_empty())
                .map(|c| {
                    let mut counts = [0usize; 10];
                    for &i in c {
                        counts[data.labels[i] as usize] += 1;
                    }
                    *counts.iter().max().unwrap_or(&0) as f64 / c.len() as f64
                })
                .sum::<f64>()
                / 10.0
        };
        assert!(max_share(1000.0) < 0.13, "alpha 1000: {}", max_share(1000.0));
        assert!(max_share(0.05) > 0.6, "alpha 0.05: {}", max_share(0.05));
    }

    #[test]
    fn aggregation_kinds_read_back_from_their_names() {
        for kind in AggregationKind::ALL {
            assert_eq!(AggregationKind::from_name(kind.name()).expect("known"), kind);
            assert_eq!(kind.with_mu(0.1).kind(), kind);
        }
        assert_eq!(AggregationKind::FedProx.with_mu(0.1), Aggregation::FedProx { mu: 0.1 });
        let error = AggregationKind::from_name("fedsgd").expect_err("unknown").to_string();
        assert!(error.contains("fedsgd") && error.contains("fedavg or fedprox"), "{error}");
        assert_eq!(run_name(AggregationKind::FedProx, true), "fedprox+wsa");
    }
}
