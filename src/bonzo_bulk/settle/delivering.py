"""Delivery going on while settling polls: when it ends, and so when settling's deadline starts.

A judged run polls Bonzo from its first delivery, so a big run's lists are read as they grow instead of
all at once after the last record; the deadline still counts from the last delivery (``polling.deadline``:
"seconds after the last delivery"). The sender calls :meth:`Delivering.end` after its last record.

Example::

    delivering = Delivering()
    settling = asyncio.create_task(policy.settle(client, index, users=users, delivering=delivering))
    await send_everything()
    delivering.end()
    outcome = await settling
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time


class Delivering:
    """Whether records are still being sent, and when the last one went (``time.monotonic()``)."""

    def __init__(self, *, ended: bool = False) -> None:
        self._ended = asyncio.Event()
        self.ended_at: float | None = None
        if ended:
            self.end()

    @classmethod
    def over(cls) -> Delivering:
        """Delivery that ended now (settling after every record was sent)."""
        return cls(ended=True)

    def end(self) -> None:
        """The last record has been delivered (once; later calls change nothing)."""
        if self.ended_at is None:
            self.ended_at = time.monotonic()
            self._ended.set()

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def deadline(self, seconds: float) -> float:
        """The ``time.monotonic()`` instant ``seconds`` after the last delivery (infinity while delivering)."""
        return math.inf if self.ended_at is None else self.ended_at + seconds

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less when delivery ends meanwhile."""
        if self.ended:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ended.wait(), seconds)
