//! `wsa-lab`: runs WSA Lab experiments headless and writes JSON, CSV and PNG.
//!
//! With no arguments it runs the default mode-connectivity experiment on the embedded digits.

mod args;
mod bench;
mod flower;
mod plane;
mod reproduce;
mod table;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::Path;
use std::path::PathBuf;
use std::time::Instant;
use wsa_core::data::{DataConfig, DatasetSpec};
use wsa_core::device::{self, DeviceChoice};
use wsa_core::experiment::connect::{self, ConnectConfig, PairDifference};
use wsa_core::experiment::curve::{CurveConfig, CurveKind};
use wsa_core::experiment::federated::FedConfig;
use wsa_core::experiment::method::Method;
use wsa_core::experiment::{Event, Observer, Versioned};
use wsa_core::wsa::WsaConfig;
use wsa_lab_app::export;

#[derive(Parser)]
#[command(
    name = "wsa-lab",
    version,
    about = "Weight Scope Alignment for model merging: experiments from the command line",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand, `wsa-lab` runs `connect` with these arguments.
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Train a pair A, B (plain, with WSA), align B to A as each method says (weight matching,
    /// rescaling) and evaluate every method's interpolation path and barriers.
    Connect(ConnectArgs),
    /// Federated learning: Dirichlet-split clients, FedAvg/FedProx, with or without WSA.
    Fed(FedArgs),
    /// The steps of a federated run that the Flower apps in `flower/` hand to the engine: the
    /// server's start and end of round, a client's local training (files in, files out).
    Flower(flower::FlowerArgs),
    /// The paper's claims over seeds: every cell of a spec (mode connectivity, federated,
    /// ablations, Gaussianity), resumable, then a report with paired confidence intervals.
    Reproduce(reproduce::ReproduceArgs),
    /// The 2-D loss plane through a method's A, B and a third model (a trained curve's control
    /// point, or a model file): plane.csv, plane.png, summary.json and the models spanning it.
    Plane(plane::PlaneArgs),
    /// List the GPU adapters wgpu can see, and what `--device auto` would choose.
    Devices,
    /// Measure our kernels, training throughput and the time to the first step (GPU vs CPU).
    Bench(bench::BenchArgs),
    /// (Used by `bench`: one fresh process timing its first training step.)
    #[command(hide = true)]
    BenchFirstStep(bench::FirstStepArgs),
    /// Open the desktop app (the same as the `wsa-lab-app` binary).
    App {
        /// An experiment config to open (JSON, as `connect --print-config` writes).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Start the configured experiment at once.
        #[arg(long)]
        autorun: bool,
        /// Print frame-time statistics to stderr every two seconds.
        #[arg(long)]
        frame_log: bool,
        /// Open the guided tour, at step N (default 1).
        #[arg(long, num_args = 0..=1, default_missing_value = "1", value_name = "N")]
        tour: Option<String>,
        /// Classroom mode: hide the advanced controls (switch it off in the app).
        #[arg(long)]
        classroom: bool,
    },
}

/// What every experiment command takes: where the config comes from, what to override in it,
/// where it runs. Applied in one place, [`CommonArgs::config`].
#[derive(clap::Args)]
struct CommonArgs {
    /// Experiment config (JSON, as written by --print-config or into --out).
    #[arg(long)]
    config: Option<PathBuf>,
    /// digits, fashion-mnist-small, mnist-small (embedded), fashion-mnist, mnist (fetched),
    /// moons, circles, spirals or blobs.
    #[arg(long)]
    dataset: Option<String>,
    /// Where fetched datasets live.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Use at most this many training samples (a seeded subset).
    #[arg(long, value_parser = args::whole::<usize>)]
    max_train: Option<usize>,
    /// Seed of everything random: initialisation, data order, splits.
    #[arg(long, value_parser = args::whole::<u64>)]
    seed: Option<u64>,
    /// WSA strength (overrides the config).
    #[arg(long, value_parser = args::number)]
    lambda: Option<f64>,
    /// auto: a hardware GPU if there is one, else the CPU.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Print the effective config as JSON and exit.
    #[arg(long)]
    print_config: bool,
}

