"""Server-side arithmetic of a WSA federation in NumPy: the sample-weighted average of the
clients' models and the fusion of their weight scopes (method.md section 4).

Both follow WSA Lab's engine operation for operation (core/src/merge.rs, core/src/scope.rs), so
that a Flower federation gives the same numbers as `wsa-lab fed`: weights normalised in float64
and rounded to float32, then a float32 running sum of weight * model in client order; scopes in
float64.
"""

from __future__ import annotations

import math

import numpy as np

#: Added to a std wherever it divides (core/src/scope.rs STD_EPS).
STD_EPS = 1e-8

FUSION_RULES = ("moment-matching", "plain-average", "std-average", "precision-weighted")


def _normalised(weights: list[float]) -> list[float]:
    total = 0.0
    for w in weights:  # a left fold, as the engine sums (not math.fsum)
        total += w
    if not math.isfinite(total) or total <= 0.0 or any(not (math.isfinite(w) and w >= 0.0) for w in weights):
        raise ValueError(f"weights {weights} must be finite, >= 0, and not all zero")
    return [w / total for w in weights]


def weighted_average(models: list[list[np.ndarray]], weights: list[float]) -> list[np.ndarray]:
    """sum_k w_k models[k] with the weights normalised to sum to one, tensor by tensor."""
    if not models or len(models) != len(weights):
        raise ValueError("need one weight per model, at least one model")
    scaled = [np.float32(p) for p in _normalised(weights)]
    averaged = []
    for tensors in zip(*models):
        total = scaled[0] * tensors[0].astype(np.float32)
        for w, t in zip(scaled[1:], tensors[1:]):
            total = total + w * t.astype(np.float32)
        averaged.append(total)
    return averaged


def fuse(
    scopes: list[list[tuple[float, float]]], weights: list[float], rule: str
) -> list[tuple[float, float]]:
    """Fuses per-client scope lists (`scopes[k][l]` = (mean, std) of client k's layer l) into one
    target (mean, std) per layer, with the clients' weights (sample counts)."""
    if not scopes or len(scopes) != len(weights) or any(len(s) != len(scopes[0]) for s in scopes):
        raise ValueError("need one weight per client and the same layers in each")
    if rule not in FUSION_RULES:
        raise ValueError(f"unknown fusion rule {rule!r}: choose one of {', '.join(FUSION_RULES)}")
    p = _normalised(weights)
    clients = range(len(scopes))

    def total(terms) -> float:
        s = 0.0
        for t in terms:
            s += t
        return s

    fused = []
    for layer in range(len(scopes[0])):
        means = [scopes[k][layer][0] for k in clients]
        stds = [scopes[k][layer][1] for k in clients]
        mean = total(p[k] * means[k] for k in clients)
        if rule == "moment-matching":
            var = total(p[k] * (stds[k] ** 2 + (means[k] - mean) ** 2) for k in clients)
            fused.append((mean, math.sqrt(var)))
        elif rule == "plain-average":
            fused.append((mean, math.sqrt(total(p[k] * stds[k] ** 2 for k in clients))))
        elif rule == "std-average":
            fused.append((mean, total(p[k] * stds[k] for k in clients)))
        else:  # precision-weighted
            prec = [1.0 / (stds[k] + STD_EPS) ** 2 for k in clients]
            total_prec = total(p[k] * prec[k] for k in clients)
            mean = total(p[k] * prec[k] * means[k] for k in clients) / total_prec
            fused.append((mean, math.sqrt(1.0 / total_prec)))
    return fused
