"""The text of every monitor notice, from one function: what failed, the diagnosis, the top records, the dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bonzo_bulk.judge.diagnosis import hook_diagnosis
from bonzo_bulk.models import RunResult, percent
from bonzo_bulk.monitor.policy import AlertState, NoticeKind, ProblemNotice, Status
from bonzo_bulk.problems.track import RunProblems
from bonzo_bulk.report.regression import Regression
from bonzo_bulk.report.rows import by_check, failing_records, failure_rows, fixes, verdict_line
from bonzo_bulk.secrets import redact

TOP_RECORDS = 5
TOP_DIAGNOSES = 5


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one monitor run found, as the notices need it."""

    name: str
    integration: str
    target: str
    status: Status
    run_id: str | None
    result: RunResult | None
    error: str | None
    """Why the run could not finish (status ``error``)."""
    regressions: tuple[Regression, ...] = ()
    near_limits: tuple[str, ...] = ()
    dashboard: Path | None = None
    problems: RunProblems | None = None
    """The run's problems, when they were tracked."""


_HEADLINES: dict[NoticeKind, str] = {
    "alert": "FAILING",
    "reminder": "STILL FAILING",
    "recovery": "RECOVERED",
    "degraded": "DEGRADED",
    "flapping": "FLAPPING",
    "new": "NEW PROBLEM",
    "reopened": "PROBLEM REOPENED",
    "escalated": "PROBLEM ESCALATED",
    "resolved": "PROBLEM RESOLVED",
}
_PROBLEM_HEADLINES: dict[NoticeKind, str] = {**_HEADLINES, "reminder": "PROBLEM STILL OPEN"}


def compose(kind: NoticeKind, outcome: Outcome, state: AlertState, reason: str) -> tuple[str, str]:
    """(title, Markdown body) of one notice, secrets redacted."""
    where = "sandbox" if outcome.target == "sandbox" else "live"
    about = where if outcome.name == outcome.integration else f"{outcome.integration}, {where}"
    title = f"bonzo-bulk: {outcome.name} {_HEADLINES[kind]} ({about})"
    lines = [f"**{outcome.integration}** integration ({where}) — {reason}."]
    if outcome.run_id:
        lines.append(f"Run `{outcome.run_id}`: {outcome.status}.")
    if kind in ("alert", "reminder", "flapping") and state.failing_since is not None:
        lines.append(
            f"Failing since {state.failing_since:%Y-%m-%d %H:%M} UTC ({state.consecutive_failures} run(s) in a row)."
        )
    if outcome.error:
        lines.append(f"The run could not finish: {outcome.error}")
    if kind != "recovery":
        lines += _details(outcome)
    if outcome.dashboard is not None:
        lines.append(f"Dashboard: {outcome.dashboard.resolve()}")
    return redact(title), redact("\n".join(lines))


def _details(outcome: Outcome) -> list[str]:
    lines: list[str] = []
    result = outcome.result
    if result is not None:
        missed = [verdict_line(v, p.kind) for p in result.phases for v in p.metrics.thresholds if not v.passed]
        if missed:
            lines += ["", "Thresholds missed:", *(f"- {m}" for m in missed)]
        hooks = hook_diagnosis(result)
        if hooks is not None and hooks.is_fault:
            lines += ["", f"**{hooks.text}**"]
        rows, _ = failure_rows(result, limit=None, problems=outcome.problems)
        found = by_check(rows)
        if found:
            lines += ["", "Diagnosis:", *(f"- {d.line()}" for d in found[:TOP_DIAGNOSES])]
            if len(found) > TOP_DIAGNOSES:
                lines.append(f"- … and {len(found) - TOP_DIAGNOSES} more failing checks")
            lines += [f"Fix: {fix}" for fix in fixes(rows)]
        records = failing_records(rows)
        if records:
            lines += ["", f"Top failing records ({len(records)} in all):"]
            lines += [f"- {r.line()}" for r in records[:TOP_RECORDS]]
    lines += _listed("Regressions:", [r.message for r in outcome.regressions])
    lines += _listed("Near their limit:", list(outcome.near_limits))
    return lines


def _listed(heading: str, items: Sequence[str]) -> list[str]:
    return ["", heading, *(f"- {item}" for item in items)] if items else []


def status_line(outcome: Outcome, reason: str) -> str:
    """One plain line for the terminal and the ping body."""
    run = f"run {outcome.run_id}" if outcome.run_id else "no run"
    return redact(f"monitor {outcome.name}: {run} {outcome.status.upper()} — {reason}")


def compose_problem(notice: ProblemNotice, outcome: Outcome) -> tuple[str, str]:
    """(title, Markdown body) of one problem's notice: the problem, what changed, sample records, the fix; redacted."""
    problem = notice.tracked.problem
    title = f"bonzo-bulk: {outcome.name} {_PROBLEM_HEADLINES[notice.kind]} {problem.problem_id}: {problem.title}"
    share = f"{problem.last_failed} of {problem.last_judged} records"
    lines = [f"**Problem `{problem.problem_id}`** — {problem.title}.", f"What changed: {notice.reason}."]
    if notice.kind != "resolved":
        lines.append(f"Run `{outcome.run_id}`: {share} ({percent(problem.last_share)}); {problem.detail}")
    lines.append(
        f"First seen {problem.first_seen_at:%Y-%m-%d %H:%M} UTC (run `{problem.first_run_id}`), last seen "
        f"{problem.last_seen_at:%Y-%m-%d %H:%M} UTC; in {problem.runs} run(s), "
        f"{problem.records_affected} records in all."
    )
    sighting = notice.tracked.sighting
    if sighting is not None and sighting.samples:
        lines += ["", "Sample records:", *(f"- {name}" for name in sighting.samples)]
    if problem.fix and notice.kind != "resolved":
        lines += ["", f"Fix: {problem.fix}"]
    if notice.kind != "resolved":
        lines += [
            "",
            f'Known and being handled? `bonzo-bulk problems ack {problem.problem_id} --note "..."` stops its alerts; '
            f"`bonzo-bulk problems show {problem.problem_id}` shows its history.",
        ]
    if outcome.dashboard is not None:
        lines.append(f"Dashboard: {outcome.dashboard.resolve()}")
    return redact(title), redact("\n".join(lines))
