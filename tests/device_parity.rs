//! One suite, run on every available device: the CPU (flex) always, wgpu where an adapter
//! exists (on CI: Mesa's lavapipe). The same small training run, scopes and merges must agree
//! within stated tolerances.
//!
//! Everything GPU-side runs in this one test process on one device, so the shader compilation
//! is paid once. Where no adapter exists the test says so loudly; with `WSA_REQUIRE_GPU=1` (set
//! by `.ci/run`) that is a failure.

use burn::tensor::{Tensor, TensorData};
use std::sync::Arc;
use std::time::Instant;
use wsa_core::data::{self, DataConfig};
use wsa_core::device::{self, ComputeDevice, DeviceChoice};
use wsa_core::merge::{interpolate, weighted_average};
use wsa_core::model::{Activation, HostParams, ModelConfig, ModelLayout, Norm};
use wsa_core::rng::Rng;
use wsa_core::scope::{LayerSelection, Scope, device_scopes};
use wsa_core::train::{DeviceData, Metrics, OptimizerKind, TrainConfig, Trainer, evaluate};
use wsa_core::wsa::{KlDirection, LayerReduction, WsaTerm};

/// What one device computes from the same inputs.
struct Outcome {
    trained: HostParams,
    metrics: Metrics,
    scopes: Vec<Scope>,
    midpoint: HostParams,
    average: HostParams,
    cnn_metrics: Metrics,
}

fn compute(device: &ComputeDevice, optimizer: OptimizerKind) -> Outcome {
    let split = data::load(&DataConfig { max_train: Some(256), max_test: Some(128), ..DataConfig::default() }, 5)
        .expect("digits");
    let config = ModelConfig::Mlp { hidden: vec![24, 16], activation: Activation::Tanh, norm: Norm::LayerNorm };
    let layout = Arc::new(ModelLayout::new(&config, &split.train.sample_shape, 10).expect("layout"));
    let init_a = layout.init(&mut Rng::new(1));
    let init_b = layout.init(&mut Rng::new(2));
    let train = DeviceData::upload(&split.train, &device.device);
    let test = DeviceData::upload(&split.test, &device.device);
    let layers = LayerSelection::default().select(&layout);
    let term = WsaTerm {
        lambda: 0.5,
        direction: KlDirection::ModelToTarget,
        reduction: LayerReduction::Mean,
        layers: layers.clone(),
        target: layers.iter().map(|_| Scope { mean: 0.01, std: 0.05 }).collect(),
    };
    let train_config =
        TrainConfig { optimizer, learning_rate: 0.02, batch_size: 32, epochs: 1, ..TrainConfig::default() };
    let mut trainer = Trainer::new("A", train_config, &init_a, train.len, &device.device, 9).expect("trainer");
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
    };
    let cnn_layout = Arc::new(ModelLayout::new(&cnn, &split.train.sample_shape, 10).expect("cnn layout"));
    let cnn_params = cnn_layout.init(&mut Rng::new(4)).to_device(&device.device);
    Outcome {
        metrics: evaluate(&layout, &trained.tensors, &test).expect("evaluate"),
        scopes: device_scopes(&trained, &layers).expect("scopes"),
        trained: trained.to_host().expect("read back"),
        midpoint: midpoint.to_host().expect("read back"),
        average: average.to_host().expect("read back"),
        cnn_metrics: evaluate(&cnn_layout, &cnn_params.tensors, &test).expect("cnn evaluate"),
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

fn check_lerp(gpu: &ComputeDevice) {
    use wsa_core::kernels::lerp;
    for n in [1usize, 255, 256, 257, 100_003, 65_535 * 256 + 1] {
        let (a, b) = (kernel_inputs(n, 1), kernel_inputs(n, 2));
        for alpha in [0.0f32, 0.3, 1.0, -0.5, 1.5] {
            let upload =
                |v: &Vec<f32>, d: &ComputeDevice| Tensor::<1>::from_data(TensorData::new(v.clone(), [n]), &d.device);
            let on = |d: &ComputeDevice| -> Vec<f32> {
                lerp(upload(&a, d), upload(&b, d), alpha).into_data().try_to_vec::<f32>().expect("read back")
            };
            let (cpu_out, gpu_out) = (on(&device::cpu()), on(gpu));
            assert_eq!(gpu_out.len(), n);
            for i in 0..n {
                let exact = (1.0 - f64::from(alpha)) * f64::from(a[i]) + f64::from(alpha) * f64::from(b[i]);
                let tol = 1e-6 * (f64::from(a[i]).abs() + f64::from(b[i]).abs()) + 1e-38;
                for (side, out) in [("CPU", &cpu_out), ("GPU", &gpu_out)] {
                    let got = f64::from(out[i]);
                    assert!((got - exact).abs() <= tol, "lerp n={n} alpha={alpha} [{i}] on {side}: {got} vs {exact}");
                }
            }
        }
    }
}

#[test]
fn cpu_and_gpu_agree() {
    let require = std::env::var("WSA_REQUIRE_GPU").is_ok_and(|v| v == "1");
    let gpu = match device::select(DeviceChoice::Gpu) {
        Ok(gpu) => gpu,
        Err(e) => {
            let msg = format!("!!! NO GPU ADAPTER: the wgpu half of the device-parity suite did NOT run ({e}) !!!");
            assert!(!require, "{msg}");
            eprintln!("\n{msg}\n");
            return;
        }
    };
    eprintln!("device parity on {}", gpu.description);
    let started = Instant::now();
    check_lerp(&gpu);
    eprintln!("lerp kernel checks took {:.1} s", started.elapsed().as_secs_f64());
    for optimizer in [OptimizerKind::Sgd, OptimizerKind::Adam] {
        let cpu_out = compute(&device::cpu(), optimizer);
        let started = Instant::now();
        let gpu_out = compute(&gpu, optimizer);
        eprintln!("{optimizer:?}: GPU side took {:.1} s", started.elapsed().as_secs_f64());
        // f32 on both sides, different reduction orders: parameters agree to ~1e-5 after six
        // steps; metrics and scopes to a few 1e-5 relative.
        let d = max_abs_diff(&cpu_out.trained, &gpu_out.trained);
        assert!(d < 1e-4, "{optimizer:?}: trained weights differ by {d}");
        assert!(max_abs_diff(&cpu_out.midpoint, &gpu_out.midpoint) < 1e-4, "interpolation differs");
        assert!(max_abs_diff(&cpu_out.average, &gpu_out.average) < 1e-4, "weighted average differs");
        assert_close("test loss", cpu_out.metrics.loss, gpu_out.metrics.loss, 1e-4);
        assert_close("test accuracy", cpu_out.metrics.accuracy, gpu_out.metrics.accuracy, 1.0 / 128.0 + 1e-9);
        assert_close("CNN test loss", cpu_out.cnn_metrics.loss, gpu_out.cnn_metrics.loss, 1e-4);
        for (c, g) in cpu_out.scopes.iter().zip(&gpu_out.scopes) {
            assert_close("scope mean", c.mean, g.mean, 1e-6);
            assert_close("scope std", c.std, g.std, 1e-6 + 1e-5 * c.std);
        }
    }
}
