#!/usr/bin/env python3
"""The NumPy anchor of `wsa-lab scopes`: what a user would write with `safetensors` and NumPy
(and SciPy's normal CDF) to get the same per-tensor statistics of two checkpoints. It is both
the speed and memory baseline of docs/checkpoints.md and the independent reference that
cli/tests/scopes.rs compares our numbers with.

    python scripts/scopes_numpy.py A.safetensors B.safetensors [--bins 60] > numpy.json

For every float tensor (in both files): count, mean, population std, excess kurtosis, the
Kolmogorov-Smirnov distance to N(mean, std^2), min, max and both histograms over the joint
range, computed in float64 from the stored values; the symmetric KL between the two Gaussian
scopes (with the 1e-8 epsilon of core/src/scope.rs). Prints one JSON object, with the seconds
taken and the peak resident memory (ru_maxrss).
"""

import argparse
import json
import resource
import sys
import time

import numpy as np
from safetensors import safe_open
from scipy.special import ndtr

EPS = 1e-8


def stats(values):
    values = values[np.isfinite(values)]
    n = values.size
    if n == 0:
        return None, values
    mean = values.mean()
    centred = values - mean
    m2 = np.mean(centred * centred)
    m4 = np.mean((centred * centred) ** 2)
    std = np.sqrt(m2)
    if m2 > 0:
        ordered = np.sort(values)
        cdf = ndtr((ordered - mean) / std)
        below = np.arange(n) / n
        above = np.arange(1, n + 1) / n
        ks = max(np.max(np.abs(cdf - below)), np.max(np.abs(above - cdf)))
        kurtosis = m4 / (m2 * m2) - 3.0
    else:
        ks, kurtosis = 1.0, 0.0
    return {
        "count": int(n),
        "mean": float(mean),
        "std": float(std),
        "excess_kurtosis": float(kurtosis),
        "ks_distance": float(ks),
        "min": float(values.min()),
        "max": float(values.max()),
    }, values


def kl(p, q):
    s1, s2 = p["std"] + EPS, q["std"] + EPS
    return np.log(s2 / s1) + (s1 * s1 + (p["mean"] - q["mean"]) ** 2) / (2 * s2 * s2) - 0.5


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--bins", type=int, default=60)
    args = parser.parse_args()
    started = time.perf_counter()
    out = {}
    with safe_open(args.a, framework="np") as fa, safe_open(args.b, framework="np") as fb:
        for name in fa.keys():
            a = fa.get_tensor(name)
            if a.dtype.kind != "f":
                continue
            sa, va = stats(a.astype(np.float64).ravel())
            del a
            b = fb.get_tensor(name)
            sb, vb = stats(b.astype(np.float64).ravel())
            del b
            entry = {"a": sa, "b": sb}
            if sa and sb:
                low, high = min(sa["min"], sb["min"]), max(sa["max"], sb["max"])
                entry["symmetric_kl"] = float(0.5 * (kl(sa, sb) + kl(sb, sa)))
                for key, values in (("histogram_a", va), ("histogram_b", vb)):
                    # Equal bins over [low, high], the top edge in the last bin (as ours).
                    width = (high - low) / args.bins
                    if width > 0:
                        index = np.clip(np.floor((values - low) / width), 0, args.bins - 1).astype(np.int64)
                    else:
                        index = np.zeros(values.size, dtype=np.int64)
                    entry[key] = np.bincount(index, minlength=args.bins).tolist()
            out[name] = entry
            del va, vb
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump({"tensors": out, "seconds": seconds, "peak_mib": peak_mib}, sys.stdout)


if __name__ == "__main__":
    main()
