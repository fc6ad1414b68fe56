"""The monitor's memory in the run store: alert state, each monitor run, each notification or ping and its result.

Additive tables beside the runs (``monitor_*``, schema migration 4), written through the store's own
backend so the state survives restarts and travels with the history (``store copy`` moves it too, on
SQLite or PostgreSQL). Channels are stored as redacted labels only. A file lock keeps two monitor runs
of the same monitor on one machine from overlapping.
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

from bonzo_bulk.errors import MonitorLocked
from bonzo_bulk.monitor.policy import AlertState, Status
from bonzo_bulk.store import RunStore


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
    notices: tuple[str, ...]
    """The run's own notices (``alert``) and each problem's (``new 3f2a9c01d4``)."""


class MonitorStore:
    """The monitor tables (schema migration 4) of an open run store, SQLite or PostgreSQL."""

    def __init__(self, store: RunStore) -> None:
        self._store = store
        self._db = store.backend

    def load_state(self, name: str) -> AlertState:
        """The alert state of a monitor (a fresh one the first time)."""
        with self._store.operation(f"read the alert state of {name}"):
            row = self._db.fetchone("SELECT state FROM monitor_state WHERE name = ?", (name,))
        return AlertState.from_json(json.loads(row["state"])) if row else AlertState()

    def save(self, run: MonitorRun, state: AlertState, deliveries: Sequence[Delivery]) -> None:
        """Store a monitor run, what it sent and the new alert state, in one transaction."""
        started = run.started_at.isoformat()
        with self._store.operation(f"store the monitor run of {run.name}"), self._db.transaction():
            self._db.execute(
                "INSERT INTO monitor_state (name, state, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                (run.name, json.dumps(state.to_json()), run.finished_at.isoformat()),
            )
            self._db.execute(
                "INSERT INTO monitor_runs (name, started_at, bulk_run_id, finished_at, status, exit_code, reason,"
                " notices) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
            self._db.executemany(
                "INSERT INTO monitor_deliveries (name, started_at, seq, kind, channel, ok, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run.name, started, seq, d.kind, d.channel, int(d.ok), d.detail) for seq, d in enumerate(deliveries)],
            )

    def runs(self, name: str, *, limit: int = 20) -> list[tuple[MonitorRun, list[Delivery]]]:
        """A monitor's latest runs, newest first, each with what it sent."""
        with self._store.operation(f"list the monitor runs of {name}"):
            rows = self._db.fetchall(
                "SELECT name, started_at, finished_at, bulk_run_id, status, exit_code, reason, notices"
                " FROM monitor_runs WHERE name = ? ORDER BY started_at DESC LIMIT ?",
                (name, limit),
            )
            found = []
            for row in rows:
                run = MonitorRun(
                    name=row["name"],
                    started_at=datetime.fromisoformat(row["started_at"]),
                    finished_at=datetime.fromisoformat(row["finished_at"]),
                    run_id=row["bulk_run_id"],
                    status=row["status"],
                    exit_code=int(row["exit_code"]),
                    reason=row["reason"],
                    notices=tuple(json.loads(row["notices"])),
                )
                sent = self._db.fetchall(
                    "SELECT kind, channel, ok, detail FROM monitor_deliveries"
                    " WHERE name = ? AND started_at = ? ORDER BY seq",
                    (row["name"], row["started_at"]),
                )
                found.append((run, [Delivery(s["kind"], s["channel"], bool(s["ok"]), s["detail"]) for s in sent]))
        return found

    def names(self) -> list[str]:
        """Every monitor with a stored state."""
        with self._store.operation("list monitors"):
            return [str(r["name"]) for r in self._db.fetchall("SELECT name FROM monitor_state ORDER BY name")]


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
