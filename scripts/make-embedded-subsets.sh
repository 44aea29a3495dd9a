#!/usr/bin/env bash
# Converts, once, the small real test subsets that are embedded in every build (the web page
# has no file system to read data/ from): the first N images of the official Fashion-MNIST and
# MNIST test sets, as gzipped IDX files under assets/<set>-small/. Reads the sets that
# scripts/fetch-data.sh verified (their MD5s are checked there). Reproducible: gzip -n writes
# no name or time, so re-running gives the same bytes (sha256 in each LICENSE.md).
#
#   scripts/fetch-data.sh && scripts/make-embedded-subsets.sh [N=5000]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-5000}"
[ "$n" -ge 1 ] && [ "$n" -le 10000 ] || { echo "error: N must lie in 1..10000 (the test sets hold 10000)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
count_be=$(printf '%08x' "$n" | sed 's/../\\x&/g')

for set in fashion-mnist mnist; do
  src="$root/data/$set"
  [ -f "$src/t10k-images-idx3-ubyte.gz" ] || { echo "error: $src missing: run scripts/fetch-data.sh first" >&2; exit 1; }
  dest="$root/assets/$set-small"
  mkdir -p "$dest"
  gzip -dc "$src/t10k-images-idx3-ubyte.gz" > "$work/images"
  gzip -dc "$src/t10k-labels-idx1-ubyte.gz" > "$work/labels"
  # IDX: 00 00 08 <ndim>, big-endian u32 dims, u8 data. Only the sample count changes.
  { printf "\x00\x00\x08\x03${count_be}\x00\x00\x00\x1c\x00\x00\x00\x1c"
    dd if="$work/images" iflag=skip_bytes,count_bytes skip=16 count=$((n * 784)) bs=64K status=none; } | gzip -9n > "$dest/images-idx3-ubyte.gz.tmp"
  { printf "\x00\x00\x08\x01${count_be}"
    dd if="$work/labels" iflag=skip_bytes,count_bytes skip=8 count="$n" bs=64K status=none; } | gzip -9n > "$dest/labels-idx1-ubyte.gz.tmp"
  mv "$dest/images-idx3-ubyte.gz.tmp" "$dest/images-idx3-ubyte.gz"
  mv "$dest/labels-idx1-ubyte.gz.tmp" "$dest/labels-idx1-ubyte.gz"
  echo "$set: $n test images -> $dest ($(du -ch "$dest"/*.gz | tail -1 | cut -f1))"
  sha256sum "$dest"/*.gz
done
