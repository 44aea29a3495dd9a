//! The one module that chooses the compute backend: burn's wgpu backend on a GPU adapter, or
//! burn's flex backend on the CPU. Nothing else in the workspace names a backend.

use crate::error::{Result, WsaError};
use burn::tensor::wgpu::wgpu;
use burn::tensor::{Device, DeviceKind};
use serde::{Deserialize, Serialize};

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
}

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

pub fn cpu() -> ComputeDevice {
    ComputeDevice { device: Device::flex(), is_gpu: false, description: "CPU (burn flex backend)".into() }
}

/// The wgpu device on the adapter wgpu prefers (a high-power GPU first).
fn gpu(adapter: &AdapterSummary) -> ComputeDevice {
    let kind = if adapter.software { "software GPU adapter" } else { "GPU" };
    ComputeDevice {
        device: Device::wgpu(DeviceKind::DefaultDevice),
        is_gpu: true,
        description: format!("{kind}: {} via {} (burn wgpu backend)", adapter.name, adapter.backend),
    }
}

/// A compute device on wgpu handles that already exist — the device a renderer draws with — so
/// that training and drawing share one GPU instead of each opening its own. Call it once per
/// set of handles; burn does not detect a second registration.
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
    })
}

/// Whether `adapter` is a CPU-emulated one (e.g. lavapipe).
pub fn is_software(adapter: &wgpu::Adapter) -> bool {
    adapter.get_info().device_type == wgpu::DeviceType::Cpu
}

pub fn select(choice: DeviceChoice) -> Result<ComputeDevice> {
    match choice {
        DeviceChoice::Cpu => Ok(cpu()),
        DeviceChoice::Gpu => {
            let adapters = list_adapters();
            let best = adapters.iter().find(|a| !a.software).or_else(|| adapters.first());
            best.map(gpu).ok_or_else(|| WsaError::NoGpu { detail: " (wgpu found no Vulkan, Metal, DX12 or GL adapter; on Debian install mesa-vulkan-drivers for lavapipe)".into() })
        }
        DeviceChoice::Auto => {
            let adapters = list_adapters();
            if let Some(hw) = adapters.iter().find(|a| !a.software) {
                return Ok(gpu(hw));
            }
            let mut chosen = cpu();
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
