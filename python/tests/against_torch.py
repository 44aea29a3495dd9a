"""The package's PyTorch branch against PyTorch's own autograd, run by hand where torch is
installed (CI has none): for tensors that require grad, `wsa_lab.penalty` must give back tensors
of each layer's dtype and shape whose values match the gradient autograd takes of the same
formula in float64 (from the layers' float32 values), and `wsa_lab.scope` must read a float16
tensor as NumPy reads its values. Exits non-zero on a mismatch.

    python python/tests/against_torch.py      (a Python with torch and the wsa_lab wheel)
"""

import torch
import wsa_lab

torch.manual_seed(0)
layers = [
    (torch.randn(64, 32, dtype=torch.float64) * 0.1).requires_grad_(),
    (torch.randn(10, 64) * 0.3 + 0.05).requires_grad_(),
]
targets = [(0.01, 0.2), (0.0, 0.1)]
lam = 0.7
worst = 0.0
for direction in wsa_lab.KL_DIRECTIONS:
    for reduction in wsa_lab.LAYER_REDUCTIONS:
        value, gradients = wsa_lab.penalty(layers, targets, lam=lam, direction=direction, reduction=reduction)
        for g, w in zip(gradients, layers):
            assert isinstance(g, torch.Tensor) and g.dtype == w.dtype and g.shape == w.shape, (g, w.shape)
        total = 0.0
        for w, (target_mean, target_std) in zip(layers, targets):
            w = w.float().double()  # the engine reads float32
            mean = w.mean()
            std = torch.sqrt(((w - mean) ** 2).mean() + 1e-16) + 1e-8
            t = target_std + 1e-8
            if direction == "model-to-target":
                kl = torch.log(t / std) + (std**2 + (mean - target_mean) ** 2) / (2 * t * t) - 0.5
            else:
                kl = torch.log(std / t) + (t * t + (target_mean - mean) ** 2) / (2 * std**2) - 0.5
            total = total + kl
        total = lam * (total / len(layers) if reduction == "mean" else total)
        autograd = torch.autograd.grad(total, layers)
        relative = max(float((g - a).abs().max() / a.abs().max()) for g, a in zip(gradients, autograd))
        worst = max(worst, relative)
        print(
            f"{direction} {reduction}: penalty {value:.7f} (autograd {float(total):.7f}), gradients within {relative:.1e}"
        )
        assert abs(value - float(total)) <= 1e-5 * max(1.0, abs(float(total))), (value, float(total))
        assert relative < 3e-7, relative
half = torch.randn(100).half()
assert wsa_lab.scope(half) == wsa_lab.scope(half.float().numpy())
print(
    f"torch {torch.__version__}: every gradient within {worst:.1e} of autograd's (relative to its largest entry)"
)
