"""A run that sent records but could not be judged to the end: its verdict from what it knows.

When the run store fails for good (it did not come back within :data:`STORE_RETURN_SECONDS` of settling, or
failed while the records were judged), or Bonzo's API fails while settling in a way the poller cannot ride out,
the run still ends with a verdict: what it sent and saw (the settle index is a private file of its own, not the
run store), every record it could not check named as *unverified* (never "not created"), a note on the run (in
the store, else in its journal), and the exact cleanup command. The last line is the one
:class:`~bonzo_bulk.judge.verdict.RunVerdict` words every verdict with.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bonzo_bulk.engine.context import RunContext
from bonzo_bulk.engine.interrupts import cleanup_command
from bonzo_bulk.errors import BonzoBulkError, RunUnfinished, StoreError
from bonzo_bulk.judge.verdict import RunVerdict
from bonzo_bulk.secrets import redact
from bonzo_bulk.settle.index import SettleIndex
from bonzo_bulk.store import RunStore

log = logging.getLogger("bonzo_bulk")

STORE_RETURN_SECONDS = 20.0
"""How long a run whose store is failing waits for it after settling, before it is judged from memory."""
NAMED = 20
"""Unverified records named in the message (the rest counted)."""


async def store_back(store: RunStore, seconds: float | None = None) -> bool:
    """Wait (bounded: ``seconds``, else :data:`STORE_RETURN_SECONDS`) for a failing store to take what waits in
    the journal; whether it did."""
    if not (store.failing or store.journal_pending):
        return True
    seconds = STORE_RETURN_SECONDS if seconds is None else seconds
    give_up = time.monotonic() + seconds
    log.warning(
        "the run store %s is failing: waiting up to %.0f s for it before judging (the run's writes are in %s)",
        store.label,
        seconds,
        store.journal,
    )
    while not store.replay_journal():
        if time.monotonic() >= give_up:
            return False
        await asyncio.sleep(0.25)
    return True


def unfinished(run: RunContext, index: SettleIndex, error: BonzoBulkError, stage: str) -> RunUnfinished:
    """The run's verdict from what it knows when ``error`` stopped it at ``stage`` (settling or judging); the run
    is marked in the store (or its journal)."""
    plan, store = run.plan, run.store
    sent, expected, seen = index.sent(), index.expected(), index.found_count()
    names = index.sent_names(NAMED)
    why = "the run store failed" if isinstance(error, StoreError) else "Bonzo's API failed"
    reason = f"{why} while {stage}"
    note = f"failed: could not be judged ({reason}): {sent} record(s) unverified"
    store.note_run(plan.run_id, note)
    marked = (
        f"marked failed in its journal {store.journal} (replayed into the store by `bonzo-bulk cleanup --run` or "
        "`bonzo-bulk report --run` once it answers)"
        if store.journal_pending
        else f"marked failed in the run store {store.label}"
    )
    more = f" (and {sent - len(names)} more)" if sent > len(names) else ""
    verdict = RunVerdict(thresholds_passed=False, unverified=sent, unverified_reason=reason)
    where = run.destination.target
    return RunUnfinished(
        f"run {plan.run_id} could not be judged: {redact(str(error))}\n"
        f"  what it knows: {sent} record(s) sent; {seen} of the {expected} prospect(s) expected were seen in Bonzo "
        "while settling\n"
        f"  unverified ({sent}: no check was made, whether each was created is unknown): {', '.join(names)}{more}\n"
        f"  the run is {marked}\n"
        f"  remove what it sent with: {cleanup_command(plan.loaded, plan.run_id)}\n"
        f"Run {plan.run_id} ({where}): {verdict.label} (exit {verdict.exit_code})",
        run_id=plan.run_id,
    )
