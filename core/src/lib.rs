//! # wsa-core
//!
//! The engine of WSA Lab: Weight Scope Alignment (Xu et al., arXiv 2408.12237) for model
//! merging. No UI, no global state, no printing. Runs on burn's wgpu backend (GPU) and on its
//! flex backend (CPU); [`device`] is the only module that chooses between them.
//!
//! Data flow: [`data`] loads a split → [`model`] builds a layout and seeded parameters →
//! [`train`] trains them (with the [`wsa`] term toward scopes from [`scope`]) → [`merge`]
//! interpolates and averages them ([`batch_norm`] re-estimates a merged model's BatchNorm
//! statistics) → [`experiment`] ties it together and returns serde results;
//! [`io`] saves models as safetensors; [`infer`] reads a user's PyTorch MLP or CNN by its names
//! and shapes; [`checkpoint`] compares and merges checkpoints of any architecture, tensor by
//! tensor.

pub mod align;
pub mod batch_norm;
pub mod cancel;
pub mod checkpoint;
pub mod choice;
pub mod conv;
pub mod data;
pub mod device;
pub mod error;
pub mod experiment;
pub mod group_norm;
pub mod infer;
pub mod io;
pub mod kernels;
pub mod merge;
pub mod model;
pub mod repair;
pub mod rng;
pub mod scope;
mod simd;
pub mod step;
pub mod train;
pub mod wsa;

pub use error::{Result, WsaError};

/// Runs one of core's async functions to its end on this thread. Everything that reads from a
/// device is async, because a browser's WebGPU cannot block on a read; natively the CLI, the
/// app's worker thread and the tests wait here. In a browser only work on the CPU backend may
/// wait (its reads are ready at once); a WebGPU read must be awaited.
pub fn wait<F: std::future::Future>(future: F) -> F::Output {
    pollster::block_on(future)
}