/// An experiment config the common options apply to.
trait ExperimentConfig: Versioned + Default + serde::Serialize {
    fn data_seed_wsa(&mut self) -> (&mut DataConfig, &mut u64, &mut WsaConfig);
    fn check(&self) -> wsa_core::Result<()>;
}

impl ExperimentConfig for ConnectConfig {
    fn data_seed_wsa(&mut self) -> (&mut DataConfig, &mut u64, &mut WsaConfig) {
        (&mut self.data, &mut self.seed, &mut self.wsa)
    }
    fn check(&self) -> wsa_core::Result<()> {
        self.validate()
    }
}

impl ExperimentConfig for FedConfig {
    fn data_seed_wsa(&mut self) -> (&mut DataConfig, &mut u64, &mut WsaConfig) {
        (&mut self.data, &mut self.seed, &mut self.wsa)
    }
    fn check(&self) -> wsa_core::Result<()> {
        self.validate()
    }
}

impl CommonArgs {
    /// The config a command runs: the file (or the defaults), the common options, then the
    /// command's own (`specific`), checked as a whole.
    fn config<C: ExperimentConfig>(&self, specific: impl FnOnce(&mut C) -> Result<()>) -> Result<C> {
        let mut config = match &self.config {
            Some(path) => C::read_file(path)?,
            None => C::default(),
        };
        let (data, seed, wsa) = config.data_seed_wsa();
        if let Some(name) = &self.dataset {
            data.dataset = DatasetSpec::from_name(name)?;
            if data.dataset.is_fetched() {
                data.max_test = data.max_test.or(Some(10_000));
            }
        }
        if let Some(dir) = &self.data_dir {
            data.data_dir = dir.clone();
        }
        if let Some(n) = self.max_train {
            data.max_train = Some(n);
        }
        if let Some(value) = self.seed {
            *seed = value;
        }
        if let Some(lambda) = self.lambda {
            wsa.lambda = lambda;
        }
        specific(&mut config)?;
        config.check()?;
        Ok(config)
    }

    /// Prints `config` when --print-config asked for it; then the command stops.
    fn printed<C: serde::Serialize>(&self, config: &C) -> Result<bool> {
        if self.print_config {
            println!("{}", serde_json::to_string_pretty(config)?);
        }
        Ok(self.print_config)
    }
}

#[derive(clap::Args)]
struct ConnectArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Epochs per model (overrides the config).
    #[arg(long, value_parser = args::whole::<usize>)]
    epochs: Option<usize>,
    /// The methods to compare, comma-separated: plain, wsa, wm (weight matching), wm+wsa,
    /// rescale (post-hoc scope rescaling, a baseline), rescale+wsa, and with REPAIR (each merged
    /// unit's activation statistics reset to A's and B's interpolation) repair, wsa+repair,
    /// wm+repair, wm+wsa+repair.
    #[arg(long)]
    methods: Option<String>,
    /// Run the experiment at this many seeds (seed, seed + 1, ...) and report the mean ± std
    /// over them (overrides the config; one seed is an anecdote).
    #[arg(long, value_parser = args::whole::<usize>)]
    seeds: Option<usize>,
    /// Train a mode-connecting curve beside every method's line: bezier or polychain.
    #[arg(long)]
    curve: Option<String>,
    /// Epochs of the curve's control point (with --curve; default 5).
    #[arg(long, value_parser = args::whole::<usize>)]
    curve_epochs: Option<usize>,
    /// What differs between A and B: learning-rate, different-init, same-init, batch-size,
    /// weight-decay, optimizer, non-iid-data, disjoint-data.
    #[arg(long)]
    pair: Option<String>,
    /// Folder for the results (summary.json, CSVs, PNGs, models; default out/connect, for
    /// `plane` out/plane).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct FedArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[arg(long, value_parser = args::whole::<usize>)]
    clients: Option<usize>,
    /// Share of the clients sampled each round.
    #[arg(long, value_parser = args::number)]
    fraction: Option<f64>,
    /// Local epochs per round (0: clients return the global model).
    #[arg(long, value_parser = args::whole::<usize>)]
    local_epochs: Option<usize>,
    #[arg(long, value_parser = args::whole::<usize>)]
    rounds: Option<usize>,
    /// Label skew of the client split (0.1 strong, 0.5 usual, >= 10 near IID).
    #[arg(long, value_parser = args::number)]
    dirichlet_alpha: Option<f64>,
    /// fedavg or fedprox.
    #[arg(long)]
    method: Option<String>,
    /// FedProx's mu.
    #[arg(long, default_value_t = wsa_core::experiment::federated::DEFAULT_MU, value_parser = args::number)]
    mu: f64,
    /// Clients add the WSA term toward the fused target scope.
    #[arg(long)]
    wsa: bool,
    /// Clients with fewer samples are small (see --drop-small).
    #[arg(long, value_parser = args::whole::<usize>)]
    min_client_samples: Option<usize>,
    /// Leave small clients out of every round instead of keeping them.
    #[arg(long)]
    drop_small: bool,
    /// Run FedAvg, FedAvg+WSA, FedProx and FedProx+WSA on the same split and seed.
    #[arg(long)]
    compare: bool,
    /// Report the first round reaching this test accuracy.
    #[arg(long, value_parser = args::number)]
    target_accuracy: Option<f64>,
    #[arg(long, default_value = "out/fed")]
    out: PathBuf,
}

