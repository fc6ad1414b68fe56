"""Run Locust as a child process: start ``python -m locust`` on the plan (:mod:`bonzo_bulk.load.feed` writes it),
tail its journal, stop it.

Nothing here imports Locust (gevent must never enter the process running the asyncio engine). The
hook URL reaches the child through its environment, never its command line, and the child's output
is kept in the run folder with every secret redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bonzo_bulk.errors import ConfigError
from bonzo_bulk.models import DeliveryResult, PlannedRecord
from bonzo_bulk.secrets import redact

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
PLAN_ENV, JOURNAL_ENV, STOP_ENV, HOOK_ENV = (
    "BONZO_LOAD_PLAN",
    "BONZO_LOAD_JOURNAL",
    "BONZO_LOAD_STOP",
    "BONZO_LOAD_HOOK",
)
EXIT_GRACE_S = 15.0


@dataclass(frozen=True, slots=True)
class Distribution:
    """Where the Locust senders run: ``processes`` on this machine, or a master awaiting remote workers."""

    processes: int = 1
    master: bool = False
    expect_workers: int = 1
    bind_host: str = "127.0.0.1"
    bind_port: int = 0

    @property
    def workers(self) -> int:
        return self.expect_workers if self.master else self.processes


@dataclass(frozen=True, slots=True)
class JournalRow:
    """One arrival as the sender saw it (epoch seconds); ``sent`` None means dropped or cancelled (not sent)."""

    seq: int
    intended: float
    sent: float | None
    answered: float | None
    status: int | None
    error_category: str | None

    @property
    def dropped(self) -> bool:
        return self.error_category == "dropped"

    def delivery(self, record: PlannedRecord) -> DeliveryResult:
        """The engine's delivery result for a sent arrival (latency from the real send; total from intended)."""
        assert self.sent is not None
        answered = self.answered if self.answered is not None else self.sent
        return DeliveryResult(
            record_name=record.name,
            status=self.status,
            attempts=1,
            latency_ms=round((answered - self.sent) * 1000, 3),
            total_ms=round((answered - self.intended) * 1000, 3),
            sent_at=datetime.fromtimestamp(self.sent, UTC),
            answered_at=datetime.fromtimestamp(answered, UTC) if self.status else None,
            error_category="reset" if self.error_category == "closed" else self.error_category,
            error=_error_text(self.error_category, self.status),
        )


def _error_text(category: str | None, status: int | None) -> str | None:
    if category is None:
        return None
    if category == "closed":
        return "the sender's pooled connection was already closed by the server (a sender error, not the system's)"
    return f"{category} (status {status or '-'})"


def free_port(host: str = "127.0.0.1") -> int:
    """A free TCP port on ``host`` for the Locust master."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def locust_command(distribution: Distribution) -> list[str]:
    """The ``python -m locust`` command line of the master (it forks ``--processes`` workers itself)."""
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
        "--stop-timeout",
        "5",
        "--master-bind-host",
        distribution.bind_host,
        "--master-bind-port",
        str(distribution.bind_port),
    ]
    if distribution.master:
        command += ["--master", "--expect-workers", str(distribution.expect_workers)]
    else:
        command += ["--processes", str(distribution.processes), "--master-port", str(distribution.bind_port)]
    return command


def worker_command(master_host: str, master_port: int, processes: int) -> list[str]:
    """The command a worker machine runs (``bonzo-bulk load --worker``): the plan comes from the master."""
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker"]
    command += ["--master-host", master_host, "--master-port", str(master_port), "--loglevel", "WARNING"]
    if processes > 1:
        command += ["--processes", str(processes)]
    return command


class LocustChild:
    """A running Locust master (and its workers); ``rows()`` returns journal rows written since the last call."""

    def __init__(self, folder: Path, *, hook_url: str, distribution: Distribution) -> None:
        self.folder = folder
        self.plan = folder / "plan.jsonl"
        self.journal = folder / "journal.jsonl"
        self.stop_file = folder / "stop"
        self.log = folder / "locust.log"
        self.hook_url = hook_url
        self.distribution = distribution
        self.process: asyncio.subprocess.Process | None = None
        self._offset = 0
        self._partial = b""
        self._output: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the master; with ``--processes`` Locust forks the workers itself."""
        self.journal.write_bytes(b"")
        self.stop_file.unlink(missing_ok=True)
        env = {
            **os.environ,
            PLAN_ENV: str(self.plan),
            JOURNAL_ENV: str(self.journal),
            STOP_ENV: str(self.stop_file),
            HOOK_ENV: self.hook_url,
        }
        try:
            self.process = await asyncio.create_subprocess_exec(
                *locust_command(self.distribution),
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise ConfigError(f"cannot start Locust ({exc.strerror}); is the locust package installed?") from exc
        self._output = asyncio.create_task(self._keep_output())

    async def _keep_output(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        with self.log.open("w", encoding="utf-8") as out:
            async for line in self.process.stdout:
                out.write(redact(line.decode("utf-8", "replace")))
                out.flush()

    def rows(self) -> list[JournalRow]:
        """Journal rows appended since the last call (whole lines only)."""
        try:
            with self.journal.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        return [_row(json.loads(line)) for line in lines if line.strip()]

    def request_stop(self) -> None:
        """Ask the master to stop taking arrivals; what is in flight still answers and is journaled."""
        self.stop_file.write_text("stop\n", encoding="utf-8")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def wait(self, grace: float | None = None) -> int:
        """Wait for the master to exit (killed after ``grace`` seconds); returns its exit code."""
        assert self.process is not None
        try:
            code = await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            self.kill()
            code = await self.process.wait()
        if self._output is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._output
        return code

    def kill(self) -> None:
        """Terminate the master's whole process group (its forked workers too)."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def tail_of_log(self, lines: int = 15) -> str:
        """The last lines of Locust's output (already redacted)."""
        try:
            return "\n".join(self.log.read_text(encoding="utf-8").splitlines()[-lines:])
        except OSError:
            return ""


def _row(values: list[Any]) -> JournalRow:
    seq, intended, sent, answered, status, category = values
    return JournalRow(
        int(seq),
        float(intended),
        None if sent is None else float(sent),
        None if answered is None else float(answered),
        None if status is None else int(status),
        category,
    )
