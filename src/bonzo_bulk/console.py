"""What every command shares: the config options (from :data:`config.OPTIONS`), errors -> exit codes,
rich progress and the summary tables. Nothing here runs a stage; it only shows one.
"""

from __future__ import annotations

import enum
import functools
import inspect
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.table import Table

from bonzo_bulk.errors import BonzoBulkError, ConfigError, Interrupted
from bonzo_bulk.models import PhaseResult, RunResult, Verdict
from bonzo_bulk.options import DEFAULT_CONFIG, OPTIONS
from bonzo_bulk.report.rows import FailureRow, by_fix, failing_records, failure_rows, more_text, sporadic
from bonzo_bulk.secrets import install_log_redaction, redact
from bonzo_bulk.verdict import RunVerdict

if TYPE_CHECKING:
    from bonzo_bulk.publishing import Published

if TYPE_CHECKING:
    from rich.progress import TaskID

    from bonzo_bulk.config import LoadedConfig

F = TypeVar("F", bound=Callable[..., Any])

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


console = AdaptiveConsole(stderr=True, highlight=False)
out = AdaptiveConsole(highlight=False, soft_wrap=True)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


ConfigChooser = Callable[[dict[str, Any]], Path | None]


def config_options(func: F, *, choose_config: ConfigChooser | None = None) -> F:
    """Add ``--config``, ``--allow-literal-secrets`` and every :data:`OPTIONS` flag to a typer command.

    The wrapped function receives ``loaded=LoadedConfig`` instead of the individual flags, so each
    option is declared once (in ``config.OPTIONS``) and reaches every command the same way. Without
    ``--config``, ``choose_config(command's other arguments)`` may name the file (``health
    --integration``); else the default config is used.
    """
    signature = inspect.signature(func)
    kept = [p for p in signature.parameters.values() if p.name != "loaded"]
    added = [
        inspect.Parameter(
            "config",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(
                None, "--config", "-c", help="YAML config of the bulk test", show_default=str(DEFAULT_CONFIG)
            ),
            annotation=Path | None,
        ),
        inspect.Parameter(
            "allow_literal_secrets",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(
                False, "--allow-literal-secrets", help="run even if the config file holds a literal token (warned)"
            ),
            annotation=bool,
        ),
    ]
    for option in OPTIONS:
        # Numbers arrive as text and are checked with the config, so a bad one is named with its value.
        kind: Any = enum.StrEnum(option.dest, {c: c for c in option.choices}) if option.choices else str
        added.append(
            inspect.Parameter(
                option.dest,
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(
                    None,
                    option.flag,
                    help=option.help,
                    metavar=None if option.choices else option.kind.__name__.upper(),
                ),
                annotation=kind | None,
            )
        )

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from bonzo_bulk.config import load_config

        config_path = kwargs.pop("config")
        allow = kwargs.pop("allow_literal_secrets")
        overrides = {option.dest: _plain(kwargs.pop(option.dest)) for option in OPTIONS}
        with handle_errors():
            if config_path is None:
                config_path = (choose_config(kwargs) if choose_config else None) or DEFAULT_CONFIG
            loaded = load_config(config_path, overrides=overrides, allow_literal_secrets=allow)
            for warning in loaded.warnings:
                console.print(f"[bold red]{warning}[/]")
            return func(*args, loaded=loaded, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    # typer resolves the annotations it is shown; ``loaded`` is not one, so its (heavy) type need not be imported.
    wrapper.__annotations__ = {k: v for k, v in func.__annotations__.items() if k != "loaded"}
    return wrapper  # type: ignore[return-value]


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


@contextmanager
def handle_errors() -> Iterator[None]:
    """Map bonzo-bulk errors to a one-line message and the documented exit code (never a traceback)."""
    try:
        yield
    except ConfigError as exc:
        console.print(f"[bold red]error:[/] {escape(redact(str(exc)))}")
        raise typer.Exit(EXIT_USAGE) from None
    except Interrupted as exc:
        console.print(f"[yellow]interrupted[/]: {escape(redact(str(exc)))}")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BonzoBulkError as exc:
        console.print(f"[bold red]error:[/] {escape(redact(str(exc)))}")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        console.print(
            "[yellow]interrupted[/]: nothing of a run was sent yet, or what was is in the run store; "
            "`bonzo-bulk history` lists runs and `bonzo-bulk cleanup --run ID --yes` removes one"
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (typer.Exit, typer.Abort, click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
        raise
    except Exception as exc:
        raise typer.Exit(report_unexpected(exc)) from None


def report_unexpected(exc: BaseException) -> int:
    """An error no check foresaw: one line and the path of a log with the (redacted) traceback; exit 3."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    details = redact("".join(traceback.format_exception(exc)))
    folder = Path(os.environ.get("BONZO_BULK_REPORTS_DIR") or "reports") / "logs"
    path: Path | None = None
    for where in (folder, Path(tempfile.gettempdir())):
        candidate = where / f"bonzo-bulk-error-{stamp}-{os.getpid()}.log"
        try:
            where.mkdir(parents=True, exist_ok=True)
            candidate.write_text(details, encoding="utf-8")
        except OSError:
            continue
        path = candidate
        break
    kept = f"; the details are in {path}" if path else ""
    console.print(
        f"[bold red]internal error[/] ({type(exc).__name__}: {escape(redact(str(exc))[:200])}){escape(kept)}. "
        "This is a bug in bonzo-bulk, not in your input: please report it with that file."
    )
    return EXIT_INTERNAL


def check_log_level(level: str) -> str:
    """The upper-case level, or a :class:`ConfigError` naming the flag, the value and the levels."""
    wanted = level.strip().upper()
    if wanted not in LOG_LEVELS:
        raise ConfigError(
            f"--log-level: {level!r} is not a level; use one of {', '.join(LOG_LEVELS)}", key="--log-level"
        )
    return wanted


def setup_logging(level: str = "WARNING") -> None:
    """Log lines on stderr, every secret redacted: rich in a terminal, plain ``LEVEL message`` lines in a
    pipe or CI log (rich's handler would pad each line to the console width). A bad level is a ConfigError."""
    from rich.logging import RichHandler

    handler: logging.Handler
    if stream_is_terminal(sys.stderr):
        handler = RichHandler(console=console, show_path=False, show_time=False)
        line_format = "%(message)s"
    else:
        handler = logging.StreamHandler(sys.stderr)
        line_format = "%(levelname)s %(message)s"
    logging.basicConfig(level=check_log_level(level), format=line_format, handlers=[handler], force=True)
    install_log_redaction()
    logging.getLogger("faker").setLevel(logging.WARNING)


class RichProgress:
    """The run's progress as rich bars: delivery (records) and settling (records found / expected)."""

    def __init__(self, show: bool = True) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not show,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def stage(self, name: str, total: int | None) -> None:
        """Start a bar for a stage."""
        self._tasks[name] = self._progress.add_task(name, total=total)

    def advance(self, name: str, amount: int = 1) -> None:
        """Move a stage's bar on."""
        if name in self._tasks:
            self._progress.advance(self._tasks[name], amount)

    def update(self, name: str, completed: int, total: int | None = None) -> None:
        """Set a stage's bar."""
        if name in self._tasks:
            self._progress.update(self._tasks[name], completed=completed, total=total)

    def note(self, message: str) -> None:
        """Print a line above the bars."""
        style = "bold yellow" if "SANDBOX" in message else "bold magenta"
        self._progress.console.print(f"[{style}]{redact(message)}[/]")


def phase_table(phase: PhaseResult) -> Table:
    """The verdict table of one phase: each threshold, its measured value and pass/fail."""
    from bonzo_bulk.metrics import verdict_text

    m = phase.metrics
    title = "Primary hook (lo_email routing)" if phase.kind == "primary" else "Control hook (explicit user_id)"
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("check")
    table.add_column("measured", justify="right")
    table.add_column("threshold", justify="right")
    table.add_column("", justify="center")
    labels: dict[str, str] = {
        Verdict.DELIVERY_RATE: f"delivered {m.delivered}/{m.valid}",
        Verdict.CREATION_RATE: f"created {m.created}/{m.delivered}",
        Verdict.ASSIGNMENT_ACCURACY: f"assigned correctly {m.assigned_correctly}/{m.created}",
        Verdict.MAPPING_ACCURACY: f"mapped correctly {m.mapped_correctly}/{m.created}",
        Verdict.PROCESSING_P95: "processing time p95",
        Verdict.AVG_RESPONSE: "webhook response, mean",
        Verdict.MAX_RESPONSE: "webhook response, max",
        Verdict.INVALID_HANDLING: f"invalid records handled {m.invalid_handled}/{m.invalid_total}",
        Verdict.UNEXPECTED_PROSPECTS: "unexpected prospects",
        Verdict.DUPLICATE_PROSPECTS: "duplicate prospects",
    }
    for verdict in m.thresholds:
        measured, wanted = verdict_text(verdict)
        mark = "[green]✓[/]" if verdict.passed else "[bold red]✗[/]"
        table.add_row(labels.get(verdict.name, verdict.name), measured, wanted, mark)
    table.caption = (
        f"latency p50 {m.delivery_latency.p50_ms:.0f} ms · p99 {m.delivery_latency.p99_ms:.0f} ms · "
        f"processing p50 {m.processing_time.p50_ms / 1000:.2f} s · API requests {m.api_requests} "
        f"({m.api_requests_per_record:.3f}/record)"
    )
    return table


def systemic_text(mended: Sequence[FailureRow], fix: str) -> str:
    """Systemic rows sharing a fix: what failed on how many records and why, a line each, then the fix once."""
    lines = [f"[bold red]Systemic[/] {escape(row.headline)}" for row in mended]
    return "\n".join([*lines, f"  [dim]fix:[/] {escape(fix)}"])


def failures_table(rows: Sequence[FailureRow], left_off: int = 0) -> Table:
    """The sporadic rows grouped by record: one table row per record, each failed check as expected → actual."""
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
    for fix, mended in by_fix(rows):
        out.print(systemic_text(mended, fix))
    if sporadic(rows) or left_off:
        out.print(failures_table(rows, left_off))


TERMINAL_ROWS = 100
"""Failed checks the terminal lists (about 25 records); the dashboard and the export have the rest."""


def print_result(result: RunResult, *, limit: int = TERMINAL_ROWS) -> None:
    """The end-of-run tables: one per phase, the systemic failures, the failing records, the run's notes."""
    for phase in result.phases:
        out.print(phase_table(phase))
    print_failures(*failure_rows(result, limit=limit))
    for note in result.notes:
        out.print(f"[dim]{escape(redact(note))}[/]")


_VERDICT_STYLE = {"ok": "bold green", "warn": "bold yellow", "bad": "bold red"}


def print_verdict(result: RunResult, verdict: RunVerdict, *, subject: str = "Run") -> None:
    """The final line: the run's verdict in the same words as its exit code (``FAILED (regression)``)."""
    where = "[yellow]sandbox[/]" if result.target == "sandbox" else "[magenta]live[/]"
    style = _VERDICT_STYLE[verdict.state]
    out.print(f"{subject} {result.run_id} ({where}): [{style}]{verdict.label}[/] (exit {verdict.exit_code})")


def print_published(published: Published) -> None:
    """Where a published run's reports went: regressions, the JSON summary, the dashboard, retention."""
    from bonzo_bulk.regression import regression_line
    from bonzo_bulk.report.retention import human_bytes

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


def is_interactive() -> bool:
    """Whether stderr is a terminal (progress bars only then)."""
    return sys.stderr.isatty()


def loaded_summary(loaded: LoadedConfig) -> str:
    """One line naming what a command is about to do."""
    config = loaded.config
    return (
        f"{config.test_name}: {config.test_records} records over {len(config.test_users)} users "
        f"({config.distribution}), integration {config.integration_type}, target {loaded.target}"
    )
