//! One suite, run on every available device: the CPU (flex) always, wgpu where an adapter
//! exists (on CI: Mesa's lavapipe). The same small training run, scopes, merges, a trained
//! curve's control point and a loss plane must agree within stated tolerances; so must our
//! kernels (weighted sums, layer statistics, histograms, the WSA closed form) with exact values,
//! and a checkpoint comparison (`wsa-lab scopes`) computed by them with the CPU path's.
//!
//! Each check is a case of its own, so that one disagreement does not hide the others. They share
//! one GPU device in one test process, so the shader compilation is paid once, and take turns on
//! it (`TURN`): `device::count_launches` counts every launch in the process, and the timings they
//! print are their own. Each optimizer's training runs once for its five cases (`outcomes`).
//!
//! Every case needs a wgpu adapter: they are ignored unless asked for (`cargo test --
//! --include-ignored`, as `.ci/run` does), and then a missing adapter is a failure.

use burn::tensor::{Tensor, TensorData};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wsa_core::cancel::Silent;
use wsa_core::data::{self, DataConfig};
use wsa_core::device::{self, ComputeDevice, DeviceChoice};
use wsa_core::experiment::curve::{CurveConfig, train_control_point};
use wsa_core::experiment::plane::{PlaneConfig, evaluate_plane};
use wsa_core::kernels::{MAX_HISTOGRAM_BINS, layer_stats, lerp, weighted_sum};
use wsa_core::merge::{interpolate, weighted_average};
use wsa_core::model::{Activation, HostParams, ModelConfig, ModelLayout, Norm};
use wsa_core::rng::Rng;
use wsa_core::scope::{LayerSelection, Scope, device_histograms, device_scopes, histogram, scope_of};
use wsa_core::train::{DeviceData, Metrics, OptimizerKind, TrainConfig, Trainer, evaluate};
use wsa_core::wait;
use wsa_core::wsa::{KlDirection, LayerReduction, WsaConfig, WsaTerm};
use wsa_lab_tests::{Shared, one_at_a_time};

/// What one device computes from the same inputs.
struct Outcome {
    trained: HostParams,
    metrics: Metrics,
    scopes: Vec<Scope>,
    midpoint: HostParams,
    average: HostParams,
    /// A CNN after four training steps (our CPU convolution and pool with their backward
    /// passes on one side, burn's on the GPU), and its test metrics.
    cnn_trained: HostParams,
    cnn_metrics: Metrics,
    /// The control point of a Bezier curve trained between the trained model and B's start.
    theta: HostParams,
    /// The test loss on a 3 x 3 grid of the plane through them.
    plane_loss: Vec<f64>,
}

