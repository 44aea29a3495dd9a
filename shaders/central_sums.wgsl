// central_sums.wgsl — the sums a tensor's fourth moment (its excess kurtosis) needs, for one
// piece of a checkpoint tensor on a GPU: each workgroup sums d, d², d³ and d⁴ over a strided
// share of the entries, d = (entry - centre) / scale, the centre being the piece's mean and the
// scale half its range, both from scope_finalize.wgsl (read on the device: nothing travels to
// the host in between). Summing about the piece's own mean keeps the f32 sums free of the
// cancellation raw powers would suffer; dividing by half the range keeps |d| <= 2, so that d⁴
// neither overflows (entries of 1e10) nor underflows (a spread of 1e-12). A scale that is not
// a normal f32 (a constant piece) is 1. The host forms the same scale from the same stats,
// turns each piece's sums into central moments in f64 and merges the pieces.
//
// Bindings (group 0, in launch order):
//   0: values  array<f32> — the piece, contiguous, finite entries only
//   1: stats   array<f32> — scope_finalize's [mean, variance, min, max]: the centre and scale
//   2: params  array<u32> — [n]: the element count (pooled buffers may be longer)
//   3: sums    array<f32> — out, 4 per workgroup: [sum d, sum d², sum d³, sum d⁴]
// All read_write for the reason given in scope_partials.wgsl.
//
// Dispatch: a 1-D grid of G workgroups of {{ workgroup_size }} threads, strided as in
// scope_partials.wgsl (the same G for the same n); each workgroup then adds its threads' sums
// pairwise in workgroup memory (16 bytes per thread).

@group(0) @binding(0) var<storage, read_write> values: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> params: array<u32>;
@group(0) @binding(3) var<storage, read_write> sums: array<f32>;

var<workgroup> shared_sums: array<vec4<f32>, {{ workgroup_size }}>;

@compute @workgroup_size({{ workgroup_size }}, 1, 1)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let n = params[0];
    let centre = stats[0];
    var scale = 0.5 * stats[3] - 0.5 * stats[2];
    if (!(scale >= 0x1p-126f)) {
        scale = 1.0;
    }
    let stride = groups.x * {{ workgroup_size }}u;
    var own = vec4<f32>(0.0);
    for (var i = wid.x * {{ workgroup_size }}u + lid.x; i < n; i += stride) {
        let d = (values[i] - centre) / scale;
        let d2 = d * d;
        own += vec4<f32>(d, d2, d2 * d, d2 * d2);
    }
    shared_sums[lid.x] = own;
    workgroupBarrier();
    for (var half = {{ workgroup_size }}u / 2u; half > 0u; half /= 2u) {
        if (lid.x < half) {
            shared_sums[lid.x] += shared_sums[lid.x + half];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        sums[wid.x * 4u] = shared_sums[0].x;
        sums[wid.x * 4u + 1u] = shared_sums[0].y;
        sums[wid.x * 4u + 2u] = shared_sums[0].z;
        sums[wid.x * 4u + 3u] = shared_sums[0].w;
    }
}
