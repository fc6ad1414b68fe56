"""The rows the run store hands to readers: run summaries (history), stored prospects and records (cleanup)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from bonzo_bulk.models import RunResult


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One row of run history: the headline figures of a run's primary phase."""

    run_id: str
    test_name: str
    integration: str
    target: str
    started_at: datetime
    finished_at: datetime | None
    """None when the run never finished (interrupted)."""
    passed: bool | None
    """None when the run never finished."""
    records: int
    delivery_rate: float | None
    creation_rate: float | None
    assignment_accuracy: float | None
    mapping_accuracy: float | None
    p95_processing_ms: float | None
    p95_latency_ms: float | None
    api_requests_per_record: float | None
    is_baseline: bool

    @classmethod
    def from_result(cls, result: RunResult, *, is_baseline: bool = False) -> RunSummary:
        """The summary row of a finished run (figures from the primary phase, else the first)."""
        head = result.primary or (result.phases[0] if result.phases else None)
        figures = head.metrics if head is not None else None
        return cls(
            run_id=result.run_id,
            test_name=result.test_name,
            integration=result.integration,
            target=result.target,
            started_at=result.started_at,
            finished_at=result.finished_at,
            passed=result.passed,
            records=sum(p.metrics.generated for p in result.phases),
            delivery_rate=figures.delivery_rate if figures else None,
            creation_rate=figures.creation_rate if figures else None,
            assignment_accuracy=figures.assignment_accuracy if figures else None,
            mapping_accuracy=figures.mapping_accuracy if figures else None,
            p95_processing_ms=figures.processing_time.p95_ms if figures else None,
            p95_latency_ms=figures.delivery_latency.p95_ms if figures else None,
            api_requests_per_record=figures.api_requests_per_record if figures else None,
            is_baseline=is_baseline,
        )


@dataclass(frozen=True, slots=True)
class StoredProspect:
    """A prospect a run created (as the API showed it): what cleanup deletes later."""

    prospect_id: int | str
    owner_user_id: int | None
    email: str | None
    first_name: str | None
    phase: str
    deleted_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeletedProspect:
    """A prospect cleanup deleted, as the API listed it: marked in the store even when the run never saw it
    (interrupted before settling), so a later cleanup knows it is gone."""

    prospect_id: int | str
    owner_user_id: int | None
    email: str | None
    first_name: str | None


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record a run planned (stored before sending): how cleanup finds what an interrupted run made."""

    name: str
    phase: str
    first_name: str
    last_name: str
    email: str
    expected_user_id: int


SUMMARY_COLUMNS = tuple(f.name for f in dataclasses.fields(RunSummary))
FIGURE_COLUMNS = SUMMARY_COLUMNS[SUMMARY_COLUMNS.index("records") : SUMMARY_COLUMNS.index("is_baseline")]


@dataclass(frozen=True, slots=True)
class ProblemRow:
    """One problem as stored: a failure signature tracked across runs (:mod:`bonzo_bulk.problems` decides it).

    ``status`` is ``open``, ``reopened`` or ``resolved``; an acknowledgement (``ack_*``) and a mute
    (``muted_until``) lie over it. Column names are the field names.
    """

    problem_id: str
    integration: str
    target: str
    phase: str
    check: str
    cause: str
    """``systemic``, or a sporadic class: ``misrouted``, ``never created``, ``mangled`` ..."""
    title: str
    status: str
    first_seen_at: datetime
    last_seen_at: datetime
    first_run_id: str
    last_run_id: str
    runs: int
    """Runs it appeared in."""
    records_affected: int
    """Records it touched, over every run it appeared in."""
    last_failed: int
    last_judged: int
    peak_share: float
    clean_runs: int
    """Runs in a row its check ran clean since it was last seen."""
    escalated: bool
    fix: str
    detail: str
    """The cause in words, as the diagnosis (or the sporadic class) says it, redacted."""
    ack_by: str | None = None
    ack_note: str | None = None
    ack_at: datetime | None = None
    ack_until: datetime | None = None
    muted_until: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    runs_since_notice: int = 0
    reminders_sent: int = 0
    last_notice_at: datetime | None = None

    @property
    def last_share(self) -> float:
        """The share of the records judged it touched in the last run it appeared in."""
        return self.last_failed / self.last_judged if self.last_judged else 0.0


@dataclass(frozen=True, slots=True)
class ProblemSeen:
    """One run a problem appeared in: how many records, of how many judged, and a few of them by name."""

    problem_id: str
    run_id: str
    seen_at: datetime
    failed: int
    judged: int
    samples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProblemEvent:
    """One step of a problem's history: opened, seen, acknowledged, muted, resolved, reopened, notified ..."""

    problem_id: str
    at: datetime
    event: str
    actor: str
    detail: str


PROBLEM_COLUMNS = tuple(f.name for f in dataclasses.fields(ProblemRow))


@dataclass(frozen=True, slots=True)
class ProblemChanges:
    """What one change to the problems writes, in one transaction: rows, runs seen, history."""

    problems: tuple[ProblemRow, ...] = ()
    seen: tuple[ProblemSeen, ...] = ()
    events: tuple[ProblemEvent, ...] = ()
