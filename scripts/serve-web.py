"""Serves the repository root for the web page on 127.0.0.1 (scripts/serve-web.sh runs it).

Like `python3 -m http.server`, plus the page's Content-Security-Policy as a header on every
response. The policy is the one in index.html's <meta> tag, read from there so that the two
cannot differ; the header is what puts the page's worker (web/worker.js) under it, since a
<meta> tag reaches only its own document.

    python3 scripts/serve-web.py PORT
"""

import functools
import http.server
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def page_policy() -> str:
    """The policy of index.html's <meta http-equiv="Content-Security-Policy"> tag."""
    html = (ROOT / "index.html").read_text(encoding="utf-8")
    found = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    if not found:
        sys.exit("index.html has no Content-Security-Policy <meta> tag to serve")
    return found.group(1)


class Handler(http.server.SimpleHTTPRequestHandler):
    # Browsers compile a module while it downloads only when it comes as application/wasm.
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
    }
    policy = ""

    def end_headers(self):
        self.send_header("Content-Security-Policy", self.policy)
        super().end_headers()


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    Handler.policy = page_policy()
    handler = functools.partial(Handler, directory=str(ROOT))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        # The bound port (PORT=0 takes a free one, as tests/browser.rs does).
        port = server.server_address[1]
        print(
            f"serving {ROOT} at http://127.0.0.1:{port}/ with the page's Content-Security-Policy", flush=True
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
