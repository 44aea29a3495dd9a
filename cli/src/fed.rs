//! `wsa-lab fed`: federated learning on Dirichlet-split clients (FedAvg or FedProx, with or
//! without WSA, or all four with --compare), its table and its files.

use crate::args;
use crate::common::{CommonArgs, check_out_folder};
use crate::progress::Progress;
use crate::table;
use anyhow::{Context, Result};
use std::path::PathBuf;
use wsa_core::device;
use wsa_core::experiment::federated::{self, AggregationKind, ClientSplit, FedConfig, FedTarget};
use wsa_figures::files;

#[derive(clap::Args)]
pub struct FedArgs {
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
    #[arg(long, default_value_t = federated::DEFAULT_MU, value_parser = args::number)]
    mu: f64,
    /// Clients add the WSA term toward the target scope (see --target).
    #[arg(long)]
    wsa: bool,
    /// Clients with fewer samples are small (see --drop-small).
    #[arg(long, value_parser = args::whole::<usize>)]
    min_client_samples: Option<usize>,
    /// Leave small clients out of every round instead of keeping them.
    #[arg(long)]
    drop_small: bool,
    /// Where the WSA target comes from each round: fused (from the clients' scopes), global (the
    /// global model's scope) or initial (the initial model's scope, fixed).
    #[arg(long)]
    target: Option<String>,
    /// Run FedAvg, FedAvg+WSA, FedProx and FedProx+WSA on the same split and seed.
    #[arg(long)]
    compare: bool,
    /// Report the first round reaching this test accuracy.
    #[arg(long, value_parser = args::number)]
    target_accuracy: Option<f64>,
    /// Run the federation at this many seeds (seed, seed + 1, ...): the table adds every seed's
    /// final accuracy (the files and plots are the first seed's; one seed is an anecdote).
    #[arg(long, value_parser = args::whole::<usize>)]
    seeds: Option<usize>,
    #[arg(long, default_value = "out/fed")]
    out: PathBuf,
}

pub fn run(args: FedArgs) -> Result<()> {
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
        if let Some(v) = args.seeds {
            config.seeds = v;
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
        if let Some(target) = &args.target {
            config.target = FedTarget::from_name(target).context("in --target")?;
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
    let variants = config.variants(args.compare, args.mu);
    if args.target.is_some() && !variants.iter().any(|&(_, wsa)| wsa) {
        anyhow::bail!("--target says where WSA's target comes from, but this run has no WSA: add --wsa (or --compare)");
    }
    check_out_folder(&args.out)?;
    let device = device::select_for(args.common.device.parse()?, config.flops_per_step())?;
    eprintln!("device: {}", device.description);
    eprintln!(
        "fed: {} · {} clients ({:?}) · C = {} · E = {} · {} rounds · lambda {} · target {}",
        config.data.dataset.label(),
        config.clients,
        config.split,
        config.fraction,
        config.local.epochs,
        config.rounds,
        config.wsa.lambda,
        config.target.label()
    );
    let mut progress = Progress::new();
    let outcome = wsa_core::wait(federated::run(&config, &variants, &device, &mut progress))?;
    let result = &outcome.result;
    let seconds = progress.seconds();
    progress.finish();
    let mut written = files::write(&args.out, files::federated(result, Some(seconds))?)?;
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
        "{} with {} clients (sizes {}..{}), {} rounds, {:.1} s ({:.2} s per round per run{})",
        result.dataset,
        result.clients.len(),
        result.clients.iter().map(|c| c.samples).min().unwrap_or(0),
        result.clients.iter().map(|c| c.samples).max().unwrap_or(0),
        config.rounds,
        seconds,
        seconds / (config.rounds * result.runs.len() * config.seeds).max(1) as f64,
        if config.seeds > 1 { format!(", {} seeds", config.seeds) } else { String::new() }
    );
    println!("wrote {} files to {}", written.len(), args.out.display());
    // A comparison where some runs finished is a result; one where none did is a failure, and a
    // script must see it in the exit status (the files above say where each run stopped).
    if let Some(first) =
        result.runs.iter().map(|r| r.diverged.as_ref()).collect::<Option<Vec<_>>>().and_then(|d| d.first().copied())
    {
        anyhow::bail!(
            "every run diverged (the first in round {}: {}); lower the learning rate or lambda",
            first.round,
            first.reason.trim_end_matches("; lower the learning rate or lambda")
        );
    }
    Ok(())
}
