"""A loopback HTTP server that answers 404 to everything and counts every request it gets.

The bad-input corpus points the webhook, the API and the sandbox URL at it: a bad input must be
refused before the first byte, so the count must stay 0.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class CountingServer:
    """``with CountingServer() as server: server.url, server.requests`` — stopped on exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        counter = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                counter._hit()
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                body = b'{"message": "counting server: not found"}'
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _answer

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the count is the output."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="counting-server", daemon=True)

    def _hit(self) -> None:
        with self._lock:
            self._count += 1

    @property
    def requests(self) -> int:
        with self._lock:
            return self._count

    def reset(self) -> None:
        with self._lock:
            self._count = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> CountingServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
