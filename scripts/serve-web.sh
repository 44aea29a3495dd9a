#!/usr/bin/env bash
# Serves the web page locally: open http://127.0.0.1:${PORT:-8080}/ after scripts/build-web.sh.
# A static server like `python3 -m http.server` that also sends the page's Content-Security-Policy
# (index.html's <meta> tag) as a header, which the page's worker needs (scripts/serve-web.py).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f web/pkg/wsa_lab_web.js ] || { echo "no bundle in web/pkg: run scripts/build-web.sh first" >&2; exit 1; }
exec python3 scripts/serve-web.py "${PORT:-8080}"
