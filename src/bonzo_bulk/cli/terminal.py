"""What commands show while they work: log lines, progress bars, the target line and the delivery table."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bonzo_bulk.deliver.watch import PROGRESS_LOG, STATUS_EVERY
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
    wanted = check_log_level(level)
    logging.basicConfig(level=wanted, format=line_format, handlers=[handler], force=True)
    install_log_redaction()
    logging.getLogger("faker").setLevel(logging.WARNING)
    # Without bars (a pipe, CI), progress lines show at the default level; --log-level ERROR silences them too.
    piped = not stream_is_terminal(sys.stderr) and logging.getLevelName(wanted) <= logging.WARNING
    logging.getLogger(PROGRESS_LOG).setLevel(logging.INFO if piped else logging.NOTSET)


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


class LoggedProgress:
    """Progress where there are no bars (a pipe, a CI log): one INFO line on the progress logger at least every
    :data:`~bonzo_bulk.deliver.watch.STATUS_EVERY` seconds while the command works, whatever it is waiting for,
    e.g. ``progress after 20 s: deliver 199/302, settle 40/302``."""

    def __init__(self, every: float = STATUS_EVERY) -> None:
        self.every = every
        self._stages: dict[str, list[int | None]] = {}
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="bonzo-bulk progress", daemon=True)
        self._started = time.monotonic()

    def __enter__(self) -> LoggedProgress:
        self._started = time.monotonic()
        self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._ticker.join()

    def line(self) -> str:
        """What every stage has done so far."""
        stages = ", ".join(
            f"{name} {done:,}" + (f"/{total:,}" if total is not None else "")
            for name, (done, total) in list(self._stages.items())
        )
        return f"progress after {time.monotonic() - self._started:.0f} s: {stages or 'starting'}"

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            logging.getLogger(PROGRESS_LOG).info("%s", self.line())

    def stage(self, name: str, total: int | None) -> None:
        """A stage starts (``total`` steps, when known)."""
        self._stages[name] = [0, total]

    def advance(self, name: str, amount: int = 1) -> None:
        """A stage moved on."""
        done = self._stages.setdefault(name, [0, None])
        done[0] = (done[0] or 0) + amount

    def update(self, name: str, completed: int, total: int | None = None) -> None:
        """A stage is at ``completed`` (of ``total``)."""
        self._stages[name] = [completed, total if total is not None else self._stages.get(name, [0, None])[1]]


def command_progress(*, json_output: bool = False) -> RichProgress | LoggedProgress:
    """Bars on a terminal (none under ``--json``); elsewhere a progress line every few seconds on stderr."""
    if is_interactive():
        return RichProgress(show=not json_output)
    return LoggedProgress()


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
