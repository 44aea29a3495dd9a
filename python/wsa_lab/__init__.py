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

from importlib.metadata import PackageNotFoundError, version

from . import _engine

try:
    __version__ = version("wsa-lab")
except PackageNotFoundError:  # imported from a source tree, not installed
    __version__ = "unknown"

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


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _float32_array(weights, what: str) -> tuple[np.ndarray, tuple[int, ...], object]:
    """The values of ``weights`` as a contiguous float32 array (a copy only where the dtype or the
    layout differs), with the array's shape and, for a PyTorch tensor, the tensor (whose device
    and floating dtype a gradient is given back in).
    Refuses what is not an array of real numbers, or holds one float32 cannot carry."""
    tensor = None
    if hasattr(weights, "detach") and hasattr(weights, "cpu"):  # a PyTorch tensor
        tensor = weights
        if weights.is_complex():
            raise TypeError(f"{what} is a complex tensor; weights are real numbers")
        weights = weights.detach().cpu()
        if weights.is_floating_point() and weights.element_size() < 8:  # float16 and bfloat16 too
            weights = weights.float()
        weights = weights.numpy()
    if np.ma.isMaskedArray(weights):
        raise TypeError(
            f"{what} is a masked array; pass its values (array.compressed() drops the masked ones)"
        )
    try:
        array = np.asarray(weights)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{what} is not an array of numbers ({e}); pass a NumPy array or a PyTorch tensor"
        ) from None
    if array.dtype.kind not in "fiu":
        kind = {"c": "complex numbers", "b": "booleans"}.get(array.dtype.kind, f"{array.dtype} values")
        raise TypeError(
            f"{what} holds {kind}; pass an array of real numbers (a NumPy array or a PyTorch tensor)"
        )
    # Only a wider float can exceed float32's range: no 64-bit integer does (2**64 < 3.4e38).
    if array.dtype.kind == "f" and array.dtype.itemsize > 4:
        too_large = np.abs(array, dtype=np.float64) > _FLOAT32_MAX
        if too_large.any():
            at = int(np.flatnonzero(too_large.ravel())[0])
            raise ValueError(
                f"{what} holds {float(array.flat[at])!r} at flat index {at}, beyond float32's range "
                f"(±{_FLOAT32_MAX:.4g}) in which the engine computes; rescale the weights"
            )
    return np.ascontiguousarray(array, dtype=np.float32), array.shape, tensor


def _as_scope(value, what: str) -> tuple[float, float]:
    try:
        mean, std = value
        return float(mean), float(std)
    except (TypeError, ValueError):
        raise TypeError(
            f"{what} is {value!r}; a scope is a (mean, std) pair such as wsa_lab.scope gives"
        ) from None


def _as_list(value, what: str, of: str) -> list:
    """``value`` as a list, refusing a single array (which would be read row by row)."""
    if isinstance(value, (str, bytes, np.ndarray)) or hasattr(value, "detach"):
        raise TypeError(f"{what} is one {type(value).__name__}; pass a list of {of}, e.g. [w]")
    try:
        return list(value)
    except TypeError:
        raise TypeError(f"{what} is {value!r}; pass a list of {of}") from None


def _as_number(value, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} is {value!r}; pass a number") from None


def _as_choice(value, what: str, known: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} is {value!r}; pass one of {', '.join(known)}")
    return value


def scope(weights) -> Scope:
    """The weight scope of one layer: the mean and population std (1/n) of all its entries,
    computed in float64 from their float32 values."""
    data, _, _ = _float32_array(weights, "the array")
    return Scope(*_engine.scope(data))


def kl(p, q) -> float:
    """KL(N(p) || N(q)) between two scopes, each std plus 1e-8, in float64 (the penalty computes the
    same divergence in float32, as training does, with 1e-16 added to a layer's variance)."""
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
        [
            _as_scope(s, f"model {k}'s layer {layer}")
            for layer, s in enumerate(_as_list(layers, f"model {k}", "scopes"))
        ]
        for k, layers in enumerate(_as_list(scopes, "scopes", "models' scope lists"))
    ]
    if weights is None:
        shares = [1.0] * len(models)
    else:
        shares = [
            _as_number(w, f"model {k}'s weight")
            for k, w in enumerate(_as_list(weights, "weights", "numbers"))
        ]
    rule = _as_choice(rule, "rule", FUSION_RULES)
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
    or for a PyTorch tensor a tensor on its device, of its dtype if floating (else float32), ready
    to add to its ``.grad``. ``layers`` is a list even for one layer: ``penalty([w], [target])``.
    The std of a layer is sqrt(var + 1e-16) + 1e-8 and the target's std + 1e-8, as in training;
    the targets are constants (not differentiated)."""
    prepared = [_float32_array(w, f"layer {at}") for at, w in enumerate(_as_list(layers, "layers", "arrays"))]
    target_pairs = [
        _as_scope(t, f"layer {at}'s target") for at, t in enumerate(_as_list(targets, "targets", "scopes"))
    ]
    value, raw = _engine.penalty(
        [data for data, _, _ in prepared],
        target_pairs,
        _as_number(lam, "lam"),
        _as_choice(direction, "direction", KL_DIRECTIONS),
        _as_choice(reduction, "reduction", LAYER_REDUCTIONS),
    )
    gradients = []
    for (_, shape, tensor), data in zip(prepared, raw):
        gradient = np.frombuffer(data, dtype="<f4").reshape(shape)  # writable: a bytearray
        if tensor is not None:
            import torch  # only reached with a tensor in hand

            dtype = tensor.dtype if tensor.is_floating_point() else torch.float32
            gradient = torch.from_numpy(gradient).to(device=tensor.device, dtype=dtype)
        gradients.append(gradient)
    return value, gradients
