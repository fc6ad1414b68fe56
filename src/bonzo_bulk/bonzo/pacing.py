"""Pacing API calls under Bonzo's rate limit instead of running into 429s.

Bonzo documents no rate limit (``docs/bonzo-api.md`` §1), so the pace is learned: a configured
``max_requests_per_minute``, an ``X-RateLimit-Limit`` header when one arrives (read as per minute,
Laravel's default window), and every 429 without such a header halving the pace. Requests start at
least ``interval`` seconds apart; with no limit known they are not held at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

MIN_INTERVAL_AFTER_429 = 0.05
"""Seconds between request starts after the first 429 that came with no limit header."""
HEADROOM = 1.1
"""Stay this factor under a learned limit."""


class Pacer:
    """Spaces request starts ``interval`` seconds apart; learns the interval from answers."""

    def __init__(self, per_minute: float | None = None) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self.waited = 0.0
        """Seconds spent held back by the pace."""

    async def wait(self) -> None:
        """Hold the caller until its slot comes."""
        if self.interval <= 0:
            return
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            self.waited += slot - now
            await asyncio.sleep(slot - now)

    def learn(self, status: int, headers: Mapping[str, str]) -> None:
        """Slow down to a limit the answer states, or after a 429 that states none."""
        limit = headers.get("X-RateLimit-Limit")
        try:
            per_minute = float(limit) if limit else None
        except ValueError:
            per_minute = None
        if per_minute and per_minute > 0:
            self.interval = max(self.interval, 60.0 * HEADROOM / per_minute)
        elif status == 429:
            self.interval = max(self.interval * 2, MIN_INTERVAL_AFTER_429)
