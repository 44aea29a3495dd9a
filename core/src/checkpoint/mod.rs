//! Checkpoints of any architecture: the scopes of every tensor of two safetensors files, how
//! far apart they are, and their merge (issue 30 item 4). Unlike [`crate::io`], which reads a
//! model whose layout the lab knows, nothing here needs a layout: a tensor is a name, a type, a
//! shape and its bytes, and the files are read tensor by tensor in pieces ([`header`]), so a
//! checkpoint larger than memory is compared and merged: float16 and bfloat16 tensors with a few
//! megabytes in hand, float32 and float64 ones with about 12 bytes per value of the largest.
//!
//! [`stats`] summarises one tensor exactly on the CPU, [`on_device`] on a compute device with
//! our WGSL kernels (natively); [`compare`] lines two checkpoints up on either; [`merge`]
//! writes their interpolation (optionally rescaled to the fused scope: a baseline, not WSA).

pub mod compare;
pub mod header;
pub mod merge;
#[cfg(not(target_arch = "wasm32"))]
pub mod on_device;
pub mod stats;

#[cfg(not(target_arch = "wasm32"))]
pub use compare::compare_on_device;
pub use compare::{Comparison, TensorComparison, compare};
pub use header::{Header, StoredType, TensorEntry};
pub use merge::{MergeOptions, merge};
pub use stats::TensorStats;

use std::io::{Read, Seek};

/// What a checkpoint is read from: a file natively, bytes in memory in the page.
pub trait Source: Read + Seek {}
impl<T: Read + Seek> Source for T {}
