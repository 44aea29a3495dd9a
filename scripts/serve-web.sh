#!/usr/bin/env bash
# Serves the web page locally: open http://127.0.0.1:${PORT:-8080}/ after scripts/build-web.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f web/pkg/wsa_lab_web.js ] || { echo "no bundle in web/pkg: run scripts/build-web.sh first" >&2; exit 1; }
exec python3 -m http.server --bind 127.0.0.1 "${PORT:-8080}"
