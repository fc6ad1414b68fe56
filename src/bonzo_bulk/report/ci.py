"""CI output of a run: a Markdown job summary (``$GITHUB_STEP_SUMMARY``) and capped error annotations.

The summary leads with the verdict, then the thresholds, the diagnoses (systemic vs sporadic), the
regressions and the top failing records; it always stays under GitHub's 1 MiB per-step cap. Systemic
failures and failing records become at most :data:`ANNOTATION_LIMIT` ``::error`` lines (GitHub shows
only a few per step), plus one line saying how many more there are. Both read the run's failure rows
(:mod:`bonzo_bulk.report.rows`), built once.

Example::

    write_ci_outputs(result, regressions, dashboard)   # no-op outside GitHub Actions
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from bonzo_bulk.judge.tally import verdict_text
from bonzo_bulk.models import RunResult
from bonzo_bulk.problems.track import RunProblems
from bonzo_bulk.report.regression import Regression
from bonzo_bulk.report.rows import FailingRecord, FailureRow, by_check, by_fix, failing_records, failure_rows, fixes
from bonzo_bulk.secrets import redact

STEP_SUMMARY_LIMIT = 1024 * 1024
"""GitHub refuses a step summary above 1 MiB."""
SUMMARY_BUDGET = 900 * 1024
"""What this tool writes at most, leaving room for other steps' lines in the same file."""
ANNOTATION_LIMIT = 10
TOP_RECORDS = 10


