// lerp.wgsl — the interpolation theta(alpha) = (1 - alpha) * a + alpha * b of two flat f32
// parameter buffers, element by element (method.md section 5). Used by wsa-core's
// `kernels::lerp` on the wgpu device; the CPU backend computes the same expression with tensor ops.
//
// Bindings (group 0, in launch order):
//   0: a       array<f32> — model A's parameter, contiguous
//   1: b       array<f32> — model B's parameter, same length
//   2: params  array<f32> — [alpha, bitcast<f32>(n)]: the weight and the element count
//   3: out     array<f32> — the result, length n
// All four are declared read_write although only `out` is written: CubeCL hands out slices of
// pooled buffers, so an input and the output may be views of one wgpu buffer, and wgpu refuses
// a buffer bound both read-only and read-write in one dispatch.
//
// Dispatch: workgroups of {{ workgroup_size }} threads, one element per thread; the workgroup
// grid is 2-D (x at most 65535) so that layers of more than 65535 * {{ workgroup_size }}
// elements fit. Threads past n return; pooled buffers may be longer than n, so n is passed
// rather than read from arrayLength.

@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size({{ workgroup_size }}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * {{ workgroup_size }}u;
    let n = bitcast<u32>(params[1]);
    if (i >= n) {
        return;
    }
    let alpha = params[0];
    out[i] = (1.0 - alpha) * a[i] + alpha * b[i];
}
