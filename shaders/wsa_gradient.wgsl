// wsa_gradient.wgsl — the WSA penalty's gradient at every entry w of one layer, (w - m) b + a,
// with the layer's (m, b, a) from wsa_coefficients.wgsl's output. One pass: each entry is read
// once and its gradient written once. The CPU backend computes the same expression in f32.
//
// Bindings (group 0, in launch order):
//   0: values        array<f32> — the layer's entries, length n
//   1: coefficients  array<f32> — 4 per layer: [m, b, a, KL]
//   2: params        array<u32> — [n, the layer's index in coefficients]
//   3: out           array<f32> — the gradient, length n
// All read_write for the reason given in scope_partials.wgsl.
//
// Dispatch: workgroups of {{ workgroup_size }} threads, one entry per thread; the grid is 2-D
// (x at most 65535) so that layers of more than 65535 * {{ workgroup_size }} entries fit.
// Threads past n return.

@group(0) @binding(0) var<storage, read_write> values: array<f32>;
@group(0) @binding(1) var<storage, read_write> coefficients: array<f32>;
@group(0) @binding(2) var<storage, read_write> params: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size({{ workgroup_size }}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * {{ workgroup_size }}u;
    if (i >= params[0]) {
        return;
    }
    let at = params[1] * 4u;
    out[i] = (values[i] - coefficients[at]) * coefficients[at + 1u] + coefficients[at + 2u];
}
