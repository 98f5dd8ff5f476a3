"""A loopback HTTP server that records every request: proof that nothing was fetched.

Example
-------
>>> import urllib.request
>>> with recording_http_server() as server:
...     _ = urllib.request.urlopen(server.url + "/x?y=1").read()
>>> server.requests
['/x?y=1']
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["RecordingServer", "recording_http_server"]


@dataclass
class RecordingServer:
    url: str
    requests: list[str] = field(default_factory=list)


@contextmanager
def recording_http_server() -> Iterator[RecordingServer]:
    """Serve a tiny CSV on 127.0.0.1 (free port) and record each request path."""
    recorded = RecordingServer(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            recorded.requests.append(self.path)
            body = b"a,b\n1,2\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    recorded.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield recorded
    finally:
        server.shutdown()
        server.server_close()