fn compute(device: &ComputeDevice, optimizer: OptimizerKind) -> Outcome {
    let split = data::load(&DataConfig { max_train: Some(256), max_test: Some(128), ..DataConfig::default() }, 5)
        .expect("digits");
    let config = ModelConfig::Mlp {
        hidden: vec![24, 16],
        activation: Activation::Tanh,
        norm: Norm::LayerNorm,
        init: Default::default(),
    };
    let layout = Arc::new(ModelLayout::new(&config, &split.train.sample_shape, 10).expect("layout"));
    let init_a = layout.init(&mut Rng::new(1));
    let init_b = layout.init(&mut Rng::new(2));
    let train = DeviceData::upload(&split.train, &device.device);
    let test = DeviceData::upload(&split.test, &device.device);
    let layers = LayerSelection::default().select(&layout);
    let target: Vec<Scope> = layers.iter().map(|_| Scope { mean: 0.01, std: 0.05 }).collect();
    let term = WsaConfig::default().term(0.5, &layers, &target);
    let train_config =
        TrainConfig { optimizer, learning_rate: 0.02, batch_size: 32, epochs: 1, ..TrainConfig::default() };
    let mut trainer = Trainer::new("A", train_config.clone(), &init_a, train.len, &device.device, 9).expect("trainer");
    for _ in 0..6 {
        trainer.train_step(&train, Some(&term));
    }
    let trained = trainer.params.clone();
    let other = init_b.to_device(&device.device);
    let third = layout.init(&mut Rng::new(3)).to_device(&device.device);
    let midpoint = interpolate(&trained, &other, 0.3).expect("interpolate");
    let average = weighted_average(&[&trained, &other, &third], &[1.0, 2.0, 3.0]).expect("average");

    let cnn = ModelConfig::Cnn {
        channels: vec![4, 8],
        kernel_size: 3,
        activation: Activation::Relu,
        norm: Norm::GroupNorm { groups: 2 },
        init: Default::default(),
    };
    let cnn_layout = Arc::new(ModelLayout::new(&cnn, &split.train.sample_shape, 10).expect("cnn layout"));
    let mut cnn_trainer =
        Trainer::new("CNN", train_config, &cnn_layout.init(&mut Rng::new(4)), train.len, &device.device, 9)
            .expect("cnn trainer");
    for _ in 0..4 {
        cnn_trainer.train_step(&train, None);
    }
    let cnn_params = cnn_trainer.params.clone();
    // A curve's control point, trained for one epoch (8 steps) with its ends frozen, and the
    // plane through the ends and it: the curve's points are built on the device.
    let curve = CurveConfig { epochs: 1, ..CurveConfig::default() };
    let theta = wait(train_control_point(&curve, 32, &trained, &other, &train, 9, &mut Silent)).expect("curve");
    let theta = wait(theta.to_host()).expect("read back");
    let ends = (wait(trained.to_host()).expect("read back"), init_b.clone());
    let plane = wait(evaluate_plane(
        &PlaneConfig { grid: 3, margin: 0.2 },
        (&ends.0, &ends.1, &theta),
        "θ",
        Some(curve.kind),
        &test,
        None,
        &device.device,
        &mut Silent,
    ))
    .expect("plane");
    Outcome {
        theta,
        plane_loss: plane.loss,
        metrics: wait(evaluate(&layout, &trained.tensors, &test)).expect("evaluate"),
        scopes: wait(device_scopes(&trained, &layers)).expect("scopes"),
        trained: wait(trained.to_host()).expect("read back"),
        midpoint: wait(midpoint.to_host()).expect("read back"),
        average: wait(average.to_host()).expect("read back"),
        cnn_metrics: wait(evaluate(&cnn_layout, &cnn_params.tensors, &test)).expect("cnn evaluate"),
        cnn_trained: wait(cnn_params.to_host()).expect("read back"),
    }
}

fn max_abs_diff(a: &HostParams, b: &HostParams) -> f64 {
    a.values
        .iter()
        .zip(&b.values)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| f64::from((p - q).abs())))
        .fold(0.0, f64::max)
}

fn assert_close(what: &str, cpu: f64, gpu: f64, tol: f64) {
    assert!((cpu - gpu).abs() <= tol, "{what}: CPU {cpu} vs GPU {gpu} (tolerance {tol})");
}

/// Inputs for the kernel checks: every length class (one element, around the workgroup size,
/// odd, past the 65535-workgroup limit of one grid dimension) and magnitudes from 1e-30 to 1e30.
fn kernel_inputs(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let scale = [1e-30f64, 1e-3, 1.0, 1e3, 1e30][i % 5];
            (rng.normal() * scale) as f32
        })
        .collect()
}

fn upload(values: &[f32], device: &ComputeDevice) -> Tensor<1> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), &device.device)
}

fn read(tensor: Tensor<1>) -> Vec<f32> {
    tensor.into_data().try_to_vec::<f32>().expect("read back")
}

/// The weighted-sum kernel (the K-model average, and the interpolation path as K = 2) against
/// the exact sum in f64, on the CPU and the GPU.
fn check_weighted_sums(gpu: &ComputeDevice) {
    let weights = [0.5f32, -0.25, 2.0, 0.125, 1.0, -3.0, 0.75];
    for n in [1usize, 255, 256, 257, 100_003, 65_535 * 256 + 1] {
        // Up to seven models (two passes of the kernel) where memory allows.
        let models = if n > 1_000_000 { 2 } else { 7 };
        let inputs: Vec<Vec<f32>> = (0..models).map(|k| kernel_inputs(n, k as u64 + 1)).collect();
        let mut cases: Vec<(String, Vec<f32>)> =
            (1..=models).map(|k| (format!("sum of {k}"), weights[..k].to_vec())).collect();
        for alpha in [0.0f32, 0.3, 1.0, -0.5, 1.5] {
            cases.push((format!("lerp alpha {alpha}"), vec![1.0 - alpha, alpha]));
        }
        for (name, w) in &cases {
            let k = w.len();
            let on = |d: &ComputeDevice| -> Vec<f32> {
                let tensors: Vec<Tensor<1>> = inputs[..k].iter().map(|v| upload(v, d)).collect();
                if name.starts_with("lerp") {
                    read(lerp(tensors[0].clone(), tensors[1].clone(), w[1]))
                } else {
                    read(weighted_sum(&tensors, w))
                }
            };
            let (cpu_out, gpu_out) = (on(&device::cpu()), on(gpu));
            assert_eq!(gpu_out.len(), n, "{name}");
            for i in 0..n {
                let terms = || inputs[..k].iter().zip(w).map(|(x, &wk)| f64::from(wk) * f64::from(x[i]));
                let exact: f64 = terms().sum();
                let tol = 1e-6 * terms().map(f64::abs).sum::<f64>() + 1e-37;
                for (side, out) in [("CPU", &cpu_out), ("GPU", &gpu_out)] {
                    let got = f64::from(out[i]);
                    assert!((got - exact).abs() <= tol, "{name}, n={n} [{i}] on {side}: {got} vs {exact}");
                }
            }
        }
    }
}

