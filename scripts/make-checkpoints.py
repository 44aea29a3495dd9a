#!/usr/bin/env python3
"""Writes two float16 checkpoints of a decoder-only transformer's shapes (a Llama-style block:
attention q/k/v/o, a gated MLP, RMSNorm weights; an embedding and an untied output layer) with random
weights, for measuring `wsa-lab scopes` on files of a realistic size and layout.

    python scripts/make-checkpoints.py OUT_DIR [--layers 9] [--hidden 2048] [--vocab 32000] [--seed 1]

The defaults give 594 M parameters in 84 tensors: two files of 1.19 GB each (a.safetensors,
b.safetensors).
B's weights have a different scale per layer than A's (as models trained under different
conditions do), so the report has scopes that differ. `safetensors.numpy.save_file` needs every
tensor in memory at once, so the script writes the format itself: the header, then each tensor
as it is drawn, holding one tensor at a time. Needs only NumPy.
"""

import argparse
import json
import os
import struct

import numpy as np


def shapes(layers, hidden, vocab=32000):
    inner = int(hidden * 2.75)
    yield "model.embed_tokens.weight", (vocab, hidden)
    for i in range(layers):
        p = f"model.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            yield p + f"self_attn.{name}.weight", (hidden, hidden)
        yield p + "mlp.gate_proj.weight", (inner, hidden)
        yield p + "mlp.up_proj.weight", (inner, hidden)
        yield p + "mlp.down_proj.weight", (hidden, inner)
        yield p + "input_layernorm.weight", (hidden,)
        yield p + "post_attention_layernorm.weight", (hidden,)
    yield "model.norm.weight", (hidden,)
    yield "lm_head.weight", (vocab, hidden)


def write(path, layers, hidden, vocab, rng, scale_of):
    entries = list(shapes(layers, hidden, vocab))
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in entries:
        size = int(np.prod(shape)) * 2
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for k, (name, shape) in enumerate(entries):
            if len(shape) == 1:
                values = 1.0 + 0.05 * rng.standard_normal(shape, dtype=np.float32)
            else:
                values = rng.standard_normal(shape, dtype=np.float32) * (scale_of(k) / np.sqrt(shape[-1]))
            f.write(values.astype("<f2").tobytes())
    os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--layers", type=int, default=9)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    write(os.path.join(args.out, "a.safetensors"), args.layers, args.hidden, args.vocab, rng, lambda k: 1.0)
    write(
        os.path.join(args.out, "b.safetensors"),
        args.layers,
        args.hidden,
        args.vocab,
        rng,
        lambda k: 0.6 + 0.8 * (k % 5) / 4,
    )


if __name__ == "__main__":
    main()
