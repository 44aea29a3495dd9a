// value_counts.wgsl — how often each value occurs in a piece of a checkpoint tensor, the order
// statistics of wsa-core's `checkpoint` module on a GPU. Two layouts, chosen by the host through
// the {{ bits }} slot:
//   16: the piece is 16-bit floats (float16, bfloat16) packed two to a word, little end first;
//       counter p counts bit pattern p, so the 65,536 counters are the tensor's values in full,
//       and the host derives every statistic from them exactly as it does on the CPU.
//   32: the piece is finite float32 values; counter b counts the values whose order key (the
//       bits mapped so that unsigned order is the values' order) has b as its top 16 bits, and
//       counters 65536 and 65537 keep the least and the greatest key (the exact minimum and
//       maximum, compared as integers so that no float arithmetic can flush a subnormal).
// The counters are added to, not overwritten: the host zeroes them (the least key at
// 0xffffffff) once per tensor and passes them to every piece of it.
//
// Bindings (group 0, in launch order):
//   0: words   array<u32> — the piece, contiguous (float32 bit patterns read as words)
//   1: params  array<u32> — [n]: values in the piece (pooled buffers may be longer)
//   2: counts  array<atomic<u32>> — in and out, 65,536 counters (+ 2 extremes with 32 bits)
// All read_write for the reason given in scope_partials.wgsl.
//
// Dispatch: a 1-D grid of workgroups of {{ workgroup_size }} threads, each thread striding over
// the values as in scope_partials.wgsl. 65,536 counters do not fit WebGPU's 16 KiB of
// workgroup memory, so every value is one global atomic add; only the extremes are reduced in
// the workgroup first.

@group(0) @binding(0) var<storage, read_write> words: array<u32>;
@group(0) @binding(1) var<storage, read_write> params: array<u32>;
@group(0) @binding(2) var<storage, read_write> counts: array<atomic<u32>>;

const BITS: u32 = {{ bits }}u;
const LEAST_KEY: u32 = 65536u;
const GREATEST_KEY: u32 = 65537u;

var<workgroup> least: atomic<u32>;
var<workgroup> greatest: atomic<u32>;

// Negative values reversed below the positive ones (-0 just below +0), as wsa-core's
// `order_key32` does on the CPU.
fn order_key(bits: u32) -> u32 {
    if ((bits & 0x80000000u) != 0u) {
        return ~bits;
    }
    return bits | 0x80000000u;
}

@compute @workgroup_size({{ workgroup_size }}, 1, 1)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let n = params[0];
    let stride = groups.x * {{ workgroup_size }}u;
    if (BITS == 16u) {
        for (var i = wid.x * {{ workgroup_size }}u + lid.x; i < n; i += stride) {
            let pattern = (words[i / 2u] >> ((i & 1u) * 16u)) & 0xffffu;
            atomicAdd(&counts[pattern], 1u);
        }
        return;
    }
    if (lid.x == 0u) {
        atomicStore(&least, 0xffffffffu);
        atomicStore(&greatest, 0u);
    }
    workgroupBarrier();
    var lo = 0xffffffffu;
    var hi = 0u;
    for (var i = wid.x * {{ workgroup_size }}u + lid.x; i < n; i += stride) {
        let key = order_key(words[i]);
        atomicAdd(&counts[key >> 16u], 1u);
        lo = min(lo, key);
        hi = max(hi, key);
    }
    atomicMin(&least, lo);
    atomicMax(&greatest, hi);
    workgroupBarrier();
    if (lid.x == 0u) {
        atomicMin(&counts[LEAST_KEY], atomicLoad(&least));
        atomicMax(&counts[GREATEST_KEY], atomicLoad(&greatest));
    }
}
