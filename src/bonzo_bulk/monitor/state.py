"""The monitor's memory in the run store: alert state, each monitor run, each notification or ping and its result.

Additive tables beside the runs (``monitor_*``), written through the store's own connection so the
state survives restarts and travels with the history. Channels are stored as redacted labels only.
A file lock keeps two monitor runs of the same monitor from overlapping.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from bonzo_bulk.errors import BonzoBulkError, MonitorLocked, StoreError
from bonzo_bulk.monitor.policy import AlertState, NoticeKind, Status

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS monitor_state (name TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS monitor_runs (name TEXT NOT NULL, started_at TEXT NOT NULL, run_id TEXT,"
    " finished_at TEXT NOT NULL, status TEXT NOT NULL, exit_code INTEGER NOT NULL, reason TEXT NOT NULL,"
    " notices TEXT NOT NULL, PRIMARY KEY (name, started_at))",
    "CREATE TABLE IF NOT EXISTS monitor_deliveries (name TEXT NOT NULL, started_at TEXT NOT NULL,"
    " seq INTEGER NOT NULL, kind TEXT NOT NULL, channel TEXT NOT NULL, ok INTEGER NOT NULL, detail TEXT NOT NULL,"
    " PRIMARY KEY (name, started_at, seq))",
)


class Connection(Protocol):
    """The DB-API surface used here (sqlite3 or psycopg connections both have it)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification or ping to one channel, and how it went (the channel is a redacted label)."""

    kind: str
    channel: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class MonitorRun:
    """One ``monitor run`` as stored: status, exit code, why, what it sent."""

    name: str
    started_at: datetime
    finished_at: datetime
    run_id: str | None
    status: Status
    exit_code: int
    reason: str
    notices: tuple[NoticeKind, ...]


class MonitorStore:
    """The monitor tables over an open run-store connection."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection
        self._marks = "?" if type(connection).__module__.startswith("sqlite3") else "%s"
        with self._op("prepare the monitor tables"):
            for statement in SCHEMA:
                self._db.execute(statement)

    def _sql(self, text: str) -> str:
        return text.replace("?", self._marks)

    @contextlib.contextmanager
    def _op(self, what: str) -> Iterator[None]:
        try:
            yield
        except BonzoBulkError:
            raise
        except Exception as exc:  # the driver's own errors (sqlite3 or psycopg) enter here
            raise StoreError(f"run store: could not {what}: {exc}") from exc

    def load_state(self, name: str) -> AlertState:
        """The alert state of a monitor (a fresh one the first time)."""
        with self._op(f"read the alert state of {name}"):
            row = self._db.execute(self._sql("SELECT state FROM monitor_state WHERE name = ?"), (name,)).fetchone()
        return AlertState.from_json(json.loads(row[0])) if row else AlertState()

    def save(self, run: MonitorRun, state: AlertState, deliveries: Sequence[Delivery]) -> None:
        """Store a monitor run, what it sent and the new alert state, in one transaction."""
        with self._op(f"store monitor run of {run.name}"):
            self._db.execute("BEGIN")
            try:
                self._db.execute(
                    self._sql(
                        "INSERT INTO monitor_state (name, state, updated_at) VALUES (?, ?, ?)"
                        " ON CONFLICT (name) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at"
                    ),
                    (run.name, json.dumps(state.to_json()), run.finished_at.isoformat()),
                )
                started = run.started_at.isoformat()
                self._db.execute(
                    self._sql(
                        "INSERT INTO monitor_runs (name, started_at, run_id, finished_at, status, exit_code, reason,"
                        " notices) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    ),
                    (
                        run.name,
                        started,
                        run.run_id,
                        run.finished_at.isoformat(),
                        run.status,
                        run.exit_code,
                        run.reason,
                        json.dumps(list(run.notices)),
                    ),
                )
                for seq, d in enumerate(deliveries):
                    self._db.execute(
                        self._sql(
                            "INSERT INTO monitor_deliveries (name, started_at, seq, kind, channel, ok, detail)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?)"
                        ),
                        (run.name, started, seq, d.kind, d.channel, int(d.ok), d.detail),
                    )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def runs(self, name: str, *, limit: int = 20) -> list[tuple[MonitorRun, list[Delivery]]]:
        """A monitor's latest runs, newest first, each with what it sent."""
        with self._op(f"list the monitor runs of {name}"):
            rows = self._db.execute(
                self._sql(
                    "SELECT name, started_at, finished_at, run_id, status, exit_code, reason, notices"
                    " FROM monitor_runs WHERE name = ? ORDER BY started_at DESC LIMIT ?"
                ),
                (name, limit),
            ).fetchall()
            found = []
            for row in rows:
                run = MonitorRun(
                    name=row[0],
                    started_at=datetime.fromisoformat(row[1]),
                    finished_at=datetime.fromisoformat(row[2]),
                    run_id=row[3],
                    status=row[4],
                    exit_code=int(row[5]),
                    reason=row[6],
                    notices=tuple(json.loads(row[7])),
                )
                sent = self._db.execute(
                    self._sql(
                        "SELECT kind, channel, ok, detail FROM monitor_deliveries"
                        " WHERE name = ? AND started_at = ? ORDER BY seq"
                    ),
                    (row[0], row[1]),
                ).fetchall()
                found.append((run, [Delivery(s[0], s[1], bool(s[2]), s[3]) for s in sent]))
        return found

    def names(self) -> list[str]:
        """Every monitor with a stored state."""
        with self._op("list monitors"):
            return [str(r[0]) for r in self._db.execute("SELECT name FROM monitor_state ORDER BY name").fetchall()]


@contextlib.contextmanager
def run_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock on ``path`` for one monitor run (released even if the process dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise MonitorLocked(
                f"a previous monitor run ({holder}) still holds {path}; this run is skipped so runs never overlap"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()
