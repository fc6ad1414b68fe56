"""The webhook sender: POST every planned record, fast, and write down what happened to each.

A fixed pool of ``concurrent_requests`` workers pulls record indexes from a shared counter (flat
memory at any N), optionally paced by a smooth rate limiter, over one pooled aiohttp session.
Transient failures (connect, timeout, reset, 429, 5xx) are retried with jittered exponential
backoff; 4xx never is. A redirect is never followed: a lead is not re-sent to wherever a ``Location``
points, and a 3xx answer is a failed delivery that says where it pointed (its host only). A record
that fails for good is a failed :class:`DeliveryResult`, not an exception. Because a retried POST
may have landed the first time, duplicates are for the verifier to find, not for the sender to assume away.

Example::

    results = await deliver(records, url=hook_url, settings=config.webhook_settings)
    delivered = sum(r.accepted for r in results)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sized
from datetime import UTC, datetime
from typing import Any, Final, cast

import aiohttp
from yarl import URL

from bonzo_bulk._http import (
    RETRYABLE,
    ErrorCategory,
    RetryPolicy,
    TransientError,
    categorize_exception,
    categorize_status,
    describe_exception,
    is_permanent_connect_error,
    make_session,
    origin_of,
    parse_retry_after,
    redirect_target,
    retry_transient,
)
from bonzo_bulk.config.schema import WebhookSettings
from bonzo_bulk.deliver.watch import STATUS_EVERY, DeliveryWatch, WatchedPolicy
from bonzo_bulk.errors import DeliveryError
from bonzo_bulk.models import DeliveryResult, PlannedRecord
from bonzo_bulk.secrets import redact, redact_cut, redact_url

__all__ = ["deliver", "usable_url"]

EXCERPT_CHARS: Final = 300
_RETRY_AFTER_STATUSES: Final = frozenset({429, 503})
_NO_AIOHTTP_TIMER: Final = aiohttp.ClientTimeout()
"""Per-request override of any session timeout: :class:`_Deadlines` enforces ``settings.timeout``."""
_EXCERPT_CACHE_SIZE: Final = 256
_EXCERPT_CACHE_BODY: Final = 4096
_EXCERPT_READ: Final = 65536
"""How much of a body is decoded for its excerpt: redacted whole, then cut to :data:`EXCERPT_CHARS`."""

_perf = time.perf_counter
_wall = time.time
_utc_from_timestamp = datetime.fromtimestamp


def usable_url(url: str) -> URL:
    """Parse the webhook URL once, or raise :class:`DeliveryError` if no request could ever use it."""
    shown = redact_url(url)
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as exc:
        raise DeliveryError(f"webhook URL {shown!r} cannot be parsed; give a full http(s) URL") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise DeliveryError(
            f"webhook URL {shown!r} is not an http(s) URL with a host; "
            "give a full URL such as https://app.getbonzo.com/api/webhook/<hash>"
        )
    return parsed


def redirected(url: URL, answer: str, location: str | None) -> str:
    """Why a redirect answer to a webhook POST is a failed delivery: where it pointed (its host only) and the fix."""
    target = redirect_target(url, location)
    where = f"redirected to {origin_of(target)}" if target is not None else "redirected without a usable Location"
    return f"{where} ({answer}); not followed: a lead is never re-sent elsewhere"


def _excerpt(raw: bytes) -> str:
    """The first characters of a response body, decoded leniently and redacted."""
    if not raw:
        return ""
    head = raw[:_EXCERPT_READ]
    return redact_cut(head.decode("utf-8", "replace"), EXCERPT_CHARS, clipped=len(raw) > len(head))


class _Attempt:
    """What one POST of one record produced (internal, allocation-light)."""

    __slots__ = ("category", "ended", "error", "excerpt", "retry_after", "retryable", "started", "status")

    def __init__(
        self,
        started: float,
        ended: float,
        status: int | None,
        category: ErrorCategory | None,
        error: str | None,
        excerpt: str,
        retry_after: float | None,
        retryable: bool,
    ) -> None:
        self.started = started
        self.ended = ended
        self.status = status
        self.category = category
        self.error = error
        self.excerpt = excerpt
        self.retry_after = retry_after
        self.retryable = retryable


class _Deadlines:
    """One coarse timer for all workers instead of aiohttp's timer per request.

    aiohttp arms and disarms a loop timer for every request, which costs about a sixth of the
    sender's CPU on loopback. Here each worker writes its deadline into a dict and one watchdog,
    ticking at ``timeout / 20`` (10 ms to 250 ms), cancels a worker whose attempt overran; the
    attempt turns that cancel back into a ``timeout`` (``Task.uncancel``), as ``asyncio.timeout`` does.
    """

    __slots__ = ("_armed", "_expired", "_tick", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._tick = min(max(timeout / 20.0, 0.01), 0.25)
        self._armed: dict[asyncio.Task[None], float] = {}
        self._expired: set[asyncio.Task[None]] = set()

    def arm(self, task: asyncio.Task[None], now: float) -> None:
        """Start ``task``'s clock; ``now`` is a :func:`time.perf_counter` reading."""
        self._armed[task] = now + self.timeout

    def disarm(self, task: asyncio.Task[None]) -> None:
        self._armed.pop(task, None)

    def in_flight(self) -> int:
        """How many requests await an answer now."""
        return len(self._armed)

    def claim_expiry(self, task: asyncio.Task[None]) -> bool:
        """True (once) when the watchdog cancelled ``task`` for overrunning its deadline."""
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    async def watch(self) -> None:
        """Cancel every armed task past its deadline, forever (the caller cancels this)."""
        while True:
            await asyncio.sleep(self._tick)
            now = _perf()
            overdue = [task for task, deadline in self._armed.items() if deadline <= now]
            for task in overdue:
                del self._armed[task]
                self._expired.add(task)
                task.cancel()


