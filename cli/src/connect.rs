//! `wsa-lab connect` (and `wsa-lab` alone): the mode-connectivity experiment, its table in the
//! terminal and its files (summary.json, CSVs, figures, models).

use crate::args;
use crate::common::{CommonArgs, check_out_folder};
use crate::progress::Progress;
use crate::table;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use wsa_core::device::{self, DeviceChoice};
use wsa_core::experiment::connect::{self, ConnectConfig, PairDifference};
use wsa_core::experiment::curve::{CurveConfig, CurveKind};
use wsa_core::experiment::method::Method;
use wsa_figures::files;

#[derive(clap::Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Epochs per model (overrides the config).
    #[arg(long, value_parser = args::whole::<usize>)]
    pub epochs: Option<usize>,
    /// The methods to compare, comma-separated: plain, wsa, wm (weight matching), wm+wsa,
    /// rescale (post-hoc scope rescaling, a baseline), rescale+wsa, and with REPAIR (each merged
    /// unit's activation statistics reset to A's and B's interpolation) repair, wsa+repair,
    /// wm+repair, wm+wsa+repair.
    #[arg(long)]
    pub methods: Option<String>,
    /// Run the experiment at this many seeds (seed, seed + 1, ...) and report the mean ± std
    /// over them (overrides the config; one seed is an anecdote).
    #[arg(long, value_parser = args::whole::<usize>)]
    pub seeds: Option<usize>,
    /// Train a mode-connecting curve beside every method's line: bezier or polychain.
    #[arg(long)]
    pub curve: Option<String>,
    /// Epochs of the curve's control point (with --curve; default 5).
    #[arg(long, value_parser = args::whole::<usize>)]
    pub curve_epochs: Option<usize>,
    /// What differs between A and B: learning-rate, different-init, same-init, batch-size,
    /// weight-decay, optimizer, non-iid-data, disjoint-data.
    #[arg(long)]
    pub pair: Option<String>,
    /// Folder for the results (summary.json, CSVs, PNGs, models; default out/connect, for
    /// `plane` out/plane).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn effective_config(args: &ConnectArgs) -> Result<ConnectConfig> {
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

pub fn run(args: ConnectArgs) -> Result<()> {
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
    let mut progress = Progress::new();
    let outcome = wsa_core::wait(connect::run(&config, &device, &mut progress))?;
    let seconds = progress.seconds();
    progress.finish();
    let mut written = files::write(&out, files::connect_tables(&outcome.result, Some(seconds))?)?;
    written.extend(files::write(&out, files::connect_figures(&outcome.result))?);
    written.extend(files::write(&out, files::models(&outcome.models)?)?);
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
