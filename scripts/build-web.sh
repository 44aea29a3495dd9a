#!/usr/bin/env bash
# Builds the web page's bundle into web/pkg/: the app compiled to wasm32, bound to JavaScript
# by wasm-bindgen (installed here on first use, the version the lockfile pins). Then serve the
# repository root (scripts/serve-web.sh) and open index.html.
#
# The page's worker script (web/worker.js) instantiates the same module; the image subsets stay
# in assets/ and are downloaded by the page on first use, so serve the root with both folders.
#
# wasm-opt (binaryen 132, from npm: web/tests/package.json; `npm ci` there first) shrinks the
# module; WSA_WASM_OPT=0 skips it. Debian bookworm's binaryen 108 broke wasm-bindgen 0.2.130's
# reference-type tables ("WebAssembly.Table.set(): Argument 1 is invalid"), so it is not used.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
if ! wasm-bindgen --version 2>/dev/null | grep -q " $version\$"; then
    echo "installing wasm-bindgen-cli $version (a few minutes, once)" >&2
    # Not --locked: the CLI's own lockfile pins a crate version the registry mirror lacks.
    cargo install wasm-bindgen-cli --version "$version"
fi
target="${CARGO_TARGET_DIR:-target}"
# The `web` profile (Cargo.toml): size over speed, with LTO.
cargo build --profile web --target wasm32-unknown-unknown -p wsa-lab-web
rm -rf web/pkg.new
# Function names only serve stack traces in the console; without them the module is 8 MB smaller.
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
    --out-dir web/pkg.new "$target/wasm32-unknown-unknown/web/wsa_lab_web.wasm"
wasm_opt=web/tests/node_modules/.bin/wasm-opt
if [ "${WSA_WASM_OPT:-1}" = 1 ]; then
    if [ ! -x "$wasm_opt" ]; then
        echo "wasm-opt missing: run (cd web/tests && npm ci) first, or WSA_WASM_OPT=0 to skip it" >&2
        exit 1
    fi
    before=$(du -k web/pkg.new/wsa_lab_web_bg.wasm | cut -f1)
    "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
        --enable-reference-types --enable-multivalue --enable-mutable-globals --enable-simd \
        -o web/pkg.new/wsa_lab_web_bg.wasm web/pkg.new/wsa_lab_web_bg.wasm
    echo "wasm-opt: $before KiB -> $(du -k web/pkg.new/wsa_lab_web_bg.wasm | cut -f1) KiB" >&2
fi
# Replace the old bundle only once the new one is complete.
rm -rf web/pkg && mv web/pkg.new web/pkg
wasm=web/pkg/wsa_lab_web_bg.wasm
echo "web/pkg: wasm $(du -k "$wasm" | cut -f1) KiB, gzipped $(gzip -9c "$wasm" | wc -c | awk '{printf "%d", $1/1024}') KiB" >&2
