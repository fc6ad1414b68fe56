"""The sandbox's clock as a variant of Bonzo may keep it: stamps in a zone, naive or with an offset, cut to whole
seconds, on a clock that runs ahead; ``Date`` headers on the same clock; and the ground truth of when each
prospect was really created (``GET /__sandbox/created``), which the variants never change.

What is stored is always the true UTC instant with microseconds; only what is shown changes
(``sandbox.clock``, :class:`~bonzo_bulk.config.sandbox_clock.SandboxClock`).
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta
from email.utils import formatdate
from typing import Any

from fastapi import APIRouter, Request

from bonzo_bulk.config.contract import CreatedAtPin
from bonzo_bulk.config.sandbox_clock import SandboxClock

router = APIRouter(prefix="/__sandbox", tags=["sandbox only (not Bonzo)"])


def shown_stamp(stored: str, clock: SandboxClock, *, whole_seconds: bool = False) -> str:
    """A stored ``...Z`` stamp as this sandbox's Bonzo shows it (``whole_seconds``: strict mode's resolution)."""
    if clock.plain and not whole_seconds:
        return stored
    instant = datetime.fromisoformat(stored.replace("Z", "+00:00")) + timedelta(seconds=clock.offset_seconds)
    if clock.whole_seconds or whole_seconds:
        instant = instant.replace(microsecond=0)
    if clock.zone is None:
        return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    local = instant.astimezone(CreatedAtPin(zone=clock.zone).tz)
    if not clock.naive:
        return local.isoformat(timespec="microseconds")
    if clock.whole_seconds or whole_seconds:
        return local.strftime("%Y-%m-%d %H:%M:%S")  # Laravel's toDateTimeString(): naive, in the app's zone
    return local.replace(tzinfo=None).isoformat(timespec="microseconds")


_DATE_KEPT: list[tuple[int, tuple[bytes, bytes]]] = [(-1, (b"date", b""))]
"""The last ``Date`` header made and the whole second it is for (``Date`` has whole seconds: one per second)."""


def date_header(clock: SandboxClock) -> tuple[bytes, bytes]:
    """The ``Date`` header of an answer, on the sandbox's (possibly fast) clock; made once per whole second
    (at 1,000 answers a second, formatting each cost about 2 % of the sandbox's intake CPU)."""
    second = math.floor(time.time() + clock.offset_seconds)
    kept_second, kept = _DATE_KEPT[0]
    if second != kept_second:
        kept = (b"date", formatdate(second, usegmt=True).encode())
        _DATE_KEPT[0] = (second, kept)
    return kept


@router.get("/created", summary="Ground truth: when each prospect was really created (true UTC, microseconds)")
async def created(request: Request) -> dict[str, Any]:
    state = request.app.sandbox
    rows = await state.run(state.db.created_stamps)
    return {"prospects": [{"id": i, "email": e, "first_name": n, "created_at": c} for i, e, n, c in rows]}
