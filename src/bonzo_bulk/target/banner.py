"""The one line that says where a run goes: the local sandbox (loudly), or live."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the pytest plugin prints the banner and may not load the models at start-up
    from bonzo_bulk.models import Target


def target_banner(target: Target, where: str | None = None) -> str:
    """Where a command sends, e.g. ``Target: the local SANDBOX at http://127.0.0.1:8765 — nothing is sent to
    Bonzo``; ``where`` is printable (the sandbox's URL, or the live API's, redacted), or None when not known.

    >>> target_banner("live", "https://api.example.test")
    'Target: LIVE — API https://api.example.test'
    """
    if target == "sandbox":
        at = f" at {where}" if where else ""
        return f"Target: the local SANDBOX{at} — nothing is sent to Bonzo"
    return f"Target: LIVE — API {where}" if where else "Target: LIVE — the real webhook and Bonzo API"
