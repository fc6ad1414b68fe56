"""HTTP plumbing shared by the webhook sender and Bonzo's API client.

One pooled :class:`aiohttp.ClientSession` factory, one retry policy (tenacity: exponential backoff
with jitter, capped, ``Retry-After`` honoured on 429/503), one way of naming what went wrong
(``connect``, ``timeout``, ``reset``, ``redirect``, ``http_4xx``, ``http_429``, ``http_5xx``), and
:func:`run_async` to run a coroutine on uvloop where it is installed.

Only transient failures are retried: connect errors, timeouts, resets, 429 and 5xx — never other
4xx, because those answers will not change on a second try.

No request here follows a redirect on its own (aiohttp would, by default, and would send the body —
a lead — or the answer's trust to whatever host the ``Location`` names): every caller passes
``allow_redirects=False`` and decides with :func:`redirect_target` and :func:`same_origin`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal, TypeAlias, TypeVar, cast

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_base
from yarl import URL

from bonzo_bulk.secrets import redact_cut

__all__ = [
    "REDIRECT_STATUSES",
    "RETRYABLE",
    "ErrorCategory",
    "RetryPolicy",
    "TransientError",
    "categorize_exception",
    "categorize_status",
    "describe_exception",
    "is_permanent_connect_error",
    "make_session",
    "origin_of",
    "parse_retry_after",
    "redirect_target",
    "retry_transient",
    "run_async",
    "same_origin",
]

T = TypeVar("T")

ErrorCategory: TypeAlias = Literal["connect", "timeout", "reset", "redirect", "http_4xx", "http_429", "http_5xx"]
RETRYABLE: Final[frozenset[str]] = frozenset({"connect", "timeout", "reset", "http_429", "http_5xx"})
"""Categories worth another try; ``http_4xx`` and ``redirect`` never are."""
REDIRECT_STATUSES: Final[frozenset[int]] = frozenset({301, 302, 303, 307, 308})
"""Answers that name another URL in ``Location``; never followed without a decision (:func:`redirect_target`)."""

_KEEPALIVE_SECONDS: Final = 30.0
_DNS_CACHE_SECONDS: Final = 300
_DETAIL_CHARS: Final = 200


def make_session(*, limit: int, timeout: float) -> aiohttp.ClientSession:
    """A pooled session sized to ``limit`` concurrent requests; call it inside a running loop.

    Keep-alive connections and a DNS cache mean no per-request DNS lookup or TLS handshake; no
    cookie jar, because neither the webhook nor Bonzo's API needs one and it costs time per request.
    """
    connector = aiohttp.TCPConnector(
        limit=limit,
        limit_per_host=limit,
        keepalive_timeout=_KEEPALIVE_SECONDS,
        use_dns_cache=True,
        ttl_dns_cache=_DNS_CACHE_SECONDS,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout),
        cookie_jar=aiohttp.DummyCookieJar(),
        raise_for_status=False,
    )


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh uvloop event loop when uvloop is installed, else asyncio's.

    SIGTERM is handled like SIGINT (Ctrl-C): the work is cancelled, so every ``finally`` runs and an
    interrupted run can record what it sent instead of dying mid-write; :func:`signalled` says which.
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return asyncio.run(_terminate_like_interrupt(coro))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_terminate_like_interrupt(coro))


SAME_CTRL_C_S = 1.0
"""SIGINTs this close to the first are the same Ctrl-C (a terminal signals the whole process group, and a
launcher such as ``uv run`` may forward it again): only a later one is a second Ctrl-C."""


@dataclass
class _Interrupts:
    """What :func:`run_async`'s signal handler knows: signals that stopped the work, and a graceful stop."""

    received: list[int]
    graceful: Callable[[], None] | None = None
    first_at: float | None = None


_SIGNALLED: ContextVar[_Interrupts | None] = ContextVar("bonzo_bulk_signalled", default=None)


def signalled() -> int | None:
    """The signal (SIGINT or SIGTERM) that stopped the work :func:`run_async` runs, if one did."""
    state = _SIGNALLED.get()
    return state.received[0] if state is not None and state.received else None


@contextlib.contextmanager
def graceful_interrupt(on_first: Callable[[], None]) -> Iterator[None]:
    """Inside this block, the first Ctrl-C (SIGINT) calls ``on_first`` instead of cancelling the work that
    :func:`run_async` runs; SIGINTs within :data:`SAME_CTRL_C_S` of it are the same Ctrl-C; a later one, or a
    SIGTERM, cancels as usual. Outside :func:`run_async` (or without signal handlers) it does nothing."""
    state = _SIGNALLED.get()
    if state is None:
        yield
        return
    state.graceful, state.first_at = on_first, None
    try:
        yield
    finally:
        state.graceful = None


