#!/usr/bin/env python3
"""Checks that the builds CI and a newcomer run share one compilation, from cargo's unit graphs,
before anything builds:

- the README's two commands: every unit `cargo run --release --bin wsa-lab` compiles is one
  `cargo test --release --workspace` compiles too, so the test command after the run command
  compiles only what the tests add;
- the Python wheel (scripts/python-wheel.sh): every unit maturin's build of python/ compiles, but
  the module and PyO3's packages, is one the test build compiles, so the wheel reuses the burn
  and wgpu CI has just compiled. maturin builds the one package, so cargo resolves its
  dependencies' features for it alone; python/Cargo.toml lists dependencies the module does not
  use, with the features the rest of the workspace enables, and a difference named here is a
  line to add or mend there;
- that list raises no feature beyond what the rest of the workspace enables: the test build is
  the test build without the module.

Units are compared as cargo's unit graph describes them: package, target, mode, features, profile,
platform, and the same of every unit they depend on (not what the graph leaves out: RUSTFLAGS,
the environment a build script watches, the compiler's version, which the builds share). The
features are resolved for x86_64 Linux, the platform CI builds on. cargo's `--unit-graph` is
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
    """Units of `units` (the indices in `checked`) that `test_units` does not compile alike;
    prints the lowest of them (whose dependencies are all shared), which are where the features
    part."""
    test_signatures = set(signatures(test_units))
    own = signatures(units)
    differ = {i for i in checked if own[i] not in test_signatures}
    print(f"one build: {len(checked)} units in the {name}, {len(differ)} of them not built alike")
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
            f"{u['profile']['opt_level']}; the other build: {alike or 'not at all'}"
        )
    return len(differ)


def reachable_without(units, roots, skipped):
    """The units `roots` depend on, directly or not, without passing through a unit `skipped`
    picks (the roots themselves not counted)."""
    seen, stack = set(), list(roots)
    while stack:
        for d in units[stack.pop()]["dependencies"]:
            i = d["index"]
            if i not in seen and not skipped(units[i]):
                seen.add(i)
                stack.append(i)
    return seen


test = unit_graph(["test", "--release", "--workspace", "--no-run"])
run = unit_graph(["run", "--release", "--bin", "wsa-lab"])
# As maturin 1.16 calls cargo (scripts/python-wheel.sh); its `-- -C strip=symbols` reaches only
# the module's own unit.
wheel = unit_graph(["rustc", "--profile", "release", "--manifest-path", "python/Cargo.toml", "--lib"])
# The workspace without the Python module: the dependencies python/Cargo.toml lists only to raise
# their features must raise none beyond what the rest of the workspace enables.
without_python = unit_graph(["test", "--release", "--workspace", "--exclude", "wsa-lab-python", "--no-run"])

differences = not_shared("run build", run, range(len(run)), test)
# Everything the module compiles but PyO3 and what only PyO3 uses (its macros' and build
# script's own dependencies) must be the test build's, our wsa-core included.
module = [i for i, u in enumerate(wheel) if package(u).startswith("wsa-lab-python")]
differences += not_shared(
    "wheel's build, PyO3 aside",
    wheel,
    reachable_without(wheel, module, lambda u: package(u).startswith("pyo3")),
    test,
)
differences += not_shared(
    "test build with the module's list",
    test,
    [i for i, u in enumerate(test) if not package(u).startswith("wsa-lab-python")],
    without_python,
)
sys.exit(1 if differences else 0)
