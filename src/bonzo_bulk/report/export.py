"""``bonzo-bulk export RUN``: a run's full per-record ledger as JSON lines or CSV, streamed from the run store.

The JSON summary stays small (aggregates and the first failures); this is where every record's
payload, delivery, observation, checks and judged facts (processing time, each prospect's owner and team)
go. Rows are read from the store (SQLite or PostgreSQL)
in batches and written as they are read, so a 100,000-record run exports in constant memory.
Every line is redacted once.

Example::

    bonzo-bulk export RUN_ID --format jsonl --out ledger.jsonl
    bonzo-bulk export RUN_ID --format csv | head
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from bonzo_bulk.errors import ConfigError
from bonzo_bulk.secrets import redact
from bonzo_bulk.store import codec

if TYPE_CHECKING:
    from bonzo_bulk.store.backend import Backend, Row

Format = Literal["jsonl", "csv"]
_RECORD = tuple(c for c in codec.RECORD_COLUMNS if c != "body") + codec.USER_COLUMNS
_DELIVERY = tuple(c for c in codec.DELIVERY_COLUMNS if c != "record_name")
_OBSERVATION = tuple(c for c in codec.OBSERVATION_COLUMNS if c != "record_name")
_CHECK = tuple(c for c in codec.CHECK_COLUMNS if c != "record_name")
_OUTCOME = (
    "processing_low",
    "processing_seconds",
    "processing_source",
    "processing_resolution",
    "visible_after",
    "placements",
)
"""The facts the judge derived once per record (``outcomes``, migrations 6 and 11); absent for a record not judged.
Processing time is the interval ``[processing_low, processing_seconds]``; ``processing_resolution`` is its width."""
CSV_COLUMNS = (
    "phase",
    "index",
    "name",
    "record_id",
    "email",
    "expected_user_id",
    "expected_team_id",
    "invalid_case",
    "expected_handling",
    "status",
    "attempts",
    "latency_ms",
    "total_ms",
    "sent_at",
    "answered_at",
    "error_category",
    "error",
    "prospects",
    "prospect_ids",
    "seen_in",
    "first_seen_at",
    "polls",
    "processing_low",
    "processing_seconds",
    "processing_source",
    "checks",
    "failed_checks",
    "first_failure",
    "passed",
    "payload",
)


def _select(alias: str, columns: tuple[str, ...]) -> str:
    return ", ".join(f'{alias}."{c}" AS "{alias}.{c}"' for c in columns)


_ROWS = f"""
SELECT r.phase AS phase, {_select("r", _RECORD)}, d.record_name IS NOT NULL AS delivered, {_select("d", _DELIVERY)},
       o.record_name IS NOT NULL AS observed, {_select("o", _OBSERVATION)},
       u.record_name IS NOT NULL AS judged, {_select("u", _OUTCOME)}
