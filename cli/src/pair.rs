//! `wsa-lab pair A.safetensors B.safetensors`: two models the user trained — PyTorch MLPs or
//! CNNs read by their names and shapes (and a layout file beside them), or models WSA Lab saved —
//! on the user's data or ours: what was inferred, then every method that works on a given pair
//! (no training: plain interpolation, weight matching, rescaling, REPAIR), with the same table,
//! summary.json, CSVs and figures as `connect`.

use crate::common::{CommonArgs, check_out_folder};
use crate::progress::Progress;
use crate::table;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use wsa_core::data;
use wsa_core::device::{self, DeviceChoice};
use wsa_core::experiment::connect::{self, ConnectConfig, ConnectResult, TrainedPair};
use wsa_core::experiment::method::{Method, Training};
use wsa_core::experiment::versioned::CONNECT_VERSION;
use wsa_figures::files;

/// The methods that need no training, in the order the table lists them.
const GIVEN_PAIR_METHODS: &str = "plain,wm,rescale,repair,wm+repair";

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
    a.params.layout.check_compatible(&b.params.layout).context("models A and B")?;
    // The same parameters can belong to different models (another activation, stride or pooling
    // in a layout file): B would then be evaluated as A's model.
    if a.params.layout.config != b.params.layout.config {
        bail!(
            "models A and B have the same parameters but different architectures ({} and {}): give both the same layout file",
            a.params.layout.config.label(),
            b.params.layout.config.label()
        );
    }
    let layout = &a.params.layout;
    for (name, loaded) in [("A", &a), ("B", &b)] {
        if let Some(notice) = loaded.report.notice() {
            eprintln!("model {name}: {notice}");
        }
    }
    let methods = Method::parse_list(args.methods.as_deref().unwrap_or(GIVEN_PAIR_METHODS)).context("in --methods")?;
    if let Some(trained) = methods.iter().find(|m| m.training == Training::Wsa) {
        bail!(
            "--methods {trained} trains the pair with WSA, and a given pair is trained already; compare it with {GIVEN_PAIR_METHODS}"
        );
    }
    let config = args.common.config(|config: &mut ConnectConfig| {
        config.model = layout.config.clone();
        config.methods = methods.clone();
        Ok(())
    })?;
    if args.common.printed(&config)? {
        return Ok(());
    }
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("out/pair"));
    check_out_folder(&out)?;
    let split = data::load(&config.data, config.seed)?;
    let inputs: usize = layout.sample_shape.iter().product();
    let data_inputs = split.train.dim();
    if inputs != data_inputs || layout.num_classes != split.train.num_classes {
        bail!(
            "the models take {inputs} inputs ({:?}) and give {} classes, but {} has {data_inputs} values per sample ({:?}) in {} classes: choose the data the models were trained for",
            layout.sample_shape,
            layout.num_classes,
            config.data.dataset.label(),
            split.train.sample_shape,
            split.train.num_classes
        );
    }
    println!("{}", describe(layout, &args.a));
    let choice: DeviceChoice = args.common.device.parse()?;
    let device = device::select_for(choice, config.flops_per_step())?;
    eprintln!("device: {}", device.description);
    let mut progress = Progress::new();
    let mut results = Vec::new();
    let mut pairs = Vec::new();
    for &method in &methods {
        let (result, pair) =
            wsa_core::wait(connect::evaluate_pair(&config, &device, method, &a.params, &b.params, &mut progress))
                .with_context(|| format!("method {method}"))?;
        results.push(result);
        pairs.push(TrainedPair { method, ..pair });
    }
    let seconds = progress.seconds();
    progress.finish();
    let chance = 1.0 / layout.num_classes as f64;
    let mut warnings = Vec::new();
    if let Some(first) = results.first() {
        for (name, accuracy) in [("A", first.endpoint_a.accuracy), ("B", first.endpoint_b.accuracy)] {
            if accuracy < 2.0 * chance {
                warnings.push(format!(
                    "model {name} scores {accuracy:.3} on this data, under twice chance ({chance:.3}): was it trained on this data, with this normalisation?"
                ));
            }
        }
    }
    let name = |p: &Path| p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned());
    let result = ConnectResult {
        version: CONNECT_VERSION,
        dataset: config.data.dataset.label(),
        train_samples: split.train.len(),
        test_samples: split.test.len(),
        parameters: layout.num_parameters(),
        device: device.description.clone(),
        difference: format!("a given pair: {} and {}", name(&args.a), name(&args.b)),
        pairs: Vec::new(),
        methods: results,
        warnings,
        seeds: Vec::new(),
        config,
    };
    let mut written = files::write(&out, files::connect_tables(&result, Some(seconds))?)?;
    written.extend(files::write(&out, files::connect_figures(&result))?);
    written.extend(files::write(&out, files::models(&pairs)?)?);
    println!("{}", table::table(&result));
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
    let mut s = format!(
        "{}: {} · input {:?} · {} classes · {} parameters\n",
        path.display(),
        layout.config.label(),
        layout.sample_shape,
        layout.num_classes,
        layout.num_parameters()
    );
    for p in &layout.params {
        let _ = writeln!(s, "  {:<32} {:?}", p.path, p.shape);
    }
    s
}
