//! `wsa-lab bench`: the speed numbers of `docs/benchmarks.md`, measured in one run and printed as
//! ratios — our kernels against the device's copy bandwidth and against the CPU implementation,
//! training throughput on the GPU against the CPU, and the time to the first training step.
//!
//! Timing lives here, in the front end, not in core (core stays free of clocks so it runs in a
//! browser). Every GPU timing ends with `Device::sync`, so it measures finished work.

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;
use wsa_core::data::{Dataset, DatasetSpec};
use wsa_core::device::{self, ComputeDevice, DeviceChoice};
use wsa_core::experiment::connect::ConnectConfig;
use wsa_core::kernels::{layer_stats, lerp, weighted_sum};
use wsa_core::model::{ModelConfig, ModelLayout};
use wsa_core::rng::Rng;
use wsa_core::scope::{LayerSelection, Scope, device_histograms};
use wsa_core::train::{DeviceData, OptimizerKind, TrainConfig, Trainer, WsaGradient};
use wsa_core::wait;
use wsa_core::wsa::{WsaConfig, WsaTerm};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Which devices: both (the CPU and, where one exists, the GPU), gpu or cpu.
    #[arg(long, default_value = "both")]
    pub device: String,
    /// Model sizes for the kernel benchmarks, in millions of parameters.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100", value_parser = crate::args::whole::<usize>)]
    pub sizes: Vec<usize>,
    /// Batch sizes for the training benchmarks.
    #[arg(long, value_delimiter = ',', default_value = "32,128,512", value_parser = crate::args::whole::<usize>)]
    pub batches: Vec<usize>,
    /// Which parts: kernels, train, dispatches, startup, align (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "kernels,train,dispatches,startup,align")]
    pub only: Vec<String>,
    /// Timed repetitions per kernel measurement (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = crate::args::whole::<usize>)]
    pub repeats: usize,
    /// The Python whose PyTorch runs the twin of the training rows on the CPU
    /// (scripts/torch_twin.py; default: $TORCH_PYTHON, else python3); the bench says so when it
    /// cannot import torch.
    #[arg(long)]
    pub torch_python: Option<String>,
    /// Where the JSON with every number goes.
    #[arg(long, default_value = "out/bench/bench.json")]
    pub out: PathBuf,
}

