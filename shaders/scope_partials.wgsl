// scope_partials.wgsl — first pass of the per-layer scope statistics (method.md section 1):
// each workgroup summarises a strided share of one layer's entries as (count, mean, M2, min,
// max) with the functions of moments.wgsl (appended to this source). scope_finalize.wgsl then
// merges the partials of every layer in one more dispatch. Used by wsa-core's
// `kernels::layer_stats` on the wgpu device; the CPU backend computes the same numbers in Rust.
//
// Bindings (group 0, in launch order):
//   0: values    array<f32> — the layer, contiguous
//   1: params    array<u32> — [n]: the element count (pooled buffers may be longer than n)
//   2: partials  array<f32> — out, 6 per workgroup: [count, mean - shift, M2, min, max, shift],
//                             the shift being the layer's first entry; the count as
//                             a float value (a workgroup sees far fewer than 2^24 entries, so it
//                             is exact), not as bits: a copy that flushes denormals would eat bits
// All are declared read_write: CubeCL hands out slices of pooled buffers, so two bindings may be
// views of one wgpu buffer, and wgpu refuses a buffer bound read-only and read-write at once.
//
// Dispatch: a 1-D grid of G workgroups of {{ workgroup_size }} threads (G chosen by the host);
// thread t of workgroup g reads entries t + g * WG, t + (g + G) * WG, ..., so every entry is
// read once and neighbouring threads read neighbouring entries. A workgroup that gets no entry
// writes count 0.

@group(0) @binding(0) var<storage, read_write> values: array<f32>;
@group(0) @binding(1) var<storage, read_write> params: array<u32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size({{ workgroup_size }}, 1, 1)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let n = params[0];
    let stride = groups.x * {{ workgroup_size }}u;
    // Every workgroup of the layer shifts by the same entry, so the partials merge unshifted.
    let shift = values[0];
    var own = NO_ENTRIES;
    for (var i = wid.x * {{ workgroup_size }}u + lid.x; i < n; i += stride) {
        own = add_entry(own, values[i], shift);
    }
    let all = merge_workgroup(lid.x, own);
    if (lid.x == 0u) {
        let o = wid.x * 6u;
        partials[o] = f32(all.count);
        partials[o + 1u] = all.mean;
        partials[o + 2u] = all.m2;
        partials[o + 3u] = all.lo;
        partials[o + 4u] = all.hi;
        partials[o + 5u] = shift;
    }
}
