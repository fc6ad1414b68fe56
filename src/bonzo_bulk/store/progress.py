"""Runs in flight, as the run store sees them: one row per run with its funnel (planned -> sent -> accepted ->
visible in Bonzo -> judged) and per-user split, rewritten as the run goes (migration 10: ``run_progress``).

A run writes its row through the store (a subscriber to the engine's events, at most once a second), so a
server reading the same store (``bonzo-bulk serve``'s ``/live``) shows runs started on any machine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bonzo_bulk.store.backend import Backend, Row


@dataclass(frozen=True, slots=True)
class UserProgress:
    """One test user's share of a run in flight."""

    planned: int = 0
    accepted: int = 0
    judged: int = 0
    passed: int = 0


@dataclass(frozen=True, slots=True)
class RunProgress:
    """A run's funnel at one moment: each stage's count, the per-user split, and whether it is over."""

    run_id: str
    test_name: str
    integration: str
    target: str
    started_at: datetime
    updated_at: datetime
    planned: int = 0
    sent: int = 0
    accepted: int = 0
    visible: int = 0
    """Prospects seen in Bonzo at the last poll (of ``expected``)."""
    expected: int = 0
    """Prospects the run waits to see (valid records the hook accepted)."""
    judged: int = 0
    failed: int = 0
    per_user: Mapping[str, UserProgress] = field(default_factory=dict)
    finished: bool = False
    passed: bool | None = None

    @property
    def backlog(self) -> int:
        """Accepted leads Bonzo does not show yet: the queue inside the integration."""
        return max(0, self.expected - self.visible) if self.expected else max(0, self.accepted - self.visible)


_COLUMNS = (
    "run_id",
    "test_name",
    "integration",
    "target",
    "started_at",
    "updated_at",
    "planned",
    "sent",
    "accepted",
    "visible",
    "expected",
    "judged",
    "failed",
    "per_user",
    "finished",
    "passed",
)


def write(db: Backend, progress: RunProgress) -> None:
    """Insert or replace a run's row."""
    values = (
        progress.run_id,
        progress.test_name,
        progress.integration,
        progress.target,
        progress.started_at.isoformat(),
        progress.updated_at.isoformat(),
        progress.planned,
        progress.sent,
        progress.accepted,
        progress.visible,
        progress.expected,
        progress.judged,
        progress.failed,
        json.dumps({email: [u.planned, u.accepted, u.judged, u.passed] for email, u in progress.per_user.items()}),
        int(progress.finished),
        None if progress.passed is None else int(progress.passed),
    )
    updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
    db.execute(
        f"INSERT INTO run_progress ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"  # noqa: S608
        f" ON CONFLICT (run_id) DO UPDATE SET {updates}",
        values,
    )


def _progress(row: Row) -> RunProgress:
    users = json.loads(row["per_user"] or "{}")
    return RunProgress(
        run_id=row["run_id"],
        test_name=row["test_name"],
        integration=row["integration"],
        target=row["target"],
        started_at=datetime.fromisoformat(row["started_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        planned=int(row["planned"]),
        sent=int(row["sent"]),
        accepted=int(row["accepted"]),
        visible=int(row["visible"]),
        expected=int(row["expected"]),
        judged=int(row["judged"]),
        failed=int(row["failed"]),
        per_user={email: UserProgress(*counts) for email, counts in users.items()},
        finished=bool(row["finished"]),
        passed=None if row["passed"] is None else bool(row["passed"]),
    )


def read_since(db: Backend, since: datetime) -> list[RunProgress]:
    """Every run whose progress was written at or after ``since`` (in flight, or just over), newest first."""
    rows = db.fetchall(
        "SELECT * FROM run_progress WHERE updated_at >= ? ORDER BY started_at DESC, run_id DESC", (since.isoformat(),)
    )
    return [_progress(row) for row in rows]


def read_one(db: Backend, run_id: str) -> RunProgress | None:
    """One run's latest progress, if it wrote any."""
    row = db.fetchone("SELECT * FROM run_progress WHERE run_id = ?", (run_id,))
    return _progress(row) if row is not None else None
