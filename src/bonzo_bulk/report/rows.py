"""One row model for the failures of a run, built once and read by every output.

A :class:`FailureRow` is either one failed check of one record (*sporadic*: the records worth looking
at one by one) or one check that failed on (nearly) every record of a phase (*systemic*: the engine's
diagnosis, with an example record, its cause and its fix). Every value is made short and redacted here,
by :func:`short`, and nowhere else. Renderers read rows and never a :class:`CheckResult`: the rich
terminal table (``console.failures_table``), plain text (:func:`failures_text`: CI logs, pytest messages,
alerts) and HTML (:func:`failures_html` and :func:`systemic_html`: the dashboard and the pytest-html
section). The CI job summary and annotations group the same rows by record and by check.

Example::

    rows, left_off = failure_rows(result, limit=25)
    print(failures_text(rows, left_off))
"""

from __future__ import annotations

import dataclasses
import functools
import html
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bonzo_bulk.models import CheckResult, Diagnosis, RunResult, ThresholdVerdict
from bonzo_bulk.problems.track import RunProblems
from bonzo_bulk.secrets import redact, redact_cut

SHORT_LIMIT = 160
"""The longest a value may be in any output (the dashboard's cells set it); the rest is cut with ``…``."""
DEFAULT_LIMIT = 25
"""Sporadic rows kept by default: a table a reader can take in."""

RowKind = Literal["systemic", "sporadic"]


def short(value: Any, limit: int = SHORT_LIMIT) -> str:
    """A value as one redacted line of at most ``limit`` characters (redacted before it is cut, so a cut
    can never leave part of a secret). Text is shown bare unless that would hide something (empty, edge
    spaces, line breaks): then quoted, so ``"Smith "`` and ``Smith`` read differently.

    >>> short("Smith"), short("Smith "), short(None), short([1, 2])
    ('Smith', '"Smith "', 'null', '[1, 2]')
    """
    if isinstance(value, str) and value and value == value.strip() and value.isprintable():
        text = value
    else:
        text = json.dumps(value, default=str, ensure_ascii=False)
    return redact_cut(text, limit)


@dataclass(frozen=True, slots=True)
class FailureRow:
    """One failed check of one record (sporadic), or one diagnosed check of a whole phase (systemic).

    Every text is already short and redacted. A systemic row names its first failing record as the
    example and carries how many records failed of how many judged, the likely cause and the fix.
    """

    kind: RowKind
    phase: str
    record: str
    check: str
    stage: str
    expected: str
    actual: str
    message: str = ""
    failed: int = 1
    """Records this row stands for: 1 for a sporadic row, every failing record for a systemic one."""
    judged: int = 0
    """Records the check judged in the phase (0 when unknown)."""
    cause: str = ""
    fix: str = ""
    problem: str = ""
    """The problem it belongs to, when the run's problems were tracked: ``new problem 3f2a9c01d4`` or
    ``known problem 3f2a9c01d4 (acknowledged)``."""

    @property
    def change(self) -> str:
        """``expected → actual``."""
        return f"{self.expected} → {self.actual}"

    @property
    def check_text(self) -> str:
        """``check: expected → actual``, with the message when it says more than "mismatch"."""
        note = f" ({self.message})" if self.message and self.message != "mismatch" else ""
        problem = f" [{self.problem}]" if self.problem else ""
        return f"{self.check}: {self.change}{note}{problem}"

    @property
    def headline(self) -> str:
        """A systemic row in one line: ``[primary] owner failed on 30 of 30 records: <cause>``."""
        problem = f" [{self.problem}]" if self.problem else ""
        return f"[{self.phase}] {self.check} failed on {self.failed} of {self.judged} records: {self.cause}{problem}"


ProblemOf = Callable[[str, Any], str]
"""(check name, actual value) -> the label of its problem (``new problem …``), or ``""``."""


def phase_rows(
    phase: str,
    failures: Iterable[CheckResult],
    diagnoses: Sequence[Diagnosis] = (),
    *,
    judged: Mapping[str, int] | None = None,
    limit: int | None = DEFAULT_LIMIT,
    problem_of: ProblemOf | None = None,
) -> tuple[list[FailureRow], int]:
    """The rows of one phase's failed checks: one systemic row per diagnosis (always), then at most ``limit``
    sporadic rows in the order the checks failed; and how many sporadic rows were left off.

    ``judged`` maps a check to the number of records it judged (for "failed for 2/21 records"); ``problem_of``
    names each row's problem (new or known).
    """
    label = problem_of or (lambda check, actual: "")
    systemic = {d.check: d for d in diagnoses}
    examples: dict[str, CheckResult] = {}
    sporadic: list[FailureRow] = []
    left_off = 0
    for check in failures:
        if check.check in systemic:
            examples.setdefault(check.check, check)
        elif limit is not None and len(sporadic) >= limit:
            left_off += 1
        else:
            sporadic.append(
                FailureRow(
                    "sporadic",
                    phase,
                    short(check.record_name),
                    short(check.check),
                    check.stage.value,
                    short(check.expected),
                    short(check.actual),
                    short(check.message) if check.message else "",
                    judged=(judged or {}).get(check.check, 0),
                    problem=label(check.check, check.actual),
                )
            )
    rows = [
        dataclasses.replace(_systemic_row(phase, d, examples.get(d.check)), problem=label(d.check, d.example_actual))
        for d in diagnoses
    ]
    return rows + sporadic, left_off


