"""How a finished run changes the stored problems, and the subscriber that does it when a run is done.

Each signature the run shows is a problem: **new** the first time, **known** after that, **escalated**
when its share of records reaches ``monitor.problems.escalate_share``, **reopened** when it was
resolved. A problem of a phase the run judged that the run does not show ran clean; after
``monitor.problems.resolve_after`` clean runs in a row it is **resolved**. The whole change is one
transaction of the run store, with the integration and target's problems locked, so two monitors
sharing a store never open the same problem twice.

Example::

    tracker = ProblemTracker("reports/runs.sqlite3", config.monitor.problems)
    run.subscribe(tracker)      # by a front door, before publishing; never by the engine
    ...
    tracker.found.new           # the problems this run opened or reopened
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from bonzo_bulk.config.monitor import ProblemSettings
from bonzo_bulk.config.store_location import StoreLocation
from bonzo_bulk.engine.events import Event, RunDone
from bonzo_bulk.errors import BonzoBulkError
from bonzo_bulk.models import CheckResult, PhaseKind, PhaseResult, RunResult
from bonzo_bulk.problems.signature import PhaseKeys, Sighting, sightings
from bonzo_bulk.problems.state import State, state_of
from bonzo_bulk.secrets import redact
from bonzo_bulk.store import RunStore
from bonzo_bulk.store.rows import ProblemChanges, ProblemEvent, ProblemRow, ProblemSeen

log = logging.getLogger("bonzo_bulk")

Change = Literal["new", "reopened", "escalated", "known", "resolved"]
"""What one run did to a problem."""


@dataclass(frozen=True, slots=True)
class Tracked:
    """One problem after a run, what the run did to it and, unless it was resolved, what the run showed."""

    problem: ProblemRow
    change: Change
    sighting: Sighting | None
    state: State
    """Its state as people see it, when the run was tracked."""

    @property
    def is_new(self) -> bool:
        """Opened or reopened by this run: a problem nobody knows about yet."""
        return self.change in ("new", "reopened")

    @property
    def label(self) -> str:
        """``new problem 3f2a…`` / ``known problem 3f2a… (acknowledged)`` for each failure in a report."""
        if self.is_new:
            return f"{self.change} problem {self.problem.problem_id}"
        state = "" if self.state in ("open", "reopened") else f" ({self.state})"
        return f"known problem {self.problem.problem_id}{state}"


@dataclass(frozen=True, slots=True)
class RunProblems:
    """The problems one run showed, and those it resolved."""

    run_id: str
    at: datetime
    problems: tuple[Tracked, ...]
    keys: dict[PhaseKind, PhaseKeys]
    """How each phase's failed checks map to signatures (for :meth:`for_check`)."""

    @property
    def seen(self) -> list[Tracked]:
        return [t for t in self.problems if t.sighting is not None]

    @property
    def new(self) -> list[Tracked]:
        return [t for t in self.problems if t.is_new]

    @property
    def resolved(self) -> list[Tracked]:
        return [t for t in self.problems if t.change == "resolved"]

    @property
    def headline(self) -> str:
        """``Problems: 1 new, 2 known`` (new counts reopened ones: nobody is working on them)."""
        return f"Problems: {len(self.new)} new, {len(self.seen) - len(self.new)} known"

    @property
    def ordered(self) -> list[Tracked]:
        """The order every report lists them in: new and reopened first, then known, then resolved."""
        return sorted(self.problems, key=lambda t: (not t.is_new, t.change == "resolved"))

    def for_check(self, phase: PhaseKind, check: CheckResult) -> Tracked | None:
        """The problem one failed check of ``phase`` belongs to."""
        return self.of(phase, check.check, check.actual)

    def label(self, phase: PhaseKind, check: str, actual: object) -> str:
        """What a report says of one failed check: ``new problem 3f2a9c01d4``, ``known problem … (acknowledged)``,
        or nothing when it belongs to no tracked problem."""
        tracked = self.of(phase, check, actual)
        return tracked.label if tracked is not None else ""

    def of(self, phase: PhaseKind, check: str, actual: object) -> Tracked | None:
        """The problem a failed check (its name and actual value) of ``phase`` belongs to."""
        keys = self.keys.get(phase)
        if keys is None:
            return None
        name, cause = keys.key(check, actual)
        for tracked in self.seen:
            signature = tracked.sighting.signature if tracked.sighting else None
            if signature and (signature.phase, signature.check, signature.cause) == (phase, name, cause):
                return tracked
        return None


def track(
    existing: Sequence[ProblemRow], result: RunResult, settings: ProblemSettings, now: datetime
) -> tuple[ProblemChanges, list[Tracked]]:
    """The rows one run changes and what it did to each problem (pure: the store applies the changes)."""
    found = sightings(result, samples=settings.sample_records)
    by_id = {p.problem_id: p for p in existing}
    rows: list[ProblemRow] = []
    events: list[ProblemEvent] = []
    tracked: list[Tracked] = []
    for sighting in found:
        old = by_id.get(sighting.signature.problem_id)
        row, change = _seen(old, sighting, result.run_id, settings, now)
        rows.append(row)
        tracked.append(Tracked(row, change, sighting, state_of(row, now)))
        if change != "known":
            what = f"{sighting.failed} of {sighting.judged} records in run {result.run_id}"
            events.append(ProblemEvent(row.problem_id, now, "opened" if change == "new" else change, "run", what))
    shown = {s.signature.problem_id for s in found}
    phases: dict[str, PhaseResult] = {p.kind: p for p in result.phases}
    for old in existing:
        if old.problem_id in shown or old.status == "resolved" or old.last_run_id == result.run_id:
            continue
        if not _ran_clean(old, phases.get(old.phase)):
            continue
        row = dataclasses.replace(old, clean_runs=old.clean_runs + 1)
        if row.clean_runs >= settings.resolve_after:
            row = dataclasses.replace(row, status="resolved", resolved_at=now, resolved_by="clean runs")
            tracked.append(Tracked(row, "resolved", None, "resolved"))
            why = f"ran clean in {row.clean_runs} run(s) in a row, the last {result.run_id}"
            events.append(ProblemEvent(row.problem_id, now, "resolved", "run", why))
        rows.append(row)
    seen_rows = tuple(
        ProblemSeen(s.signature.problem_id, result.run_id, now, s.failed, s.judged, s.samples) for s in found
    )
    return ProblemChanges(tuple(rows), seen_rows, tuple(events)), tracked


