"""Problems in the run store (migration 9): the rows of failures tracked across runs, and nothing of their logic.

What a problem is and how a run changes it is :mod:`bonzo_bulk.problems`; here are only its rows. A
problem's id is its primary key, so two runs can never store the same problem twice, and
:func:`lock_scope` serialises the trackers of one integration and target (PostgreSQL: an advisory lock
for the transaction; SQLite's ``BEGIN IMMEDIATE`` already serialises every writer).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bonzo_bulk.store import codec
from bonzo_bulk.store.backend import Backend, Row
from bonzo_bulk.store.rows import PROBLEM_COLUMNS, ProblemEvent, ProblemRow, ProblemSeen

_TIMES = ("first_seen_at", "last_seen_at", "ack_at", "ack_until", "muted_until", "resolved_at", "last_notice_at")
_QUOTED = ", ".join(f'"{c}"' for c in PROBLEM_COLUMNS)


def lock_scope(db: Backend, integration: str, target: str) -> None:
    """Hold, until the transaction ends, the lock of one integration and target's problems."""
    if db.dialect == "postgresql":
        key = int.from_bytes(
            hashlib.sha256(f"problems|{integration}|{target}".encode()).digest()[:8], "big", signed=True
        )
        db.fetchone("SELECT pg_advisory_xact_lock(?) AS locked", (key,))


def _row(row: Row) -> ProblemRow:
    values: dict[str, Any] = {name: row[name] for name in PROBLEM_COLUMNS}
    for name in _TIMES:
        values[name] = codec.parse_time(values[name])
    values["escalated"] = bool(values["escalated"])
    return ProblemRow(**values)


def _cells(problem: ProblemRow) -> list[Any]:
    cells: list[Any] = []
    for name in PROBLEM_COLUMNS:
        value = getattr(problem, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, bool):
            value = int(value)
        cells.append(value)
    return cells


def read(db: Backend, *, integration: str | None = None, target: str | None = None) -> list[ProblemRow]:
    """Every problem (of one integration and target, when given), the most recently seen first."""
    where, params = "", []
    if integration is not None:
        where, params = "WHERE integration = ?", [integration]
    if target is not None:
        where += (" AND" if where else "WHERE") + " target = ?"
        params.append(target)
    rows = db.fetchall(f"SELECT {_QUOTED} FROM problems {where} ORDER BY last_seen_at DESC, problem_id", params)  # noqa: S608
    return [_row(row) for row in rows]


def read_one(db: Backend, problem_id: str) -> ProblemRow | None:
    row = db.fetchone(f"SELECT {_QUOTED} FROM problems WHERE problem_id = ?", (problem_id,))  # noqa: S608
    return _row(row) if row is not None else None


def ids_like(db: Backend, prefix: str) -> list[str]:
    """The ids that start with ``prefix``."""
    rows = db.fetchall("SELECT problem_id FROM problems WHERE problem_id LIKE ? ORDER BY problem_id", (f"{prefix}%",))
    return [str(r["problem_id"]) for r in rows]


def write(db: Backend, problems: Sequence[ProblemRow]) -> None:
    """Insert or replace each problem's row (the caller holds :func:`lock_scope`)."""
    if not problems:
        return
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in PROBLEM_COLUMNS if c != "problem_id")
    marks = ", ".join("?" for _ in PROBLEM_COLUMNS)
    db.executemany(
        f"INSERT INTO problems ({_QUOTED}) VALUES ({marks}) ON CONFLICT (problem_id) DO UPDATE SET {updates}",  # noqa: S608
        [_cells(p) for p in problems],
    )


def add_seen(db: Backend, seen: Sequence[ProblemSeen]) -> None:
    db.executemany(
        "INSERT INTO problem_runs (problem_id, bulk_run_id, seen_at, failed, judged, samples) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (problem_id, bulk_run_id) DO UPDATE SET failed = excluded.failed, judged = excluded.judged,"
        " samples = excluded.samples",
        [
            (s.problem_id, s.run_id, s.seen_at.isoformat(), s.failed, s.judged, json.dumps(list(s.samples)))
            for s in seen
        ],
    )


def read_seen(db: Backend, problem_id: str, *, limit: int) -> list[ProblemSeen]:
    """The latest runs a problem appeared in, newest first."""
    rows = db.fetchall(
        "SELECT problem_id, bulk_run_id, seen_at, failed, judged, samples FROM problem_runs WHERE problem_id = ?"
        " ORDER BY seen_at DESC, bulk_run_id DESC LIMIT ?",
        (problem_id, limit),
    )
    return [
        ProblemSeen(
            str(r["problem_id"]),
            str(r["bulk_run_id"]),
            datetime.fromisoformat(r["seen_at"]),
            int(r["failed"]),
            int(r["judged"]),
            tuple(json.loads(r["samples"])),
        )
        for r in rows
    ]


def add_events(db: Backend, events: Sequence[ProblemEvent]) -> None:
    db.executemany(
        "INSERT INTO problem_events (problem_id, at, event, actor, detail) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (problem_id, at, event) DO NOTHING",
        [(e.problem_id, e.at.isoformat(), e.event, e.actor, e.detail) for e in events],
    )


def read_events(db: Backend, problem_id: str, *, limit: int) -> list[ProblemEvent]:
    """A problem's latest history, newest first."""
    rows = db.fetchall(
        "SELECT problem_id, at, event, actor, detail FROM problem_events WHERE problem_id = ?"
        " ORDER BY at DESC, event LIMIT ?",
        (problem_id, limit),
    )
    return [
        ProblemEvent(
            str(r["problem_id"]), datetime.fromisoformat(r["at"]), str(r["event"]), str(r["actor"]), str(r["detail"])
        )
        for r in rows
    ]


def ids_seen_in(db: Backend, run_id: str) -> list[str]:
    """The problems a run appeared in."""
    rows = db.fetchall("SELECT problem_id FROM problem_runs WHERE bulk_run_id = ? ORDER BY problem_id", (run_id,))
    return [str(r["problem_id"]) for r in rows]
