#!/usr/bin/env bash
# Makes DIR a virtual environment with the Flower app's dependencies at the versions
# flower/pyproject.toml pins (only the dependencies: the app itself travels to the SuperLink as a
# Flower bundle). Kept when it already has exactly those; prints its Python's path.
#
#   scripts/flower-venv.sh DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:?usage: scripts/flower-venv.sh DIR}"
mapfile -t deps < <(python3 -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' "$root/flower/pyproject.toml")
if [ "$(cat "$venv/installed" 2>/dev/null)" != "${deps[*]}" ]; then
  echo "[flower-venv] installing ${deps[*]} into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${deps[@]}" >&2
  echo "${deps[*]}" > "$venv/installed"
fi
echo "$venv/bin/python"
