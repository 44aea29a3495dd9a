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
refused("a target short", lambda: wsa_lab.penalty(models[0], target[:-1]))
refused("negative lambda", lambda: wsa_lab.penalty(models[0], target, lam=-1))
refused("unknown direction", lambda: wsa_lab.penalty(models[0], target, direction="both"))
out["errors"] = errors
print(json.dumps(out))
