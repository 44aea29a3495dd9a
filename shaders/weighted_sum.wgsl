// weighted_sum.wgsl — out = w_0 x_0 + ... + w_{K-1} x_{K-1}, element by element, over K flat
// f32 parameter buffers of one length: the K-model weighted average of method.md section 4 and,
// with K = 2 and weights (1 - alpha, alpha), the interpolation path theta(alpha) of section 5.
// One pass: each entry of every input is read once and the output written once. Used by
// wsa-core's `kernels::weighted_sum`; the CPU backend computes the same sum with tensor ops.
//
// The host fills the template slots for K (a WGSL binding count cannot be a runtime value):
// the slot "inputs" with the K input bindings x0 .. x(K-1) at bindings 0 .. K-1, the slot "sum"
// with the expression params[1] * x0[i] + ... + params[K] * x(K-1)[i], and the two binding
// numbers that follow:
//   K:     params  array<f32> — [bitcast<f32>(n), w_0, ..., w_{K-1}]
//   K + 1: out     array<f32> — the result, length n
// All read_write for the reason given in scope_partials.wgsl. More than a few models are summed
// in several passes, each taking the previous partial sum as an input of weight 1.
//
// Dispatch: workgroups of {{ workgroup_size }} threads, one entry per thread; the grid is 2-D
// (x at most 65535) so that tensors of more than 65535 * {{ workgroup_size }} entries fit.
// Threads past n return.

{{ inputs }}
@group(0) @binding({{ params_binding }}) var<storage, read_write> params: array<f32>;
@group(0) @binding({{ out_binding }}) var<storage, read_write> out: array<f32>;

@compute @workgroup_size({{ workgroup_size }}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * {{ workgroup_size }}u;
    if (i >= bitcast<u32>(params[0])) {
        return;
    }
    out[i] = {{ sum }};
}
