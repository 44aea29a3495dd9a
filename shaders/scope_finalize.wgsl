// scope_finalize.wgsl — second pass of the per-layer scope statistics: merges the partials that
// scope_partials.wgsl wrote for every layer (concatenated, layer after layer) into one
// (mean, variance, min, max) per layer, all layers in this one dispatch. The variance is the
// population one, M2 / count, as method.md section 1 defines the scope's std. The merge
// functions come from moments.wgsl, appended to this source.
//
// Bindings (group 0, in launch order):
//   0: partials  array<f32> — 6 per partial: [count, mean - shift, M2, min, max, shift]; all
//                             partials of one layer share the shift
//   1: table     array<u32> — 2 per layer: [index of its first partial, number of partials]
//   2: stats     array<f32> — out, 4 per layer: [mean, variance, min, max]
// All read_write for the reason given in scope_partials.wgsl.
//
// Dispatch: one workgroup of {{ workgroup_size }} threads per layer, the grid (layers, 1, 1);
// each thread merges a strided share of its layer's partials, then the workgroup merges those.

@group(0) @binding(0) var<storage, read_write> partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> table: array<u32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;

@compute @workgroup_size({{ workgroup_size }}, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let layer = wid.x;
    let first = table[layer * 2u];
    let parts = table[layer * 2u + 1u];
    var own = NO_ENTRIES;
    for (var p = lid.x; p < parts; p += {{ workgroup_size }}u) {
        let o = (first + p) * 6u;
        let part = Moments(
            u32(partials[o]),
            partials[o + 1u],
            partials[o + 2u],
            partials[o + 3u],
            partials[o + 4u],
        );
        own = merge(own, part);
    }
    let all = merge_workgroup(lid.x, own);
    if (lid.x == 0u) {
        let o = layer * 4u;
        stats[o] = all.mean + partials[first * 6u + 5u];
        stats[o + 1u] = all.m2 / f32(max(all.count, 1u));
        stats[o + 2u] = all.lo;
        stats[o + 3u] = all.hi;
    }
}
