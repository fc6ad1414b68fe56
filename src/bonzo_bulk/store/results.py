"""A finished run in the run store: each phase's figures, stray checks and diagnoses, the run's headline.

Written once the run is done (:func:`write_result`, idempotent) and read back as it was written
(:func:`read_result`): the diagnoses are the ones the run made, with the causes and fixes the judge
worded from the contract's provenance, never worked out again from the stored checks.

A run stored before diagnoses were kept (schema version 6 and older) reads back without any: its
failures are all listed record by record, each check's count of judged records is taken from its
stored checks, and a note says so.
"""

from __future__ import annotations

import json
from collections.abc import Set
from datetime import datetime

from bonzo_bulk.models import Diagnosis, PhaseKind, PhaseResult, RunResult
from bonzo_bulk.store import codec, ledger
from bonzo_bulk.store.backend import Backend, Row
from bonzo_bulk.store.rows import FIGURE_COLUMNS, RunSummary

UNDIAGNOSED_NOTE = (
    "this run was stored before bonzo-bulk kept its diagnoses: its failures are listed record by record,"
    " none as systemic"
)


def write_result(db: Backend, result: RunResult, streamed: Set[tuple[str, str]]) -> None:
    """Store each phase's figures, stray checks and diagnoses, then the run's headline (in ``db``'s transaction).

    A complete phase whose outcomes are not in ``streamed`` (a result made in memory) has its ledger
    written whole from its ``outcomes`` (prospects keep their deletion marks).
    """
    run_id = result.run_id
    exists = db.fetchone("SELECT 1 AS found FROM runs WHERE run_id = ?", (run_id,))
    if exists is None:
        db.execute(
            "INSERT INTO runs (run_id, test_name, integration, target, started_at, dry_run,"
            " config_snapshot, kind) VALUES (?, ?, ?, ?, ?, ?, '{}', ?)",
            (
                run_id,
                result.test_name,
                result.integration,
                result.target,
                result.started_at.isoformat(),
                0,
                result.kind,
            ),
        )
    db.execute("DELETE FROM phases WHERE run_id = ?", (run_id,))
    db.execute("DELETE FROM diagnoses WHERE run_id = ?", (run_id,))
    for seq, phase in enumerate(result.phases):
        if phase.complete and (run_id, phase.kind) not in streamed:
            ledger.write_phase(db, run_id, phase)
        ledger.write_stray_checks(db, run_id, phase.kind, phase.stray_checks)
        codec.insert(db, "diagnoses", run_id, phase.kind, 0, phase.diagnoses, codec.DIAGNOSIS_COLUMNS)
        db.execute(
            "INSERT INTO phases (run_id, phase, seq, metrics, unexpected_prospects, settled,"
            " settle_seconds, passed, judged) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                phase.kind,
                seq,
                codec.dumps(phase.metrics),
                codec.dumps(phase.unexpected_prospects),
                int(phase.settled),
                phase.settle_seconds,
                int(phase.passed),
                codec.dumps(phase.judged),
            ),
        )
    summary = RunSummary.from_result(result)
    details = {
        "test_name": result.test_name,
        "integration": result.integration,
        "config_path": result.config_path,
        "target": result.target,
        "started_at": result.started_at.isoformat(),
        "finished_at": result.finished_at.isoformat(),
        "dry_run": int(result.dry_run),
        "notes": codec.dumps(result.notes),
        "passed": int(result.passed),
        **{name: getattr(summary, name) for name in FIGURE_COLUMNS},
    }
    assignments = ", ".join(f"{name} = ?" for name in details)
    db.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", (*details.values(), run_id))  # noqa: S608


def read_result(db: Backend, run: Row, keep: int) -> RunResult:
    """A finished run (its ``runs`` row given) with each phase's outcomes: all of them when the phase has at
    most ``keep`` records, else its failed ones up to ``keep``; ``keep=0`` reads the figures alone."""
    run_id = run["run_id"]
    rows = db.fetchall("SELECT * FROM phases WHERE run_id = ? ORDER BY seq", (run_id,))
    notes = tuple(json.loads(run["notes"]))
    if any(row["judged"] is None for row in rows):
        notes = (*notes, UNDIAGNOSED_NOTE)
    return RunResult(
        run_id=run_id,
        test_name=run["test_name"],
        integration=run["integration"],
        config_path=run["config_path"],
        target=run["target"],
        started_at=datetime.fromisoformat(run["started_at"]),
        finished_at=datetime.fromisoformat(run["finished_at"]),
        dry_run=bool(run["dry_run"]),
        phases=tuple(_read_phase(db, run_id, row, keep) for row in rows),
        notes=notes,
        kind=run["kind"],
    )


def _read_phase(db: Backend, run_id: str, row: Row, keep: int) -> PhaseResult:
    kind = row["phase"]
    complete = ledger.count_outcomes(db, run_id, kind) <= keep
    if row["judged"] is not None:
        judged = dict(json.loads(row["judged"]))
    else:  # stored before the judged counts were: count the stored checks, unless only the figures are wanted
        judged = ledger.judged_checks(db, run_id, kind) if keep else {}
    return PhaseResult(
        kind=kind,
        metrics=codec.metrics_from_json(json.loads(row["metrics"])),
        outcomes=tuple(ledger.read_outcomes(db, run_id, kind, failed_only=not complete, limit=keep)),
        complete=complete,
        failed_records=ledger.count_outcomes(db, run_id, kind, failed_only=True),
        stray_checks=tuple(ledger.stray_checks(db, run_id, kind)),
        unexpected_prospects=tuple(json.loads(row["unexpected_prospects"])),
        settled=bool(row["settled"]),
        settle_seconds=row["settle_seconds"],
        diagnoses=_diagnoses(db, run_id, kind),
        judged=judged,
    )


def _diagnoses(db: Backend, run_id: str, kind: PhaseKind) -> tuple[Diagnosis, ...]:
    rows = db.fetchall("SELECT * FROM diagnoses WHERE run_id = ? AND phase = ? ORDER BY seq", (run_id, kind))
    return tuple(Diagnosis(phase=kind, **codec.decode(row, codec.DIAGNOSIS_COLUMNS)) for row in rows)
