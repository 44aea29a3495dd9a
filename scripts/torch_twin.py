#!/usr/bin/env python3
"""PyTorch twin of `wsa-lab bench --only train`: the same models, shapes, optimiser and batch
sizes, timed the same way, so that the bench can print ours and PyTorch's samples/s side by
side. Run by `wsa-lab bench --torch` (and scripts/bench-gpu.sh); prints one JSON object.

Models (as `ModelConfig::default()` and `ModelConfig::cnn(vec![16, 32])` on 1x28x28 inputs):
  MLP 784-64-64-10: linear-relu-linear-relu-linear
  CNN 16-32 conv3: [conv3x3 (padding 1) - relu - maxpool 2x2] x 2, then linear to 10 classes
  and with --stack-name NAME --stack JSON, a `stack` model as WSA Lab's configs write it (the bench
  passes the reproduction's ResNet-GN), built layer by layer from that JSON: convolutions, group
  norms, ReLUs, residual blocks, pooling, and a linear layer after a flatten; any other layer
  leaves that row out (said on stderr)
Adam (lr 1e-3), cross-entropy, random normal inputs of 4096 samples; each batch gathered from
the samples in a random order drawn anew every epoch, as WSA Lab's trainer takes its batches
(`Trainer::next_batch`; slices taken in order would copy nothing, where ours copies every row).
An epoch's last batch, when short, is left out here (ours takes it); 4096 samples divide into
the bench's batches of 32, 128 and 512.
Timing: two untimed steps, then steps until 1.5 s have passed or 200 steps ran (at least 3).
"""

import argparse
import json
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    parser.add_argument("--batches", default="32,128,512")
    parser.add_argument("--stack-name", default="", help="the row's name for the --stack model")
    parser.add_argument("--stack", default="", help="a stack model's JSON (WSA Lab's ModelConfig)")
    args = parser.parse_args()
    import torch
    from torch import nn

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(1)
    data = torch.randn(4096, 1, 28, 28, device=device)
    labels = torch.arange(4096, device=device) % 10

    def mlp():
        return nn.Sequential(
            nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)
        )

    def cnn():
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
        )  # fmt: skip

    class Residual(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return x + self.inner(x)

    def stack_layers(layers, channels):
        """The modules of a stack's layers on `channels` input channels, and its output channels."""
        modules = []
        for layer in layers:
            kind = layer["type"]
            if kind == "conv2d":
                modules.append(
                    nn.Conv2d(
                        channels,
                        layer["channels"],
                        layer["kernel"],
                        stride=layer.get("stride", 1),
                        padding=layer.get("padding", 0),
                        bias=layer.get("bias", True),
                    )
                )
                channels = layer["channels"]
            elif kind == "group-norm":
                modules.append(nn.GroupNorm(layer["groups"], channels))
            elif kind == "activation" and layer["function"] == "relu":
                modules.append(nn.ReLU())
            elif kind == "residual":
                inner, _ = stack_layers(layer["layers"], channels)
                modules.append(Residual(nn.Sequential(*inner)))
            elif kind in ("avg-pool2d", "max-pool2d"):
                pool = nn.AvgPool2d if kind == "avg-pool2d" else nn.MaxPool2d
                modules.append(pool(layer["kernel"], stride=layer.get("stride") or layer["kernel"]))
            elif kind == "flatten":
                modules.append(nn.Flatten())
            elif kind == "linear" and modules and isinstance(modules[-1], nn.Flatten):
                features = nn.Sequential(*modules)(torch.zeros(1, 1, 28, 28)).shape[1]
                modules.append(nn.Linear(features, layer["outputs"], bias=layer.get("bias", True)))
            else:
                raise ValueError(f"the twin builds no {kind} layer here ({layer})")
        return modules, channels

    def from_stack():
        return nn.Sequential(*stack_layers(json.loads(args.stack)["layers"], 1)[0])

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    rows = []
    models = [("MLP 784-64-64-10", mlp), ("CNN 16-32 conv3", cnn)]
    if args.stack:
        try:
            from_stack()
            models.append((args.stack_name, from_stack))
        except (ValueError, KeyError, RuntimeError) as e:
            # The other rows still get their twin.
            print(f"PyTorch twin: no {args.stack_name} row: {e}", file=sys.stderr)
    for name, build in models:
        for batch in [int(b) for b in args.batches.split(",")]:
            model = build().to(device)
            optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
            loss_fn = nn.CrossEntropyLoss()
            position = 0
            order = torch.randperm(len(data), device=device)

            def step():
                nonlocal position, order
                if position + batch > len(data):
                    position = 0
                    order = torch.randperm(len(data), device=device)
                picked = order[position : position + batch]
                x, y = data[picked], labels[picked]
                position += batch
                optimiser.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                loss.backward()
                optimiser.step()
                return loss

            for _ in range(2):
                step()
            sync()
            started = time.perf_counter()
            steps = 0
            while steps < 3 or (steps < 200 and time.perf_counter() - started < 1.5):
                step()
                steps += 1
            sync()
            rate = steps * batch / (time.perf_counter() - started)
            rows.append({"model": name, "batch": batch, "samples_per_second": rate})
    json.dump(
        {
            "torch": torch.__version__,
            "device": str(device),
            "threads": torch.get_num_threads(),
            "rows": rows,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
