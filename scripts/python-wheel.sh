#!/usr/bin/env bash
# Builds WSA Lab's Python package (python/: the engine's scope, fusion and WSA-penalty functions,
# docs/python.md) as one abi3 wheel for CPython >= 3.11 with maturin, and installs it into
# PYTHON's environment (maturin too, at the version pinned here, when that environment lacks it).
# Prints the wheel's path.
#
#   scripts/python-wheel.sh PYTHON [OUT_DIR]     (OUT_DIR: target/wheels under the target directory)
#
# maturin builds the one package, so cargo resolves its dependencies' features for it alone;
# python/Cargo.toml raises them to the workspace's, so after the workspace build this compiles only
# PyO3's packages and the module (scripts/check-one-build.py checks it).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${1:?usage: scripts/python-wheel.sh PYTHON [OUT_DIR]}"
target="${CARGO_TARGET_DIR:-$root/target}"
out="${2:-$target/wheels}"
maturin_version="1.16.0"
if [ "$("$python" -m maturin --version 2>/dev/null)" != "maturin $maturin_version" ]; then
  echo "[python-wheel] installing maturin $maturin_version" >&2
  "$python" -m pip install -q --disable-pip-version-check "maturin==$maturin_version" >&2
fi
rm -f "$out"/wsa_lab-*.whl
"$python" -m maturin build --release --locked --manifest-path "$root/python/Cargo.toml" \
  --interpreter "$python" --out "$out" >&2
wheel="$(ls "$out"/wsa_lab-*.whl)"
# The first install brings the package's dependencies (NumPy) where they are missing; the second
# replaces an installed wsa_lab of the same version, leaving the dependencies as they are.
"$python" -m pip install -q --disable-pip-version-check "$wheel" >&2
"$python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel" >&2
echo "$wheel"