class _Sender:
    """Posts records over one session and turns each into a :class:`DeliveryResult`."""

    __slots__ = ("_deadlines", "_excerpts", "_policy", "_session", "_shown_url", "_url", "_watch")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: URL,
        shown_url: str,
        settings: WebhookSettings,
        deadlines: _Deadlines,
        watch: DeliveryWatch,
    ) -> None:
        self._session = session
        self._url = url
        self._shown_url = shown_url
        self._deadlines = deadlines
        self._watch = watch
        self._policy: RetryPolicy = WatchedPolicy(
            retries=settings.retry_attempts,
            base_delay=settings.retry_delay,
            max_delay=settings.max_retry_delay,
            on_wait=watch.waiting,
        )
        self._excerpts: dict[bytes, str] = {}

    def _excerpt(self, raw: bytes) -> str:
        """The redacted excerpt of a body; a webhook repeats the same few answers, so they are remembered."""
        excerpt = self._excerpts.get(raw)
        if excerpt is None:
            excerpt = _excerpt(raw)
            if len(raw) <= _EXCERPT_CACHE_BODY and len(self._excerpts) < _EXCERPT_CACHE_SIZE:
                self._excerpts[raw] = excerpt
        return excerpt

    async def _attempt(self, payload: aiohttp.BytesPayload, task: asyncio.Task[None]) -> _Attempt:
        """One POST; network failures become an attempt with a category, never an exception."""
        deadlines = self._deadlines
        started = _perf()
        deadlines.arm(task, started)
        try:
            async with self._session.post(
                self._url, data=payload, timeout=_NO_AIOHTTP_TIMER, allow_redirects=False
            ) as response:
                raw = await response.read()
                status = response.status
                retry_after = (
                    parse_retry_after(response.headers.get("Retry-After")) if status in _RETRY_AFTER_STATUSES else None
                )
                reason = response.reason
                location = response.headers.get("Location")
        except asyncio.CancelledError:
            if not deadlines.claim_expiry(task) or task.uncancel() > 0:
                raise
            detail = f"no answer within {deadlines.timeout:g} s"
            return _Attempt(started, _perf(), None, "timeout", detail, "", None, True)
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            raise DeliveryError(f"webhook URL {self._shown_url!r} is not usable: {describe_exception(exc)}") from exc
        except Exception as exc:
            category = categorize_exception(exc)
            if category is None:
                raise
            retryable = category in RETRYABLE and not is_permanent_connect_error(exc)
            return _Attempt(started, _perf(), None, category, describe_exception(exc), "", None, retryable)
        finally:
            deadlines.disarm(task)
        ended = _perf()
        category = categorize_status(status)
        if category is None:
            return _Attempt(started, ended, status, None, None, self._excerpt(raw), None, False)
        error = redact(f"HTTP {status} {reason or ''}".rstrip())
        if category == "redirect":
            error = redirected(self._url, error, location)
        return _Attempt(started, ended, status, category, error, self._excerpt(raw), retry_after, category in RETRYABLE)

    async def _retry_unless_stopped(
        self, again: Callable[[], Awaitable[_Attempt]], seed: TransientError, latest: list[_Attempt]
    ) -> _Attempt:
        """Retry per the policy, but end at once (with the latest outcome) when the watch stops the delivery."""
        watch = self._watch
        watch.retrying += 1
        retry = asyncio.ensure_future(retry_transient(again, self._policy, first_failure=seed))
        stopper = asyncio.ensure_future(watch.stopped.wait())
        try:
            await asyncio.wait({retry, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.retrying -= 1
            stopper.cancel()
            if not retry.done():
                retry.cancel()
            await asyncio.gather(retry, stopper, return_exceptions=True)
        if retry.cancelled():
            last = latest[0]
            last.error = f"{last.error or 'failed'}; gave up: {watch.stop_reason}"
            return last
        try:
            return retry.result()
        except TransientError as exhausted:
            return cast(_Attempt, exhausted.outcome)

    async def send(self, record: PlannedRecord, task: asyncio.Task[None]) -> DeliveryResult:
        """Deliver one record from worker ``task``, retrying transient failures, and report it."""
        wall_start = _wall()
        # A prebuilt payload carries the Content-Type, so aiohttp merges no header dict per request;
        # bytes payloads are reusable, so retries send the same object.
        payload = aiohttp.BytesPayload(record.body, content_type=record.content_type)
        watch = self._watch
        first = await self._attempt(payload, task)
        watch.attempt(first.category, first.status)
        final = first
        attempts = 1
        if first.retryable and first.category is not None and self._policy.retries > 0 and not watch.stop_reason:
            counter = [1]
            latest = [first]

            async def again() -> _Attempt:
                counter[0] += 1
                outcome = await self._attempt(payload, cast("asyncio.Task[None]", asyncio.current_task()))
                latest[0] = outcome
                watch.attempt(outcome.category, outcome.status)
                if outcome.retryable and outcome.category is not None:
                    raise TransientError(
                        outcome.category, outcome.error or "", retry_after=outcome.retry_after, outcome=outcome
                    )
                return outcome

            seed = TransientError(first.category, first.error or "", retry_after=first.retry_after, outcome=first)
            final = await self._retry_unless_stopped(again, seed, latest)
            attempts = counter[0]
        origin = first.started
        return DeliveryResult(
            record_name=record.name,
            status=final.status,
            attempts=attempts,
            latency_ms=(final.ended - final.started) * 1000.0,
            total_ms=(final.ended - origin) * 1000.0,
            sent_at=_utc_from_timestamp(wall_start, UTC),
            answered_at=_utc_from_timestamp(wall_start + (final.ended - origin), UTC)
            if final.status is not None
            else None,
            error_category=final.category,
            error=final.error,
            response_excerpt=final.excerpt,
        )


class _Pacer:
    """A smooth rate limiter: one slot every ``1/rate`` seconds, no bursts (a token bucket of size 1)."""

    __slots__ = ("_interval", "_next")

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0

    async def wait(self) -> None:
        now = asyncio.get_running_loop().time()
        slot = self._next if self._next > now else now
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


async def deliver(
    records: Iterable[PlannedRecord],
    *,
    url: str,
    settings: WebhookSettings,
    session: aiohttp.ClientSession | None = None,
    on_result: Callable[[PlannedRecord, DeliveryResult], None] | None = None,
    on_status: Callable[[str], None] | None = None,
    status_every: float = STATUS_EVERY,
    total: int | None = None,
    collect: bool = True,
) -> list[DeliveryResult]:
    """POST each record's body to ``url``; return one result per record, in record order.

    ``records`` may be a stream (a generator the engine fills as it plans; give ``total`` then, and
    ``collect=False`` to keep nothing: the results go to ``on_result(record, result)`` as each record
    finishes, for the run store and progress). ``on_status`` gets a status line every
    ``status_every`` seconds while it runs (what is sent, retrying, waited for). Raises
    :class:`DeliveryError` only when ``url`` is unusable as a whole; a record that fails is a result
    with ``error_category`` set, and so is one never sent because the delivery stopped early (its
    :func:`~bonzo_bulk.deliver.watch.delivery_deadline` passed, or refusals or timeouts in a row).

    Example::

        results = await deliver(records, url=hook_url, settings=WebhookSettings(concurrent_requests=16))
    """
    target = usable_url(url)
    if total is None:
        total = len(records) if isinstance(records, Sized) else 0
    if total == 0:
        return []
    results: dict[int, DeliveryResult] = {}
    own_session = session is None
    active = (
        session if session is not None else make_session(limit=settings.concurrent_requests, timeout=settings.timeout)
    )
    deadlines = _Deadlines(settings.timeout)
    watch = DeliveryWatch.of(settings, total, on_status=on_status, every=status_every, in_flight=deadlines.in_flight)
    sender = _Sender(active, target, redact_url(url), settings, deadlines, watch)
    pacer = _Pacer(settings.rate_limit) if settings.rate_limit else None
    stream = enumerate(records)

    def finish(index: int, record: PlannedRecord, result: DeliveryResult) -> None:
        if collect:
            results[index] = result
        if on_result is not None:
            on_result(record, result)

    async def worker() -> None:
        send = sender.send
        me = cast("asyncio.Task[None]", asyncio.current_task())
        while watch.stop_reason is None:
            item = next(stream, None)
            if item is None:
                return
            index, record = item
            if pacer is not None:
                await pacer.wait()
            result = await send(record, me)
            watch.finished()
            finish(index, record, result)

    try:
        await _work(worker, min(settings.concurrent_requests, total), deadlines, watch)
    finally:
        if own_session:
            await active.close()
    if watch.stop_reason is not None:
        for index, record in stream:
            finish(index, record, _not_sent(record, watch.stop_reason, watch.stop_category))
        if on_status is not None:
            on_status(f"{watch.status()}; stopped: {watch.stop_reason}")
    return [results[i] for i in sorted(results)]


async def _work(
    worker: Callable[[], Coroutine[Any, Any, None]], count: int, deadlines: _Deadlines, watch: DeliveryWatch
) -> None:
    """Run ``count`` workers beside the request deadlines and the status watch; one failing cancels them all."""
    watchdog = asyncio.create_task(deadlines.watch())
    watcher = asyncio.create_task(watch.run())
    workers = [asyncio.create_task(worker()) for _ in range(count)]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    finally:
        watchdog.cancel()
        watcher.cancel()
        await asyncio.gather(watchdog, watcher, return_exceptions=True)


def _not_sent(record: PlannedRecord, reason: str, category: str) -> DeliveryResult:
    """The result of a record the delivery stopped before sending."""
    return DeliveryResult(
        record_name=record.name,
        status=None,
        attempts=0,
        latency_ms=0.0,
        total_ms=0.0,
        sent_at=datetime.now(UTC),
        answered_at=None,
        error_category=category,
        error=f"not sent: {reason}",
        response_excerpt="",
    )
