"""What the installed wsa_lab package computes on the layers a Rust test wrote, as JSON on
standard output, gradients as float32 files beside the layers; cli/tests/python.rs compares every
number with the engine's own functions, bit for bit, and checks the refusals' words.

    python engine_numbers.py DIR     (DIR/layers.json names the layer files, shapes, weights, lambda)
"""

import json
import sys
from pathlib import Path

import numpy as np
import wsa_lab

folder = Path(sys.argv[1])
spec = json.loads((folder / "layers.json").read_text())
models = [
    [np.fromfile(folder / layer["file"], dtype="<f4").reshape(layer["shape"]) for layer in layers]
    for layers in spec["models"]
]

out = {"scopes": [[list(wsa_lab.scope(w)) for w in layers] for layers in models]}
# Another dtype is read as float32, as the engine holds weights.
out["scope_of_float64"] = list(wsa_lab.scope(models[0][0].astype(np.float64)))
# Other layouts and dtypes of the same values give the same scope, bit for bit: a transposed
# (non-contiguous) view, big-endian bytes, integers (as the float32 numbers they are).
first = models[0][0]
out["same_scope_other_layouts"] = {
    "transposed": wsa_lab.scope(first.T) == wsa_lab.scope(np.ascontiguousarray(first.T)),
    "big-endian": wsa_lab.scope(first.astype(">f4")) == wsa_lab.scope(first),
    "integers": wsa_lab.scope(np.arange(-7, 20)) == wsa_lab.scope(np.arange(-7, 20, dtype=np.float32)),
    "0-d": wsa_lab.scope(np.float32(0.25)) == (0.25, 0.0),
}
out["fused"] = {
    rule: [list(s) for s in wsa_lab.fuse(out["scopes"], spec["weights"], rule)]
    for rule in wsa_lab.FUSION_RULES
}
out["fused_equal_weights"] = [list(s) for s in wsa_lab.fuse(out["scopes"])]
out["kl"] = wsa_lab.kl(out["scopes"][0][0], out["scopes"][1][0])

target = out["fused"]["moment-matching"]
out["penalty"] = {}
for direction in wsa_lab.KL_DIRECTIONS:
    for reduction in wsa_lab.LAYER_REDUCTIONS:
        value, gradients = wsa_lab.penalty(
            models[0], target, lam=spec["lambda"], direction=direction, reduction=reduction
        )
        name = f"{direction} {reduction}"
        for layer, gradient in enumerate(gradients):
            assert gradient.shape == models[0][layer].shape, (name, layer, gradient.shape)
            assert gradient.dtype == np.float32, (name, layer, gradient.dtype)
            (folder / f"gradient {name} {layer}.f32").write_bytes(gradient.astype("<f4").tobytes())
        out["penalty"][name] = value

errors = {}


def refused(name, call):
    try:
        call()
    except (ValueError, TypeError) as e:
        errors[name] = f"{type(e).__name__}: {e}"
    else:
        errors[name] = "accepted"


with_nan = models[0][0].copy()
with_nan.flat[5] = np.nan
refused("nan", lambda: wsa_lab.scope(with_nan))
refused("empty", lambda: wsa_lab.scope(np.zeros(0)))
refused("text", lambda: wsa_lab.scope("weights"))
refused("unknown rule", lambda: wsa_lab.fuse(out["scopes"], rule="median"))
refused("infinite share", lambda: wsa_lab.fuse(out["scopes"], [1, float("inf"), 1]))
refused("negative std", lambda: wsa_lab.fuse([[(0.0, -1.0)]]))
refused("not a scope", lambda: wsa_lab.kl(3, (0, 1)))
refused("complex", lambda: wsa_lab.scope(first + 1j))
refused("masked", lambda: wsa_lab.scope(np.ma.masked_array([1.0, 2.0], mask=[0, 1])))
refused("none inside", lambda: wsa_lab.scope([1.0, None]))
refused("beyond float32", lambda: wsa_lab.scope(np.array([1.0, 1e300])))
refused("rule not text", lambda: wsa_lab.fuse(out["scopes"], rule=None))
refused("a weight short", lambda: wsa_lab.fuse(out["scopes"], [1, 2]))
refused("a layer short", lambda: wsa_lab.fuse([out["scopes"][0], out["scopes"][1][:-1]]))
refused("no models", lambda: wsa_lab.fuse([]))
refused("one array as layers", lambda: wsa_lab.penalty(models[0][0], target))
refused("no targets", lambda: wsa_lab.penalty(models[0], None))
refused("lam not a number", lambda: wsa_lab.penalty(models[0], target, lam="strong"))
refused("target beyond float32", lambda: wsa_lab.penalty(models[0], [(0.0, 1e39)] + target[1:]))
refused(
    "penalty overflows", lambda: wsa_lab.penalty([np.array([3e38, -3e38], dtype=np.float32)], [(0.0, 1.0)])
)
refused("a target short", lambda: wsa_lab.penalty(models[0], target[:-1]))
refused("negative lambda", lambda: wsa_lab.penalty(models[0], target, lam=-1))
refused("unknown direction", lambda: wsa_lab.penalty(models[0], target, direction="both"))
out["errors"] = errors
print(json.dumps(out))
