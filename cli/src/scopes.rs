//! `wsa-lab scopes A.safetensors B.safetensors`: the weight scopes of every tensor of two
//! checkpoints of any architecture, the tensors whose scopes differ most first, and (with
//! `--out`) the report's files and the merged checkpoint. Both files are read tensor by tensor,
//! so checkpoints larger than memory are fine. The statistics are computed on the `--device`
//! chosen: our WGSL kernels on a GPU, the CPU path otherwise.

use crate::common::check_out_folder;
use anyhow::{Context, Result};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;
use wsa_core::checkpoint::{self, Comparison, MergeOptions};
use wsa_core::device::{self, DeviceChoice};
use wsa_core::scope::FusionRule;
use wsa_figures::files;

#[derive(clap::Args)]
pub struct ScopesArgs {
    /// The first checkpoint (safetensors; float32, float16, bfloat16 or float64 tensors).
    a: PathBuf,
    /// The second checkpoint: the same tensor names and shapes as the first.
    b: PathBuf,
    /// Weight of B in the merged checkpoint written with --out: (1 - alpha) A + alpha B.
    #[arg(long, default_value_t = 0.5, value_parser = crate::args::number)]
    alpha: f64,
    /// Map each merged tensor onto the fused scope of A's and B's (post-hoc rescaling: a
    /// baseline, not WSA).
    #[arg(long)]
    rescale: bool,
    /// How A's and B's scopes become the rescaling target.
    #[arg(long, default_value = "moment-matching")]
    fusion: String,
    /// Tensors listed here and drawn in scopes.png (at most 24), those whose scopes differ most
    /// first.
    #[arg(long, default_value_t = 9, value_parser = crate::args::whole::<usize>)]
    top: usize,
    /// Histogram bins per tensor.
    #[arg(long, default_value_t = checkpoint::compare::DEFAULT_BINS, value_parser = crate::args::whole::<usize>)]
    bins: usize,
    /// Write scopes.json, scopes.csv, scopes.png and the merged checkpoint here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where the statistics are computed: gpu (our WGSL kernels on any adapter, lavapipe
    /// included), cpu, or auto (a hardware GPU if there is one, else the CPU).
    #[arg(long, default_value = "auto")]
    device: String,
}

/// The most tensors drawn in scopes.png (8 rows of 3 panels).
const MAX_TOP: usize = 24;

fn open(path: &Path) -> wsa_core::Result<BufReader<File>> {
    let file = File::open(path).map_err(|e| wsa_core::WsaError::io(path, e))?;
    Ok(BufReader::with_capacity(1 << 20, file))
}

pub fn run(args: ScopesArgs) -> Result<()> {
    let options = MergeOptions {
        alpha: args.alpha,
        rescale: args.rescale,
        fusion: FusionRule::from_name(&args.fusion).context("in --fusion")?,
    };
    options.check().context("in --alpha")?;
    if args.top == 0 || args.top > MAX_TOP {
        anyhow::bail!("--top {} is out of range: list and draw 1 to {MAX_TOP} tensors (scopes.csv has all)", args.top);
    }
    if args.bins == 0 || args.bins > 10_000 {
        anyhow::bail!("--bins {} is out of range: choose 1 to 10000 bins", args.bins);
    }
    if let Some(out) = &args.out {
        check_out_folder(out)?;
    }
    let choice: DeviceChoice = args.device.parse()?;
    // The files are checked before a GPU is looked for, so that a refusal comes at once and in
    // its one sentence: looking loads the graphics drivers, which take a while and may print
    // warnings of their own (Mesa's about XDG_RUNTIME_DIR where it is not set).
    let header = |path: &Path| checkpoint::Header::read(&mut open(path)?, path);
    checkpoint::compare::check_same_tensors(&header(&args.a)?, &header(&args.b)?)?;
    let device = device::select(choice)?;
    let started = Instant::now();
    let files = [args.a.as_path(), args.b.as_path()];
    let sources = [&mut open(&args.a)?, &mut open(&args.b)?];
    let comparison = if device.is_gpu {
        checkpoint::compare_on_device(&device.device, files, sources, args.bins)?
    } else {
        checkpoint::compare(files, sources, args.bins)?
    };
    print!("{}", table(&comparison, args.top));
    let compared = started.elapsed().as_secs_f64();
    if let Some(out) = &args.out {
        let written = files::write(out, files::checkpoint_scopes(&comparison, args.top)?)?;
        let name = format!("merged-alpha{}{}.safetensors", args.alpha, if args.rescale { "-rescaled" } else { "" });
        let merged_path = out.join(&name);
        let merged = std::cell::Cell::new(None);
        wsa_core::io::write_atomic_with(&merged_path, |sink| {
            merged.set(Some(checkpoint::merge(files, [&mut open(&args.a)?, &mut open(&args.b)?], options, sink)?));
            Ok(())
        })?;
        let report = merged.take().context("the merge returned no report")?;
        println!(
            "merged: {} ({} tensors merged, {} copied from A)",
            options.describe(),
            report.merged,
            report.copied.len()
        );
        println!("wrote {} and {name} to {}", written.join(", "), out.display());
    }
    let seconds = started.elapsed().as_secs_f64();
    let memory = peak_memory_mib().map(|m| format!("; peak memory {m:.0} MiB")).unwrap_or_default();
    // On stdout with the timings it explains (stderr holds only a refusal's one sentence).
    println!("statistics computed on: {}", device.description);
    println!(
        "{} tensors, {} values per checkpoint: compared in {compared:.2} s, {seconds:.2} s in all{memory}",
        comparison.tensors.len(),
        comparison.values
    );
    Ok(())
}

/// The `top` tensors whose scopes differ most, then what was skipped.
fn table(comparison: &Comparison, top: usize) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let sorted = comparison.by_difference();
    let width = sorted.iter().take(top).map(|t| t.name.len()).max().unwrap_or(6).clamp(6, 48);
    let _ = writeln!(
        s,
        "{:<width$} {:>16} {:>10} {:>10} {:>10} {:>10} {:>9} {:>7} {:>7}",
        "tensor", "shape", "mean A", "std A", "mean B", "std B", "sym KL", "KS A", "KS B"
    );
    for t in sorted.iter().take(top) {
        let shape: Vec<String> = t.shape.iter().map(usize::to_string).collect();
        let _ = writeln!(
            s,
            "{:<width$} {:>16} {:>10.4} {:>10.4} {:>10.4} {:>10.4} {:>9.4} {:>7.4} {:>7.4}",
            t.name,
            shape.join("x"),
            t.a.mean,
            t.a.std,
            t.b.mean,
            t.b.std,
            t.symmetric_kl,
            t.a.ks_distance,
            t.b.ks_distance
        );
    }
    if sorted.len() > top {
        let _ = writeln!(s, "... and {} more (all in scopes.csv with --out)", sorted.len() - top);
    }
    let non_finite: u64 = comparison.tensors.iter().map(|t| t.a.non_finite + t.b.non_finite).sum();
    if non_finite > 0 {
        let _ = writeln!(s, "warning: {non_finite} NaN or infinite value(s), left out of the statistics");
    }
    if !comparison.skipped.is_empty() {
        let names: Vec<String> = comparison.skipped.iter().map(|t| format!("{} ({})", t.name, t.dtype)).collect();
        let _ = writeln!(s, "not floats, listed and skipped: {}", names.join(", "));
    }
    s
}

/// The most memory this process has held (its peak resident set), where the system says.
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
