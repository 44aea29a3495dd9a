// moments.wgsl — shared by scope_partials.wgsl and scope_finalize.wgsl (appended to each by
// wsa-core's `kernels` module; WGSL has no include). A summary of some entries of a layer and
// the two ways to combine summaries.
//
// Numerics: Welford's update for one more entry, Chan et al.'s pairwise merge for two summaries,
// both on entries shifted by one of the layer's own entries (every summary of a layer uses the
// same shift). Sum and sum of squares would lose every digit where the mean is large against
// the spread; Welford alone still loses some, because its running mean is rounded at the scale
// of the mean (measured: 2e-3 relative error of the variance for mean 1000, std 1e-3); shifted,
// the entries are differences of nearby floats, exact, and the error stays at f32 rounding. A
// layer of constant values gives M2 = 0 exactly. Counts stay u32 (exact below 2^32 entries)
// and enter the arithmetic only as ratios.

struct Moments {
    count: u32,
    // Mean of the shifted entries.
    mean: f32,
    // Sum of squared deviations from the mean.
    m2: f32,
    // Minimum and maximum of the entries themselves, not shifted.
    lo: f32,
    hi: f32,
}

// The largest f32 (FLT_MAX) as an exact hex literal: a rounded decimal such as 3.4028235e38 lies
// just above it, which naga accepts but Chromium's compiler (Tint) rightly rejects.
const NO_ENTRIES = Moments(0u, 0.0, 0.0, 0x1.fffffep+127f, -0x1.fffffep+127f);

fn add_entry(s: Moments, v: f32, shift: f32) -> Moments {
    let x = v - shift;
    let count = s.count + 1u;
    let delta = x - s.mean;
    let mean = s.mean + delta / f32(count);
    return Moments(count, mean, s.m2 + delta * (x - mean), min(s.lo, v), max(s.hi, v));
}

fn merge(a: Moments, b: Moments) -> Moments {
    if (b.count == 0u) {
        return a;
    }
    let count = a.count + b.count;
    let delta = b.mean - a.mean;
    let share = f32(b.count) / f32(count);
    return Moments(
        count,
        a.mean + delta * share,
        a.m2 + b.m2 + delta * delta * f32(a.count) * share,
        min(a.lo, b.lo),
        max(a.hi, b.hi),
    );
}

var<workgroup> shared_moments: array<Moments, {{ workgroup_size }}>;

// Merges every thread's summary into one, pairwise in log2(workgroup size) rounds. Call from all
// threads of the workgroup (it holds barriers); the result is meaningful in thread 0.
fn merge_workgroup(t: u32, own: Moments) -> Moments {
    shared_moments[t] = own;
    workgroupBarrier();
    for (var half = {{ workgroup_size }}u / 2u; half > 0u; half /= 2u) {
        if (t < half) {
            shared_moments[t] = merge(shared_moments[t], shared_moments[t + half]);
        }
        workgroupBarrier();
    }
    return shared_moments[0];
}
