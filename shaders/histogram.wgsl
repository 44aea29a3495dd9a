// histogram.wgsl — counts of one layer's entries in equal-width bins over [low, high]
// (method.md section 1, the histograms the app and the CLI draw). Entries outside the range go
// to the edge bins and a NaN to the first, so that every entry is counted once, as the Rust
// implementation `wsa_core::scope::histogram` on the CPU does. With high <= low every entry
// lands in the first bin.
//
// Bindings (group 0, in launch order):
//   0: values  array<f32> — the layer, contiguous
//   1: range   array<f32> — [low, high], usually derived on the device from scope_finalize's
//                           min and max, so no statistic travels to the host first
//   2: params  array<u32> — [n, bins]: element count (pooled buffers may be longer) and bins
//   3: counts  array<atomic<u32>> — out, `bins` counters, zeroed by the host before the launch
// All read_write for the reason given in scope_partials.wgsl.
//
// Dispatch: a 1-D grid of workgroups of {{ workgroup_size }} threads, each thread striding over
// the entries as in scope_partials.wgsl. Each workgroup counts into its own workgroup-memory
// counters (cheap atomics), then adds its non-zero counters to the global ones: one global
// atomic per bin and workgroup instead of one per entry. At most {{ max_bins }} bins.

@group(0) @binding(0) var<storage, read_write> values: array<f32>;
@group(0) @binding(1) var<storage, read_write> range: array<f32>;
@group(0) @binding(2) var<storage, read_write> params: array<u32>;
@group(0) @binding(3) var<storage, read_write> counts: array<atomic<u32>>;

var<workgroup> local_counts: array<atomic<u32>, {{ max_bins }}>;

@compute @workgroup_size({{ workgroup_size }}, 1, 1)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let n = params[0];
    let bins = params[1];
    for (var b = lid.x; b < bins; b += {{ workgroup_size }}u) {
        atomicStore(&local_counts[b], 0u);
    }
    workgroupBarrier();
    let low = range[0];
    let high = range[1];
    var scale = 0.0;
    if (high > low) {
        scale = f32(bins) / (high - low);
    }
    let last = f32(bins - 1u);
    let stride = groups.x * {{ workgroup_size }}u;
    for (var i = wid.x * {{ workgroup_size }}u + lid.x; i < n; i += stride) {
        let pos = floor((values[i] - low) * scale);
        // A NaN goes to bin 0 where the compiler keeps NaN semantics; where it assumes NaNs
        // away, min() still keeps the index inside the counters. (NaN weights are refused
        // before they reach a histogram: this only guards the memory.)
        let bin = min(select(0u, u32(clamp(pos, 0.0, last)), pos == pos), bins - 1u);
        atomicAdd(&local_counts[bin], 1u);
    }
    workgroupBarrier();
    for (var b = lid.x; b < bins; b += {{ workgroup_size }}u) {
        let c = atomicLoad(&local_counts[b]);
        if (c > 0u) {
            atomicAdd(&counts[b], c);
        }
    }
}
