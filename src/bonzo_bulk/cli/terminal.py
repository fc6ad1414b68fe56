"""What commands show while they work: log lines, progress bars, the target line and the delivery table."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bonzo_bulk.errors import ConfigError
from bonzo_bulk.models import Target
from bonzo_bulk.report.terminal import console, stream_is_terminal
from bonzo_bulk.secrets import install_log_redaction
from bonzo_bulk.target.banner import target_banner

if TYPE_CHECKING:
    from rich.progress import TaskID
    from rich.table import Table

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


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


def is_interactive() -> bool:
    """Whether stderr is a terminal (progress bars only then)."""
    return sys.stderr.isatty()


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


def print_target(target: Target, where: str) -> None:
    """Print the target banner on stderr: yellow for the local sandbox, magenta for live (``where`` is
    printable: the sandbox's URL or the API's, redacted)."""
    from rich.markup import escape

    style = "bold yellow" if target == "sandbox" else "bold magenta"
    console.print(f"[{style}]{escape(target_banner(target, where))}[/]")


def delivery_table(rows: Sequence[dict[str, Any]], title: str) -> Table:
    """A delivery-only run per phase: accepted, rate, latency, errors, invalid records refused."""
    from rich.table import Table

    from bonzo_bulk.models import percent

    table = Table(title=title, title_justify="left")
    for column in ("phase", "accepted", "rate", "latency p50/p95/p99/max ms", "errors", "invalid refused"):
        table.add_column(column, justify="left" if column in ("phase", "errors") else "right")
    for row in rows:
        lat = row["latency_ms"]
        errors = ", ".join(f"{k} {v}" for k, v in row["errors"].items()) or "-"
        table.add_row(
            str(row["phase"]),
            f"{row['accepted']}/{row['valid']}",
            percent(row["acceptance_rate"]),
            " / ".join(f"{lat[k]:.0f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
            errors,
            str(row["invalid_rejected"]) if row["sent"] > row["valid"] else "-",
        )
    return table
