"""A delivery that shows its waiting and knows when to stop.

While records are sent, a status line every few seconds says how far it got and what it waits for
("delivery: 140/400 sent, 3 retrying, waiting 5.0 s for 429 Retry-After"); a total deadline and a
run of refused connections (a webhook that is down) stop it early instead of retrying for an hour.
Records not sent then become failed results saying why, so the verdict and the store stay whole.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from bonzo_bulk._http import RetryPolicy, TransientError

STATUS_EVERY = 10.0
"""Seconds between status lines while a delivery runs (a delivery quicker than this prints none); also the most a
long command stays silent in a pipe (:class:`bonzo_bulk.cli.terminal.LoggedProgress`)."""
PROGRESS_LOG = "bonzo_bulk.progress"
"""The logger of progress lines, at INFO: shown in pipes and CI logs, where there are no progress bars."""


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
        deadline: float | None,
        refusal_limit: int,
        on_status: Callable[[str], None] | None,
        every: float = STATUS_EVERY,
    ) -> None:
        self.total = total
        self.deadline = deadline
        self.refusal_limit = refusal_limit
        self.on_status = on_status
        self.every = every
        self.done = 0
        self.retrying = 0
        self.refusals_in_a_row = 0
        self.stop_reason: str | None = None
        self.stopped = asyncio.Event()
        self._wait: tuple[float, str, float] | None = None

    def finished(self) -> None:
        """One record is done (accepted or failed for good)."""
        self.done += 1

    def attempt(self, category: str | None, status: int | None) -> None:
        """One POST ended: an HTTP answer resets the refusal count, a refused connection adds to it."""
        if status is not None:
            self.refusals_in_a_row = 0
        elif category == "connect":
            self.refusals_in_a_row += 1
            if self.refusals_in_a_row >= self.refusal_limit:
                self.stop(
                    f"the webhook refused {self.refusals_in_a_row} connections in a row without answering once "
                    "(webhook_settings.give_up_after_refusals); is it down?"
                )

    def waiting(self, seconds: float, failure: TransientError) -> None:
        """A retry waits ``seconds`` after ``failure`` (shown in the next status line)."""
        self._wait = (seconds, _reason(failure), time.monotonic())

    def stop(self, reason: str) -> None:
        """Stop sending: no new record starts, retries end now."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self.stopped.set()

    def status(self) -> str:
        """``delivery: 140/400 sent, 3 retrying, waiting 5.0 s for 429 Retry-After``."""
        line = f"delivery: {self.done}/{self.total} sent"
        if self.retrying:
            line += f", {self.retrying} retrying"
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
        while True:
            now = time.monotonic()
            if self.deadline is not None and now - started >= self.deadline:
                self.stop(f"the delivery deadline ({self.deadline:g} s, webhook_settings.deadline) passed")
            if now >= next_status:
                if self.on_status is not None:
                    self.on_status(self.status())
                next_status = now + self.every
            wake = next_status if self.deadline is None else min(next_status, started + self.deadline)
            await asyncio.sleep(max(0.01, min(wake - now, 1.0)))
