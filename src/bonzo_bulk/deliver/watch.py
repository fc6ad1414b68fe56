"""A delivery that shows its waiting and knows when to stop.

While records are sent, a status line every few seconds says how far it got and what it waits for
("delivery: 140/400 sent, 3 retrying, 5 awaiting an answer, waiting 5.0 s for 429 Retry-After"); a
total deadline (a default one when none is set: :func:`delivery_deadline`), a run of refused
connections (a webhook that is down) and a run of requests that got no answer in time (a webhook
that accepts connections and never answers) stop it early instead of retrying for an hour. Records
not sent then become failed results saying why, so the verdict and the store stay whole.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from bonzo_bulk._http import RetryPolicy, TransientError
from bonzo_bulk.config.schema import WebhookSettings

STATUS_EVERY = 10.0
"""Seconds between status lines while a delivery runs (a delivery quicker than this prints none); also the most a
long command stays silent in a pipe (:class:`bonzo_bulk.cli.terminal.LoggedProgress`)."""
PROGRESS_LOG = "bonzo_bulk.progress"
"""The logger of progress lines, at INFO: shown in pipes and CI logs, where there are no progress bars."""
MIN_DEFAULT_DEADLINE = 300.0
"""The default delivery deadline is never shorter than this (seconds)."""


@dataclass(frozen=True, slots=True)
class Deadline:
    """How long a delivery may take, and whether the config chose it."""

    seconds: float
    chosen: bool

    def describe(self) -> str:
        """``the delivery deadline (300 s, default; webhook_settings.deadline sets it)``."""
        how = "webhook_settings.deadline" if self.chosen else "default; webhook_settings.deadline sets it"
        return f"the delivery deadline ({self.seconds:g} s, {how})"


def delivery_deadline(settings: WebhookSettings, total: int) -> Deadline:
    """The configured deadline, else the time ``total`` records take when each is answered within its timeout
    on the first try (rounds of ``concurrent_requests``, or the pace of ``rate_limit``), and at least
    :data:`MIN_DEFAULT_DEADLINE`: a healthy delivery never meets it, a hook that never answers always does."""
    if settings.deadline is not None:
        return Deadline(settings.deadline, chosen=True)
    rounds = math.ceil(total / settings.concurrent_requests) * settings.timeout
    paced = total / settings.rate_limit + settings.timeout if settings.rate_limit else 0.0
    return Deadline(max(MIN_DEFAULT_DEADLINE, rounds, paced), chosen=False)


@dataclass(frozen=True, slots=True)
class WatchedPolicy(RetryPolicy):
    """A :class:`RetryPolicy` that tells the watch each wait it decides on."""

    on_wait: Callable[[float, TransientError], None] | None = None

    def delay(self, retry_number: int, failure: TransientError) -> float:
        """The policy's wait, reported before it is slept."""
        seconds = RetryPolicy.delay(self, retry_number, failure)
        if self.on_wait is not None:
            self.on_wait(seconds, failure)
        return seconds


def _reason(failure: TransientError) -> str:
    if failure.category == "http_429":
        return "429 Retry-After" if failure.retry_after is not None else "429 (no Retry-After)"
    return {"http_5xx": "a 5xx answer", "connect": "a refused connection", "timeout": "a timeout"}.get(
        failure.category, "a reset connection"
    )


class DeliveryWatch:
    """Counts what a delivery did, prints its status periodically and decides when it must stop."""

    def __init__(
        self,
        total: int,
        *,
        deadline: Deadline | None,
        refusal_limit: int,
        timeout_limit: int | None = None,
        on_status: Callable[[str], None] | None,
        every: float = STATUS_EVERY,
        in_flight: Callable[[], int] | None = None,
    ) -> None:
        self.total = total
        self.deadline = deadline
        self.refusal_limit = refusal_limit
        self.timeout_limit = timeout_limit
        self.on_status = on_status
        self.every = every
        self.in_flight = in_flight
        """How many requests await an answer right now (for the status line)."""
        self.done = 0
        self.retrying = 0
        self.refusals_in_a_row = 0
        self.timeouts_in_a_row = 0
        self.stop_reason: str | None = None
        self.stop_category = "connect"
        """The error category of the records not sent because of the stop (``timeout`` for a deadline or timeouts)."""
        self.stopped = asyncio.Event()
        self._wait: tuple[float, str, float] | None = None

    @classmethod
    def of(
        cls,
        settings: WebhookSettings,
        total: int,
        *,
        on_status: Callable[[str], None] | None,
        every: float = STATUS_EVERY,
        in_flight: Callable[[], int] | None = None,
    ) -> DeliveryWatch:
        """The watch of a delivery of ``total`` records under ``settings``: its deadline and the runs that stop it."""
        return cls(
            total,
            deadline=delivery_deadline(settings, total),
            refusal_limit=settings.give_up_after_refusals,
            timeout_limit=settings.give_up_after_timeouts,
            on_status=on_status,
            every=every,
            in_flight=in_flight,
        )

    def finished(self) -> None:
        """One record is done (accepted or failed for good)."""
        self.done += 1

    def attempt(self, category: str | None, status: int | None) -> None:
        """One POST ended: an HTTP answer resets the counts, a refused connection or a timeout adds to its own."""
        if status is not None:
            self.refusals_in_a_row = 0
            self.timeouts_in_a_row = 0
        elif category == "connect":
            self.refusals_in_a_row += 1
            if self.refusals_in_a_row >= self.refusal_limit:
                self.stop(
                    f"the webhook refused {self.refusals_in_a_row} connections in a row without answering once "
                    "(webhook_settings.give_up_after_refusals); is it down?"
                )
        elif category == "timeout":
            self.timeouts_in_a_row += 1
            if self.timeout_limit is not None and self.timeouts_in_a_row >= self.timeout_limit:
                self.stop(
                    f"{self.timeouts_in_a_row} requests in a row got no answer within their timeout "
                    "(webhook_settings.give_up_after_timeouts); the webhook accepts connections but does not answer",
                    category="timeout",
                )

    def waiting(self, seconds: float, failure: TransientError) -> None:
        """A retry waits ``seconds`` after ``failure`` (shown in the next status line)."""
        self._wait = (seconds, _reason(failure), time.monotonic())

    def stop(self, reason: str, *, category: str = "connect") -> None:
        """Stop sending: no new record starts, retries end now."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self.stop_category = category
            self.stopped.set()

    def status(self) -> str:
        """``delivery: 140/400 sent, 3 retrying, waiting 5.0 s for 429 Retry-After``."""
        line = f"delivery: {self.done}/{self.total} sent"
        if self.retrying:
            line += f", {self.retrying} retrying"
        awaiting = self.in_flight() if self.in_flight is not None else 0
        if awaiting:
            line += f", {awaiting} awaiting an answer"
        if self._wait is not None:
            seconds, reason, since = self._wait
            left = seconds - (time.monotonic() - since)
            if left > 0:
                line += f", waiting {left:.1f} s for {reason}"
        return line

    async def run(self) -> None:
        """Until cancelled: a status line every ``every`` seconds; stop at the deadline."""
        started = time.monotonic()
        next_status = started + self.every
        limit = self.deadline.seconds if self.deadline is not None else None
        while True:
            now = time.monotonic()
            if self.deadline is not None and limit is not None and now - started >= limit:
                self.stop(f"{self.deadline.describe()} passed", category="timeout")
            if now >= next_status:
                if self.on_status is not None:
                    self.on_status(self.status())
                next_status = now + self.every
            wake = next_status if limit is None else min(next_status, started + limit)
            await asyncio.sleep(max(0.01, min(wake - now, 1.0)))
