"""What each page shows, read from the run store: the JSON behind ``/``, ``/runs/{id}`` and ``/live``.

Every figure is the store's (run summaries, the ledger's outcomes, the progress rows); nothing here judges.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bonzo_bulk.models import PhaseKind
from bonzo_bulk.problems.state import State, state_of
from bonzo_bulk.report.rows import FailureRow, phase_rows
from bonzo_bulk.store import RunStore, RunSummary
from bonzo_bulk.store.progress import RunProgress
from bonzo_bulk.store.rows import ProblemRow

TREND_RUNS = 30
"""Runs per integration and target the index's trends and pass rate cover."""
STALE_FACTOR = 2.0
"""A group is stale when its last run is older than this many times its usual gap between runs."""
MIN_RUNS_FOR_SCHEDULE = 3
LIVE_WINDOW = timedelta(minutes=10)
"""Runs whose progress was written this recently are on ``/live`` (finished ones linger, then leave)."""
STALLED_AFTER = timedelta(seconds=30)
"""A run in flight that wrote no progress for this long is marked stalled (its process may be gone)."""
PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One run on a trend line."""

    run_id: str
    started_at: datetime
    passed: bool | None
    p95_processing_ms: float | None


@dataclass(frozen=True, slots=True)
class OpenProblem:
    """A problem not resolved (open, reopened, acknowledged or muted), as the index lists it."""

    problem_id: str
    title: str
    state: State
    cause: str
    runs: int
    """Runs it appeared in."""
    records_affected: int
    last_seen_at: datetime
    last_run_id: str
    """The latest run it appeared in (the index links to it)."""
    escalated: bool


@dataclass(frozen=True, slots=True)
class GroupHealth:
    """One integration on one target: its latest verdict, how old it is, and its trends."""

    integration: str
    target: str
    latest_run_id: str
    verdict: str
    """``passed``, ``failed`` or ``unfinished`` (running, or interrupted)."""
    last_run_at: datetime
    age_seconds: float
    expected_interval_seconds: float | None
    """The usual gap between its runs (the median of the recent gaps), when there are enough runs to say."""
    stale: bool
    pass_rate: float | None
    """Share of its recent finished runs that passed."""
    finished_runs: int
    trend: tuple[TrendPoint, ...]
    """Oldest first."""
    problems: tuple[OpenProblem, ...] = ()
    """Its problems not resolved (``bonzo-bulk problems`` lists the same), the most recently seen first."""


def _when(summary: RunSummary) -> datetime:
    moment = summary.finished_at or summary.started_at
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def group_health(runs: Sequence[RunSummary], now: datetime) -> GroupHealth:
    """The health of one group from its recent runs (newest first)."""
    latest = runs[0]
    finished = [r for r in runs if r.passed is not None]
    starts = sorted(r.started_at for r in runs)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    interval = statistics.median(gaps) if len(runs) >= MIN_RUNS_FOR_SCHEDULE and gaps else None
    age = max(0.0, (now - _when(latest)).total_seconds())
    verdict = "unfinished" if latest.passed is None else "passed" if latest.passed else "failed"
    return GroupHealth(
        integration=latest.integration,
        target=latest.target,
        latest_run_id=latest.run_id,
        verdict=verdict,
        last_run_at=_when(latest),
        age_seconds=age,
        expected_interval_seconds=interval,
        stale=bool(interval) and age > STALE_FACTOR * (interval or 0.0),
        pass_rate=sum(1 for r in finished if r.passed) / len(finished) if finished else None,
        finished_runs=len(finished),
        trend=tuple(
            TrendPoint(r.run_id, r.started_at, r.passed, r.p95_processing_ms)
            for r in sorted(runs, key=lambda r: r.started_at)
        ),
    )


def open_problems(rows: Sequence[ProblemRow], now: datetime) -> dict[tuple[str, str], tuple[OpenProblem, ...]]:
    """The problems not resolved, by integration and target, in the order given (the most recently seen first)."""
    found: dict[tuple[str, str], list[OpenProblem]] = {}
    for row in rows:
        state = state_of(row, now)
        if state == "resolved":
            continue
        problem = OpenProblem(
            problem_id=row.problem_id,
            title=row.title,
            state=state,
            cause=row.cause,
            runs=row.runs,
            records_affected=row.records_affected,
            last_seen_at=row.last_seen_at,
            last_run_id=row.last_run_id,
            escalated=row.escalated,
        )
        found.setdefault((row.integration, row.target), []).append(problem)
    return {group: tuple(problems) for group, problems in found.items()}


def overview(store: RunStore, now: datetime | None = None) -> list[GroupHealth]:
    """Every integration x target the store holds, with its health and its problems not resolved."""
    moment = now or datetime.now(UTC)
    problems = open_problems(store.problems(), moment)
    groups = []
    for integration, target in store.groups():
        runs = store.list_runs(integration=integration, target=target, limit=TREND_RUNS)
        if runs:
            health = group_health(runs, moment)
            groups.append(dataclasses.replace(health, problems=problems.get((integration, target), ())))
    return groups


@dataclass(frozen=True, slots=True)
class FailingPage:
    """One page of a run's failing records, as rows of failed checks (the row model every report uses)."""

    run_id: str
    phase: PhaseKind
    page: int
    pages: int
    failed_records: int
    rows: tuple[FailureRow, ...]


def failing_page(store: RunStore, run_id: str, phase: PhaseKind, page: int, size: int = PAGE_SIZE) -> FailingPage:
    """The ``page``-th (from 1) ``size`` failing records of a phase, read from the ledger."""
    total = store.count_outcomes(run_id, phase, failed_only=True)
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    outcomes = store.outcomes(run_id, phase, failed_only=True, limit=size, offset=(page - 1) * size)
    failed = [c for o in outcomes for c in o.checks if not c.passed]
    rows, _ = phase_rows(phase, failed, limit=None)
    return FailingPage(run_id, phase, page, pages, total, tuple(rows))


@dataclass(frozen=True, slots=True)
class LiveRun:
    """A run in flight (or just over) as ``/live`` draws it."""

    progress: RunProgress
    backlog: int
    stalled: bool
    seconds_since_update: float


def live_runs(store: RunStore, now: datetime | None = None) -> list[LiveRun]:
    """The runs whose progress was written within :data:`LIVE_WINDOW`, newest first."""
    moment = now or datetime.now(UTC)
    runs = []
    for progress in store.progress_since(moment - LIVE_WINDOW):
        quiet = max(0.0, (moment - progress.updated_at).total_seconds())
        runs.append(LiveRun(progress, progress.backlog, not progress.finished and quiet > STALLED_AFTER.seconds, quiet))
    return runs


def live_document(runs: Sequence[LiveRun]) -> dict[str, object]:
    """What ``/api/live`` answers and each server-sent event carries."""
    return {
        "runs": [
            {
                "progress": dataclasses.asdict(run.progress),
                "backlog": run.backlog,
                "stalled": run.stalled,
                "seconds_since_update": round(run.seconds_since_update, 1),
            }
            for run in runs
        ]
    }
