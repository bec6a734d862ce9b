"""An HTTP server on 127.0.0.1 serving bytes by path (the builder's ADD of a URL, in tests)."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator

LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"  # 1445412480: what an ADD of a URL gives the file


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    requests: list[str] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Last-Modified", LAST_MODIFIED)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(files: dict[str, bytes], requests: list[str] | None = None) -> Iterator[str]:
    """Serve ``files`` (path -> bytes, read at each request) and note each request's path in
    ``requests``; the base URL; stopped at the end."""
    handler = type("Handler", (_Files,), {"files": files, "requests": requests if requests is not None else []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
