"""What went wrong in a run, in a few lines: failing checks diagnosed systemic or sporadic, and the top records.

Alerts and CI summaries read these (never the whole result): a check failing for nearly every record
of a phase points at a mapping or config cause (systemic: the engine's diagnoses, with cause and fix);
a few records failing point at the interesting ones (sporadic).

Example::

    for finding in diagnoses(result):
        print(finding.line())   # sporadic: primary owner failed for 2/21 records (e.g. TestRecord_MonitorBase_004 ...)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from bonzo_bulk.metrics import verdict_text
from bonzo_bulk.models import CheckResult, RunResult, by_record
from bonzo_bulk.secrets import redact


def short(value: Any, limit: int = 60) -> str:
    """A value as one short, redacted line."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = redact(text.replace("\n", " "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_text(check: CheckResult) -> str:
    """``check: expected → actual`` for one failed check."""
    return f"{check.check}: {short(check.expected)} → {short(check.actual)}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One failing check of one phase: systemic (the engine's diagnosis, with cause and fix) or sporadic."""

    kind: Literal["systemic", "sporadic"]
    phase: str
    check: str
    failed: int
    records: int
    detail: str
    """systemic: the likely cause; sporadic: an example record, expected → actual."""
    fix: str = ""
    """systemic: what to change (several systemic findings often share one fix)."""

    def line(self) -> str:
        """One plain line: kind, phase, check, count, then the cause or an example."""
        return f"{self.kind}: {self.phase} {self.check} failed for {self.failed}/{self.records} records ({self.detail})"


def diagnoses(result: RunResult) -> list[Finding]:
    """Systemic failures first (from the engine's diagnoses), then the sporadic ones grouped by check, by count."""
    systemic: list[Finding] = []
    sporadic: list[Finding] = []
    for phase in result.phases:
        for d in phase.diagnoses:
            systemic.append(
                Finding("systemic", phase.kind, d.check, d.failed, d.judged, redact(d.cause), redact(d.fix))
            )
        grouped: dict[str, list[CheckResult]] = {}
        for check in phase.sporadic_failures():
            grouped.setdefault(check.check, []).append(check)
        judged = phase.judged
        for name, checks in grouped.items():
            first = checks[0]
            example = f"e.g. {first.record_name}: {short(first.expected)} → {short(first.actual)}"
            failed = len({c.record_name for c in checks})
            sporadic.append(Finding("sporadic", phase.kind, name, failed, judged[name], example))
    return systemic + sorted(sporadic, key=lambda f: (-f.failed, f.phase, f.check))


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
    """The failing records of every phase, primary first, in the order they first fail: the sporadic
    failures when there are any (the interesting records), else every failure."""
    rows = [
        FailingRecord(phase.kind, name, tuple(checks))
        for phase in result.phases
        for name, checks in by_record(phase.sporadic_failures() or phase.failures()).items()
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


def fixes(found: list[Finding]) -> list[str]:
    """The distinct fixes of the systemic findings, in order."""
    return list(dict.fromkeys(f.fix for f in found if f.fix))
