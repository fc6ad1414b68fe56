"""The offset between this machine's clock and Bonzo's, bounded from the API's ``Date`` headers.

A ``Date`` header names a whole second on the server's clock, stamped somewhere between the moment
the request left and the moment the answer arrived — and servers cache it (uvicorn refreshes it
about once a second), so it may be up to :data:`DATE_STALENESS` old. Each answer therefore bounds
the offset (``server - local``) to ``[date - received, date + 1 + staleness - sent]``; intersecting
the bounds of many answers narrows it. When the bounds contradict each other (a clock that
jumped, a proxy that rewrites ``Date``), the estimate says it cannot be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime

DATE_STALENESS = 1.0
"""Seconds a server's cached ``Date`` header may lag its clock."""
MAX_TRUSTED_WIDTH = 2.5
"""Seconds: a wider offset interval is too loose to correct ``created_at`` with."""


@dataclass(frozen=True, slots=True)
class ClockOffset:
    """What is known of ``server clock - local clock``, in seconds."""

    low: float | None = None
    high: float | None = None
    samples: int = 0
    contradicted: bool = False

    @property
    def known(self) -> bool:
        return self.low is not None and self.high is not None and not self.contradicted

    @property
    def offset(self) -> float:
        """The correction to apply: 0 while the bounds allow synchronised clocks (NTP keeps most machines
        within milliseconds, and a cached ``Date`` makes the midpoint lean late), else the midpoint."""
        if self.low is None or self.high is None or self.low <= 0.0 <= self.high:
            return 0.0
        return (self.low + self.high) / 2

    @property
    def uncertainty(self) -> float:
        """Half the width of the interval the offset lies in (infinite when unknown)."""
        if self.low is None or self.high is None:
            return float("inf")
        return max(0.0, (self.high - self.low) / 2)

    @property
    def trusted(self) -> bool:
        return self.known and 2 * self.uncertainty <= MAX_TRUSTED_WIDTH

    def describe(self) -> str:
        if self.contradicted:
            return f"not trusted: the API's Date headers contradict each other over {self.samples} answers"
        if not self.known:
            return "unknown: the API sent no Date header"
        verdict = "" if self.trusted else f" — too loose to trust (> {MAX_TRUSTED_WIDTH:g} s)"
        if self.offset == 0.0:
            return (
                f"none measurable: within [{self.low:+.3f}, {self.high:+.3f}] s from {self.samples} Date headers"
                f"{verdict}"
            )
        return f"{self.offset:+.3f} s ± {self.uncertainty:.3f} s from {self.samples} Date headers{verdict}"


class ClockTracker:
    """Accumulates the bounds from each answer's ``Date`` header and local send/receive times."""

    def __init__(self) -> None:
        self._state = ClockOffset()

    def observe(self, date_header: str | None, sent: float, received: float) -> None:
        """Narrow the offset with one answer (epoch seconds on the local clock)."""
        if not date_header:
            return
        try:
            server = parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError, IndexError):
            return
        low, high = server - received, server + 1.0 + DATE_STALENESS - sent
        state = self._state
        new_low = low if state.low is None else max(state.low, low)
        new_high = high if state.high is None else min(state.high, high)
        contradicted = state.contradicted or new_low > new_high
        if contradicted:
            new_low, new_high = min(new_low, new_high), max(new_low, new_high)
        self._state = ClockOffset(new_low, new_high, state.samples + 1, contradicted)

    @property
    def estimate(self) -> ClockOffset:
        return self._state
