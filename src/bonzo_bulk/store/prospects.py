"""What cleanup reads from the run store and marks in it: the prospects a run made (their owners and deletion
marks), the records it planned, which of them the webhook accepted and which have no answer recorded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bonzo_bulk.store import codec
from bonzo_bulk.store.backend import Backend
from bonzo_bulk.store.rows import DeletedProspect, StoredProspect, StoredRecord


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


def mark_deleted(db: Backend, run_id: str, deleted: Sequence[DeletedProspect], at: datetime) -> None:
    """Note that cleanup deleted these prospects at ``at``: a prospect the run saw gets its mark; one it never saw
    (the run stopped before settling) is added, under the record its email (else first name) names."""
    records = run_records(db, run_id)
    by_email = {r.email.lower(): r for r in records if r.email}
    by_name = {r.first_name: r for r in records}
    rows: dict[str, tuple[Any, ...]] = {}
    for prospect in deleted:
        record = by_email.get(str(prospect.email or "").lower()) or by_name.get(str(prospect.first_name or ""))
        phase, name = (record.phase, record.name) if record else ("", str(prospect.first_name or prospect.prospect_id))
        key = str(prospect.prospect_id)
        rows[key] = (
            run_id,
            key,
            phase,
            name,
            prospect.owner_user_id,
            prospect.email,
            prospect.first_name,
            at.isoformat(),
        )
    db.executemany(
        "INSERT INTO prospects (run_id, prospect_id, phase, record_name, owner_user_id, email, first_name,"
        " deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (run_id, prospect_id) DO UPDATE SET deleted_at = excluded.deleted_at",
        list(rows.values()),
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


def unanswered_records(db: Backend, run_id: str) -> set[str]:
    """Names of the run's records with no delivery recorded that should become prospects (not 'drop' cases): a
    run that died before recording their answer may have sent them (each record is stored before it is sent)."""
    rows = db.fetchall(
        "SELECT r.name FROM records r WHERE r.run_id = ? AND COALESCE(r.expected_handling, '') != 'drop'"
        " AND NOT EXISTS (SELECT 1 FROM deliveries d"
        " WHERE d.run_id = r.run_id AND d.phase = r.phase AND d.record_name = r.name)",
        (run_id,),
    )
    return {str(r["name"]) for r in rows}
