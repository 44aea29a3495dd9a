//! The CPU's vector instructions for our own kernels: the one place their instruction set is
//! chosen (gemm and burn's element-wise kernels choose their own).
//!
//! The crate is compiled for the baseline of its target (SSE2 on x86-64), so that one binary
//! runs on every CPU. [`with_best_simd`] runs a kernel compiled again for the widest set this CPU
//! has, chosen at run time: AVX-512 or AVX2 with FMA on x86-64 (pulp's `V4` and `V3`), the
//! target's own elsewhere (WebAssembly's SIMD128 in the page, NEON on ARM).

pub(crate) use pulp::{Simd, WithSimd};

/// Runs `op` (a [`WithSimd`], or any closure without arguments) with the widest SIMD
/// instructions this CPU has. Everything `op` calls should be `#[inline(always)]`: only what is
/// inlined into it is compiled for those instructions. Plain loops are vectorised by the
/// compiler, which keeps their arithmetic as written (no reassociation, no fused multiply-adds),
/// so they give the same numbers on every instruction set; pulp's multiply-adds are fused on AVX2
/// and AVX-512 but not on its scalar fallback or in WebAssembly. A closure's body may stay a call
/// of its own, compiled for the baseline: pass a struct that implements [`WithSimd`].
pub(crate) fn with_best_simd<Op: WithSimd>(op: Op) -> Op::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(simd) = pulp::x86::V4::try_new() {
            return Simd::vectorize(simd, op);
        }
        if let Some(simd) = pulp::x86::V3::try_new() {
            return Simd::vectorize(simd, op);
        }
        Simd::vectorize(pulp::Scalar::new(), op)
    }
    #[cfg(not(target_arch = "x86_64"))]
    pulp::Arch::new().dispatch(op)
}
