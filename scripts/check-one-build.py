#!/usr/bin/env python3
"""Checks that the README's two commands share one build: every dependency unit that
`cargo run --release --bin wsa-lab` compiles (package, target, mode, platform and features, from
cargo's unit graph) is one that `cargo test --release --workspace` compiles too, so the test
command after the run command compiles only our crates and test-only ones. Nothing is built.
cargo's `--unit-graph` is unstable: RUSTC_BOOTSTRAP=1 lets the stable cargo print it.
Usage: scripts/check-one-build.py [workspace dir]; exits 1 on a difference."""

import json
import os
import subprocess
import sys

env = dict(os.environ, RUSTC_BOOTSTRAP="1")


def units(args):
    out = subprocess.run(
        ["cargo"] + args + ["--release", "--locked", "-Z", "unstable-options", "--unit-graph"],
        capture_output=True,
        text=True,
        env=env,
        cwd=sys.argv[1] if len(sys.argv) > 1 else ".",
    )
    # `cargo run --unit-graph` prints the graph, then trips over having compiled nothing: the
    # graph is what counts.
    try:
        g = json.JSONDecoder().raw_decode(out.stdout)[0]
    except ValueError:
        print(out.stderr[-3000:])
        sys.exit(1)
    res = {}
    for u in g["units"]:
        pid = u["pkg_id"]
        name = pid.split("#")[-1] if "#" in pid else pid
        key = (name, u["target"]["name"], u["mode"], u["platform"] or "host")
        res.setdefault(key, set()).add(",".join(sorted(u["features"])))
    return res


run = units(["run", "--bin", "wsa-lab"])
test = units(["test", "--workspace", "--no-run"])
diff = []
for k, v in run.items():
    if k[0].startswith("wsa-"):
        continue  # our crates: compiled by both, as they change
    if not v <= test.get(k, set()):
        diff.append((k, v, test.get(k)))
deps = [k for k in run if not k[0].startswith("wsa-")]
print(
    f"one build: {len(deps)} dependency units in the run build, {len(diff)} of them not built alike by the test build"
)
for k, v, t in diff[:60]:
    print(" ", k, "run:", v, "test:", t)
sys.exit(1 if diff else 0)
