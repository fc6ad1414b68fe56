"""What the terminal shows of a run, for the CLI and the pytest plugin alike: the consoles (stdout and
stderr, wide in a pipe) and the summary tables. Nothing here runs a stage; it only shows one.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.table import Table

from bonzo_bulk.secrets import redact

if TYPE_CHECKING:
    from bonzo_bulk.config.loader import LoadedConfig
    from bonzo_bulk.models import PhaseResult, RunResult
    from bonzo_bulk.problems.track import RunProblems
    from bonzo_bulk.report.publish import Outcome, Published
    from bonzo_bulk.report.rows import FailureRow

PIPE_WIDTH = 1000
"""Line width when output is not a terminal (pipes, CI logs): wide enough that nothing wraps or is cut."""


def stream_is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is a real terminal (not a pipe, file or CI log), whatever FORCE_COLOR says."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False


class AdaptiveConsole(Console):
    """A rich console at the terminal's width in a terminal, and at :data:`PIPE_WIDTH` anywhere else, so a
    pipe or CI log keeps each table row and message on one line. Colour follows rich (``NO_COLOR`` honoured).
    """

    @property
    def size(self) -> ConsoleDimensions:
        """The terminal's size, or :data:`PIPE_WIDTH` columns when the stream is not a terminal."""
        dimensions = Console.size.fget(self)  # type: ignore[attr-defined]
        if stream_is_terminal(self.file):
            return dimensions  # type: ignore[no-any-return]
        return ConsoleDimensions(PIPE_WIDTH, dimensions.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]

    def on_broken_pipe(self) -> None:
        """The reader closed the stream (``| head``): let the error reach the command's one handler
        (``bonzo_bulk.cli.exits.quiet_when_stdout_closes``, which points stdout at the null device); rich's own
        handler would exit 1, and muting this shared console would mute it for the rest of the process."""
        raise BrokenPipeError(errno.EPIPE, "the reader closed the stream")


console = AdaptiveConsole(stderr=True, highlight=False)
out = AdaptiveConsole(highlight=False, soft_wrap=True)


def phase_table(phase: PhaseResult) -> Table:
    """The verdict table of one phase: each threshold, its measured value and pass/fail."""
    from bonzo_bulk.judge.tally import verdict_text
    from bonzo_bulk.models import Verdict

    m = phase.metrics
    title = "Primary hook (lo_email routing)" if phase.kind == "primary" else "Control hook (explicit user_id)"
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("check")
    table.add_column("measured", justify="right")
    table.add_column("threshold", justify="right")
    table.add_column("", justify="center")
    labels: dict[str, str] = {
        Verdict.DELIVERY_RATE: f"delivered {m.delivered}/{m.valid}",
        Verdict.CREATION_RATE: f"created {m.created}/{m.delivered - m.unverified}"
        + (f" checked ({m.unverified} unverified)" if m.unverified else ""),
        Verdict.ASSIGNMENT_ACCURACY: f"assigned correctly {m.assigned_correctly}/{m.created}",
        Verdict.MAPPING_ACCURACY: f"mapped correctly {m.mapped_correctly}/{m.created}",
        Verdict.PROCESSING_P95: "processing time p95",
        Verdict.AVG_RESPONSE: "webhook response, mean",
        Verdict.MAX_RESPONSE: "webhook response, max",
        Verdict.INVALID_HANDLING: f"invalid records handled {m.invalid_handled}/{m.invalid_total}",
        Verdict.UNEXPECTED_PROSPECTS: "unexpected prospects",
        Verdict.DUPLICATE_PROSPECTS: "duplicate prospects",
        Verdict.UNVERIFIED: "unverified records (a listing never reached its end)",
    }
    for verdict in m.thresholds:
        measured, wanted = verdict_text(verdict)
        mark = "[green]✓[/]" if verdict.passed else "[bold red]✗[/]"
        table.add_row(labels.get(verdict.name, verdict.name), measured, wanted, mark)
    timing = "; ".join(w.text for w in m.timing_widths) or "none"
    table.caption = (
        f"latency p50 {m.delivery_latency.p50_ms:.0f} ms · p99 {m.delivery_latency.p99_ms:.0f} ms · "
        f"processing p50 {m.processing_time.p50_ms / 1000:.2f} s (upper ends; {timing}) · "
        f"API requests {m.api_requests} "
        f"({m.api_requests_per_record:.3f}/record)"
    )
    return table


def systemic_text(mended: Sequence[FailureRow], fix: str) -> str:
    """Systemic rows sharing a fix: what failed on how many records and why, a line each, then the fix once."""
    lines = [f"[bold red]Systemic[/] {escape(row.headline)}" for row in mended]
    return "\n".join([*lines, f"  [dim]fix:[/] {escape(fix)}"])


