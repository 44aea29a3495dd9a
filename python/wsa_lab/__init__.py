"""Weight Scope Alignment (WSA, arXiv 2408.12237) from WSA Lab's engine.

A layer's *weight scope* is the Gaussian N(mean, std^2) of its entries (population std). WSA adds
``lam * mean_l KL(N(scope_l) || N(target_l))`` to the training loss, pulling every layer's scope
toward a target fused from several models' scopes. The functions here are the engine's own (the
numbers a ``wsa-lab`` run computes, bit for bit); they take NumPy arrays, PyTorch tensors (on any
device; read as float32) or anything ``numpy.asarray`` reads.

    >>> import numpy as np, wsa_lab
    >>> a, b = np.random.default_rng(0).normal(size=(2, 64, 32)).astype(np.float32)
    >>> target = wsa_lab.fuse([[wsa_lab.scope(a)], [wsa_lab.scope(b * 3)]])
    >>> value, (grad,) = wsa_lab.penalty([b], target, lam=0.5)

See docs/python.md for a PyTorch training loop.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple, Sequence

import numpy as np

from . import _engine

__all__ = [
    "Scope",
    "scope",
    "kl",
    "fuse",
    "penalty",
    "FUSION_RULES",
    "KL_DIRECTIONS",
    "LAYER_REDUCTIONS",
]

#: The fusion rules `fuse` knows (method.md section 4), the first the default.
FUSION_RULES: tuple[str, ...] = tuple(_engine.FUSION_RULES)
#: The KL directions `penalty` knows, the first the default.
KL_DIRECTIONS: tuple[str, ...] = tuple(_engine.KL_DIRECTIONS)
#: How `penalty` reduces the layers' KLs, the first the default.
LAYER_REDUCTIONS: tuple[str, ...] = tuple(_engine.LAYER_REDUCTIONS)


class Scope(NamedTuple):
    """One layer's weight scope: the mean and population std of its entries."""

    mean: float
    std: float


def _float32_bytes(weights, what: str) -> tuple[bytes, tuple[int, ...], object]:
    """The values of ``weights`` as little-endian float32 bytes, with the array's shape and, for
    a PyTorch tensor, the tensor (whose dtype and device a gradient is given back on)."""
    tensor = None
    if hasattr(weights, "detach") and hasattr(weights, "cpu"):  # a PyTorch tensor
        tensor = weights
        weights = weights.detach().cpu().float().numpy()
    try:
        array = np.asarray(weights, dtype="<f4")
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{what} is not an array of numbers ({e}); pass a NumPy array or a PyTorch tensor"
        ) from None
    return np.ascontiguousarray(array).tobytes(), array.shape, tensor


def _as_scope(value, what: str) -> tuple[float, float]:
    try:
        mean, std = value
        return float(mean), float(std)
    except (TypeError, ValueError):
        raise TypeError(
            f"{what} is {value!r}; a scope is a (mean, std) pair such as wsa_lab.scope gives"
        ) from None


def scope(weights) -> Scope:
    """The weight scope of one layer: the mean and population std (1/n) of all its entries,
    computed in float64 from their float32 values."""
    data, _, _ = _float32_bytes(weights, "the array")
    return Scope(*_engine.scope(data))


def kl(p, q) -> float:
    """KL(N(p) || N(q)) between two scopes, each std plus 1e-8 (as the penalty uses them)."""
    return _engine.kl(_as_scope(p, "the first scope"), _as_scope(q, "the second scope"))


def fuse(
    scopes: Sequence[Sequence], weights: Sequence[float] | None = None, rule: str = "moment-matching"
) -> list[Scope]:
    """One target scope per layer from K models' scopes.

    ``scopes[k][l]`` is model k's scope of layer l (a `Scope` or a (mean, std) pair); ``weights``
    gives each model's share (sample counts in federated learning; equal when omitted) and is
    normalised here. ``rule`` is one of `FUSION_RULES`: moment matching (the default) takes the
    mixture's mean and variance, the others average the means and the variances, the stds, or
    the precisions."""
    models = [
        [_as_scope(s, f"model {k}'s layer {layer}") for layer, s in enumerate(layers)]
        for k, layers in enumerate(scopes)
    ]
    shares = [1.0] * len(models) if weights is None else [float(w) for w in weights]
    return [Scope(*s) for s in _engine.fuse(models, shares, rule)]


def penalty(
    layers: Iterable,
    targets: Sequence,
    lam: float = 1.0,
    direction: str = "model-to-target",
    reduction: str = "mean",
):
    """The WSA penalty of ``layers`` toward ``targets`` (one scope per layer) and its gradient.

    Returns ``(value, gradients)``: ``value = lam * reduce_l KL(N(scope_l) || N(targets[l]))`` (KL
    the other way round with ``direction="target-to-model"``; ``reduction="sum"`` sums the layers
    instead of averaging them) and one gradient per layer, shaped like it: a NumPy float32 array,
    or for a PyTorch tensor a tensor of its dtype on its device, ready to add to its ``.grad``.
    The std of a layer is sqrt(var + 1e-16) + 1e-8 and the target's std + 1e-8, as in training;
    the targets are constants (not differentiated)."""
    prepared = [_float32_bytes(w, f"layer {at}") for at, w in enumerate(layers)]
    target_pairs = [_as_scope(t, f"layer {at}'s target") for at, t in enumerate(targets)]
    value, raw = _engine.penalty(
        [data for data, _, _ in prepared], target_pairs, float(lam), direction, reduction
    )
    gradients = []
    for (_, shape, tensor), data in zip(prepared, raw):
        gradient = np.frombuffer(data, dtype="<f4").reshape(shape).copy()
        if tensor is not None:
            import torch  # only reached with a tensor in hand

            gradient = torch.from_numpy(gradient).to(device=tensor.device, dtype=tensor.dtype)
        gradients.append(gradient)
    return value, gradients