/// Hidden: one fresh process measuring its own time to the first training step.
#[derive(clap::Args)]
pub struct FirstStepArgs {
    #[arg(long)]
    pub device: DeviceChoice,
    #[arg(long)]
    pub model: String,
    /// First run `experiment::warm_up` (what the app does while the user sets up), then time
    /// the first step of a fresh trainer.
    #[arg(long)]
    pub warm_up: bool,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let devices = devices(&args.device)?;
    let mut report = serde_json::Map::new();
    report.insert("devices".into(), json!(devices.iter().map(|d| d.description.clone()).collect::<Vec<_>>()));
    for part in &args.only {
        let value = match part.as_str() {
            "kernels" => kernels(&devices, &args.sizes, args.repeats.max(1))?,
            "train" => {
                let python = args.torch_python.clone().or_else(|| std::env::var("TORCH_PYTHON").ok());
                training(&devices, &args.batches, python.as_deref().unwrap_or("python3"))?
            }
            "dispatches" => dispatches(&devices, &args.batches)?,
            "startup" => startup(&devices)?,
            "align" => alignment(args.repeats.max(1))?,
            other => bail!("unknown bench part {other:?}: choose among kernels, train, dispatches, startup, align"),
        };
        report.insert(part.clone(), value);
    }
    let text = serde_json::to_string_pretty(&Value::Object(report))?;
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    wsa_core::io::write_atomic(&args.out, text.as_bytes())?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

fn devices(choice: &str) -> Result<Vec<ComputeDevice>> {
    let gpu = || device::select(DeviceChoice::Gpu);
    Ok(match choice {
        "cpu" => vec![device::cpu()],
        "gpu" => vec![gpu()?],
        "both" => match gpu() {
            Ok(g) => vec![device::cpu(), g],
            Err(e) => {
                eprintln!("no GPU adapter ({e}); benchmarking the CPU only");
                vec![device::cpu()]
            }
        },
        other => bail!("--device {other:?}: choose both, gpu or cpu"),
    })
}

fn sync(device: &Device) -> Result<()> {
    device.sync().map_err(|e| anyhow::anyhow!("the device failed: {e:?}"))
}

/// Median seconds of `repeats` runs of `op` after one untimed run (which compiles the kernels).
/// `op` returns what it produced, kept alive until the device has finished it.
fn median_seconds<T>(device: &Device, repeats: usize, mut op: impl FnMut() -> Result<T>) -> Result<f64> {
    let warm = op()?;
    sync(device)?;
    drop(warm);
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let started = Instant::now();
        let out = op()?;
        sync(device)?;
        times.push(started.elapsed().as_secs_f64());
        drop(out);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// A model of `params` parameters as 8 equal flat layers of seeded normal values.
fn model_of(params: usize, seed: u64, device: &Device) -> Vec<Tensor<1>> {
    let layer = params / 8;
    let mut rng = Rng::new(seed);
    let values: Vec<f32> = (0..layer).map(|_| (0.05 * rng.normal()) as f32).collect();
    (0..8)
        .map(|k| Tensor::from_data(TensorData::new(values.clone(), [layer]), device) * (1.0 + 0.1 * k as f64))
        .collect()
}

/// One timed kernel operation; it returns its outputs so they live until the device is done.
type KernelOp<'a> = dyn FnMut() -> Result<Vec<Tensor<1>>> + 'a;

fn kernels(devices: &[ComputeDevice], sizes: &[usize], repeats: usize) -> Result<Value> {
    const BINS: usize = 64;
    println!("\nkernels (median of {repeats}; bytes = what the operation must read and write once)");
    println!(
        "{:<28} {:>6} {:>10} {:>10} {:>9} {:>10}   device",
        "operation", "params", "time ms", "GB/s", "of copy", "vs CPU"
    );
    let mut rows = Vec::new();
    for &millions in sizes {
        let n = millions * 1_000_000;
        let mut cpu_times: Vec<f64> = Vec::new();
        for (d, compute) in devices.iter().enumerate() {
            let dev = &compute.device;
            let models: Vec<Vec<Tensor<1>>> = (0..4).map(|k| model_of(n, k + 1, dev)).collect();
            sync(dev)?;
            let layer_sum = |k: usize, weights: &[f32]| -> Vec<Tensor<1>> {
                (0..8)
                    .map(|l| {
                        let inputs: Vec<Tensor<1>> = models[..k].iter().map(|m| m[l].clone()).collect();
                        weighted_sum(&inputs, weights)
                    })
                    .collect()
            };
            let all_layers: Vec<usize> = (0..8).collect();
            let bytes_per_param = 4.0;
            let ops: Vec<(&str, f64, Box<KernelOp>)> = vec![
                ("copy (weighted sum, K=1)", 2.0, Box::new(|| Ok(layer_sum(1, &[1.0])))),
                // The statistics alone (one pass, one read of 4 numbers per layer): what the
                // row below adds to them is the histogram pass and its read.
                (
                    "scope statistics",
                    1.0,
                    Box::new(|| {
                        wait(layer_stats(&models[0]))?;
                        Ok(Vec::new())
                    }),
                ),
                (
                    "scope stats + histograms",
                    2.0,
                    Box::new(|| {
                        wait(device_histograms(&[&models[0]], &all_layers, BINS))?;
                        Ok(Vec::new())
                    }),
                ),
                (
                    "interpolation (lerp)",
                    3.0,
                    Box::new(|| Ok((0..8).map(|l| lerp(models[0][l].clone(), models[1][l].clone(), 0.3)).collect())),
                ),
                ("average of K=4 models", 5.0, Box::new(|| Ok(layer_sum(4, &[0.25; 4])))),
            ];
            let mut timed: Vec<(&str, f64, f64)> = Vec::new();
            for (name, passes, mut op) in ops {
                timed.push((name, passes, median_seconds(dev, repeats, &mut op)?));
            }
            // The copy once more, now that every buffer size has been allocated once: the
            // faster of its two timings is the device's copy rate.
            let again = median_seconds(dev, repeats, || Ok(layer_sum(1, &[1.0])))?;
            timed[0].2 = timed[0].2.min(again);
            let copy_rate = timed[0].1 * bytes_per_param * n as f64 / timed[0].2;
            for (i, (name, passes, seconds)) in timed.into_iter().enumerate() {
                let bytes = passes * bytes_per_param * n as f64;
                let rate = bytes / seconds;
                let vs_cpu = if d == 0 {
                    cpu_times.push(seconds);
                    None
                } else {
                    cpu_times.get(i).map(|cpu| cpu / seconds)
                };
                println!(
                    "{name:<28} {:>5}M {:>10.3} {:>10.2} {:>8.0}% {:>10}   {}",
                    millions,
                    seconds * 1e3,
                    rate / 1e9,
                    100.0 * rate / copy_rate,
                    vs_cpu.map_or("-".to_string(), |r| format!("{r:.1}x")),
                    compute.description
                );
                rows.push(json!({
                    "operation": name, "params": n, "device": compute.description, "seconds": seconds,
                    "bytes": bytes, "bytes_per_second": rate, "fraction_of_copy": rate / copy_rate,
                    "speedup_vs_cpu": vs_cpu,
                }));
            }
        }
    }
    Ok(Value::Array(rows))
}

/// Fashion-MNIST-shaped random data: the sizes matter here, not the content.
/// Weight matching (on the host, one thread, as in every front end) of two independently
/// initialised models of the sizes the issue names: the MLP 784-512-512-10, the CNN preset and
/// the three-stage GroupNorm ResNet (`experiments/models/resnet-gn-32-64-128.json`, whose
/// residual streams are one permutation each) on 28x28 images. Unrelated random models are a
/// hard case: their units match poorly, so the coordinate descent needs more sweeps than for two
/// trained models of one task.
fn alignment(repeats: usize) -> Result<Value> {
    use wsa_core::align::{WeightMatchingConfig, weight_matching};
    use wsa_core::cancel::Silent;
    let resnet: ModelConfig = serde_json::from_str(include_str!("../../experiments/models/resnet-gn-32-64-128.json"))
        .context("experiments/models/resnet-gn-32-64-128.json")?;
    let models = [
        ("MLP 784-512-512-10", ModelConfig::mlp(vec![512, 512])),
        bench_models().swap_remove(1),
        ("ResNet-GN 32-64-128", resnet),
    ];
    let mut rows = Vec::new();
    for (label, config) in models {
        let layout = Arc::new(ModelLayout::new(&config, &[1, 28, 28], 10)?);
        let (a, b) = (layout.init(&mut Rng::new(1)), layout.init(&mut Rng::new(2)));
        let mut times = Vec::with_capacity(repeats);
        let mut sweeps = 0;
        for _ in 0..repeats {
            let started = Instant::now();
            let matching =
                wait(weight_matching(&a, &b, &WeightMatchingConfig::default(), &mut Rng::new(0), &mut Silent))?;
            times.push(started.elapsed().as_secs_f64());
            sweeps = matching.sweeps;
        }
        times.sort_by(f64::total_cmp);
        let seconds = times[times.len() / 2];
        eprintln!("weight matching  {label:<22} {:>8.1} ms  ({sweeps} sweeps, median of {repeats})", seconds * 1e3);
        rows.push(
            json!({ "model": label, "parameters": layout.num_parameters(), "seconds": seconds, "sweeps": sweeps }),
        );
    }
    Ok(json!(rows))
}

fn fashion_sized(samples: usize) -> Dataset {
    let mut rng = Rng::new(7);
    Dataset {
        features: (0..samples * 784).map(|_| rng.normal() as f32).collect(),
        labels: (0..samples).map(|i| (i % 10) as u32).collect(),
        sample_shape: vec![1, 28, 28],
        num_classes: 10,
    }
}

fn bench_models() -> Vec<(&'static str, ModelConfig)> {
    vec![("MLP 784-64-64-10", ModelConfig::default()), ("CNN 16-32 conv3", ModelConfig::cnn(vec![16, 32]))]
}

/// The deeper network of the reproduction: the model of `experiments/reproduce.json`'s ResNet-GN
/// group (a GroupNorm residual CNN), read from the spec, so that its row measures what sets that
/// study's budget. Named as the group's label names it ("ResNet-GN 16-32-64").
fn deeper_model() -> Result<(String, Value)> {
    const SPEC: &str = include_str!("../../experiments/reproduce.json");
    let spec: Value = serde_json::from_str(SPEC).context("experiments/reproduce.json")?;
    /// The first model of kind `stack` under `value`, with the label of the group it lies in.
    fn find<'a>(value: &'a Value, label: Option<&'a str>) -> Option<(&'a str, &'a Value)> {
        match value {
            Value::Object(map) if map.get("kind").and_then(Value::as_str) == Some("stack") => Some((label?, value)),
            Value::Object(map) => {
                let label = map.get("label").and_then(Value::as_str).filter(|l| l.contains("ResNet")).or(label);
                map.values().find_map(|v| find(v, label))
            }
            Value::Array(items) => items.iter().find_map(|v| find(v, label)),
            _ => None,
        }
    }
    let (label, model) =
        find(&spec, None).context("experiments/reproduce.json has no ResNet group with a stack model")?;
    // "Fashion-MNIST · ResNet-GN 16-32-64 (three residual stages, GroupNorm), 4 epochs"
    let name = label.split(" · ").nth(1).unwrap_or(label).split(" (").next().unwrap_or(label).to_string();
    Ok((name, model.clone()))
}

fn model_by_name(name: &str) -> Result<ModelConfig> {
    bench_models()
        .into_iter()
        .find(|(label, _)| label.to_lowercase().starts_with(name))
        .map(|(_, config)| config)
        .with_context(|| format!("unknown bench model {name:?}: mlp or cnn"))
}

/// Adam at `batch`: the training settings of every bench run.
fn bench_training(batch: usize) -> TrainConfig {
    TrainConfig {
        optimizer: OptimizerKind::Adam,
        learning_rate: 1e-3,
        batch_size: batch,
        epochs: 1000,
        ..TrainConfig::default()
    }
}

fn trainer_for(config: &ModelConfig, batch: usize, data: &Dataset, device: &Device) -> Result<(Trainer, WsaTerm)> {
    let layout = Arc::new(ModelLayout::new(config, &data.sample_shape, data.num_classes)?);
    let init = layout.init(&mut Rng::new(1));
    let train = bench_training(batch);
    let layers = LayerSelection::default().select(&layout);
    let target: Vec<Scope> = layers.iter().map(|_| Scope { mean: 0.0, std: 0.05 }).collect();
    let term = WsaConfig::default().term(1.0, &layers, &target);
    Ok((Trainer::new("bench", train, &init, data.len(), device, 3)?, term))
}

/// Steps per second of one trainer: two untimed steps, then steps until 1.5 s or 200 steps.
fn steps_per_second(trainer: &mut Trainer, data: &DeviceData, wsa: Option<&WsaTerm>, device: &Device) -> Result<f64> {
    finished_steps(trainer, data, wsa, device, 2)?;
    let started = Instant::now();
    let mut steps = 0;
    while steps < 3 || (steps < 200 && started.elapsed().as_secs_f64() < 1.5) {
        trainer.train_step(data, wsa);
        steps += 1;
        if steps % 10 == 0 {
            // A read now and then keeps the queue of recorded steps short.
            wait(trainer.take_mean_loss())?;
        }
    }
    wait(trainer.take_mean_loss())?;
    sync(device)?;
    Ok(steps as f64 / started.elapsed().as_secs_f64())
}

/// `steps` training steps, finished on the device: their loss read and the queue synced.
fn finished_steps(
    trainer: &mut Trainer,
    data: &DeviceData,
    wsa: Option<&WsaTerm>,
    device: &Device,
    steps: usize,
) -> Result<()> {
    for _ in 0..steps {
        trainer.train_step(data, wsa);
    }
    wait(trainer.take_mean_loss())?;
    sync(device)
}

/// PyTorch's samples/s for the same rows on the CPU, with as many threads as rayon gives our
/// backend: `scripts/torch_twin.py` run by `python`. `None` (and a line saying why) when it
/// cannot run.
fn torch_twin(python: &str, batches: &[usize], (stack_name, stack): (&str, &Value)) -> Option<Value> {
    let threads = device::cpu_threads();
    let batches = batches.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let run = std::process::Command::new(python)
        .args(["-c", include_str!("../../scripts/torch_twin.py"), "--device", "cpu"])
        .args(["--threads", &threads.to_string(), "--batches", &batches])
        .args(["--stack-name", stack_name, "--stack", &stack.to_string()])
        .output();
    let why = match run {
        Ok(out) if out.status.success() => match serde_json::from_slice::<Value>(&out.stdout) {
            Ok(twin) => return Some(twin),
            Err(e) => format!("its output is not JSON ({e})"),
        },
        Ok(out) => String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("it failed").to_string(),
        Err(e) => format!("{python} could not be started ({e})"),
    };
    println!("PyTorch twin not run: {why} (set TORCH_PYTHON or --torch-python to a Python with torch)");
    None
}

fn training(devices: &[ComputeDevice], batches: &[usize], torch_python: &str) -> Result<Value> {
    let data = fashion_sized(4096);
    let (deeper_name, deeper_spec) = deeper_model()?;
    let deeper_config: ModelConfig = serde_json::from_value(deeper_spec.clone()).context("the ResNet group's model")?;
    let twin = devices
        .iter()
        .any(|d| !d.is_gpu)
        .then(|| torch_twin(torch_python, batches, (&deeper_name, &deeper_spec)))
        .flatten();
    let torch_rate = |model: &str, batch: usize| {
        twin.as_ref()?["rows"].as_array()?.iter().find(|r| r["model"] == model && r["batch"] == batch)?["samples_per_second"]
            .as_f64()
    };
    println!("\ntraining throughput (Adam, Fashion-MNIST-sized 28x28 inputs, samples/s)");
    if let Some(twin) = &twin {
        let threads = twin["threads"].as_u64().unwrap_or(0);
        let plural = if threads == 1 { "" } else { "s" };
        println!("PyTorch {} on the CPU with {threads} thread{plural}, as ours", twin["torch"]);
    }
    println!(
        "{:<20} {:>6} {:>10} {:>10} {:>10} {:>9} {:>10} {:>8}   device",
        "model", "batch", "plain", "WSA closed", "WSA autodf", "GPU/CPU", "PyTorch", "ours/PT"
    );
    let mut rows = Vec::new();
    let models = bench_models().into_iter().map(|(name, config)| (name.to_string(), config));
    for (name, config) in models.chain([(deeper_name, deeper_config)]) {
        let name = name.as_str();
        for &batch in batches {
            let mut cpu_rate = None;
            for compute in devices {
                let dev = &compute.device;
                let uploaded = DeviceData::upload(&data, dev);
                let (mut plain, term) = trainer_for(&config, batch, &data, dev)?;
                let plain_rate = steps_per_second(&mut plain, &uploaded, None, dev)? * batch as f64;
                let wsa_rate = |gradient| -> Result<f64> {
                    let (mut trainer, _) = trainer_for(&config, batch, &data, dev)?;
                    trainer.wsa_gradient = gradient;
                    Ok(steps_per_second(&mut trainer, &uploaded, Some(&term), dev)? * batch as f64)
                };
                let closed = wsa_rate(WsaGradient::ClosedForm)?;
                let autodiff = wsa_rate(WsaGradient::Autodiff)?;
                let vs_cpu = if compute.is_gpu { cpu_rate.map(|c| plain_rate / c) } else { None };
                let torch = if compute.is_gpu { None } else { torch_rate(name, batch) };
                if !compute.is_gpu {
                    cpu_rate = Some(plain_rate);
                }
                let shown = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".to_string(), f);
                println!(
                    "{name:<20} {batch:>6} {plain_rate:>10.0} {closed:>10.0} {autodiff:>10.0} {:>9} {:>10} {:>8}   {}",
                    shown(vs_cpu, &|r| format!("{r:.2}x")),
                    shown(torch, &|t| format!("{t:.0}")),
                    shown(torch, &|t| format!("{:.2}x", plain_rate / t)),
                    compute.description
                );
                rows.push(json!({
                    "model": name, "batch": batch, "device": compute.description,
                    "samples_per_second": plain_rate, "samples_per_second_wsa_closed_form": closed,
                    "samples_per_second_wsa_autodiff": autodiff, "gpu_over_cpu": vs_cpu,
                    "torch_samples_per_second": torch, "ours_over_torch": torch.map(|t| plain_rate / t),
                }));
            }
        }
    }
    Ok(json!({ "rows": rows, "torch_twin": twin }))
}

/// GPU kernel launches per training step, for each model, batch size and way of training (plain,
/// the WSA term's closed-form gradient, the WSA term through autodiff), with the kernels that
/// launch most. Each launch pays a fixed cost on the GPU, which dominates small models' steps.
fn dispatches(devices: &[ComputeDevice], batches: &[usize]) -> Result<Value> {
    const STEPS: usize = 10;
    let Some(compute) = devices.iter().find(|d| d.is_gpu) else {
        println!("\nGPU launches per training step: no GPU among the devices benchmarked, nothing to count");
        return Ok(Value::Null);
    };
    let dev = &compute.device;
    let data = fashion_sized(4096);
    let uploaded = DeviceData::upload(&data, dev);
    println!(
        "\nGPU launches per training step (Adam, mean over {STEPS} steps after 3 untimed ones), {}",
        compute.description
    );
    println!("{:<18} {:>6} {:<12} {:>9}   most launched (per step)", "model", "batch", "training", "launches");
    let mut rows = Vec::new();
    for (name, config) in bench_models() {
        for &batch in batches {
            for (training, gradient) in [
                ("plain", None),
                ("WSA closed", Some(WsaGradient::ClosedForm)),
                ("WSA autodf", Some(WsaGradient::Autodiff)),
            ] {
                let (mut trainer, term) = trainer_for(&config, batch, &data, dev)?;
                trainer.wsa_gradient = gradient.unwrap_or_default();
                let wsa = gradient.map(|_| &term);
                finished_steps(&mut trainer, &uploaded, wsa, dev, 3)?;
                let (finished, counts) =
                    device::count_launches(|| finished_steps(&mut trainer, &uploaded, wsa, dev, STEPS));
                finished?;
                let per_step = counts.total() as f64 / STEPS as f64;
                let mut top: Vec<(&String, &usize)> = counts.by_kernel.iter().collect();
                top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let shown: Vec<String> = top
                    .iter()
                    .take(4)
                    .map(|(k, n)| format!("{:.1} {}", **n as f64 / STEPS as f64, short_kernel_name(k)))
                    .collect();
                println!("{name:<18} {batch:>6} {training:<12} {per_step:>9.1}   {}", shown.join(", "));
                rows.push(json!({
                    "model": name, "batch": batch, "training": training, "device": compute.description,
                    "steps": STEPS, "launches_per_step": per_step, "launches_by_kernel": counts.by_kernel,
                }));
            }
        }
    }
    Ok(Value::Array(rows))
}

/// A kernel's name with its first type argument only ("KernelBinop | MulOp"): cubecl lists every
/// generic argument, which for a matrix product is some twenty.
fn short_kernel_name(name: &str) -> String {
    name.split(" | ").take(2).collect::<Vec<_>>().join(" | ")
}

/// Time to the first training step in fresh processes: the first with empty shader caches
/// (driver caches pointed at a new directory per device and model), the second reusing what
/// the first left there.
fn startup(devices: &[ComputeDevice]) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let caches = std::env::temp_dir().join(format!("wsa-lab-bench-cache-{}", std::process::id()));
    println!("\ntime to the first training step, in a new process (batch 64, Adam)");
    println!(
        "{:<18} {:<14} {:>9} {:>9} {:>9} {:>10} {:>10}   device",
        "model", "run", "process s", "device s", "warm-up s", "1st step s", "2nd step s"
    );
    let mut rows = Vec::new();
    for compute in devices {
        let choice = if compute.is_gpu { "gpu" } else { "cpu" };
        for (model, _) in bench_models() {
            let short = if model.starts_with("MLP") { "mlp" } else { "cnn" };
            // cold and warm share one cache; "cold, warmed up" starts from another empty one.
            for (run, cache_name, warm_up) in
                [("cold", "", false), ("warm", "", false), ("cold, warmed up", "-w", true)]
            {
                let cache = caches.join(format!("{choice}-{short}{cache_name}"));
                std::fs::create_dir_all(&cache)?;
                let started = Instant::now();
                let mut args = vec!["bench-first-step", "--device", choice, "--model", short];
                if warm_up {
                    args.push("--warm-up");
                }
                let output = Command::new(&exe)
                    .args(&args)
                    .env("MESA_SHADER_CACHE_DIR", &cache)
                    .env("__GL_SHADER_DISK_CACHE_PATH", &cache)
                    .env("__GL_SHADER_DISK_CACHE_SKIP_CLEANUP", "1")
                    .output()?;
                let process = started.elapsed().as_secs_f64();
                if !output.status.success() {
                    bail!("the first-step process failed: {}", String::from_utf8_lossy(&output.stderr));
                }
                let child: Value = serde_json::from_slice(&output.stdout).context("reading the first-step process")?;
                let get = |k: &str| child[k].as_f64().unwrap_or(f64::NAN);
                println!(
                    "{model:<18} {run:<14} {process:>9.2} {:>9.2} {:>9.2} {:>10.2} {:>10.3}   {}",
                    get("device_seconds"),
                    get("warm_up_seconds"),
                    get("first_step_seconds"),
                    get("second_step_seconds"),
                    compute.description
                );
                rows.push(json!({ "model": model, "run": run, "device": compute.description, "process_seconds": process, "child": child }));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&caches);
    Ok(Value::Array(rows))
}

/// The child of [`startup`]: prints its timings as one JSON object.
pub fn first_step(args: FirstStepArgs) -> Result<()> {
    let started = Instant::now();
    let compute = device::select(args.device)?;
    let dev = &compute.device;
    // Device creation is lazy; a tiny op and a sync make this number the device's.
    let _ = Tensor::<1>::from_data(TensorData::new(vec![0f32], [1]), dev);
    sync(dev)?;
    let device_seconds = started.elapsed().as_secs_f64();
    let model = model_by_name(&args.model)?;
    let warm_up_seconds = if args.warm_up {
        let t = Instant::now();
        let mut config = ConnectConfig { model: model.clone(), train: bench_training(64), ..ConnectConfig::default() };
        config.data.dataset = DatasetSpec::FashionMnist;
        wait(wsa_core::experiment::warm_up(&config, &compute))?;
        t.elapsed().as_secs_f64()
    } else {
        0.0
    };
    let data = fashion_sized(256);
    let uploaded = DeviceData::upload(&data, dev);
    let (mut trainer, _) = trainer_for(&model, 64, &data, dev)?;
    let step = |trainer: &mut Trainer| -> Result<f64> {
        let t = Instant::now();
        trainer.train_step(&uploaded, None);
        wait(trainer.take_mean_loss())?;
        Ok(t.elapsed().as_secs_f64())
    };
    let first = step(&mut trainer)?;
    let second = step(&mut trainer)?;
    println!(
        "{}",
        json!({
            "device": compute.description, "device_seconds": device_seconds, "warm_up_seconds": warm_up_seconds,
            "first_step_seconds": first, "second_step_seconds": second,
            "to_first_step_seconds": started.elapsed().as_secs_f64() - second,
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The training bench's deeper row is the reproduction's ResNet-GN, read from the spec: an
    /// edit of experiments/reproduce.json that loses it fails here, not in a bench run.
    #[test]
    fn the_deeper_row_is_the_reproductions_resnet() {
        let (name, spec) = deeper_model().expect("the spec's ResNet group");
        assert_eq!(name, "ResNet-GN 16-32-64");
        let config: ModelConfig = serde_json::from_value(spec).expect("a model config");
        let layout = ModelLayout::new(&config, &[1, 28, 28], 10).expect("a layout on 28x28 images");
        let norms = layout.params.iter().filter(|p| p.role == wsa_core::model::ParamRole::NormWeight).count();
        assert_eq!(norms, 9, "a group norm after each of the nine convolutions");
    }
}
