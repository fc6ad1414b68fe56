"""What went wrong in a run, in a few lines: failing checks diagnosed systemic or sporadic, and the top records.

Alerts and CI summaries read these (never the whole result): a check failing for nearly every record
of a phase points at a mapping or config cause (systemic); a few records failing point at the
interesting ones (sporadic).

Example::

    for d in diagnoses(result):
        print(d.line())   # systemic: primary owner.id failed for 21/21 records (e.g. TestRecord_MonitorBase_001 ...)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from bonzo_bulk.metrics import verdict_text
from bonzo_bulk.models import CheckResult, RunResult, by_record
from bonzo_bulk.secrets import redact

SYSTEMIC_SHARE = 0.8
"""A check failing for at least this share of a phase's records is systemic."""


def short(value: Any, limit: int = 60) -> str:
    """A value as one short, redacted line."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = redact(text.replace("\n", " "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_text(check: CheckResult) -> str:
    """``check: expected → actual`` for one failed check."""
    return f"{check.check}: {short(check.expected)} → {short(check.actual)}"


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """One failing check of one phase: how many records it failed, and whether that is systemic."""

    phase: str
    check: str
    failed: int
    records: int
    kind: Literal["systemic", "sporadic"]
    example: CheckResult

    def line(self) -> str:
        """One plain line: kind, phase, check, count, an example."""
        return (
            f"{self.kind}: {self.phase} {self.check} failed for {self.failed}/{self.records} records "
            f"(e.g. {self.example.record_name}: {short(self.example.expected)} → {short(self.example.actual)})"
        )


def diagnoses(result: RunResult) -> list[Diagnosis]:
    """The failing checks of every phase grouped by check name, systemic first, then by count."""
    found: list[Diagnosis] = []
    for phase in result.phases:
        records = max(1, len(phase.records))
        grouped: dict[str, list[CheckResult]] = {}
        for check in phase.failures():
            grouped.setdefault(check.check, []).append(check)
        for name, checks in grouped.items():
            failed = len({c.record_name for c in checks})
            kind: Literal["systemic", "sporadic"] = "systemic" if failed / records >= SYSTEMIC_SHARE else "sporadic"
            found.append(Diagnosis(phase.kind, name, failed, records, kind, checks[0]))
    return sorted(found, key=lambda d: (d.kind != "systemic", -d.failed, d.phase, d.check))


@dataclass(frozen=True, slots=True)
class FailingRecord:
    """A record that failed, with its failed checks."""

    phase: str
    record_name: str
    checks: tuple[CheckResult, ...]

    def line(self) -> str:
        """``record (phase): check: expected → actual; ...``"""
        return f"{self.record_name} ({self.phase}): " + "; ".join(check_text(c) for c in self.checks[:3])


def failing_records(result: RunResult, *, limit: int | None = None) -> list[FailingRecord]:
    """The failing records of every phase, primary first, in the order they first fail."""
    rows = [
        FailingRecord(phase.kind, name, tuple(checks))
        for phase in result.phases
        for name, checks in by_record(phase.failures()).items()
    ]
    return rows if limit is None else rows[:limit]


def failing_verdicts(result: RunResult) -> list[str]:
    """``phase threshold: measured (wanted)`` for every threshold a run missed."""
    lines = []
    for phase in result.phases:
        for verdict in phase.metrics.thresholds:
            if not verdict.passed:
                measured, wanted = verdict_text(verdict)
                lines.append(f"{phase.kind} {verdict.name}: {measured} (wanted {wanted})")
    return lines
