"""Running ``serve``: check the exposure, open the store once to fail early, then uvicorn — in the foreground for
the CLI, or on a background thread (:class:`ServeServer`) for tests and embedding."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from bonzo_bulk.errors import ConfigError
from bonzo_bulk.report.stored import open_existing
from bonzo_bulk.serve.access import Access, check_exposure
from bonzo_bulk.serve.app import create_app
from bonzo_bulk.store import StoreLocation

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def prepare(host: str, store_at: str, token: str | None) -> tuple[StoreLocation, Access]:
    """Check that serving ``host`` is safe and that the store exists and opens (ConfigError otherwise, exit 2)."""
    check_exposure(host, token)
    with open_existing(store_at) as store:
        location = store.location
    return location, Access(token or None)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"--host {host} --port {port}: cannot listen there ({exc.strerror}); pick another --port", key="--port"
        ) from exc
    return sock


def _server(location: StoreLocation, access: Access) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(location, access),
        log_level="warning",
        access_log=False,
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        ws="none",
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


class ServeServer:
    """``serve`` on a background thread: ``with ServeServer(store, token=...) as srv: srv.url``."""

    def __init__(self, store_at: str, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> None:
        self.location, self.access = prepare(host, store_at, token)
        self.host, self.port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> ServeServer:
        """Bind, start uvicorn on a thread, wait until it answers."""
        self._socket = _listen(self.host, self.port)
        self.port = self._socket.getsockname()[1]
        self._server = server = _server(self.location, self.access)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._socket]}, name="bonzo-serve", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"serve did not start on {self.host}:{self.port} (see the log above)")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop uvicorn and wait for its thread (safe to call twice)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> ServeServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_forever(host: str, port: int, location: StoreLocation, access: Access) -> None:
    """``bonzo-bulk serve``: serve the store (checked by :func:`prepare`) until Ctrl-C."""
    sock = _listen(host, port)
    try:
        _server(location, access).run(sockets=[sock])
    finally:
        sock.close()