/// Layers for the statistics and histogram kernels: every length class, a constant layer, a
/// mean far larger than the spread, and tiny and huge magnitudes.
fn stats_layers() -> Vec<(String, Vec<f32>)> {
    let mut rng = Rng::new(17);
    let mut normal =
        |n: usize, mean: f64, std: f64| -> Vec<f32> { (0..n).map(|_| (mean + std * rng.normal()) as f32).collect() };
    let mut layers: Vec<(String, Vec<f32>)> = [1usize, 255, 256, 257, 100_003, 4_000_037]
        .iter()
        .map(|&n| (format!("normal n={n}"), normal(n, 0.01, 0.05)))
        .collect();
    layers.push(("constant".into(), vec![3.25; 1000]));
    layers.push(("mean 1000, std 1e-3".into(), normal(100_003, 1000.0, 1e-3)));
    // The extremes whose variance f32 still holds (M2 = n var must stay below 3.4e38 and
    // above the denormals the GPU may flush).
    layers.push(("std 1e-15".into(), normal(5000, 0.0, 1e-15)));
    layers.push(("std 1e15".into(), normal(5000, 1e14, 1e15)));
    layers
}

/// Scope statistics (mean, variance, min, max) against f64 on the host, and histograms against
/// the Rust implementation, on the CPU and the GPU.
fn check_stats_and_histograms(gpu: &ComputeDevice) {
    let layers = stats_layers();
    for device in [device::cpu(), gpu.clone()] {
        let side = &device.description;
        let tensors: Vec<Tensor<1>> = layers.iter().map(|(_, v)| upload(v, &device)).collect();
        let stats = wait(layer_stats(&tensors)).expect("stats");
        for ((name, values), got) in layers.iter().zip(&stats) {
            let exact = scope_of(values);
            let (lo, hi) = values.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
            let var = exact.std * exact.std;
            assert!(
                (got.mean - exact.mean).abs() <= 1e-6 * (exact.mean.abs() + exact.std),
                "{name} on {side}: mean {} vs {}",
                got.mean,
                exact.mean
            );
            // Welford + Chan in f32: the variance to 1e-4 relative even where the mean is 1e6
            // times the spread (sum and sum of squares would lose every digit there).
            assert!((got.variance - var).abs() <= 1e-4 * var, "{name} on {side}: variance {} vs {var}", got.variance);
            assert_eq!((got.min, got.max), (f64::from(lo), f64::from(hi)), "{name} on {side}: min/max");
        }
        // Histograms of two models over their joint range, for a few bin counts.
        for bins in [1usize, 40, MAX_HISTOGRAM_BINS] {
            for ((name, a), (_, b)) in layers.iter().zip(layers.iter().cycle().skip(1)) {
                let b: Vec<f32> = b.iter().copied().cycle().take(a.len()).collect();
                let (ta, tb) = ([upload(a, &device)], [upload(&b, &device)]);
                let h = &wait(device_histograms(&[&ta, &tb], &[0], bins)).expect("histograms")[0];
                let (lo, hi) = a.iter().chain(&b).fold((f32::MAX, f32::MIN), |(l, x), &v| (l.min(v), x.max(v)));
                assert_eq!((h.low, h.high), (f64::from(lo), f64::from(hi)), "{name}: shared range");
                for (values, counts) in [(&a[..], &h.counts[0]), (&b[..], &h.counts[1])] {
                    let expected = histogram(values, h.low, h.high, bins);
                    assert_eq!(
                        counts.iter().sum::<u64>(),
                        values.len() as u64,
                        "{name}, {bins} bins on {side}: every entry once"
                    );
                    // f32 on the GPU, f64 on the host: entries within rounding of a bin edge
                    // may land one bin over; nothing else may differ.
                    let moved: u64 = counts.iter().zip(&expected).map(|(g, e)| g.abs_diff(*e)).sum();
                    assert!(
                        moved <= 2 + values.len() as u64 / 10_000,
                        "{name}, {bins} bins on {side}: {moved} entries in other bins"
                    );
                }
            }
        }
    }
}

