//! Our own WGSL compute kernels (`shaders/*.wgsl`), plugged into burn through a backend
//! extension: on the wgpu (CubeCL) backend the hand-written shader runs; on the CPU (flex)
//! backend the same expression runs as tensor operations. Callers see one function per kernel
//! and never name a backend.

use burn::backend::ops::FloatTensorOps;
use burn::backend::wgpu::{
    CubeBackend, CubeDim, CubeTensor, KernelSource, SourceKernel, SourceTemplate, into_contiguous,
};
use burn::backend::{Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor};
use burn::cubecl::{CubeCount, prelude::KernelId, server::KernelArguments};
use burn::tensor::Tensor;

const LERP_WGSL: &str = include_str!("../../shaders/lerp.wgsl");
const WORKGROUP_SIZE: u32 = 256;
/// The largest workgroup count WebGPU allows in one dimension.
const MAX_GROUPS_PER_DIM: u32 = 65_535;

struct LerpKernel;

impl KernelSource for LerpKernel {
    fn source(&self) -> SourceTemplate {
        SourceTemplate::new(LERP_WGSL).register("workgroup_size", WORKGROUP_SIZE.to_string())
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info(WORKGROUP_SIZE)
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

/// A 2-D grid of workgroups covering `n` elements.
fn grid_for(n: usize) -> CubeCount {
    let groups = (n as u32).div_ceil(WORKGROUP_SIZE).max(1);
    let x = groups.min(MAX_GROUPS_PER_DIM);
    CubeCount::Static(x, groups.div_ceil(x), 1)
}

#[backend_extension(Cube, Flex, Fusion)]
pub trait MergeKernels: Backend {
    /// (1 - alpha) a + alpha b, element-wise, for two flat tensors of one length.
    #[fusion(dtype = a, shape = a)]
    fn lerp(a: FloatTensor<Self>, b: FloatTensor<Self>, alpha: f32) -> FloatTensor<Self>;
}

impl MergeKernels for CubeBackend {
    fn lerp(a: FloatTensor<Self>, b: FloatTensor<Self>, alpha: f32) -> FloatTensor<Self> {
        let a = into_contiguous(a);
        let b = into_contiguous(b);
        let shape = a.meta.shape().clone();
        let n = shape.num_elements();
        let params: Vec<u8> = [alpha, f32::from_bits(n as u32)].iter().flat_map(|v| v.to_le_bytes()).collect();
        let params = a.client.create_from_slice(&params);
        let out = CubeTensor::new_contiguous(a.client.clone(), a.device.clone(), shape, a.client.empty(n * 4), a.dtype);
        a.client.launch(
            Box::new(SourceKernel::new(LerpKernel, CubeDim::new_1d(WORKGROUP_SIZE))),
            grid_for(n),
            KernelArguments::new().with_buffers(vec![
                a.handle.clone().binding(),
                b.handle.clone().binding(),
                params.binding(),
                out.handle.clone().binding(),
            ]),
        );
        out
    }
}

impl MergeKernels for Flex {
    fn lerp(a: FloatTensor<Self>, b: FloatTensor<Self>, alpha: f32) -> FloatTensor<Self> {
        let dtype = a.dtype();
        let a = Flex::float_mul_scalar(a, burn::backend::Scalar::new(1.0 - alpha, &dtype));
        let b = Flex::float_mul_scalar(b, burn::backend::Scalar::new(alpha, &dtype));
        Flex::float_add(a, b)
    }
}

/// (1 - alpha) a + alpha b on whichever device the tensors live; on a GPU through
/// `shaders/lerp.wgsl`. Both must be flat, of one length, on one device, without autodiff.
pub fn lerp(a: Tensor<1>, b: Tensor<1>, alpha: f32) -> Tensor<1> {
    Tensor::from_dispatch(<Dispatch as MergeKernels>::lerp(a.into_dispatch(), b.into_dispatch(), alpha))
}
