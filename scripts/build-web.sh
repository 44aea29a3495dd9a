#!/usr/bin/env bash
# Builds the web page's bundle into web/pkg/: the app compiled to wasm32, bound to JavaScript
# by wasm-bindgen (installed here on first use, the version the lockfile pins). Then serve the
# repository root (scripts/serve-web.sh) and open index.html.
#
# Two modules, one crate: wsa_lab_web (the page, and its worker's engine on the CPU; what every
# visitor downloads) and wsa_lab_web_gpu (built with the `gpu` feature: the engine with its
# WebGPU backend, which the page's worker, web/worker.js, fetches only for a job that wants a GPU
# in a browser with a WebGPU adapter). The image subsets stay in assets/ and are downloaded by
# the page on first use, so serve the root with both folders.
#
# wasm-opt runs only with WSA_WASM_OPT=1 and a wasm-opt on the PATH: Debian bookworm's binaryen
# (108) breaks wasm-bindgen 0.2.130's reference-type tables ("WebAssembly.Table.set(): Argument
# 1 is invalid" when the page loads), and npm's binaryen 132 (compiled to wasm itself) ran more
# than 14 minutes on the single module of 2026-12-02 on 2 cores without finishing. A native
# binaryen 116 (the `wasm-opt` crate) took 2.8 min for -Oz on it: 25.5 MB -> 20.7 MB, but
# 6.41 MB -> 6.61 MB gzipped, which is what visitors download; so it stays optional.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
if ! wasm-bindgen --version 2>/dev/null | grep -q " $version\$"; then
    echo "installing wasm-bindgen-cli $version (a few minutes, once)" >&2
    # Not --locked: the CLI's own lockfile pins a crate version the registry mirror lacks.
    cargo install wasm-bindgen-cli --version "$version"
fi
target="${CARGO_TARGET_DIR:-target}"
rm -rf web/pkg.new
# One module (its name, then cargo's arguments): the `web` profile (Cargo.toml: size over speed,
# with LTO), then wasm-bindgen.
# Function names only serve stack traces in the console and profiles; without them the module is
# 8 MB smaller. WSA_WASM_NAMES=1 keeps them (web/pkg/ is then that larger bundle).
bundle() {
    local name=$1
    shift
    cargo build --profile web --target wasm32-unknown-unknown -p wsa-lab-web "$@"
    local names=(--remove-name-section)
    [ "${WSA_WASM_NAMES:-0}" = 1 ] && names=()
    wasm-bindgen --target web --no-typescript "${names[@]}" --remove-producers-section \
        --out-dir web/pkg.new --out-name "$name" "$target/wasm32-unknown-unknown/web/wsa_lab_web.wasm"
    local wasm="web/pkg.new/${name}_bg.wasm"
    if [ "${WSA_WASM_OPT:-0}" = 1 ] && command -v wasm-opt >/dev/null; then
        local before
        before=$(du -k "$wasm" | cut -f1)
        wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
            --enable-reference-types --enable-multivalue --enable-mutable-globals --enable-simd \
            -o "$wasm" "$wasm"
        echo "wasm-opt: $before KiB -> $(du -k "$wasm" | cut -f1) KiB" >&2
    fi
}
bundle wsa_lab_web
bundle wsa_lab_web_gpu --features gpu
# Replace the old bundle only once the new one is complete.
rm -rf web/pkg && mv web/pkg.new web/pkg
for wasm in web/pkg/*_bg.wasm; do
    echo "$wasm: $(du -k "$wasm" | cut -f1) KiB, gzipped $(gzip -9c "$wasm" | wc -c | awk '{printf "%d", $1/1024}') KiB" >&2
done
