"""Serve the sandbox with uvicorn on a background thread, bound to loopback on a free port by default."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from types import TracebackType
from typing import Any

import uvicorn

from bonzo_bulk.errors import SandboxError
from bonzo_bulk.sandbox.app import create_app
from bonzo_bulk.sandbox.asgi import SandboxApp
from bonzo_bulk.sandbox.state import SandboxOptions
from bonzo_bulk.secrets import redact_cut

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class SandboxServer:
    """A running sandbox: ``with SandboxServer(options) as srv: srv.url`` -> ``http://127.0.0.1:PORT``.

    Starts in a fraction of a second (the socket is bound before uvicorn runs) and stops cleanly:
    the thread, the socket and the database are all closed by :meth:`stop`.
    """

    def __init__(
        self,
        options: SandboxOptions | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_level: str = "warning",
    ) -> None:
        self.options = options or SandboxOptions()
        self.host = host
        self.port = port
        self.log_level = log_level
        self.app: SandboxApp | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise SandboxError("the sandbox server is not running; call start() or use it as a context manager")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SandboxServer:
        """Bind the socket, start uvicorn on a thread and wait until the app's lifespan has started."""
        if self._server is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise SandboxError(
                f"sandbox: cannot listen on {self.host}:{self.port} ({exc.strerror}); pick another --port"
            ) from exc
        self._socket = sock
        self.port = sock.getsockname()[1]
        self.app = create_app(self.options)
        config = uvicorn.Config(
            self.app,
            log_level=self.log_level,
            access_log=False,
            lifespan="on",
            proxy_headers=False,
            server_header=False,
            date_header=False,  # the app writes Date on its own clock (sandbox.clock.offset_seconds)
            ws="none",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="bonzo-sandbox", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                error = self.app.sandbox.startup_error
                self.stop()
                reason = f": {error}" if error else " (see the log above)"
                raise SandboxError(f"sandbox did not start on {self.host}:{self.port}{reason}")
            time.sleep(0.002)
        return self

    def stop(self) -> None:
        """Stop uvicorn, wait for its thread and release the socket (safe to call twice)."""
        server, thread = self._server, self._thread
        if server is not None:
            if self.app is not None:
                self.app.sandbox.wake_stopping()
            server.should_exit = True
        if thread is not None:
            thread.join(STOP_TIMEOUT)
            if thread.is_alive():
                raise SandboxError(f"sandbox on port {self.port} did not stop within {STOP_TIMEOUT:.0f} s")
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call a ``/__sandbox`` route over loopback and return its JSON (raises SandboxError on an error status)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - our own http:// loopback URL
            f"{self.url}/__sandbox/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = redact_cut(exc.read().decode("utf-8", "replace"), 500)
            raise SandboxError(f"sandbox {method} /__sandbox/{path} -> {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise SandboxError(f"sandbox {method} /__sandbox/{path} failed: {exc}") from exc

    def seed(self, users: list[dict[str, Any]], hooks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """``POST /__sandbox/seed``: users and hooks in, tokens and hook URLs out."""
        body: dict[str, Any] = {"users": users}
        if hooks is not None:
            body["hooks"] = hooks
        result: dict[str, Any] = self.admin("POST", "seed", body)
        return result
