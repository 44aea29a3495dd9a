//! `wsa-lab`: runs WSA Lab experiments headless and writes JSON, CSV and PNG.
//!
//! With no arguments it runs the default mode-connectivity experiment on the embedded digits.
//! Here: the subcommands and the two small ones (`devices`, `app`); every other command is a
//! module of its own (`connect`, `pair`, `fed`, `plane`, `reproduce`, `scopes`, `flower`, `bench`), sharing the
//! options that make a config (`common`), one progress printer (`progress`), the tables
//! (`table`) and how numbers are read and errors printed (`args`).

mod allocator;
mod args;
mod bench;
mod common;
mod connect;
mod fed;
mod flower;
mod pair;
mod plane;
mod progress;
mod reproduce;
mod scopes;
mod table;
mod tour;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use wsa_core::device::{self, DeviceChoice};
use wsa_core::experiment::Versioned;
use wsa_core::experiment::connect::ConnectConfig;

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
    connect: connect::ConnectArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Train a pair A, B (plain, with WSA), align B to A as each method says (weight matching,
    /// rescaling) and evaluate every method's interpolation path and barriers.
    Connect(connect::ConnectArgs),
    /// Two models you trained (PyTorch MLPs or CNNs as safetensors, or models WSA Lab saved) on
    /// a dataset: what was inferred, then the path and barriers of every method that needs no
    /// training (plain, weight matching, rescaling, REPAIR).
    Pair(pair::PairArgs),
    /// Federated learning: Dirichlet-split clients, FedAvg/FedProx, with or without WSA.
    Fed(fed::FedArgs),
    /// The steps of a federated run that the Flower apps in `flower/` hand to the engine: the
    /// server's start and end of round, a client's local training (files in, files out).
    Flower(flower::FlowerArgs),
    /// The paper's claims over seeds: every cell of a spec (mode connectivity, federated,
    /// ablations, Gaussianity), resumable, then a report with paired confidence intervals.
    Reproduce(reproduce::ReproduceArgs),
    /// The 2-D loss plane through a method's A, B and a third model (a trained curve's control
    /// point, or a model file): plane.csv, plane.png, summary.json and the models spanning it.
    Plane(plane::PlaneArgs),
    /// The weight scopes of every tensor of two checkpoints of any architecture (safetensors),
    /// those that differ most first; with --out the files and the merged checkpoint.
    Scopes(scopes::ScopesArgs),
    /// The guided tour on paper: runs every step and writes the students' worksheet and the
    /// teacher's notes with the expected answers from that run (printable HTML).
    Tour(tour::TourArgs),
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
        /// Show this tour file instead of the shipped tour: a translation (tour/tour.de.ron) or a
        /// teacher's own, in the shipped tour's format (docs/tour.md).
        #[arg(long, value_name = "FILE")]
        tour_file: Option<PathBuf>,
        /// Classroom mode: hide the advanced controls (switch it off in the app).
        #[arg(long)]
        classroom: bool,
        /// Classroom mode that cannot be switched off in the app (for students' machines).
        #[arg(long)]
        classroom_locked: bool,
    },
}

fn main() {
    allocator::configure();
    let cli: Cli = args::parse();
    let outcome = match cli.command {
        Some(Command::Connect(args)) => connect::run(args),
        Some(Command::Pair(args)) => pair::run(args),
        Some(Command::Fed(args)) => fed::run(args),
        Some(Command::Flower(args)) => flower::run(args),
        Some(Command::Reproduce(args)) => reproduce::run(args),
        Some(Command::Plane(args)) => plane::run(args),
        Some(Command::Scopes(args)) => scopes::run(args),
        Some(Command::Tour(args)) => tour::run(args),
        Some(Command::Devices) => list_devices(),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::BenchFirstStep(args)) => bench::first_step(args),
        Some(Command::App { config, autorun, frame_log, tour, tour_file, classroom, classroom_locked }) => {
            open_app(AppLaunch { config, autorun, frame_log, tour, tour_file, classroom, classroom_locked })
        }
        None => connect::run(cli.connect),
    };
    if let Err(error) = outcome {
        eprintln!("error: {}", args::one_line(&error));
        std::process::exit(1);
    }
}

/// What `wsa-lab app` hands to the app's binary.
struct AppLaunch {
    config: Option<PathBuf>,
    autorun: bool,
    frame_log: bool,
    tour: Option<String>,
    tour_file: Option<PathBuf>,
    classroom: bool,
    classroom_locked: bool,
}

/// The app's binary, `wsa-lab-app`, is built and installed beside this one.
const APP_BINARY: &str = "wsa-lab-app";

/// Starts the desktop app's own binary (the CLI links no GUI) and exits as it does; it prints
/// its own errors (no display, a bad config), so only a missing binary is said here.
fn open_app(launch: AppLaunch) -> Result<()> {
    if let Some(path) = &launch.config {
        // Read here first, so that a bad file is refused in the CLI's words before a window opens.
        ConnectConfig::read_file(path)?;
    }
    if let Some(path) = &launch.tour_file {
        wsa_tour::Tour::read_file(path)?;
    }
    let here = std::env::current_exe().context("finding this program's folder")?;
    let app = here.with_file_name(format!("{APP_BINARY}{}", std::env::consts::EXE_SUFFIX));
    if !app.is_file() {
        bail!(
            "the desktop app is not built: {} is missing; build it with `cargo build --release --bin {APP_BINARY}`",
            app.display()
        );
    }
    let mut command = std::process::Command::new(&app);
    if let Some(path) = &launch.config {
        command.arg("--config").arg(path);
    }
    let flags = [
        (launch.autorun, "--autorun"),
        (launch.frame_log, "--frame-log"),
        (launch.classroom, "--classroom"),
        (launch.classroom_locked, "--classroom-locked"),
    ];
    for (on, flag) in flags {
        if on {
            command.arg(flag);
        }
    }
    if let Some(step) = &launch.tour {
        command.arg("--tour").arg(step);
    }
    if let Some(path) = &launch.tour_file {
        command.arg("--tour-file").arg(path);
    }
    let status = command.status().with_context(|| format!("starting {}", app.display()))?;
    std::process::exit(status.code().unwrap_or(1));
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
