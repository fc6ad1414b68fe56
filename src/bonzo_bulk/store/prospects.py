"""What cleanup reads from the run store and marks in it: the prospects a run made (their owners and deletion
marks), the records it planned, and which of them the webhook accepted."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bonzo_bulk.store import codec
from bonzo_bulk.store.backend import Backend
from bonzo_bulk.store.rows import StoredProspect, StoredRecord


def observed_prospects(db: Backend, run_id: str) -> list[StoredProspect]:
    """Every prospect the run's records became (deleted ones carry ``deleted_at``)."""
    rows = db.fetchall("SELECT * FROM prospects WHERE run_id = ? ORDER BY phase, record_name, prospect_id", (run_id,))
    return [
        StoredProspect(
            prospect_id=codec.prospect_key(r["prospect_id"]),
            owner_user_id=r["owner_user_id"],
            email=r["email"],
            first_name=r["first_name"],
            phase=r["phase"],
            deleted_at=codec.parse_time(r["deleted_at"]),
        )
        for r in rows
    ]


def run_records(db: Backend, run_id: str) -> list[StoredRecord]:
    """The records a run planned, finished or not, in the order they were stored."""
    rows = db.fetchall(
        "SELECT name, phase, first_name, last_name, email, expected_user_id FROM records WHERE run_id = ? ORDER BY seq",
        (run_id,),
    )
    return [
        StoredRecord(
            name=r["name"],
            phase=r["phase"],
            first_name=r["first_name"],
            last_name=r["last_name"],
            email=r["email"],
            expected_user_id=r["expected_user_id"],
        )
        for r in rows
    ]


def mark_deleted(db: Backend, run_id: str, prospect_ids: Sequence[int | str], at: datetime) -> None:
    """Note that cleanup deleted these prospects at ``at``."""
    db.executemany(
        "UPDATE prospects SET deleted_at = ? WHERE run_id = ? AND prospect_id = ?",
        [(at.isoformat(), run_id, str(pid)) for pid in prospect_ids],
    )


def accepted_records(db: Backend, run_id: str) -> set[str]:
    """Names of the run's records the webhook accepted and that should become prospects (not 'drop' cases)."""
    rows = db.fetchall(
        "SELECT d.record_name FROM deliveries d JOIN records r"
        " ON r.run_id = d.run_id AND r.phase = d.phase AND r.name = d.record_name"
        " WHERE d.run_id = ? AND d.status < 400 AND COALESCE(r.expected_handling, '') != 'drop'",
        (run_id,),
    )
    return {str(r["record_name"]) for r in rows}