def _ran_clean(problem: ProblemRow, phase: PhaseResult | None) -> bool:
    """Whether a run that did not show the problem ran its check at all: its phase ran and judged the check on
    at least one record (a hook that delivered nothing judges no owner, so it resolves no misroute)."""
    if phase is None:
        return False
    return not phase.judged or phase.judged.get(problem.check, 0) > 0


def _seen(
    old: ProblemRow | None, sighting: Sighting, run_id: str, settings: ProblemSettings, now: datetime
) -> tuple[ProblemRow, Change]:
    signature = sighting.signature
    wide = sighting.share >= settings.escalate_share
    if old is None:
        row = ProblemRow(
            problem_id=signature.problem_id,
            integration=signature.integration,
            target=signature.target,
            phase=signature.phase,
            check=signature.check,
            cause=signature.cause,
            title=signature.title,
            status="open",
            first_seen_at=now,
            last_seen_at=now,
            first_run_id=run_id,
            last_run_id=run_id,
            runs=1,
            records_affected=sighting.failed,
            last_failed=sighting.failed,
            last_judged=sighting.judged,
            peak_share=sighting.share,
            clean_runs=0,
            escalated=wide,
            fix=sighting.fix,
            detail=sighting.detail,
        )
        return row, "new"
    if old.last_run_id == run_id:  # the same run tracked twice: nothing new happened
        return old, "known"
    change: Change = "known"
    row = dataclasses.replace(
        old,
        last_seen_at=now,
        last_run_id=run_id,
        runs=old.runs + 1,
        records_affected=old.records_affected + sighting.failed,
        last_failed=sighting.failed,
        last_judged=sighting.judged,
        peak_share=max(old.peak_share, sighting.share),
        clean_runs=0,
        fix=sighting.fix or old.fix,
        detail=sighting.detail,
        runs_since_notice=old.runs_since_notice + 1,
    )
    if old.status == "resolved":
        change = "reopened"
        row = dataclasses.replace(
            row,
            status="reopened",
            resolved_at=None,
            resolved_by=None,
            ack_by=None,
            ack_note=None,
            ack_at=None,
            ack_until=None,
            escalated=wide,
            runs_since_notice=0,
            reminders_sent=0,
        )
    elif wide and not old.escalated:
        change = "escalated"
        row = dataclasses.replace(row, escalated=True)
    return row, change


def recorded(store: RunStore, result: RunResult, now: datetime) -> RunProblems:
    """The problems a stored run showed, as they stand now (``report RUN``): new where that run opened them,
    else known; with what the run showed of each."""
    shown = {s.signature.problem_id: s for s in sightings(result)}
    tracked = tuple(
        Tracked(p, "new" if p.first_run_id == result.run_id else "known", shown.get(p.problem_id), state_of(p, now))
        for p in store.problems_of_run(result.run_id)
    )
    return RunProblems(result.run_id, now, tracked, {phase.kind: PhaseKeys.of(phase) for phase in result.phases})


class ProblemTracker:
    """Tracks a finished run's problems in the run store, as a subscriber of the run (``RunDone``).

    The front doors and ``library.py`` subscribe it, before publishing, so reports can say of each
    failure whether it is a new or a known problem. A store that cannot be written is logged and
    kept in :attr:`error`: the run's verdict stands without it.
    """

    def __init__(
        self,
        location: str | Path | StoreLocation,
        settings: ProblemSettings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.location = location
        self.settings = settings
        self.clock = clock
        self.found: RunProblems | None = None
        """The run's problems, once it is done and tracked."""
        self.error: str | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunDone) and not event.result.dry_run:
            self.track(event.result)

    def track(self, result: RunResult) -> RunProblems | None:
        """Track ``result`` now (what the subscription does)."""
        now = self.clock()
        tracked: list[Tracked] = []

        def change(existing: list[ProblemRow]) -> ProblemChanges:
            changes, found = track(existing, result, self.settings, now)
            tracked[:] = found
            return changes

        try:
            with RunStore(self.location) as store:
                store.update_problems(result.integration, result.target, change)
        except BonzoBulkError as exc:
            self.error = redact(str(exc))
            log.warning("problems of run %s not tracked: %s", result.run_id, self.error)
            return None
        keys = {phase.kind: PhaseKeys.of(phase) for phase in result.phases}
        self.found = RunProblems(result.run_id, now, tuple(tracked), keys)
        for item in self.found.problems:
            if item.change != "known":
                log.info("problem %s %s: %s", item.problem.problem_id, item.change, item.problem.title)
        return self.found