/// The WSA term's closed form (our statistics, coefficient and gradient kernels on the GPU; the
/// same f32 operations on the CPU), both KL directions: the value and every layer's gradient
/// agree. Layers of every length class around the workgroup size, and one with a mean far from
/// zero.
fn check_wsa_closed_form(gpu: &ComputeDevice) {
    let mut rng = Rng::new(23);
    let mut layers: Vec<Vec<f32>> = [1usize, 255, 256, 257, 100_003]
        .iter()
        .map(|&n| (0..n).map(|_| (0.02 + 0.1 * rng.normal()) as f32).collect())
        .collect();
    layers.push((0..5000).map(|_| (300.0 + 20.0 * rng.normal()) as f32).collect());
    let target: Vec<Scope> =
        (0..layers.len()).map(|l| Scope { mean: 0.01 * l as f64, std: 0.05 + 0.1 * l as f64 }).collect();
    for direction in [KlDirection::ModelToTarget, KlDirection::TargetToModel] {
        let term = WsaTerm {
            lambda: 0.8,
            direction,
            reduction: LayerReduction::Mean,
            layers: (0..layers.len()).collect(),
            target: target.clone(),
        };
        let closed_form = |device: &ComputeDevice| {
            let tensors: Vec<Tensor<1>> = layers.iter().map(|v| upload(v, device)).collect();
            let closed = term.closed_form(&tensors).expect("regularised layers");
            (f64::from(read(closed.value)[0]), closed.gradients.into_iter().map(read).collect::<Vec<_>>())
        };
        let (cpu_value, cpu_gradients) = closed_form(&device::cpu());
        let (gpu_value, gpu_gradients) = closed_form(gpu);
        assert_close(&format!("{direction:?}: WSA penalty"), cpu_value, gpu_value, 1e-4 * cpu_value.abs().max(1.0));
        for (l, (c, g)) in cpu_gradients.iter().zip(&gpu_gradients).enumerate() {
            assert_eq!(c.len(), g.len());
            let largest = c.iter().fold(0f32, |m, x| m.max(x.abs()));
            let differ = c.iter().zip(g).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                differ <= 1e-3 * largest,
                "{direction:?}, layer {l} ({} entries): the gradients differ by {differ} (largest {largest})",
                c.len()
            );
        }
    }
}

