//! Sets `cfg(gpu)` where the crate has its GPU backend (burn's wgpu with fusion, and our WGSL
//! kernels): always natively, and on wasm32 with the `gpu` feature (the page's WebGPU engine,
//! a module of its own; the page's first module computes on the CPU only, and is the lighter
//! for it). Code names `cfg(gpu)`, never the target and the feature together.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(gpu)");
    let wasm = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|arch| arch == "wasm32");
    if !wasm || std::env::var_os("CARGO_FEATURE_GPU").is_some() {
        println!("cargo::rustc-cfg=gpu");
    }
}
