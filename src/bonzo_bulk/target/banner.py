"""The one line that says where a run goes: the local sandbox (loudly), or live."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the pytest plugin prints the banner and may not load the models at start-up
    from bonzo_bulk.models import Target


def target_banner(target: Target, where: str | None = None, *, automatic: bool = False) -> str:
    """Where a command sends, e.g. ``Target: the local SANDBOX at http://127.0.0.1:8765 — nothing is sent to
    Bonzo``; ``where`` is printable (the sandbox's URL, or the live API's, redacted), or None when not known;
    ``automatic`` says the sandbox was chosen because the live settings are missing, and names them.

    >>> target_banner("live", "https://api.example.test")
    'Target: LIVE — API https://api.example.test'
    >>> target_banner("sandbox", automatic=True)
    'Target: the local SANDBOX — TEST_HOOK_URL / SUPERUSER_API_KEY are not set, so nothing is sent to Bonzo'
    """
    if target == "sandbox":
        at = f" at {where}" if where else ""
        why = "TEST_HOOK_URL / SUPERUSER_API_KEY are not set, so " if automatic else ""
        return f"Target: the local SANDBOX{at} — {why}nothing is sent to Bonzo"
    return f"Target: LIVE — API {where}" if where else "Target: LIVE — the real webhook and Bonzo API"