/// GroupNorm and its gradients (`wsa_core::group_norm`), alone and with ReLU folded in: our CPU
/// kernel against the GPU's composed arithmetic under our autodiff node, on a ResNet stage's
/// shape and LayerNorm's, with the first sample's inputs around 50 (cancellation in the
/// variance).
fn check_group_norm(gpu: &ComputeDevice) {
    let cases = [(6usize, 16usize, 49usize, 8usize), (5, 64, 1, 1), (3, 4, 30, 2)];
    for ((batch, channels, positions, groups), rectify) in cases.into_iter().flat_map(|c| [(c, false), (c, true)]) {
        // `offset` added to the first `shifted` values.
        let values = |n: usize, seed: u64, offset: f64, shifted: usize| -> Vec<f32> {
            let mut rng = Rng::new(seed);
            (0..n).map(|i| (if i < shifted { offset } else { 0.0 } + rng.normal()) as f32).collect()
        };
        let n = batch * channels * positions;
        let (x, weight) = (values(n, 1, 50.0, channels * positions), values(n, 2, 0.0, 0));
        let (gamma, beta) = (values(channels, 3, 1.0, channels), values(channels, 4, 0.0, 0));
        let run = |device: &ComputeDevice| {
            let device = device.device.clone().autodiff();
            let tensor = |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [v.len()]), &device);
            let x1 = tensor(&x).require_grad();
            let (g, b) = (tensor(&gamma).require_grad(), tensor(&beta).require_grad());
            let out = wsa_core::group_norm::group_norm_then(
                x1.clone().reshape([batch, channels, positions]),
                groups,
                g.clone(),
                b.clone(),
                rectify,
            );
            let grads = (out.clone() * tensor(&weight).reshape([batch, channels, positions])).sum().backward();
            let gradient = |t: &Tensor<1>| read(t.grad(&grads).expect("a gradient"));
            [read(out.reshape([batch * channels * positions])), gradient(&x1), gradient(&g), gradient(&b)]
        };
        let (cpu, on_gpu) = (run(&device::cpu()), run(gpu));
        for (what, (c, g)) in ["output", "dx", "dgamma", "dbeta"].iter().zip(cpu.iter().zip(&on_gpu)) {
            let largest = c.iter().fold(0f32, |m, x| m.max(x.abs()));
            let differ = c.iter().zip(g).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                differ <= 1e-4 * largest.max(1.0),
                "group norm [{batch}, {channels}, {positions}] in {groups} groups (rectified: {rectify}): {what} differs by {differ} (largest {largest})"
            );
        }
    }
}

/// `device::count_launches` (the bench's launches per training step) counts what the GPU runs
/// and nothing on the CPU.
fn check_launch_counts(gpu: &ComputeDevice) {
    let product = |device: &ComputeDevice| {
        device::count_launches(|| {
            let a = Tensor::<2>::from_data(TensorData::new(kernel_inputs(64 * 48, 3), [64, 48]), &device.device);
            let b = Tensor::<2>::from_data(TensorData::new(kernel_inputs(48 * 32, 4), [48, 32]), &device.device);
            let values = read((a.matmul(b) * 2.0).reshape([64 * 32]));
            assert_eq!(values.len(), 64 * 32);
        })
        .1
    };
    let on_gpu = product(gpu);
    assert!(
        on_gpu.by_kernel.keys().any(|kernel| kernel.contains("Matmul")),
        "a matrix product on the GPU counted no matmul kernel: {:?}",
        on_gpu.by_kernel
    );
    assert!(on_gpu.total() >= 2, "a product and a scaling counted {} launches", on_gpu.total());
    let on_cpu = product(&device::cpu());
    assert_eq!(on_cpu.total(), 0, "the CPU backend launches no GPU kernels: {:?}", on_cpu.by_kernel);
}

/// One case at a time on the GPU (see the module's comment).
static TURN: Mutex<()> = Mutex::new(());

static GPU: Shared<ComputeDevice> = Shared::new();

/// The GPU, once this case's turn has come. Asked for without an adapter, that is a failure.
fn gpu() -> (std::sync::MutexGuard<'static, ()>, &'static ComputeDevice) {
    let turn = one_at_a_time(&TURN);
    let gpu = GPU.get("selecting the GPU", || {
        let gpu = device::select(DeviceChoice::Gpu)
            .unwrap_or_else(|e| panic!("the device-parity suite needs a wgpu adapter and found none: {e}"));
        eprintln!("device parity on {}", gpu.description);
        gpu
    });
    (turn, gpu)
}

