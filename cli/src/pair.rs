//! `wsa-lab pair A.safetensors B.safetensors`: two models the user trained — PyTorch MLPs or
//! CNNs read by their names and shapes (and a layout file beside them), or models WSA Lab saved —
//! on the user's data or ours: what was inferred, then every method that works on a given pair
//! (no training: plain interpolation, weight matching, rescaling, REPAIR), with the same table,
//! summary.json, CSVs and figures as `connect`.

use crate::common::{CommonArgs, check_out_folder};
use crate::progress::Progress;
use crate::table;
use anyhow::Result;
use std::path::{Path, PathBuf};
use wsa_core::device::{self, DeviceChoice};
use wsa_core::experiment::connect::{self, ConnectConfig, GIVEN_PAIR_METHODS, GivenPair};
use wsa_core::experiment::method::Method;
use wsa_figures::files;

#[derive(clap::Args)]
pub struct PairArgs {
    /// Model A: a PyTorch state_dict saved as safetensors (its layout from the names and shapes,
    /// and from `A.layout.json` beside it where they do not say enough; docs/layout-file.md), or
    /// a model WSA Lab saved.
    a: PathBuf,
    /// Model B: the same architecture as A.
    b: PathBuf,
    #[command(flatten)]
    common: CommonArgs,
    /// The methods to compare, comma-separated (default plain,wm,rescale,repair,wm+repair; the
    /// WSA methods train the pair, which a given pair has done already).
    #[arg(long)]
    methods: Option<String>,
    /// Folder for the results (default out/pair).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: PairArgs) -> Result<()> {
    let a = wsa_core::infer::load_user_model(&args.a)?;
    let b = wsa_core::infer::load_user_model(&args.b)?;
    for (name, loaded) in [("A", &a), ("B", &b)] {
        if let Some(notice) = loaded.report.notice() {
            eprintln!("model {name}: {notice}");
        }
    }
    let pair =
        GivenPair::new(a.params, b.params, [wsa_core::io::file_name(&args.a), wsa_core::io::file_name(&args.b)])?;
    let methods = match args.methods.as_deref() {
        Some(text) => Method::parse_list(text)?,
        None => GIVEN_PAIR_METHODS.to_vec(),
    };
    let config = args.common.config(|config: &mut ConnectConfig| {
        *config = pair.config(config.clone(), methods.clone())?;
        Ok(())
    })?;
    if args.common.printed(&config)? {
        return Ok(());
    }
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("out/pair"));
    check_out_folder(&out)?;
    println!("{}", describe(pair.layout(), &args.a));
    let choice: DeviceChoice = args.common.device.parse()?;
    let device = device::select_for(choice, config.flops_per_step())?;
    eprintln!("device: {}", device.description);
    let mut progress = Progress::new();
    let outcome =
        wsa_core::wait(connect::evaluate_given_pair(&config, &device, &pair, &wsa_core::data::Disk, &mut progress))?;
    let seconds = progress.seconds();
    progress.finish();
    let result = &outcome.result;
    let mut written = files::write(&out, files::connect_tables(result, Some(seconds))?)?;
    written.extend(files::write(&out, files::connect_figures(result))?);
    written.extend(files::write(&out, files::models(&outcome.models)?)?);
    println!("{}", table::table(result));
    for warning in &result.warnings {
        println!("warning: {warning}");
    }
    println!(
        "{} test samples of {}, {seconds:.1} s; wrote {} files to {}",
        result.test_samples,
        result.dataset,
        written.len(),
        out.display()
    );
    Ok(())
}

/// What was read from model A's file: the architecture, its parameters and their shapes.
fn describe(layout: &wsa_core::model::ModelLayout, path: &Path) -> String {
    use std::fmt::Write as _;
    let mut s = format!("{}: {}\n", path.display(), layout.summary());
    for p in &layout.params {
        let _ = writeln!(s, "  {:<32} {:?}", p.path, p.shape);
    }
    s
}