FROM records r
LEFT JOIN deliveries d ON d.run_id = r.run_id AND d.phase = r.phase AND d.record_name = r.name
LEFT JOIN observations o ON o.run_id = r.run_id AND o.phase = r.phase AND o.record_name = r.name
LEFT JOIN outcomes u ON u.run_id = r.run_id AND u.phase = r.phase AND u.record_name = r.name
WHERE r.run_id = ? ORDER BY r.seq
"""  # noqa: S608 - column names are fixed
_CHECKS = f"""
SELECT c.phase AS phase, c.record_name AS record_name, {_select("c", _CHECK)}
FROM checks c JOIN records r ON r.run_id = c.run_id AND r.phase = c.phase AND r.name = c.record_name
WHERE c.run_id = ? ORDER BY r.seq, c.seq
"""  # noqa: S608
_LOOSE_CHECKS = f"""
SELECT c.phase AS phase, c.record_name AS record_name, {_select("c", _CHECK)}
FROM checks c LEFT JOIN records r ON r.run_id = c.run_id AND r.phase = c.phase AND r.name = c.record_name
WHERE c.run_id = ? AND r.name IS NULL ORDER BY c.phase, c.seq
"""  # noqa: S608


def _part(row: Row, alias: str, columns: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for column in columns:
        raw = row[f"{alias}.{column}"]
        values[column] = json.loads(raw) if column in codec.JSON_COLUMNS and raw is not None else raw
    if "passed" in values:
        values["passed"] = bool(values["passed"])
    return values


def _outcome(row: Row) -> dict[str, Any]:
    facts = _part(row, "u", _OUTCOME)
    placements = json.loads(facts.pop("placements") or "[]")
    facts["placements"] = [{"owner_id": o, "owner_email": e, "team_id": t} for o, e, t in placements]
    return facts


def _check(row: Row) -> dict[str, Any]:
    return _part(row, "c", _CHECK)


def _rows(db: Backend, sql: str, run_id: str) -> Iterator[Row]:
    for batch in db.batches(sql, (run_id,)):
        yield from batch


def ledger(db: Backend, run_id: str) -> Iterator[dict[str, Any]]:
    """Every record of a run with its delivery, observation and checks, in planning order, one at a time."""
    checks = _rows(db, _CHECKS, run_id)
    pending = next(checks, None)
    for row in _rows(db, _ROWS, run_id):
        record = {"phase": row["phase"], **_part(row, "r", _RECORD)}
        record["delivery"] = _part(row, "d", _DELIVERY) if row["delivered"] else None
        record["observation"] = _part(row, "o", _OBSERVATION) if row["observed"] else None
        record["outcome"] = _outcome(row) if row["judged"] else None
        own: list[dict[str, Any]] = []
        while pending is not None and (pending["phase"], pending["record_name"]) == (row["phase"], record["name"]):
            own.append(_check(pending))
            pending = next(checks, None)
        record["checks"] = own
        record["passed"] = all(c["passed"] for c in own)
        yield record
    for row in _rows(db, _LOOSE_CHECKS, run_id):
        yield {"phase": row["phase"], "name": row["record_name"], "checks": [_check(row)], "passed": False}


def _csv_row(record: dict[str, Any]) -> list[Any]:
    delivery = record.get("delivery") or {}
    observation = record.get("observation") or {}
    outcome = record.get("outcome") or {}
    prospects = observation.get("prospects") or []
    failed = [c for c in record["checks"] if not c["passed"]]
    values = {
        **record,
        **delivery,
        "prospects": len(prospects),
        "prospect_ids": " ".join(str(p.get("id", "")) for p in prospects if isinstance(p, dict)),
        "seen_in": " ".join(str(u) for u in observation.get("seen_in") or []),
        "first_seen_at": observation.get("first_seen_at"),
        "polls": observation.get("polls"),
        "processing_low": outcome.get("processing_low"),
        "processing_seconds": outcome.get("processing_seconds"),
        "processing_source": outcome.get("processing_source"),
        "checks": len(record["checks"]),
        "failed_checks": "; ".join(c["check"] for c in failed),
        "first_failure": failed[0]["message"] if failed else "",
        "payload": json.dumps(record.get("payload"), ensure_ascii=False) if "payload" in record else "",
    }
    return [values.get(column) for column in CSV_COLUMNS]


class _Redacting:
    """A text sink that redacts each string written to it (csv.writer writes one row per call)."""

    def __init__(self, target: TextIO) -> None:
        self.target = target

    def write(self, text: str) -> int:
        return self.target.write(redact(text))


def write_ledger(db: Backend, run_id: str, fmt: Format, target: TextIO) -> int:
    """Write a run's ledger to ``target`` as JSON lines or CSV; return the number of rows."""
    rows = 0
    if fmt == "csv":
        writer = csv.writer(_Redacting(target), lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for record in ledger(db, run_id):
            writer.writerow(_csv_row(record))
            rows += 1
    else:
        for record in ledger(db, run_id):
            target.write(redact(json.dumps(record, ensure_ascii=False, separators=(",", ":"))) + "\n")
            rows += 1
    return rows


def export_run(store_at: str | Path, run_id: str, fmt: Format, out: Path | None) -> int:
    """Export one stored run's ledger to ``out`` (stdout when None); return the number of rows written."""
    from bonzo_bulk.report.stored import open_existing, resolve_run

    with open_existing(store_at) as store:
        resolve_run(store, run_id, flag="RUN_ID")
        with store.operation(f"export run {run_id}"):
            if out is None:
                return write_ledger(store.backend, run_id, fmt, sys.stdout)
            try:
                with out.open("w", encoding="utf-8", newline="") as target:
                    return write_ledger(store.backend, run_id, fmt, target)
            except OSError as exc:
                raise ConfigError(
                    f"--out {str(out)!r}: cannot write it ({exc.strerror}); pass another path", key="--out"
                ) from exc
