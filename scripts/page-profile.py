#!/usr/bin/env python3
"""Where the page's worker spends a run: reads a Chrome trace written by
`node web/tests/browser.mjs --path cpu --config CONFIG --trace TRACE.json` and sums the CPU
samples taken inside the worker's job (under `run_job`) by kind of work, then lists the functions
with the most time of their own. Function names need a bundle built with
`WSA_WASM_NAMES=1 scripts/build-web.sh` (otherwise they read wasm-function[N]).

    scripts/page-profile.py TRACE.json [--top N]
"""

import argparse
import collections
import json
import re

KINDS = [
    ("matrix products (gemm)", r"^gemm"),
    ("the allocator (talc, dlmalloc)", r"talc|dlmalloc"),
    # Mostly burn-flex's element-wise operations collecting their results into new vectors.
    (
        "vectors grown or collected",
        r"raw_vec|extend_trusted|in_place_collect|alloc_with_data",
    ),
    ("autodiff graph bookkeeping", r"^<?burn_autodiff|hashbrown|core::hash"),
    ("element-wise kernels (burn-flex)", r"burn_flex|macerator"),
    ("float maths (exp, log)", r"libm|compiler_builtins"),
    ("scopes and WSA kernels", r"wsa_core::(scope|kernels)|WsaKernels"),
    ("weight matching", r"wsa_core::align"),
    ("JavaScript glue and messages", r"^(postMessage|wasm-to-js|js-to-wasm)$"),
]


# Not the job's: a thread with nothing to run, and V8's own work outside any function (compiling
# the module, mostly, at the worker's start).
IDLE = {"(idle)", "(program)", "(root)"}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("trace")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    with open(args.trace) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    thread_names = {
        (e["pid"], e["tid"]): e["args"]["name"]
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name"
    }
    profiles = collections.defaultdict(lambda: {"nodes": {}, "samples": [], "deltas": [], "thread": None})
    for e in events:
        if e.get("name") not in ("Profile", "ProfileChunk"):
            continue
        profile = profiles[e["id"]]
        profile["thread"] = profile["thread"] or thread_names.get((e["pid"], e["tid"]), "")
        data = e["args"]["data"]
        for node in data.get("cpuProfile", {}).get("nodes", []):
            profile["nodes"][node["id"]] = node
        profile["samples"] += data.get("cpuProfile", {}).get("samples", [])
        profile["deltas"] += data.get("timeDeltas", [])
    workers = [p for p in profiles.values() if "Worker" in p["thread"] and p["samples"]]
    if not workers:
        raise SystemExit(f"{args.trace} holds no CPU samples of a worker; record it with browser.mjs --trace")
    for profile in workers:
        nodes = profile["nodes"]
        parent = {}
        for node in nodes.values():
            for child in node.get("children", []):
                parent[child] = node["id"]
            if "parent" in node:
                parent[node["id"]] = node["parent"]

        # Rust's functions are named `path::to::function` where the bundle kept names.
        named = any("::" in node["callFrame"]["functionName"] for node in nodes.values())

        def in_job(node_id):
            # Without names (the shipped bundle) the job cannot be told apart: every busy sample.
            if not named:
                return nodes[node_id]["callFrame"]["functionName"] not in IDLE
            while node_id in nodes:
                if "run_job" in nodes[node_id]["callFrame"]["functionName"]:
                    return True
                node_id = parent.get(node_id)
            return False

        kinds, own = collections.Counter(), collections.Counter()
        job_ms = 0.0
        # A sample's time is the gap to the next one.
        for sample, gap in zip(profile["samples"], profile["deltas"][1:] + [0]):
            if sample not in nodes or not in_job(sample):
                continue
            ms = gap / 1000
            job_ms += ms
            frame = nodes[sample]["callFrame"]
            name = re.sub(r"::h[0-9a-f]{16}$", "", frame["functionName"]) or "(anonymous)"
            label = f"{name} ({frame.get('url', '').rsplit('/', 1)[-1]})"
            own[label] += ms
            # JavaScript (wasm-bindgen's glue) is told by its script, Rust by its name.
            if frame.get("url", "").endswith(".js"):
                kind = "JavaScript glue and messages"
            else:
                kind = next((k for k, pattern in KINDS if re.search(pattern, name)), "other")
            kinds[kind] += ms
        if not named:
            print("the bundle has no function names: every busy sample of the worker is counted, and")
            print("most are wasm-function[N] (build it with WSA_WASM_NAMES=1 scripts/build-web.sh)")
        if job_ms == 0:
            raise SystemExit(f"{args.trace}: the worker was never busy while the trace recorded")
        print(f"{profile['thread']}: {job_ms:.0f} ms of CPU samples in the job")
        for kind, ms in kinds.most_common():
            print(f"  {ms:7.1f} ms  {100 * ms / job_ms:5.1f}%  {kind}")
        print(f"  the {args.top} functions with the most time of their own:")
        for label, ms in own.most_common(args.top):
            print(f"  {ms:7.1f} ms  {label[:150]}")


if __name__ == "__main__":
    main()