def verdict_word(result: RunResult, regressions: Sequence[Regression]) -> str:
    """FAILED, REGRESSED (passed but worse than its history or baseline) or PASSED."""
    if not result.passed:
        return "FAILED"
    return "REGRESSED" if regressions else "PASSED"


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell: redacted, on one line, ``|`` escaped and no HTML tag (a summary
    renders HTML, and a value is what a webhook or Bonzo sent)."""
    return redact(text).replace("<", "&lt;").replace("|", "\\|").replace("\n", " ")


def step_summary(
    result: RunResult,
    regressions: Sequence[Regression],
    dashboard: Path | None,
    rows: Sequence[FailureRow] | None = None,
    problems: RunProblems | None = None,
) -> str:
    """The Markdown job summary of a run, at most :data:`SUMMARY_BUDGET` bytes (``rows``: the run's
    :func:`failure_rows`, uncapped; built here when not given; ``problems``: the run's, new ones first)."""
    rows = failure_rows(result, limit=None, problems=problems)[0] if rows is None else rows
    word = verdict_word(result, regressions)
    mark = {"FAILED": "❌", "REGRESSED": "⚠️", "PASSED": "✅"}[word]
    where = "sandbox" if result.target == "sandbox" else "live"
    records = sum(p.metrics.generated for p in result.phases)
    head = [
        f"## {mark} bonzo-bulk: {result.integration} {word} ({where})",
        "",
        f"Run `{result.run_id}` · {records} records · {result.test_name}",
        "",
        "| phase | threshold | measured | wanted | |",
        "| --- | --- | --- | --- | --- |",
    ]
    for phase in result.phases:
        for verdict in phase.metrics.thresholds:
            measured, wanted = verdict_text(verdict)
            ok = "✅" if verdict.passed else "❌"
            head.append(f"| {phase.kind} | {verdict.name} | {measured} | {_cell(wanted)} | {ok} |")
    found = by_check(rows)
    if found:
        head += ["", "### Diagnosis", ""]
        head += [f"- **{f.kind}**: {_cell(f.line().split(': ', 1)[1])}" for f in found[:10]]
        if len(found) > 10:
            head.append(f"- … and {len(found) - 10} more failing checks")
        found_fixes = fixes(rows)
        if found_fixes:
            head += ["", *(f"**Fix:** {_cell(fix)}" for fix in found_fixes)]
    head += _problem_lines(problems)
    if regressions:
        head += ["", "### Regressions", ""]
        head += [f"- {_cell(r.message)}" for r in regressions]
    records_failing = failing_records(rows)
    if records_failing:
        head += ["", f"### Top failing records ({len(records_failing)} in all)", ""]
        head += ["| record | phase | stage | failed checks: expected → actual |", "| --- | --- | --- | --- |"]
        head += [
            f"| {_cell(r.record)} | {r.phase} | {r.stages} | {_cell(r.checks_text)} |"
            for r in records_failing[:TOP_RECORDS]
        ]
    text = "\n".join(head) + "\n"
    rest = records_failing[TOP_RECORDS:]
    if rest:
        text += _details(rest, SUMMARY_BUDGET - len(text.encode()) - 1024)
    if dashboard is not None:
        text += f"\nDashboard: `{dashboard.name}` (one self-contained HTML file; the workflow uploads it).\n"
    return text


def _problem_lines(problems: RunProblems | None) -> list[str]:
    """The run's problems for the job summary: new and reopened first, then known ones with their state."""
    if problems is None or not problems.problems:
        return []
    ordered = problems.ordered
    lines = ["", "### Problems", ""]
    for tracked in ordered[:20]:
        mark = "🆕 " if tracked.is_new else "✅ " if tracked.change == "resolved" else ""
        what = tracked.label if tracked.change != "resolved" else f"resolved problem {tracked.problem.problem_id}"
        lines.append(f"- {mark}**{_cell(what)}**: {_cell(tracked.problem.title)}")
    return lines


def _details(records: Sequence[FailingRecord], budget: int) -> str:
    """The remaining failing records inside ``<details>``, cut to ``budget`` bytes with a count of the rest."""
    opening = f"\n<details><summary>{len(records)} more failing records</summary>\n\n"
    lines: list[str] = []
    used = len(opening.encode()) + 64
    for shown, record in enumerate(records):
        line = f"- {_cell(record.line())}\n"
        if used + len(line.encode()) > budget:
            lines.append(f"- … and {len(records) - shown} more (see the JSON summary and the dashboard)\n")
            break
        lines.append(line)
        used += len(line.encode())
    return opening + "".join(lines) + "\n</details>\n"


def _escape(text: str, *, prop: bool = False) -> str:
    escaped = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return escaped.replace(":", "%3A").replace(",", "%2C") if prop else escaped


def error_annotations(
    result: RunResult,
    *,
    limit: int = ANNOTATION_LIMIT,
    config_path: str | None = None,
    rows: Sequence[FailureRow] | None = None,
) -> list[str]:
    """``::error`` workflow commands: one per systemic fix (the failures it mends), then one per failing record,
    capped at ``limit`` with one line counting the rest (``rows``: as for :func:`step_summary`)."""
    rows = failure_rows(result, limit=None)[0] if rows is None else rows
    where = f"file={_escape(config_path, prop=True)}," if config_path else ""
    found = [_systemic_annotation(mended, fix) for fix, mended in by_fix(rows)]
    found += [(f"{record.record} ({record.phase})", record.checks_text) for record in failing_records(rows)]
    lines = [
        f"::error {where}title={_escape(title, prop=True)}::{_escape(redact(message))}"
        for title, message in found[:limit]
    ]
    if len(found) > limit:
        lines.append(
            f"::error title=bonzo-bulk::{len(found) - limit} more failures of run {result.run_id} "
            "are in the job summary and the dashboard"
        )
    return lines


def _systemic_annotation(mended: Sequence[FailureRow], fix: str) -> tuple[str, str]:
    """(title, message) of the systemic rows that share a fix: one annotation, not one per check and phase."""
    checks = ", ".join(dict.fromkeys(row.check for row in mended))
    phases = ", ".join(dict.fromkeys(row.phase for row in mended))
    return f"systemic: {checks} ({phases})", "; ".join(row.headline for row in mended) + f". Fix: {fix}"


def write_ci_outputs(
    result: RunResult,
    regressions: Sequence[Regression],
    dashboard: Path | None,
    *,
    environ: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
    problems: RunProblems | None = None,
) -> Path | None:
    """In GitHub Actions: append the job summary and print the annotations; elsewhere nothing. Returns the file."""
    env = os.environ if environ is None else environ
    rows = failure_rows(result, limit=None, problems=problems)[0]
    written: Path | None = None
    summary_file = env.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        written = Path(summary_file)
        with written.open("a", encoding="utf-8") as handle:
            handle.write(step_summary(result, regressions, dashboard, rows, problems))
    if env.get("GITHUB_ACTIONS") == "true":
        target = stream or sys.stderr
        for line in error_annotations(result, config_path=result.config_path, rows=rows):
            print(line, file=target)
    return written
