#!/usr/bin/env bash
# The GPU rows of docs/benchmarks.md, as one short script for a lent GPU machine (no network,
# no Rust there): build here, carry the binary and the Vulkan loader, run this there.
#
#   here:   cargo build --release --bin wsa-lab && mkdir -p .bench && cp target/release/wsa-lab .bench/
#           (and the loader packages into .gl/, as the device tool's README says)
#   there:  bash scripts/bench-gpu.sh            # writes $OUT/bench.json and $OUT/bench.txt
#
# It unpacks the carried loader when the machine has none, points wgpu at the NVIDIA ICD when
# the loader finds no driver, lists the adapters, then runs every bench part once. The CPU
# columns it prints are that machine's CPU, measured in the same run, so the ratios hold.
set -euo pipefail
out="${OUT:-out/bench}"
mkdir -p "$out"
if ! ldconfig -p | grep -q libvulkan && compgen -G ".gl/*.deb" >/dev/null; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
    export VK_DRIVER_FILES="$icd"
fi
bin=.bench/wsa-lab
[ -x "$bin" ] || bin=target/release/wsa-lab
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | tee "$out/gpu.txt" || true
"$bin" devices | tee "$out/devices.txt"
"$bin" bench --device both --out "$out/bench.json" "$@" 2>&1 | tee "$out/bench.txt"