#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn the_apps_kernel_warm_up_runs_on_both_devices() {
    let (_turn, gpu) = gpu();
    // The app's kernel warm-up runs the default experiment's operations once; on the CPU it
    // has nothing to do.
    let config = wsa_core::experiment::connect::ConnectConfig::default();
    let started = Instant::now();
    wait(wsa_core::experiment::warm_up(&config, gpu)).expect("warm-up on the GPU");
    wait(wsa_core::experiment::warm_up(&config, &device::cpu())).expect("warm-up on the CPU");
    eprintln!("warm-up took {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn weighted_sums_and_interpolations_are_exact_sums() {
    let (_turn, gpu) = gpu();
    let started = Instant::now();
    check_weighted_sums(gpu);
    eprintln!("weighted sums took {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn layer_statistics_and_histograms_are_the_hosts() {
    let (_turn, gpu) = gpu();
    let started = Instant::now();
    check_stats_and_histograms(gpu);
    eprintln!("statistics and histograms took {:.1} s", started.elapsed().as_secs_f64());
}

/// Two checkpoints with every float type and every awkward case: constant tensors, NaN and
/// infinities, empty tensors, all-NaN, signed zeros and subnormals, spreads of 1e-13 and 1e11,
/// ties, and 16-bit and float32 tensors longer than one piece sent to the device.
fn checkpoint_pair() -> [Vec<u8>; 2] {
    use wsa_core::checkpoint::StoredType::{BF16, F16, F32, F64};
    let long = wsa_core::checkpoint::on_device::DEVICE_PIECE_VALUES + 4099;
    [(1u64, 0.02f64), (2, 0.05)].map(|(seed, scale)| {
        let mut rng = Rng::new(seed);
        let mut normal = |n: usize, mean: f64, std: f64| -> Vec<f32> {
            (0..n).map(|_| (mean + std * rng.normal()) as f32).collect()
        };
        let heavy: Vec<f32> = normal(5000, 0.0, 1.0).chunks(2).map(|p| p[0] * p[1] * scale as f32).collect();
        let ties: Vec<f32> = normal(3001, 0.1, 1.0).iter().map(|v| (v * 20.0).round() / 20.0).collect();
        let mut awkward = normal(997, 0.0, scale);
        awkward.extend([f32::NAN, f32::INFINITY, -f32::INFINITY, 0.0, -0.0, 1e-40, -1e-42, f32::NAN]);
        // A spread whose fourth powers underflow f32, values whose fourth powers overflow it.
        let mut tiny = normal(400, 3e-12, 1e-13);
        tiny.extend([-0.0f32, 0.0, 1e-45, -1e-45]);
        let wide = normal(400, 1e12, 3e11);
        wsa_core::checkpoint::compare::float_file(&[
            ("long.f16", F16, vec![long], normal(long, 0.001 * seed as f64, scale)),
            ("long.f32", F32, vec![long / 3, 3], normal(long / 3 * 3, -0.01, scale)),
            ("heavy.bf16", BF16, vec![50, 50], heavy.clone()),
            ("heavy.f32", F32, vec![2500], heavy.clone()),
            ("heavy.f64", F64, vec![2500], heavy),
            ("ties.f32", F32, vec![3001], ties.clone()),
            ("ties.f16", F16, vec![3001], ties),
            ("constant.f32", F32, vec![7, 3], vec![0.375 * seed as f32; 21]),
            ("constant.bf16", BF16, vec![21], vec![-2.5; 21]),
            ("awkward.f32", F32, vec![1005], awkward.clone()),
            ("awkward.f16", F16, vec![1005], awkward.clone()),
            ("awkward.f64", F64, vec![1005], awkward),
            ("tiny.f32", F32, vec![404], tiny),
            ("wide.f64", F64, vec![400], wide),
            ("nan.f64", F64, vec![3], vec![f32::NAN; 3]),
            ("empty.f32", F32, vec![0], Vec::new()),
            ("empty.f16", F16, vec![0, 4], Vec::new()),
            ("one.f32", F32, vec![1], vec![0.25 * seed as f32]),
        ])
    })
}

/// `wsa-lab scopes`' statistics by our kernels on the GPU against the CPU path. 16-bit
/// tensors: identical (both derive everything from the same pattern counts). float32 and
/// float64: the moments come from the device's f32 sums (mean within 1e-6 of the larger of its
/// size and the spread, std
/// within 1e-6 relative, excess kurtosis within 1e-4), the extremes and the histograms are
/// exact (the refinement places every value of a bucket that straddles a bin edge on the CPU:
/// equal counts, no ±1), and the KS distance is exact for the mean and std it is measured
/// against, so it differs only as they do (1e-6).
fn check_checkpoint_statistics(gpu: &ComputeDevice) {
    use std::io::Cursor;
    use std::path::Path;
    use wsa_core::checkpoint::{compare, compare_on_device};
    let [a, b] = checkpoint_pair();
    let files = [Path::new("a.safetensors"), Path::new("b.safetensors")];
    let bins = 37;
    let on_cpu =
        compare(files, [&mut Cursor::new(a.clone()), &mut Cursor::new(b.clone())], bins).expect("CPU comparison");
    let (on_gpu, launches) = device::count_launches(|| {
        compare_on_device(&gpu.device, files, [&mut Cursor::new(a), &mut Cursor::new(b)], bins).expect("GPU comparison")
    });
    assert!(launches.total() >= on_cpu.tensors.len(), "our kernels ran on the GPU: {:?}", launches.by_kernel);
    assert_eq!(on_gpu.values, on_cpu.values);
    assert_eq!(on_gpu.tensors.len(), on_cpu.tensors.len());
    for (g, c) in on_gpu.tensors.iter().zip(&on_cpu.tensors) {
        let name = &c.name;
        if matches!(c.dtypes[0].as_str(), "F16" | "BF16") {
            assert_eq!(g, c, "{name}: a 16-bit tensor's statistics are the CPU's bit for bit");
            continue;
        }
        assert_eq!((&g.name, &g.shape, &g.dtypes), (&c.name, &c.shape, &c.dtypes));
        for (side, gs, cs) in [("A", &g.a, &c.a), ("B", &g.b, &c.b)] {
            let what = |stat: &str| format!("{name} {side} {stat}");
            assert_eq!((gs.count, gs.non_finite), (cs.count, cs.non_finite), "{}", what("counts"));
            assert_eq!((gs.min.to_bits(), gs.max.to_bits()), (cs.min.to_bits(), cs.max.to_bits()), "{}", what("range"));
            assert_close(&what("mean"), cs.mean, gs.mean, 1e-6 * cs.std.max(cs.mean.abs()));
            assert_close(&what("std"), cs.std, gs.std, 1e-6 * cs.std);
            assert_close(&what("excess kurtosis"), cs.excess_kurtosis, gs.excess_kurtosis, 1e-4);
            assert_close(&what("KS distance"), cs.ks_distance, gs.ks_distance, 1e-6);
        }
        assert_eq!((g.histogram_low, g.histogram_high), (c.histogram_low, c.histogram_high), "{name} range");
        assert_eq!((&g.histogram_a, &g.histogram_b), (&c.histogram_a, &c.histogram_b), "{name} histograms");
        assert_close(&format!("{name} symmetric KL"), c.symmetric_kl, g.symmetric_kl, 1e-5 * c.symmetric_kl + 1e-12);
    }
}

#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn checkpoint_statistics_on_our_kernels_are_the_cpus() {
    let (_turn, gpu) = gpu();
    let started = Instant::now();
    check_checkpoint_statistics(gpu);
    eprintln!("checkpoint statistics took {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn launches_are_counted_on_the_gpu_only() {
    let (_turn, gpu) = gpu();
    check_launch_counts(gpu);
}

#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn the_wsa_closed_form_agrees() {
    let (_turn, gpu) = gpu();
    let started = Instant::now();
    check_wsa_closed_form(gpu);
    eprintln!("the WSA closed form took {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn group_norm_and_its_gradients_agree() {
    let (_turn, gpu) = gpu();
    check_group_norm(gpu);
}

/// The PyTorch models of tests/fixtures/torch, read by their names and shapes (stacks with
/// BatchNorm, GroupNorm, strided and padded convs, max- and average-pooling: burn's conv and
/// pooling on the GPU), give PyTorch's logits on the GPU too.
#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn inferred_pytorch_models_give_pytorchs_logits() {
    let (_turn, gpu) = gpu();
    for name in ["sequential_mlp", "batchnorm_cnn", "groupnorm_cnn"] {
        let fixture = wsa_lab_tests::TorchFixture::load(name);
        let (on_gpu, worst) = fixture.logits_on(&gpu.device);
        let (on_cpu, _) = fixture.logits_on(&device::cpu().device);
        let apart = on_gpu.iter().zip(&on_cpu).map(|(g, c)| (g - c).abs()).fold(0f32, f32::max);
        eprintln!("{name}: GPU logits within {worst} of PyTorch's, {apart} of the CPU's");
        assert!(worst <= 1e-4, "{name}: the GPU's logits differ from PyTorch's by up to {worst}");
    }
}