async def _terminate_like_interrupt(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro``; SIGINT and SIGTERM cancel it and are remembered (:func:`signalled`), so code that
    is cancelled can tell a user's interrupt from a timeout (where it can install handlers: POSIX, main thread).
    Under :func:`graceful_interrupt` the first Ctrl-C asks the work to stop instead."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    state = _Interrupts([])
    received = state.received
    _SIGNALLED.set(state)

    def on_signal(signum: int) -> None:
        now = time.monotonic()
        if signum == signal.SIGINT and state.first_at is not None and now - state.first_at < SAME_CTRL_C_S:
            return
        if signum == signal.SIGINT and state.graceful is not None and state.first_at is None:
            state.first_at = now
            state.graceful()
            return
        received.append(signum)
        if task is not None:
            task.cancel()

    installed: list[int] = []
    for wanted in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(wanted, on_signal, int(wanted))
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        installed.append(int(wanted))
    try:
        return await coro
    except asyncio.CancelledError:
        if received:
            raise KeyboardInterrupt from None
        raise
    finally:
        for handled in installed:
            loop.remove_signal_handler(handled)


def categorize_status(status: int) -> ErrorCategory | None:
    """The error category of an HTTP status, or None for a success (1xx, 2xx); any 3xx is a ``redirect``."""
    if 300 <= status < 400:
        return "redirect"
    if status < 400:
        return None
    if status == 429:
        return "http_429"
    if status >= 500:
        return "http_5xx"
    return "http_4xx"


def categorize_exception(exc: BaseException) -> ErrorCategory | None:
    """The error category of a network failure, or None when ``exc`` is not one (a bug, a cancel)."""
    if isinstance(exc, asyncio.CancelledError):
        return None
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientOSError):
        return "reset"
    if isinstance(exc, ConnectionError):
        return "reset"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "reset"  # a garbled or cut-off response: the peer broke the exchange
    if isinstance(exc, aiohttp.ClientError | ssl.SSLError | OSError):
        return "connect"
    return None


def is_permanent_connect_error(exc: BaseException) -> bool:
    """True for connect failures that no retry can fix: a bad certificate or TLS mismatch."""
    return isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError | ssl.SSLError)


def describe_exception(exc: BaseException) -> str:
    """A short, redacted, one-line description of a network failure for a result or a message."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return "timed out"
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = " ".join(text.split())
    return redact_cut(text, _DETAIL_CHARS)


def origin_of(url: URL) -> str:
    """``scheme://host:port`` of ``url``: what a message may name of it (never its user, password, path or
    query, where a hook's hash or a token may sit)."""
    return str(url.origin()) if url.absolute and url.host else "(no host)"


def same_origin(first: URL, second: URL) -> bool:
    """True when both URLs have the same scheme, host and port (the port a scheme implies counts)."""
    return (first.scheme, (first.host or "").lower(), first.port) == (
        second.scheme,
        (second.host or "").lower(),
        second.port,
    )


def redirect_target(current: URL, location: str | None) -> URL | None:
    """The absolute URL a redirect's ``Location`` names, resolved against ``current``; None when there is
    none or it is not an http(s) URL with a host."""
    if not location:
        return None
    try:
        target = current.join(URL(location.strip()))
    except (TypeError, ValueError):
        return None
    if target.scheme not in ("http", "https") or not target.host:
        return None
    return target


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


class TransientError(Exception):
    """One attempt failed in a way worth retrying; carries what the caller needs to report it.

    Internal to the package: the sender turns the last one into a failed result, the API client
    into a :class:`~bonzo_bulk.errors.BonzoAPIError`.
    """

    def __init__(
        self,
        category: ErrorCategory,
        detail: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        outcome: object = None,
    ) -> None:
        self.category = category
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        self.outcome = outcome
        super().__init__(f"{category}: {detail}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many retries, and how long to wait before each.

    The wait before retry ``n`` (1-based) is ``min(max_delay, base_delay * 2**(n-1))`` scaled by a
    random factor in [0.5, 1] (jitter, so many clients don't retry in step). A ``Retry-After`` from
    the server wins, up to ``retry_after_cap``; a 429 without one waits ``default_retry_after`` when
    that is set, else the backoff.
    """

    retries: int
    base_delay: float
    max_delay: float
    default_retry_after: float | None = None
    retry_after_cap: float = 600.0

    def backoff(self, retry_number: int) -> float:
        """The jittered exponential wait before retry ``retry_number`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2.0 ** min(retry_number - 1, 30)))
        return ceiling * random.uniform(0.5, 1.0)

    def delay(self, retry_number: int, failure: TransientError) -> float:
        """The wait before retry ``retry_number`` after ``failure``."""
        if failure.retry_after is not None:
            return min(failure.retry_after, self.retry_after_cap)
        if failure.category == "http_429" and self.default_retry_after is not None:
            return min(self.default_retry_after, self.retry_after_cap)
        return self.backoff(retry_number)


class _PolicyWait(wait_base):
    """Tenacity wait strategy that asks a :class:`RetryPolicy`, counting retries from ``offset``."""

    def __init__(self, policy: RetryPolicy, offset: int) -> None:
        self._policy = policy
        self._offset = offset

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        retry_number = retry_state.attempt_number + self._offset
        if isinstance(failure, TransientError):
            return self._policy.delay(retry_number, failure)
        return self._policy.backoff(retry_number)


async def retry_transient(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    first_failure: TransientError | None = None,
) -> T:
    """Await ``attempt()``, retrying on :class:`TransientError` per ``policy``; re-raise the last one.

    The first try runs without tenacity so the happy path pays nothing for it. Pass
    ``first_failure`` when the caller already made the first try itself and it failed.
    """
    if first_failure is None:
        try:
            return await attempt()
        except TransientError as exc:
            first_failure = exc
    if policy.retries <= 0:
        raise first_failure
    await asyncio.sleep(policy.delay(1, first_failure))
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.retries),
        wait=_PolicyWait(policy, offset=1),
        retry=retry_if_exception_type(TransientError),
        reraise=True,
    )
    return cast(T, await retrying(attempt))