def _systemic_row(phase: str, diagnosis: Diagnosis, example: CheckResult | None) -> FailureRow:
    return FailureRow(
        "systemic",
        phase,
        short(example.record_name) if example is not None else "",
        short(diagnosis.check),
        diagnosis.stage.value,
        short(example.expected if example is not None else diagnosis.example_expected),
        short(example.actual if example is not None else diagnosis.example_actual),
        short(example.message) if example is not None and example.message else "",
        failed=diagnosis.failed,
        judged=diagnosis.judged,
        cause=redact(diagnosis.cause),
        fix=redact(diagnosis.fix),
    )


def failure_rows(
    result: RunResult, *, limit: int | None = DEFAULT_LIMIT, problems: RunProblems | None = None
) -> tuple[list[FailureRow], int]:
    """Every phase's rows, primary first: all systemic rows, and at most ``limit`` sporadic rows across the
    run (``None``: all); and how many sporadic rows were left off. With the run's ``problems``, each row says
    which problem it is and whether it is new or known."""
    rows: list[FailureRow] = []
    left_off = kept = 0
    for phase in result.phases:
        budget = None if limit is None else max(0, limit - kept)
        problem_of = functools.partial(problems.label, phase.kind) if problems is not None else None
        found, more = phase_rows(
            phase.kind, phase.failures(), phase.diagnoses, judged=phase.judged, limit=budget, problem_of=problem_of
        )
        rows += found
        kept += sum(1 for row in found if row.kind == "sporadic")
        left_off += more
    return rows, left_off


def sporadic(rows: Iterable[FailureRow]) -> list[FailureRow]:
    """The sporadic rows, in order."""
    return [row for row in rows if row.kind == "sporadic"]


def systemic(rows: Iterable[FailureRow]) -> list[FailureRow]:
    """The systemic rows, in order."""
    return [row for row in rows if row.kind == "systemic"]


@dataclass(frozen=True, slots=True)
class FailingRecord:
    """A record's sporadic rows together: the unit of the terminal table, CI annotations and alerts."""

    phase: str
    record: str
    rows: tuple[FailureRow, ...]

    @property
    def stages(self) -> str:
        """The stages the record failed in, e.g. ``assignment, mapping``."""
        return ", ".join(sorted({row.stage for row in self.rows}))

    @property
    def checks_text(self) -> str:
        """``check: expected → actual; ...`` for every failed check of the record."""
        return "; ".join(row.check_text for row in self.rows)

    def line(self) -> str:
        """``record (phase): check: expected → actual; ...``"""
        return f"{self.record} ({self.phase}): {self.checks_text}"


def failing_records(rows: Iterable[FailureRow]) -> list[FailingRecord]:
    """The sporadic rows grouped by record, records in the order they first fail."""
    grouped: dict[tuple[str, str], list[FailureRow]] = {}
    for row in sporadic(rows):
        grouped.setdefault((row.phase, row.record), []).append(row)
    return [FailingRecord(phase, record, tuple(found)) for (phase, record), found in grouped.items()]


@dataclass(frozen=True, slots=True)
class CheckSummary:
    """One failing check of one phase over its records: systemic (with cause and fix) or sporadic."""

    kind: RowKind
    phase: str
    check: str
    failed: int
    judged: int
    example: FailureRow

    def line(self) -> str:
        """``sporadic: primary owner failed for 2/21 records (e.g. <record>: 102 → 101)``; systemic: the cause."""
        detail = self.example.cause if self.kind == "systemic" else f"e.g. {self.example.record}: {self.example.change}"
        of = f"/{self.judged}" if self.judged else ""
        problem = f" [{self.example.problem}]" if self.example.problem else ""
        return f"{self.kind}: {self.phase} {self.check} failed for {self.failed}{of} records ({detail}){problem}"


def by_check(rows: Sequence[FailureRow]) -> list[CheckSummary]:
    """Systemic rows first, then the sporadic rows counted by (phase, check), most failing records first.
    The counts are of the rows given: pass uncapped rows (``limit=None``) for whole-run counts."""
    found = [CheckSummary("systemic", r.phase, r.check, r.failed, r.judged, r) for r in systemic(rows)]
    grouped: dict[tuple[str, str], list[FailureRow]] = {}
    for row in sporadic(rows):
        grouped.setdefault((row.phase, row.check), []).append(row)
    counted = [
        CheckSummary("sporadic", phase, check, len({r.record for r in same}), same[0].judged, same[0])
        for (phase, check), same in grouped.items()
    ]
    return found + sorted(counted, key=lambda s: (-s.failed, s.phase, s.check))


def fixes(rows: Iterable[FailureRow]) -> list[str]:
    """The distinct fixes of the systemic rows, in order (several diagnoses often share one)."""
    return list(dict.fromkeys(row.fix for row in systemic(rows) if row.fix))


