#!/usr/bin/env python3
"""Runs `wsa-lab connect` over several seeds and prints the barriers of every method as
mean ± std (population std over seeds), with the per-seed numbers beside them in a JSON file.

    scripts/compare-methods.py --seeds 0-4 --pair different-init -- --dataset digits
    scripts/compare-methods.py --seeds 0-4 --config my.json --out out/compare/mine

Everything after `--` goes to `wsa-lab connect` as it is. Needs the release binary
(`cargo build --release --bin wsa-lab`; CARGO_TARGET_DIR is honoured). Standard library only.
"""

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path


def seeds(text):
    out = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def mean_std(values):
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=seeds, default=seeds("0-4"), help="e.g. 0-4 or 0,3,7")
    parser.add_argument("--pair", help="a named pair, as for wsa-lab connect --pair")
    parser.add_argument("--methods", default="plain,wsa,wm,wm+wsa,rescale")
    parser.add_argument("--config", help="a connect config (JSON)")
    parser.add_argument("--out", default="out/compare", help="folder for the runs and seeds.json")
    parser.add_argument("rest", nargs="*", help="more wsa-lab connect arguments (after --)")
    args = parser.parse_args()

    target = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    binary = target / "release" / "wsa-lab"
    if not binary.exists():
        sys.exit(f"{binary} not found: build it with `cargo build --release --bin wsa-lab`")
    out = Path(args.out)
    rows = {}
    for seed in args.seeds:
        cmd = [str(binary), "connect", "--device", "cpu", "--seed", str(seed), "--methods", args.methods]
        cmd += ["--out", str(out / f"seed-{seed}")]
        if args.pair:
            cmd += ["--pair", args.pair]
        if args.config:
            cmd += ["--config", args.config]
        cmd += args.rest
        print("$", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        summary = json.loads((out / f"seed-{seed}" / "summary.json").read_text())
        for m in summary["methods"]:
            row = rows.setdefault(m["name"], [])
            row.append(
                {
                    "seed": seed,
                    "loss_barrier": m["barriers"]["loss"],
                    "accuracy_barrier": m["barriers"]["accuracy"],
                    "accuracy_a": m["endpoint_a"]["accuracy"],
                    "accuracy_b": m["endpoint_b"]["accuracy"],
                }
            )
        for w in summary["warnings"]:
            print(f"seed {seed}: warning: {w}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    (out / "seeds.json").write_text(json.dumps(rows, indent=2))
    print(f"{len(args.seeds)} seeds ({', '.join(map(str, args.seeds))}); mean ± std over seeds")
    print("| method | loss barrier | accuracy barrier | acc A | acc B |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        cells = []
        for key in ["loss_barrier", "accuracy_barrier", "accuracy_a", "accuracy_b"]:
            m, s = mean_std([r[key] for r in row])
            cells.append(f"{m:.3f} ± {s:.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