fn main() {
    let cli: Cli = args::parse();
    let outcome = match cli.command {
        Some(Command::Connect(args)) => run_connect(args),
        Some(Command::Fed(args)) => run_fed(args),
        Some(Command::Flower(args)) => flower::run(args),
        Some(Command::Reproduce(args)) => reproduce::run(args),
        Some(Command::Plane(args)) => plane::run(args),
        Some(Command::Devices) => list_devices(),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::BenchFirstStep(args)) => bench::first_step(args),
        Some(Command::App { config, autorun, frame_log, tour, classroom }) => {
            open_app(config, wsa_lab_app::LaunchOptions { autorun, frame_log, tour, classroom, config: None })
        }
        None => run_connect(cli.connect),
    };
    if let Err(error) = outcome {
        eprintln!("error: {}", args::one_line(&error));
        std::process::exit(1);
    }
}

/// `options` with the experiment of the file `config`, if one is given.
fn open_app(config: Option<PathBuf>, options: wsa_lab_app::LaunchOptions) -> Result<()> {
    let config = config.map(|path| ConnectConfig::read_file(&path)).transpose()?;
    Ok(wsa_lab_app::run_native(wsa_lab_app::LaunchOptions { config, ..options })?)
}

/// Refuses an --out that names a file before anything is computed (the results are a folder of
/// files; a run that trained for minutes must not fail at its first write).
fn check_out_folder(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        bail!("--out {} is a file: name a folder for the results (it is created when missing)", out.display());
    }
    Ok(())
}

fn list_devices() -> Result<()> {
    let adapters = device::list_adapters();
    if adapters.is_empty() {
        println!("no wgpu adapter found");
    }
    for a in &adapters {
        println!("{} ({}){}", a.name, a.backend, if a.software { ", software" } else { "" });
    }
    println!("--device auto chooses: {}", device::select(DeviceChoice::Auto)?.description);
    println!(
        "  (a hardware GPU only for runs of at least {:.0e} FLOPs per training step; smaller ones are faster on the CPU)",
        device::GPU_WORTHWHILE_FLOPS_PER_STEP
    );
    Ok(())
}