def failures_table(rows: Sequence[FailureRow], left_off: int = 0) -> Table:
    """The sporadic rows grouped by record: one table row per record, each failed check as expected → actual."""
    from bonzo_bulk.report.rows import failing_records, more_text

    records = failing_records(rows)
    checks = sum(len(record.rows) for record in records)
    title = f"Failing records ({len(records)}, {checks} check{'' if checks == 1 else 's'})"
    table = Table(title=title, title_justify="left")
    table.add_column("phase")
    table.add_column("record", overflow="fold", no_wrap=True)
    table.add_column("stage")
    table.add_column("check: expected → actual", overflow="fold")
    for record in records:
        lines = "\n".join(escape(row.check_text) for row in record.rows)
        table.add_row(record.phase, escape(record.record), record.stages, lines)
    if left_off:
        table.caption = escape(f"… {more_text(left_off)}")
    return table


def print_failures(rows: Sequence[FailureRow], left_off: int = 0) -> None:
    """The systemic rows (cause and fix), then the table of sporadic ones."""
    from bonzo_bulk.report.rows import by_fix, sporadic

    for fix, mended in by_fix(rows):
        out.print(systemic_text(mended, fix))
    if sporadic(rows) or left_off:
        out.print(failures_table(rows, left_off))


TERMINAL_ROWS = 100
"""Failed checks the terminal lists (about 25 records); the dashboard and the export have the rest."""


def print_result(result: RunResult, *, limit: int = TERMINAL_ROWS, problems: RunProblems | None = None) -> None:
    """The end-of-run tables: one per phase, the systemic failures, the failing records (each with its problem,
    new or known, when ``problems`` were tracked), the run's problems, the run's notes."""
    from bonzo_bulk.judge.diagnosis import hook_diagnosis
    from bonzo_bulk.report.rows import failure_rows

    for phase in result.phases:
        out.print(phase_table(phase))
    hooks = hook_diagnosis(result)
    if hooks is not None:
        out.print(hooks.text, style="bold red" if hooks.is_fault else "green", markup=False)
    print_failures(*failure_rows(result, limit=limit, problems=problems))
    for line in problem_lines(problems):
        out.print(line, markup=False, highlight=False)
    for note in result.notes:
        out.print(f"[dim]{escape(redact(note))}[/]")


def problem_lines(problems: RunProblems | None) -> list[str]:
    """The run's problems in plain lines, new ones first: ``new problem 3f2a9c01d4: <title> (3 of 3 records)``."""
    if problems is None or not problems.problems:
        return []
    ordered = problems.ordered
    lines = [problems.headline]
    for tracked in ordered:
        problem = tracked.problem
        if tracked.change == "resolved":
            lines.append(f"  resolved problem {problem.problem_id}: {problem.title} (ran clean)")
            continue
        lines.append(f"  {tracked.label}: {problem.title} ({problem.last_failed} of {problem.last_judged} records)")
    lines.append("  (`bonzo-bulk problems show ID`; `bonzo-bulk problems ack ID --note TEXT` says it is known)")
    return [redact(line) for line in lines]


_VERDICT_STYLE = {"ok": "bold green", "warn": "bold yellow", "bad": "bold red"}


def print_verdict(result: RunResult, outcome: Outcome, *, subject: str = "Run") -> None:
    """The final line: the run's verdict in the same words as its exit code (``FAILED (regression)``,
    ``PASSED, but its reports were not written (exit 1)``)."""
    where = "[yellow]sandbox[/]" if result.target == "sandbox" else "[magenta]live[/]"
    style = _VERDICT_STYLE[outcome.state]
    out.print(f"{subject} {result.run_id} ({where}): [{style}]{outcome.label}[/] (exit {outcome.exit_code})")


def print_published(published: Published) -> None:
    """Where a published run's reports went: regressions, the JSON summary, the dashboard, retention."""
    from bonzo_bulk.report.regression import regression_line
    from bonzo_bulk.store.space import human_bytes

    for regression in published.regressions:
        style = "bold red" if published.verdict.fail_on_regression else "bold yellow"
        out.print(regression_line(regression, published.baseline_run_id), style=style, markup=False)
    out.print(f"JSON summary: {published.summary_json}")
    out.print(f"Dashboard:    {published.dashboard}")
    retention = published.retention
    if retention is not None and retention.pruned:
        out.print(
            f"[dim]reports.keep_runs {retention.keep}: removed the reports of {len(retention.pruned)} older run(s), "
            f"{human_bytes(retention.freed_bytes)} freed (`bonzo-bulk prune` does it by hand)[/]"
        )


def loaded_summary(loaded: LoadedConfig) -> str:
    """One line naming what a command is about to do."""
    config = loaded.config
    return (
        f"{config.test_name}: {config.test_records} records over {len(config.test_users)} users "
        f"({config.distribution}), integration {config.integration_type}, target {loaded.target}"
    )
