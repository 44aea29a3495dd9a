"""How long `wsa_lab.penalty` (value and gradients) and `wsa_lab.scope` take on a small and a large
model's weight layers: the median of five calls after a first one. docs/python.md quotes it.

    python python/tests/time_penalty.py       (a Python with the wsa_lab wheel)
"""

import time

import numpy as np
import wsa_lab

rng = np.random.default_rng(0)


def median_seconds(call, repeats=5):
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure(name, layers):
    targets = [(0.0, 0.05)] * len(layers)
    penalty = median_seconds(lambda: wsa_lab.penalty(layers, targets))
    scopes = median_seconds(lambda: [wsa_lab.scope(w) for w in layers])
    weights = sum(w.size for w in layers)
    print(
        f"{name}: {weights} weights, penalty and gradients {penalty * 1e3:.1f} ms, scopes {scopes * 1e3:.1f} ms"
    )


shapes = [(512, 784), (512, 512), (10, 512)]
measure("MLP 784-512-512-10", [rng.normal(0, 0.05, s).astype(np.float32) for s in shapes])
measure("four 4096x4096 layers", [rng.normal(0, 0.02, (4096, 4096)).astype(np.float32) for _ in range(4)])
