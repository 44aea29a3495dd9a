// wsa_coefficients.wgsl — the WSA penalty of method.md section 3 in closed form, per regularised
// layer, from the layers' statistics (scope_finalize.wgsl's output). The penalty depends on a
// layer only through its mean m and population variance v, so its gradient at an entry w of
// the layer is (w - m) b + a, with a = scale dKL/dm / n and b = scale dKL/dstd / (sqrt(v) n)
// (the derivation is at wsa-core's `WsaTerm::closed_form`). This kernel writes (m, b, a, KL) for
// every layer; wsa_gradient.wgsl then writes each layer's gradient, and the host sums the KLs.
// The CPU backend computes the same numbers in the same order of f32 operations
// (`kernels::coefficients_on_host`).
//
// Bindings (group 0, in launch order):
//   0: stats         array<f32> — 4 per layer: [mean, variance, min, max]
//   1: params        array<u32> — [layers, direction (0: KL(model || target), 1: KL(target ||
//                                 model)), variance epsilon, std epsilon, then 3 per layer:
//                                 target mean, target std + std epsilon, scale / n]; the f32
//                                 values as their bits
//   2: coefficients  array<f32> — out, 4 per layer: [m, b, a, KL]
// All read_write for the reason given in scope_partials.wgsl.
//
// Dispatch: one thread per layer, one workgroup of {{ workgroup_size }} threads per
// {{ workgroup_size }} layers; threads past the last layer return.

@group(0) @binding(0) var<storage, read_write> stats: array<f32>;
@group(0) @binding(1) var<storage, read_write> params: array<u32>;
@group(0) @binding(2) var<storage, read_write> coefficients: array<f32>;

@compute @workgroup_size({{ workgroup_size }}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let layer = gid.x;
    if (layer >= params[0]) {
        return;
    }
    let mean = stats[layer * 4u];
    let variance = stats[layer * 4u + 1u];
    let target_mean = bitcast<f32>(params[4u + layer * 3u]);
    let target_std = bitcast<f32>(params[5u + layer * 3u]);
    let per_entry = bitcast<f32>(params[6u + layer * 3u]);
    let root = sqrt(variance + bitcast<f32>(params[2]));
    let model_std = root + bitcast<f32>(params[3]);
    let dm = mean - target_mean;
    var kl: f32;
    var d_mean: f32;
    var d_std: f32;
    if (params[1] == 0u) {
        let target_var = target_std * target_std;
        kl = log(target_std) - log(model_std) + (model_std * model_std + dm * dm) / (target_var * 2.0) - 0.5;
        d_mean = dm / target_var;
        d_std = -(1.0 / model_std) + model_std / target_var;
    } else {
        let model_var = model_std * model_std;
        let numerator = target_std * target_std + dm * dm;
        kl = log(model_std) - log(target_std) + numerator / (model_var * 2.0) - 0.5;
        d_mean = dm / model_var;
        d_std = 1.0 / model_std - numerator / (model_var * model_std);
    }
    let out = layer * 4u;
    coefficients[out] = mean;
    coefficients[out + 1u] = d_std / root * per_entry;
    coefficients[out + 2u] = d_mean * per_entry;
    coefficients[out + 3u] = kl;
}
