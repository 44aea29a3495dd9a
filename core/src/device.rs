//! The one module that chooses the compute backend: burn's wgpu backend on a GPU adapter, or
//! burn's flex backend on the CPU. Nothing else in the workspace names a backend. The GPU
//! backend exists where `cfg(gpu)` is set (`build.rs`: natively, and in the page's WebGPU module).

use crate::error::{Result, WsaError};
#[cfg(not(target_arch = "wasm32"))]
use burn::tensor::DeviceKind;
#[cfg(not(target_arch = "wasm32"))]
use burn::tensor::wgpu::wgpu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
#[cfg(gpu)]
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceChoice {
    /// A hardware GPU adapter when there is one, else the CPU.
    #[default]
    Auto,
    /// Any wgpu adapter, software rasterisers (lavapipe) included; an error when none exists.
    Gpu,
    /// burn's flex backend: deterministic for a given config and seed.
    Cpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = WsaError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "gpu" => Ok(DeviceChoice::Gpu),
            "cpu" => Ok(DeviceChoice::Cpu),
            other => Err(WsaError::invalid("device", other, "choose auto, gpu or cpu")),
        }
    }
}

/// A wgpu adapter found on this machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    /// True for CPU-emulated adapters such as Mesa's lavapipe.
    pub software: bool,
}

/// The chosen device and a sentence saying which it is and why.
#[derive(Clone, Debug)]
pub struct ComputeDevice {
    pub device: Device,
    pub is_gpu: bool,
    pub description: String,
    /// An error the GPU reported on its own, if any (see [`DeviceFault`]).
    pub fault: DeviceFault,
}

/// The first error a GPU device reported on its own rather than through a read. WebGPU reports
/// a kernel that failed validation this way, after the fact, and what the device computes from
/// then on cannot be trusted (the probe's symptom was a NaN loss), so work on a faulted device
/// is stopped and redone on the CPU (the app's job runner does it). Shared by clones.
#[derive(Clone, Debug, Default)]
pub struct DeviceFault(Arc<OnceLock<String>>);

impl DeviceFault {
    /// The first error reported, if any.
    pub fn reason(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }

    /// Keeps the first reason; later ones follow from it.
    pub fn record(&self, reason: String) {
        let _ = self.0.set(reason);
    }
}

#[cfg(not(target_arch = "wasm32"))]
/// Lists the wgpu adapters (Vulkan, Metal, DX12, GL) without opening any of them.
pub fn list_adapters() -> Vec<AdapterSummary> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    adapters
        .iter()
        .map(|a| {
            let info = a.get_info();
            AdapterSummary {
                name: info.name.clone(),
                backend: format!("{:?}", info.backend),
                software: info.device_type == wgpu::DeviceType::Cpu,
            }
        })
        .collect()
}

/// Threads the CPU backend computes on: rayon's pool natively (`RAYON_NUM_THREADS`, else one
/// per core), one in a browser.
pub fn cpu_threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    return rayon::current_num_threads();
    #[cfg(target_arch = "wasm32")]
    1
}

/// The GPU kernels launched while a piece of work ran, by kernel: what a training step costs in
/// dispatches, each of which pays the driver's fixed launch cost on top of its work.
#[cfg(gpu)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaunchCounts {
    /// Launches per kernel, named the way cubecl names kernels in its profiles (generic
    /// arguments dropped).
    pub by_kernel: BTreeMap<String, usize>,
}

#[cfg(gpu)]
impl LaunchCounts {
    pub fn total(&self) -> usize {
        self.by_kernel.values().sum()
    }
}