fn effective_config(args: &ConnectArgs) -> Result<ConnectConfig> {
    args.common.config(|config: &mut ConnectConfig| {
        if let Some(epochs) = args.epochs {
            config.train.epochs = epochs;
        }
        if let Some(methods) = &args.methods {
            config.methods = Method::parse_list(methods).context("in --methods")?;
        }
        if let Some(kind) = &args.curve {
            let kind = CurveKind::from_name(kind).context("in --curve")?;
            config.curve = Some(CurveConfig { kind, ..config.curve.clone().unwrap_or_default() });
        }
        if let Some(epochs) = args.curve_epochs {
            let Some(curve) = &mut config.curve else {
                bail!("--curve-epochs needs --curve (or a curve in the config)")
            };
            curve.epochs = epochs;
        }
        if let Some(seeds) = args.seeds {
            config.seeds = seeds;
        }
        if let Some(pair) = &args.pair {
            config.pair = PairDifference::named(pair).context("in --pair")?;
        }
        Ok(())
    })
}

/// Prints progress to stderr: one rewritten line on a terminal, a line per epoch otherwise.
/// (Ctrl-C simply ends the process: every output file is written atomically at the end.)
struct Progress {
    tty: bool,
    started: Instant,
}

impl wsa_core::cancel::Cancel for Progress {}

impl Observer for Progress {
    fn on_event(&mut self, event: &Event) {
        let t = self.started.elapsed().as_secs_f64();
        match event {
            Event::Stage(stage) => {
                if self.tty {
                    eprint!("\r\x1b[2K");
                }
                eprintln!("[{t:6.1}s] {stage}");
            }
            Event::Seed { index, total, seed } => {
                if self.tty {
                    eprint!("\r\x1b[2K");
                }
                eprintln!("[{t:6.1}s] seed {seed} ({} of {total})", index + 1);
            }
            // The table comes at the end, over every seed.
            Event::SeedResult(_) => {}
            Event::PlaneRow { row, rows } => {
                if self.tty {
                    eprint!("\r\x1b[2K[{t:6.1}s] loss plane row {}/{rows}", row + 1);
                }
            }
            Event::PathPoint { method, index, total } => {
                if self.tty {
                    eprint!("\r\x1b[2K[{t:6.1}s] {method} path {}/{total}", index + 1);
                }
            }
            Event::Epoch { pair, epochs, record } => {
                let line = format!(
                    "[{t:6.1}s] {:5} {} epoch {:>3}/{epochs}  train loss {:.4}  test acc {:.4}",
                    pair.name(),
                    record.model,
                    record.epoch,
                    record.train_loss,
                    record.test_accuracy
                );
                self.status(&line);
            }
            Event::Round { run, round, rounds, test_accuracy } => {
                let done = (20 * round) / (*rounds).max(1);
                let bar = format!("{}{}", "#".repeat(done), ".".repeat(20 - done));
                let line = format!(
                    "[{t:6.1}s] {run:12} [{bar}] round {round:>3}/{rounds}  global test acc {test_accuracy:.4}"
                );
                self.status(&line);
            }
        }
    }
}

impl Progress {
    /// A progress line: rewritten in place on a terminal, one line each otherwise.
    fn status(&self, line: &str) {
        if self.tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    }
}

fn run_connect(args: ConnectArgs) -> Result<()> {
    let config = effective_config(&args)?;
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("out/connect"));
    if args.common.printed(&config)? {
        return Ok(());
    }
    check_out_folder(&out)?;
    let choice: DeviceChoice = args.common.device.parse()?;
    let device = device::select_for(choice, config.flops_per_step())?;
    eprintln!("device: {}", device.description);
    let methods: Vec<&str> = config.methods.iter().map(|m| m.name()).collect();
    eprintln!(
        "connect: {} · {} · pair differs in {} · {} epochs · lambda {} · methods {} · {}",
        config.data.dataset.label(),
        config.model.label(),
        config.pair.describe(),
        config.train.epochs,
        config.wsa.lambda,
        methods.join(", "),
        if config.seeds > 1 {
            format!("seeds {}-{}", config.seed, config.seed + config.seeds as u64 - 1)
        } else {
            format!("seed {}", config.seed)
        }
    );
    let started = Instant::now();
    let mut progress = Progress { tty: std::io::stderr().is_terminal(), started };
    let outcome = wsa_core::wait(connect::run(&config, &device, &mut progress))?;
    let seconds = started.elapsed().as_secs_f64();
    if progress.tty {
        eprintln!();
    }
    let mut written = export::write_tables(&out, &outcome.result, Some(seconds))?;
    written.extend(export::write_figures(&out, &outcome.result)?);
    written.extend(export::write_models(&out, &outcome.models)?);
    println!("{}", table::table(&outcome.result));
    for warning in &outcome.result.warnings {
        println!("warning: {warning}");
    }
    println!(
        "{} on {} train / {} test samples, {} parameters, {:.1} s",
        outcome.result.dataset,
        outcome.result.train_samples,
        outcome.result.test_samples,
        outcome.result.parameters,
        seconds
    );
    println!("wrote {} files to {}", written.len(), out.display());
    if outcome.result.methods.is_empty() {
        bail!("no method was evaluated");
    }
    Ok(())
}