static SGD: Shared<(Outcome, Outcome)> = Shared::new();
static ADAM: Shared<(Outcome, Outcome)> = Shared::new();

/// What the CPU and the GPU computed with `optimizer` (`compute`), run by the first of its cases.
fn outcomes(gpu: &ComputeDevice, optimizer: OptimizerKind) -> &'static (Outcome, Outcome) {
    let shared = match optimizer {
        OptimizerKind::Sgd => &SGD,
        OptimizerKind::Adam => &ADAM,
    };
    shared.get(&format!("training with {optimizer:?} on both devices"), || {
        let cpu_out = compute(&device::cpu(), optimizer);
        let started = Instant::now();
        let gpu_out = compute(gpu, optimizer);
        eprintln!("{optimizer:?}: GPU side took {:.1} s", started.elapsed().as_secs_f64());
        (cpu_out, gpu_out)
    })
}

// f32 on both sides, different reduction orders: parameters agree to ~1e-5 after six steps;
// metrics and scopes to a few 1e-5 relative.

fn training_agrees(optimizer: OptimizerKind) {
    let (_turn, gpu) = gpu();
    let (cpu_out, gpu_out) = outcomes(gpu, optimizer);
    let d = max_abs_diff(&cpu_out.trained, &gpu_out.trained);
    assert!(d < 1e-4, "{optimizer:?}: trained weights differ by {d}");
    assert_close("test loss", cpu_out.metrics.loss, gpu_out.metrics.loss, 1e-4);
    assert_close("test accuracy", cpu_out.metrics.accuracy, gpu_out.metrics.accuracy, 1.0 / 128.0 + 1e-9);
}