def by_fix(rows: Iterable[FailureRow]) -> list[tuple[str, list[FailureRow]]]:
    """The systemic rows grouped by their fix, in order: a fix is said once under the failures it mends
    (a wrong owner fails owner, owner_email, team and visibility at once, in both phases)."""
    grouped: dict[str, list[FailureRow]] = {}
    for row in systemic(rows):
        grouped.setdefault(row.fix, []).append(row)
    return list(grouped.items())


def more_text(left_off: int) -> str:
    """The line that stands for the rows a cap left off."""
    checks = "check" if left_off == 1 else "checks"
    return f"{left_off} more failed {checks} not listed here (`bonzo-bulk export RUN_ID` writes every check)"


def verdict_line(verdict: ThresholdVerdict, phase: str = "") -> str:
    """``assignment_accuracy: 77.8% (threshold >= 95.0%) FAILED``, with the phase first when given."""
    from bonzo_bulk.judge.tally import verdict_text  # hdrh behind it: not for every importer of the rows

    measured, wanted = verdict_text(verdict)
    where = f"{phase} " if phase else ""
    return f"{where}{verdict.name}: {measured} (threshold {wanted}) {'ok' if verdict.passed else 'FAILED'}"


def failures_text(rows: Sequence[FailureRow], left_off: int = 0) -> str:
    """Rows as plain text for CI logs, pytest messages and alerts: the systemic rows (a headline each, then
    their shared fix), then the sporadic rows as a column table (a phase column when they span phases), then the cap's
    line. Nothing is wrapped or cut beyond :func:`short`, whatever the width of the reader's terminal."""
    lines: list[str] = []
    for fix, mended in by_fix(rows):
        lines += [f"Systemic: {row.headline}" for row in mended] + [f"  fix: {fix}"]
    table = sporadic(rows)
    if table:
        with_phase = len({row.phase for row in table}) > 1
        with_problem = any(row.problem for row in table)
        header = ("phase",) * with_phase + ("record", "stage", "check", "expected", "actual")
        header += ("problem",) * with_problem + ("note",)
        cells = [
            (row.phase,) * with_phase
            + (row.record, row.stage, row.check, row.expected, row.actual)
            + (row.problem,) * with_problem
            + (row.message,)
            for row in table
        ]
        widths = [max(len(line[i]) for line in (header, *cells)) for i in range(len(header) - 1)]
        rule = (*("-" * w for w in widths), "----")
        for line in (header, rule, *cells):
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)) + "  " + line[-1])
    if left_off:
        lines.append(f"… {more_text(left_off)}")
    return "\n".join(line.rstrip() for line in lines)


_HTML_COLUMNS = ("phase", "record", "stage", "check", "expected", "actual", "message", "problem")


def failures_html(rows: Sequence[FailureRow], left_off: int = 0, *, element_id: str | None = None) -> str:
    """The sporadic rows as an HTML table (one row per failed check, ``data-stage`` on each for filters),
    after the cap's line (above a scrolled table, where a reader sees it); every cell escaped.
    ``element_id`` ``x`` names the table ``x-table`` and the line ``x-omitted`` (the dashboard's filter
    script finds them by those ids)."""
    table_id = f' id="{html.escape(element_id)}-table"' if element_id else ""
    head = "".join(f"<th>{name}</th>" for name in _HTML_COLUMNS)
    body = "".join(
        f'<tr data-stage="{html.escape(row.stage)}"><td>{html.escape(row.phase)}</td>'
        f'<td class="mono">{html.escape(row.record)}</td><td>{html.escape(row.stage)}</td>'
        f'<td class="mono">{html.escape(row.check)}</td><td><code>{html.escape(row.expected)}</code></td>'
        f"<td><code>{html.escape(row.actual)}</code></td><td>{html.escape(row.message)}</td>"
        f'<td class="problem">{html.escape(row.problem)}</td></tr>'
        for row in sporadic(rows)
    )
    table = (
        f'<div class="scroll"><table class="bonzo-table failures"{table_id}><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )
    if not left_off:
        return table
    omitted_id = f' id="{html.escape(element_id)}-omitted"' if element_id else ""
    return f'<p class="flags info more"{omitted_id}>{html.escape(more_text(left_off))}</p>' + table


def systemic_html(rows: Sequence[FailureRow]) -> str:
    """The systemic rows as an HTML list, grouped by their fix: check, how many records, cause; escaped."""
    items = []
    for fix, mended in by_fix(rows):
        items += [
            f'<li class="diagnosis" data-check="{html.escape(row.check)}" data-phase="{html.escape(row.phase)}">'
            f"<strong>[{html.escape(row.phase)}] {html.escape(row.check)}</strong> failed on {row.failed} of "
            f"{row.judged} records: {html.escape(row.cause)}"
            + (f' <span class="problem">[{html.escape(row.problem)}]</span>' if row.problem else "")
            + "</li>"
            for row in mended
        ]
        items.append(f'<li class="fix"><em>fix:</em> {html.escape(fix)}</li>')
    return f'<ul class="systemic">{"".join(items)}</ul>' if items else ""
