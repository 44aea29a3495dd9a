#!/usr/bin/env python3
"""Checks that the builds CI and a newcomer run share one compilation of the dependencies, from
cargo's unit graphs, before anything builds:

- the README's two commands: every dependency unit `cargo run --release --bin wsa-lab` compiles is
  one `cargo test --release --workspace` compiles too, so the test command after the run command
  compiles only our crates and test-only ones;
- the Python wheel (scripts/python-wheel.sh): every unit of maturin's build of python/ is one the
  test build compiles, but for the package itself and the packages only it uses (pyo3's), so the
  wheel reuses the burn and wgpu CI has just compiled. maturin builds the one package and cargo
  resolves its dependencies' features for it alone; python/Cargo.toml lists the dependencies
  whose features must be raised to the workspace's, and a difference named here is one to add.

Units are compared with everything that makes cargo compile a unit again: package, target, mode,
features, profile, platform, and the same of every unit it depends on. cargo's `--unit-graph` is
unstable: RUSTC_BOOTSTRAP=1 lets the stable cargo print it.
Usage: scripts/check-one-build.py [workspace dir]; exits 1 on a difference."""

import json
import os
import subprocess
import sys

env = dict(os.environ, RUSTC_BOOTSTRAP="1")
workspace = sys.argv[1] if len(sys.argv) > 1 else "."


def unit_graph(args):
    out = subprocess.run(
        ["cargo"] + args + ["--locked", "-Z", "unstable-options", "--unit-graph"],
        capture_output=True,
        text=True,
        env=env,
        cwd=workspace,
    )
    # `cargo run --unit-graph` prints the graph, then trips over having compiled nothing: the
    # graph is what counts.
    try:
        return json.JSONDecoder().raw_decode(out.stdout)[0]["units"]
    except ValueError:
        print(out.stderr[-3000:])
        sys.exit(1)


def package(unit):
    pkg_id = unit["pkg_id"]
    return pkg_id.split("#")[-1] if "#" in pkg_id else pkg_id


def signatures(units):
    """Each unit's identity, its dependencies' included (a unit whose dependency is compiled
    differently is compiled again)."""
    memo = {}

    def signature(i):
        if i not in memo:
            u = units[i]
            memo[i] = hash(
                (
                    u["pkg_id"],
                    u["target"]["name"],
                    u["mode"],
                    tuple(sorted(u["features"])),
                    json.dumps(u["profile"], sort_keys=True),
                    u["platform"],
                    tuple(sorted(signature(d["index"]) for d in u["dependencies"])),
                )
            )
        return memo[i]

    return [signature(i) for i in range(len(units))]


def not_shared(name, units, checked, test_units):
    """Units of `units` (those `checked` picks) that the test build does not compile alike; prints
    the lowest of them (whose dependencies are all shared), which are where the features part."""
    test_signatures = set(signatures(test_units))
    own = signatures(units)
    differ = {i for i in range(len(units)) if checked(units[i]) and own[i] not in test_signatures}
    checked_count = sum(1 for u in units if checked(u))
    print(
        f"one build: {checked_count} dependency units in the {name}, {len(differ)} of them not built alike by the test build"
    )
    for i in sorted(differ, key=lambda i: package(units[i])):
        u = units[i]
        if any(d["index"] in differ for d in u["dependencies"]):
            continue
        alike = [
            sorted(t["features"]) + [f"opt-level {t['profile']['opt_level']}"]
            for t in test_units
            if t["pkg_id"] == u["pkg_id"]
            and t["target"]["name"] == u["target"]["name"]
            and t["mode"] == u["mode"]
        ]
        print(
            f"  {package(u)} ({u['target']['name']}, {u['mode']}): {sorted(u['features'])}, opt-level "
            f"{u['profile']['opt_level']}; the test build: {alike or 'not at all'}"
        )
    return len(differ)


test = unit_graph(["test", "--release", "--workspace", "--no-run"])
run = unit_graph(["run", "--release", "--bin", "wsa-lab"])
# As maturin 1.16 calls cargo (scripts/python-wheel.sh); its `-- -C strip=symbols` reaches only
# the module's own unit.
wheel = unit_graph(["rustc", "--profile", "release", "--manifest-path", "python/Cargo.toml", "--lib"])
test_packages = {u["pkg_id"] for u in test}

differences = not_shared("run build", run, lambda u: not package(u).startswith("wsa-"), test)
# Our crates are compiled by both as they change; the wheel should reuse even wsa-core.
differences += not_shared(
    "wheel's build",
    wheel,
    lambda u: u["pkg_id"] in test_packages and not package(u).startswith("wsa-lab-python"),
    test,
)
sys.exit(1 if differences else 0)