fn merging_agrees(optimizer: OptimizerKind) {
    let (_turn, gpu) = gpu();
    let (cpu_out, gpu_out) = outcomes(gpu, optimizer);
    let d = max_abs_diff(&cpu_out.midpoint, &gpu_out.midpoint);
    assert!(d < 1e-4, "{optimizer:?}: the interpolation differs by {d}");
    let d = max_abs_diff(&cpu_out.average, &gpu_out.average);
    assert!(d < 1e-4, "{optimizer:?}: the weighted average differs by {d}");
}

fn cnn_training_agrees(optimizer: OptimizerKind) {
    let (_turn, gpu) = gpu();
    let (cpu_out, gpu_out) = outcomes(gpu, optimizer);
    let d = max_abs_diff(&cpu_out.cnn_trained, &gpu_out.cnn_trained);
    assert!(d < 1e-4, "{optimizer:?}: the trained CNN's weights differ by {d}");
    assert_close("CNN test loss", cpu_out.cnn_metrics.loss, gpu_out.cnn_metrics.loss, 1e-4);
}

fn curve_and_plane_agree(optimizer: OptimizerKind) {
    let (_turn, gpu) = gpu();
    let (cpu_out, gpu_out) = outcomes(gpu, optimizer);
    let d = max_abs_diff(&cpu_out.theta, &gpu_out.theta);
    assert!(d < 1e-4, "{optimizer:?}: the curve's control point differs by {d}");
    assert_eq!(cpu_out.plane_loss.len(), 9);
    for (c, g) in cpu_out.plane_loss.iter().zip(&gpu_out.plane_loss) {
        assert_close("plane test loss", *c, *g, 1e-4 * c.abs().max(1.0));
    }
}

fn scopes_agree(optimizer: OptimizerKind) {
    let (_turn, gpu) = gpu();
    let (cpu_out, gpu_out) = outcomes(gpu, optimizer);
    assert_eq!(cpu_out.scopes.len(), gpu_out.scopes.len());
    for (c, g) in cpu_out.scopes.iter().zip(&gpu_out.scopes) {
        assert_close("scope mean", c.mean, g.mean, 1e-6);
        assert_close("scope std", c.std, g.std, 1e-6 + 1e-5 * c.std);
    }
}

#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn sgd_training_agrees() {
    training_agrees(OptimizerKind::Sgd);
}

#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn sgd_merging_agrees() {
    merging_agrees(OptimizerKind::Sgd);
}

#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn sgd_cnn_training_agrees() {
    cnn_training_agrees(OptimizerKind::Sgd);
}

#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn sgd_curve_and_plane_agree() {
    curve_and_plane_agree(OptimizerKind::Sgd);
}

#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn sgd_scopes_agree() {
    scopes_agree(OptimizerKind::Sgd);
}

#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn adam_training_agrees() {
    training_agrees(OptimizerKind::Adam);
}

#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn adam_merging_agrees() {
    merging_agrees(OptimizerKind::Adam);
}

#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn adam_cnn_training_agrees() {
    cnn_training_agrees(OptimizerKind::Adam);
}

#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn adam_curve_and_plane_agree() {
    curve_and_plane_agree(OptimizerKind::Adam);
}

#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn adam_scopes_agree() {
    scopes_agree(OptimizerKind::Adam);
}