fn run_fed(args: FedArgs) -> Result<()> {
    use wsa_core::experiment::federated::{self, AggregationKind, ClientSplit};
    let config = args.common.config(|config: &mut FedConfig| {
        if let Some(v) = args.clients {
            config.clients = v;
        }
        if let Some(v) = args.fraction {
            config.fraction = v;
        }
        if let Some(v) = args.local_epochs {
            config.local.epochs = v;
        }
        if let Some(v) = args.rounds {
            config.rounds = v;
        }
        if let Some(alpha) = args.dirichlet_alpha {
            config.split = ClientSplit::Dirichlet { alpha };
        }
        if let Some(method) = &args.method {
            config.aggregation = AggregationKind::from_name(method).context("in --method")?.with_mu(args.mu);
        }
        if args.wsa {
            config.use_wsa = true;
        }
        if let Some(n) = args.min_client_samples {
            config.min_client_samples = n;
        }
        if args.drop_small {
            config.small_clients = federated::SmallClients::Drop;
        }
        if args.target_accuracy.is_some() {
            config.target_accuracy = args.target_accuracy;
        }
        Ok(())
    })?;
    if args.common.printed(&config)? {
        return Ok(());
    }
    check_out_folder(&args.out)?;
    let variants = config.variants(args.compare, args.mu);
    let device = device::select_for(args.common.device.parse()?, config.flops_per_step())?;
    eprintln!("device: {}", device.description);
    eprintln!(
        "fed: {} · {} clients ({:?}) · C = {} · E = {} · {} rounds · lambda {}",
        config.data.dataset.label(),
        config.clients,
        config.split,
        config.fraction,
        config.local.epochs,
        config.rounds,
        config.wsa.lambda
    );
    let started = Instant::now();
    let mut progress = Progress { tty: std::io::stderr().is_terminal(), started };
    let outcome = wsa_core::wait(federated::run(&config, &variants, &device, &mut progress))?;
    let result = &outcome.result;
    let seconds = started.elapsed().as_secs_f64();
    if progress.tty {
        eprintln!();
    }
    let mut written = export::write_federated(&args.out, result, Some(seconds))?;
    for (name, model) in &outcome.finals {
        let file = format!("models/{name}.safetensors");
        wsa_core::io::save_model(&args.out.join(&file), model)?;
        written.push(file);
    }
    println!("{}", table::fed_table(result));
    let small: Vec<usize> =
        (0..result.clients.len()).filter(|&k| result.clients[k].samples < config.min_client_samples).collect();
    if !small.is_empty() {
        let fate = if config.small_clients == federated::SmallClients::Drop { "dropped" } else { "kept" };
        println!("{} client(s) with fewer than {} samples {fate}: {small:?}", small.len(), config.min_client_samples);
    }
    println!(
        "{} with {} clients (sizes {}..{}), {} rounds, {:.1} s ({:.2} s per round per run)",
        result.dataset,
        result.clients.len(),
        result.clients.iter().map(|c| c.samples).min().unwrap_or(0),
        result.clients.iter().map(|c| c.samples).max().unwrap_or(0),
        config.rounds,
        seconds,
        seconds / (config.rounds * result.runs.len()).max(1) as f64
    );
    println!("wrote {} files to {}", written.len(), args.out.display());
    Ok(())
}
