"""The rows the run store hands to readers: run summaries (history), stored prospects and records (cleanup)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from bonzo_bulk.models import RunKind, RunResult


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
    kind: RunKind = "bulk"
    """The mode that opened the run: only runs of one kind are compared (trends, baselines, regressions)."""

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
            kind=result.kind,
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
