//! `wsa-lab plane`: the 2-D loss plane through one method's A and B (B as the method aligned it)
//! and a third model: by default the control point of a curve trained between them, or a model
//! from a file. On the digits by default, like `connect`.

use crate::common::check_out_folder;
use crate::connect::{ConnectArgs, effective_config};
use crate::progress::Progress;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::time::Instant;
use wsa_core::data;
use wsa_core::device::{self, DeviceChoice};
use wsa_core::experiment::connect::{self, ConnectConfig};
use wsa_core::experiment::method::Method;
use wsa_core::experiment::plane::{self, PlaneConfig};
use wsa_core::train::DeviceData;
use wsa_figures::files;

#[derive(clap::Args)]
pub struct PlaneArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The method whose A and B span the plane (default: the config's first).
    #[arg(long)]
    method: Option<String>,
    /// The third model: `curve` (the control point of a curve trained between A and B; its kind
    /// from --curve, Bezier by default) or a safetensors file of the same architecture.
    #[arg(long, default_value = "curve")]
    third: String,
    /// Grid points per side (the plane costs grid² evaluations of the test set).
    #[arg(long, default_value_t = 25, value_parser = crate::args::whole::<usize>)]
    grid: usize,
    /// Margin around the three models, as a share of their extent.
    #[arg(long, default_value_t = 0.2, value_parser = crate::args::number)]
    margin: f64,
}

pub fn run(args: PlaneArgs) -> Result<()> {
    let mut config = effective_config(&args.connect)?;
    let plane_config = PlaneConfig { grid: args.grid, margin: args.margin };
    plane_config.validate()?;
    let method = match &args.method {
        Some(name) => Method::from_name(name).context("in --method")?,
        None => *config.methods.first().context("the config lists no method")?,
    };
    // A third model from a file is checked before the pair trains, not after.
    let third_file = (args.third != "curve").then(|| PathBuf::from(&args.third));
    if let Some(path) = third_file.as_ref().filter(|p| !p.is_file()) {
        bail!("--third `{}`: neither `curve` nor a model file that exists", path.display());
    }
    let curve_config = config.curve.take().unwrap_or_default();
    config.methods = vec![method];
    config.seeds = 1;
    if args.connect.common.printed(&config)? {
        return Ok(());
    }
    let out = args.connect.out.clone().unwrap_or_else(|| PathBuf::from("out/plane"));
    check_out_folder(&out)?;
    let choice: DeviceChoice = args.connect.common.device.parse()?;
    let device = device::select_for(choice, config.flops_per_step())?;
    eprintln!("device: {}", device.description);
    let mut progress = Progress::new();
    let outcome = wsa_core::wait(connect::run(&config, &device, &mut progress))?;
    let pair = outcome.models.first().context("the run returned no trained pair")?;
    let computed = Instant::now();
    // The plane and its third model (a file's is not written again).
    let (plane, third) = if let Some(path) = &third_file {
        let loaded = wsa_core::io::load_model_for(path, &pair.a.layout)
            .with_context(|| format!("--third {}: the plane's third model", path.display()))?;
        let name = path.file_stem().map_or("third".to_string(), |s| s.to_string_lossy().to_string());
        let split = data::load(&config.data, config.seed)?;
        let test = DeviceData::upload(&split.test, &device.device);
        let reset = config.batch_norm_reset(&pair.a.layout, &split.train, &device.device);
        eprintln!("evaluating the {0} x {0} plane", plane_config.grid);
        let computed = wsa_core::wait(plane::evaluate_plane(
            &plane_config,
            (&pair.a, &pair.b, &loaded.params),
            &name,
            None,
            &test,
            reset.as_ref(),
            &device.device,
            &mut progress,
        ))?;
        (computed, None)
    } else {
        eprintln!(
            "training a {} curve between {method}'s A and B, then the {1} x {1} plane",
            curve_config.kind.name(),
            plane_config.grid
        );
        let with_curve = ConnectConfig { curve: Some(curve_config.clone()), ..config.clone() };
        let outcome = wsa_core::wait(plane::through_curve(&with_curve, pair, &plane_config, &device, &mut progress))?;
        (outcome.plane, Some(outcome.third))
    };
    let label = plane.models[2].label.clone();
    let kind = plane.curve.as_ref().map(|(kind, _)| *kind);
    let plane_seconds = computed.elapsed().as_secs_f64();
    let seconds = progress.seconds();
    progress.finish();
    let (best, worst) = plane.loss_range();
    let summary = serde_json::json!({
        "config": config,
        "method": method.name(),
        "third": label,
        "curve": kind.map(|_| &curve_config),
        "plane_config": plane_config,
        "plane": plane,
        "seconds": seconds,
        "plane_seconds": plane_seconds,
        "device": device.description,
    });
    // The models that span the plane, so that any grid point can be rebuilt from them
    // (A + w_B (B − A) + w_θ (θ − A), `Plane::model_at`) or the plane computed again.
    let models: Vec<(&str, &wsa_core::model::HostParams)> =
        [("A", &pair.a), ("B", &pair.b)].into_iter().chain(third.as_ref().map(|t| ("theta", t))).collect();
    let written = files::write(&out, files::plane(&plane, &summary, &models)?)?;
    for m in &plane.models {
        println!("{:<28} at ({:>9.4}, {:>9.4})", m.label, m.x, m.y);
    }
    let (grid, barrier) = (plane_config.grid, outcome.result.methods[0].barriers.loss);
    println!(
        "{method}: {grid} x {grid} plane, test loss {best:.4} to {worst:.4}; line barrier {barrier:.4}; {plane_seconds:.2} s for the plane, {seconds:.1} s in all"
    );
    println!("wrote {} files to {}", written.len(), out.display());
    Ok(())
}
