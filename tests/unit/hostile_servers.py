"""Hostile HTTP behaviours as reusable loopback servers, for tests that reproduce an attack.

- :class:`ForeignHost` stands for another origin: it records every request that reaches it (method,
  path, whether an ``Authorization`` header came along, the body) and answers a fixed reply, or
  forwards to an upstream with headers of its own (an attacker that answers plausibly).
- :class:`HostileProxy` stands in front of a real server (the sandbox) and forwards everything,
  except requests matching a :class:`Redirect` rule: those get a ``3xx`` to another origin, or to
  itself (a same-origin redirect, as many hops as the rule says); or a :class:`Canned` rule: those
  get a fixed answer (a ``429`` with a huge ``Retry-After``, say; :func:`maintenance_page` is an HTML
  "down for maintenance" page, as a load balancer answers while the API is down).
- :class:`SilentHook` accepts connections and never answers a POST.

Each listens on 127.0.0.1 on a free port in a thread of its own, and stops when its ``with`` ends.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

HOP = "/__hop"
"""The path prefix a same-origin redirect adds, once per hop; the proxy strips them before forwarding."""
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "proxy-connection"}


@dataclass(frozen=True)
class Seen:
    """One request a server received."""

    method: str
    path: str
    authorization: str | None
    body: bytes


@dataclass(frozen=True)
class Reply:
    """A fixed answer."""

    status: int = 200
    body: bytes = b'{"status": "ok"}'
    headers: Mapping[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


def _forward(upstream: str, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
    """Send one request on to ``upstream`` (``http://host:port``) and return its answer."""
    parts = urlsplit(upstream)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
    try:
        connection.request(method, path, body=body or None, headers=dict(headers))
        answer = connection.getresponse()
        payload = answer.read()
        kept = {k: v for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP}
        return Reply(answer.status, payload, kept)
    finally:
        connection.close()


class _Server:
    """A threading HTTP server whose handler calls :meth:`handle`; ``with`` starts and stops it."""

    def __init__(self, name: str) -> None:
        self._lock = threading.Lock()
        self.seen: list[Seen] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                with owner._lock:
                    owner.seen.append(Seen(self.command, self.path, self.headers.get("Authorization"), body))
                reply = owner.handle(self.command, self.path, headers, body)
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up waiting (a silent hook's caller, say): nothing to answer

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _answer

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: what was seen is the output."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self.seen)

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class ForeignHost(_Server):
    """Another origin: records what reaches it; answers ``reply``, or forwards to ``upstream`` with ``add_headers``."""

    def __init__(
        self,
        *,
        reply: Reply | None = None,
        upstream: str | None = None,
        add_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__("foreign-host")
        self._reply = reply or Reply()
        self._upstream = upstream
        self._add = dict(add_headers or {})

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        if self._upstream is None:
            return self._reply
        return _forward(self._upstream, method, path, {**headers, **self._add}, body)

    def __enter__(self) -> ForeignHost:
        super().__enter__()
        return self


@dataclass(frozen=True)
class Redirect:
    """Which requests a :class:`HostileProxy` redirects, how, and where.

    ``to`` is another origin's URL (the request's path and query are kept), or None for the proxy
    itself: a same-origin redirect, ``hops`` times in a row before the request is forwarded.
    """

    status: int
    path_prefix: str = "/"
    method: str | None = None
    query_contains: str | None = None
    to: str | None = None
    hops: int = 1

    def matches(self, method: str, path: str) -> bool:
        bare, _, query = path.partition("?")
        return (
            bare.startswith(self.path_prefix)
            and (self.method is None or method == self.method)
            and (self.query_contains is None or self.query_contains in query)
        )


@dataclass(frozen=True)
class Canned:
    """Requests a :class:`HostileProxy` answers itself with ``reply`` (the first ``times`` of them; all if None)."""

    reply: Reply
    path_prefix: str = "/"
    method: str | None = None
    times: int | None = None
    query_contains: str | None = None

    def matches(self, method: str, path: str) -> bool:
        bare, _, query = path.partition("?")
        return (
            bare.startswith(self.path_prefix)
            and (self.method is None or method == self.method)
            and (self.query_contains is None or self.query_contains in query)
        )


MAINTENANCE_HTML = (
    b"<!DOCTYPE html><html><head><title>Down for maintenance</title></head>"
    b"<body><h1>We'll be back soon</h1><p>Scheduled maintenance is under way.</p></body></html>"
)


def maintenance_page(status: int = 503) -> Reply:
    """An HTML maintenance page, as a proxy in front of an API answers while it is down (``503``, or ``200``)."""
    return Reply(status, MAINTENANCE_HTML, {"Content-Type": "text/html; charset=utf-8", "Retry-After": "1"})


class HostileProxy(_Server):
    """Forwards to ``upstream``, except what a rule redirects or answers itself (the first matching rule wins)."""

    def __init__(self, upstream: str, rules: Sequence[Redirect | Canned]) -> None:
        super().__init__("hostile-proxy")
        self._upstream = upstream.rstrip("/")
        self._rules = tuple(rules)
        self.redirected = 0
        self.canned = 0
        self._used: dict[int, int] = {}

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        hops = 0
        while path.startswith(HOP + "/"):
            path = path[len(HOP) :]
            hops += 1
        for number, rule in enumerate(self._rules):
            if not rule.matches(method, path):
                continue
            if isinstance(rule, Canned):
                with self._lock:
                    used = self._used.get(number, 0)
                    if rule.times is not None and used >= rule.times:
                        continue
                    self._used[number] = used + 1
                    self.canned += 1
                return rule.reply
            if rule.to is not None:
                location = rule.to.rstrip("/") + path
            elif hops < rule.hops:
                location = self.url + HOP * (hops + 1) + path
            else:
                break
            with self._lock:
                self.redirected += 1
            return Reply(rule.status, b"", {"Location": location})
        return _forward(self._upstream, method, path, headers, body)

    def __enter__(self) -> HostileProxy:
        super().__enter__()
        return self


class SilentHook(_Server):
    """A webhook that accepts every connection and never answers a POST (the preflight's HEAD, GET and OPTIONS
    get a 405, as a POST-only hook's would); ``posts`` counts the POSTs it holds."""

    def __init__(self) -> None:
        super().__init__("silent-hook")
        self._release = threading.Event()

    @property
    def url(self) -> str:
        return f"{super().url}/api/webhook/{'5' * 32}"

    @property
    def posts(self) -> int:
        return sum(seen.method == "POST" for seen in self.requests)

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        if method != "POST":
            return Reply(405, b"", {"Allow": "POST"})
        self._release.wait()
        return Reply(503, b"", {})

    def __enter__(self) -> SilentHook:
        super().__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._release.set()
        super().__exit__(exc_type, exc, tb)
