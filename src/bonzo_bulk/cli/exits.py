"""Exit codes and the one place errors become them: a one-line message, never a traceback."""

from __future__ import annotations

import functools
import os
import select
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import typer
from rich.markup import escape

from bonzo_bulk.errors import BonzoBulkError, ConfigError, Interrupted
from bonzo_bulk.report.terminal import console
from bonzo_bulk.secrets import redact, redact_cut

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class ErrorLog:
    """Where the command running now logs an internal error: ``<folder>/logs`` (its config's reports folder,
    or ``--reports-dir`` until the config is loaded)."""

    folder: str | None = None


_ERROR_LOG: ContextVar[ErrorLog | None] = ContextVar("bonzo_bulk_error_log", default=None)


@contextmanager
def errors_logged_under(folder: str | Path | None) -> Iterator[ErrorLog]:
    """While inside, an internal error's log goes to ``<folder>/logs``; set ``.folder`` on what it yields to
    move it (once the config names the reports folder)."""
    where = ErrorLog(str(folder) if folder else None)
    token = _ERROR_LOG.set(where)
    try:
        yield where
    finally:
        _ERROR_LOG.reset(token)


def _is_cli_signal(exc: BaseException) -> bool:
    """typer's (or, with an older typer, click's) exit, abort and usage errors: they carry their own exit code."""
    if isinstance(exc, typer.Exit | typer.Abort | getattr(typer, "TyperException", typer.Exit)):
        return True
    click = sys.modules.get("click")  # only an older typer raises click's own; it is imported then
    return click is not None and isinstance(exc, click.exceptions.Exit | click.ClickException | click.exceptions.Abort)


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
    except BrokenPipeError:
        raise  # stdout closed under a command (`| head`): :func:`quiet_when_stdout_closes` ends it
    except KeyboardInterrupt:
        console.print(
            "[yellow]interrupted[/]: nothing of a run was sent yet, or what was is in the run store; "
            "`bonzo-bulk history` lists runs and `bonzo-bulk cleanup --run ID --yes` removes one"
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        if _is_cli_signal(exc):
            raise
        raise typer.Exit(report_unexpected(exc)) from None


def quiet_when_stdout_closes(command: F) -> F:
    """``command`` ending quietly with exit 0 when its reader closes stdout (``bonzo-bulk export RUN | head``), as
    a Unix filter does, instead of an internal error; stdout then points at the null device so that nothing
    buffered complains at exit. A broken pipe anywhere else (stdout still open) is an error as before. Every
    command is registered through this (:mod:`bonzo_bulk.cli.app`)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            result = command(*args, **kwargs)
            sys.stdout.flush()
        except typer.Exit:
            _flush_stdout()
            raise
        except BrokenPipeError:
            if not stdout_closed():
                raise
            _silence_stdout()
            raise typer.Exit(EXIT_OK) from None
        return result

    return cast(F, run)


def _flush_stdout() -> None:
    """Flush what a command printed before it exits; a reader that went away meanwhile ends it quietly."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        if not stdout_closed():
            raise
        _silence_stdout()


def stdout_closed() -> bool:
    """Whether stdout is a pipe (or socket) whose reader has gone: writing to it raises BrokenPipeError."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _silence_stdout() -> None:
    """Point stdout's descriptor at the null device: what is still buffered goes nowhere, without an error."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, sys.stdout.fileno())
    finally:
        os.close(null)


def report_unexpected(exc: BaseException) -> int:
    """An error no check foresaw: one line and the path of a log with the (redacted) traceback; exit 3.

    The log goes under the command's reports folder (:func:`errors_logged_under`), else
    ``$BONZO_BULK_REPORTS_DIR`` or ``reports/``; where none can be written, the system's temporary folder.
    """
    import tempfile
    import traceback

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    details = redact("".join(traceback.format_exception(exc)))
    error_log = _ERROR_LOG.get()
    chosen = error_log.folder if error_log is not None else None
    folder = Path(chosen or os.environ.get("BONZO_BULK_REPORTS_DIR") or "reports") / "logs"
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
        f"[bold red]internal error[/] ({type(exc).__name__}: {escape(redact_cut(str(exc), 200))}){escape(kept)}. "
        "This is a bug in bonzo-bulk, not in your input: please report it with that file."
    )
    return EXIT_INTERNAL