/// Counts the GPU kernels issued while `work` runs, on any thread and any GPU device (the CPU
/// backend launches none). The count is taken where cubecl issues a launch, so it includes
/// the kernels that burn's fusion compiles on the fly; a launch counts when it is issued, so
/// `work` should end with a sync or a read for every launch it caused to have been issued.
/// cubecl keeps one launch observer per process: counts must not overlap.
#[cfg(gpu)]
pub fn count_launches<T>(work: impl FnOnce() -> T) -> (T, LaunchCounts) {
    use burn::cubecl::config::{TypeNameFormatLevel, type_name_format};
    use burn::cubecl::logging::{LaunchObservation, LaunchObserver};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Tally(Mutex<BTreeMap<&'static str, usize>>);
    impl LaunchObserver for Tally {
        fn launched(&self, kernel: &'static str) {
            // A poisoned lock only means another launch panicked mid-count; its tally is intact.
            let mut counts = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            *counts.entry(kernel).or_default() += 1;
        }
    }

    let tally = Arc::new(Tally::default());
    let observation = LaunchObservation::new(tally.clone());
    let out = work();
    drop(observation);
    let counts = std::mem::take(&mut *tally.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    let mut by_kernel = BTreeMap::new();
    for (kernel, n) in counts {
        *by_kernel.entry(type_name_format(kernel, TypeNameFormatLevel::Balanced)).or_default() += n;
    }
    (out, LaunchCounts { by_kernel })
}

pub fn cpu() -> ComputeDevice {
    ComputeDevice {
        device: Device::flex(),
        is_gpu: false,
        description: "CPU (burn flex backend)".into(),
        fault: DeviceFault::default(),
    }
}

#[cfg(not(target_arch = "wasm32"))]
/// The wgpu device on the adapter wgpu prefers (a high-power GPU first).
fn gpu(adapter: &AdapterSummary) -> ComputeDevice {
    let kind = if adapter.software { "software GPU adapter" } else { "GPU" };
    ComputeDevice {
        device: Device::wgpu(DeviceKind::DefaultDevice),
        is_gpu: true,
        description: format!("{kind}: {} via {} (burn wgpu backend)", adapter.name, adapter.backend),
        fault: DeviceFault::default(),
    }
}

/// A compute device on wgpu handles that already exist — the device a renderer draws with — so
/// that training and drawing share one GPU instead of each opening its own. Call it once per
/// set of handles; burn does not detect a second registration.
#[cfg(not(target_arch = "wasm32"))]
pub fn from_wgpu(
    instance: wgpu::Instance,
    adapter: wgpu::Adapter,
    device: wgpu::Device,
    queue: wgpu::Queue,
) -> Result<ComputeDevice> {
    let info = adapter.get_info();
    let software = info.device_type == wgpu::DeviceType::Cpu;
    let setup = burn::tensor::wgpu::WgpuSetup { instance, adapter, device, queue, backend: info.backend };
    let device = Device::wgpu_options()
        .setup(setup)
        .init()
        .map_err(|e| WsaError::Device(format!("the renderer's GPU device could not be shared with burn: {e}")))?;
    let kind = if software { "software GPU adapter" } else { "GPU" };
    Ok(ComputeDevice {
        device,
        is_gpu: true,
        description: format!(
            "{kind}: {} via {:?}, shared with the renderer (burn wgpu backend)",
            info.name, info.backend
        ),
        fault: DeviceFault::default(),
    })
}

/// Reads a flat float tensor back to the host as f64: the one way results leave a device, so a
/// device failure becomes `WsaError::Device` (with burn's message) wherever it happens. Async:
/// a browser's WebGPU cannot block on a read (natively, [`crate::wait`] blocks on it).
pub async fn read_f64(tensor: Tensor<1>) -> Result<Vec<f64>> {
    read_data(tensor.into_data_async().await)?
        .convert::<f64>()
        .try_to_vec::<f64>()
        .map_err(|e| WsaError::Device(format!("{e:?}")))
}

/// A finished read, or the device's error.
pub(crate) fn read_data(
    data: std::result::Result<burn::tensor::TensorData, burn::tensor::ExecutionError>,
) -> Result<burn::tensor::TensorData> {
    data.map_err(|e| WsaError::Device(format!("{e:?}")))
}

/// The device for `choice` in a browser, never failing: WebGPU when the browser offers an
/// adapter (created asynchronously, as WebGPU requires) and `choice` and the work allow it,
/// else the CPU backend, with the reason in the description that the page shows. Without the
/// GPU backend (the page's first module) always the CPU: the page runs GPU work in its WebGPU
/// module, which has it.
#[cfg(target_arch = "wasm32")]
pub async fn select_in_browser(choice: DeviceChoice, flops_per_step: Option<f64>) -> ComputeDevice {
    let mut chosen = cpu();
    let why = match choice {
        DeviceChoice::Cpu => return chosen,
        DeviceChoice::Auto if !auto_prefers_gpu(flops_per_step) => too_small_for_a_gpu(flops_per_step),
        #[cfg(gpu)]
        _ => match Device::wgpu_options().init_with_setup_async().await {
            Ok((device, setup)) => {
                // CubeCL's handler panics on the first such error, and a panic aborts the whole
                // page; recording it instead lets the app stop the run and redo it on the CPU.
                let fault = DeviceFault::default();
                let recorder = fault.clone();
                setup.device.on_uncaptured_error(Arc::new(move |error| recorder.record(error.to_string())));
                return ComputeDevice { device, is_gpu: true, description: "WebGPU (burn wgpu backend)".into(), fault };
            }
            Err(e) => format!("this browser offers no usable WebGPU adapter ({e})"),
        },
        #[cfg(not(gpu))]
        _ => "this module of the page computes on the CPU only (the page's WebGPU module was not loaded)".to_string(),
    };
    chosen.description = format!("{} — {why}", chosen.description);
    chosen
}

/// Why `auto` computes `flops_per_step` on the CPU whatever GPU there is.
fn too_small_for_a_gpu(flops_per_step: Option<f64>) -> String {
    let flops = flops_per_step.unwrap_or(0.0);
    format!(
        "the model is small ({:.1} MFLOP per step): the CPU is faster than launching GPU kernels for it",
        flops / 1e6
    )
}

/// Whether `adapter` is a CPU-emulated one (e.g. lavapipe).
#[cfg(not(target_arch = "wasm32"))]
pub fn is_software(adapter: &wgpu::Adapter) -> bool {
    adapter.get_info().device_type == wgpu::DeviceType::Cpu
}

/// Training work per step (FLOPs) from which `auto` prefers a hardware GPU to the CPU backend.
/// Small models are launch-bound on a GPU: the H100 probe spent 1.11 ms per step on a
/// 64-128-10 MLP whatever its size, while the CPU backend here (`wsa-lab bench --only train`,
/// 2 cores) trains at 40-120 GFLOP/s, so a step has to carry about 1e8 FLOPs before the CPU
/// needs as long as the GPU's fixed cost. Examples: the default MLP on Fashion-MNIST at batch
/// 32 is 1e7 (CPU); the 16-32 CNN at batch 32 is 2e8 (GPU). One GPU data point: rerun the
/// bench on a GPU (`scripts/bench-gpu.sh`) to move it.
pub const GPU_WORTHWHILE_FLOPS_PER_STEP: f64 = 1e8;

impl DeviceChoice {
    /// Whether this choice runs `flops_per_step` of work on a GPU whose adapter is a hardware
    /// one (`hardware`) or CPU-emulated: `gpu` always, `cpu` never, `auto` only on hardware and
    /// for steps large enough to pay for the launches.
    pub fn wants_gpu(self, hardware: bool, flops_per_step: Option<f64>) -> bool {
        match self {
            DeviceChoice::Cpu => false,
            DeviceChoice::Gpu => true,
            DeviceChoice::Auto => hardware && auto_prefers_gpu(flops_per_step),
        }
    }
}

/// Whether `auto` takes a hardware GPU for this much work per step (unknown work: yes).
pub fn auto_prefers_gpu(flops_per_step: Option<f64>) -> bool {
    flops_per_step.is_none_or(|f| f >= GPU_WORTHWHILE_FLOPS_PER_STEP)
}

#[cfg(not(target_arch = "wasm32"))]
/// The device for `choice`, not knowing the workload (`auto` takes any hardware GPU).
pub fn select(choice: DeviceChoice) -> Result<ComputeDevice> {
    select_for(choice, None)
}

#[cfg(not(target_arch = "wasm32"))]
/// The device for `choice` and a run doing `flops_per_step` per training step: `auto` takes a
/// hardware GPU only when the steps are large enough to pay for its launch overhead.
pub fn select_for(choice: DeviceChoice, flops_per_step: Option<f64>) -> Result<ComputeDevice> {
    match choice {
        DeviceChoice::Cpu => Ok(cpu()),
        DeviceChoice::Gpu => {
            let adapters = list_adapters();
            let best = adapters.iter().find(|a| !a.software).or_else(|| adapters.first());
            best.map(gpu).ok_or_else(|| WsaError::NoGpu { detail: " (wgpu found no Vulkan, Metal, DX12 or GL adapter; on Debian install mesa-vulkan-drivers for lavapipe)".into() })
        }
        DeviceChoice::Auto => {
            let mut chosen = cpu();
            // Work that no GPU would take: the CPU without looking for adapters, as the page
            // decides. Looking loads the graphics drivers, and Mesa warns on stderr where
            // XDG_RUNTIME_DIR is unset: the default run's process took 0.20-0.25 s and 106 MB
            // with the look here, 0.17-0.20 s and 47 MB without.
            if !auto_prefers_gpu(flops_per_step) {
                chosen.description = format!("{} — {}", chosen.description, too_small_for_a_gpu(flops_per_step));
                return Ok(chosen);
            }
            let adapters = list_adapters();
            if let Some(hw) = adapters.iter().find(|a| !a.software) {
                return Ok(gpu(hw));
            }
            let why = if adapters.is_empty() {
                "no GPU adapter found".to_string()
            } else {
                let mut names: Vec<&str> = adapters.iter().map(|a| a.name.as_str()).collect();
                names.dedup();
                format!("only software adapters found ({}), slower than the CPU backend", names.join(", "))
            };
            chosen.description = format!("{} — {why}", chosen.description);
            Ok(chosen)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DatasetSpec;
    use crate::model::{ModelConfig, ModelLayout};

    fn flops(model: &ModelConfig, dataset: &DatasetSpec) -> f64 {
        let (shape, classes) = dataset.sample_shape_and_classes().expect("a built-in set");
        ModelLayout::new(model, &shape, classes).expect("layout").training_flops_per_sample()
    }

    /// Work per sample counted by hand, and what `auto` makes of it at batch 32.
    #[test]
    fn auto_weighs_the_work_per_step() {
        let mlp = ModelConfig::default();
        // 784*64 + 64*64 + 64*10 weights, one multiply-add each, 6 FLOPs per multiply-add.
        assert_eq!(flops(&mlp, &DatasetSpec::FashionMnist), 6.0 * 54_912.0);
        let cnn = ModelConfig::cnn(vec![16, 32]);
        // conv 16x1x3x3 at 28x28, conv 32x16x3x3 at 14x14, classifier 10 x 32*7*7.
        assert_eq!(flops(&cnn, &DatasetSpec::FashionMnist), 6.0 * (144.0 * 784.0 + 4608.0 * 196.0 + 15_680.0));
        assert!(!auto_prefers_gpu(Some(32.0 * flops(&mlp, &DatasetSpec::FashionMnist))));
        assert!(auto_prefers_gpu(Some(32.0 * flops(&cnn, &DatasetSpec::FashionMnist))));
        assert!(auto_prefers_gpu(None));
    }

    /// `auto` gives work no GPU would take to the CPU, saying why, on every machine; `cpu` the
    /// CPU without a reason (neither looks for an adapter).
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn auto_keeps_small_work_on_the_cpu_and_says_why() {
        let small = select_for(DeviceChoice::Auto, Some(3.4e6)).expect("the CPU");
        assert!(!small.is_gpu);
        assert_eq!(
            small.description,
            "CPU (burn flex backend) — the model is small (3.4 MFLOP per step): the CPU is faster than launching GPU kernels for it"
        );
        assert_eq!(select_for(DeviceChoice::Cpu, Some(1e12)).expect("the CPU").description, cpu().description);
    }
}
