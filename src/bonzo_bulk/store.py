"""The run store: one SQLite file (WAL) holding every run's records, deliveries, prospects and checks.

It is written as the run goes (``begin_run`` -> ``add_*`` in batches -> ``finish_run``), so an
interrupted run can still be inspected and its prospects cleaned up from another process::

    with RunStore("reports/runs.sqlite3") as store:
        store.begin_run(run_id=..., test_name=..., ...)
        store.add_records(run_id, records)
        ...
        store.finish_run(result)
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from bonzo_bulk import store_codec as codec
from bonzo_bulk.diagnosis import diagnose
from bonzo_bulk.errors import StoreError
from bonzo_bulk.models import (
    CheckResult,
    DeliveryResult,
    Observation,
    PhaseKind,
    PhaseResult,
    PlannedRecord,
    RunResult,
    Target,
    User,
)

SCHEMA_VERSION = 2
_MIGRATIONS = {2: "ALTER TABLE observations ADD COLUMN poll_gap REAL;"}
"""Schema changes by the version they lead to (a new store gets the whole schema at once)."""
DEFAULT_STORE_PATH = Path("reports/runs.sqlite3")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, test_name TEXT NOT NULL, integration TEXT NOT NULL, config_path TEXT,
    target TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT, dry_run INTEGER NOT NULL,
    config_snapshot TEXT NOT NULL,
    notes TEXT NOT NULL DEFAULT '[]', passed INTEGER, records INTEGER NOT NULL DEFAULT 0,
    delivery_rate REAL, creation_rate REAL, assignment_accuracy REAL, mapping_accuracy REAL,
    p95_processing_ms REAL, p95_latency_ms REAL, api_requests_per_record REAL,
    is_baseline INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_integration ON runs (integration, started_at);
CREATE TABLE IF NOT EXISTS phases (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, phase TEXT NOT NULL, seq INTEGER NOT NULL,
    metrics TEXT NOT NULL, unexpected_prospects TEXT NOT NULL, settled INTEGER NOT NULL,
    settle_seconds REAL NOT NULL, passed INTEGER NOT NULL,
    PRIMARY KEY (run_id, phase)
);
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, phase TEXT NOT NULL, seq INTEGER NOT NULL,
    "index" INTEGER NOT NULL, name TEXT NOT NULL, record_id TEXT NOT NULL, first_name TEXT NOT NULL,
    last_name TEXT NOT NULL, email TEXT NOT NULL, phone TEXT NOT NULL,
    expected_user_id INTEGER NOT NULL, expected_user_email TEXT NOT NULL, expected_user_name TEXT NOT NULL,
    expected_team_id INTEGER NOT NULL, expected_user_external_id TEXT,
    invalid_case TEXT, expected_handling TEXT, payload TEXT NOT NULL, body BLOB NOT NULL,
    content_type TEXT NOT NULL, expected TEXT NOT NULL,
    PRIMARY KEY (run_id, phase, name)
);
CREATE TABLE IF NOT EXISTS deliveries (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, phase TEXT NOT NULL, seq INTEGER NOT NULL,
    record_name TEXT NOT NULL, status INTEGER, attempts INTEGER NOT NULL, latency_ms REAL NOT NULL,
    total_ms REAL NOT NULL, sent_at TEXT NOT NULL, answered_at TEXT, error_category TEXT, error TEXT,
    response_excerpt TEXT NOT NULL,
    PRIMARY KEY (run_id, phase, record_name)
);
CREATE TABLE IF NOT EXISTS observations (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, phase TEXT NOT NULL, seq INTEGER NOT NULL,
    record_name TEXT NOT NULL, prospects TEXT NOT NULL, seen_in TEXT NOT NULL, first_seen_at TEXT,
    polls INTEGER NOT NULL, poll_gap REAL,
    PRIMARY KEY (run_id, phase, record_name)
);
CREATE TABLE IF NOT EXISTS prospects (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, prospect_id TEXT NOT NULL,
    phase TEXT NOT NULL, record_name TEXT NOT NULL, owner_user_id INTEGER, email TEXT, first_name TEXT,
    deleted_at TEXT,
    PRIMARY KEY (run_id, prospect_id)
);
CREATE TABLE IF NOT EXISTS checks (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, phase TEXT NOT NULL, seq INTEGER NOT NULL,
    record_name TEXT NOT NULL, "check" TEXT NOT NULL, stage TEXT NOT NULL, passed INTEGER NOT NULL,
    expected TEXT NOT NULL, actual TEXT NOT NULL, message TEXT NOT NULL,
    PRIMARY KEY (run_id, phase, seq)
);
CREATE INDEX IF NOT EXISTS failed_checks ON checks (run_id, passed);
"""


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One row of run history: the headline figures of a run's primary phase."""

    run_id: str
    test_name: str
    integration: str
    target: str
    started_at: datetime
    finished_at: datetime | None
    """None when the run never finished (interrupted)."""
    passed: bool | None
    """None when the run never finished."""
    records: int
    delivery_rate: float | None
    creation_rate: float | None
    assignment_accuracy: float | None
    mapping_accuracy: float | None
    p95_processing_ms: float | None
    p95_latency_ms: float | None
    api_requests_per_record: float | None
    is_baseline: bool

    @classmethod
    def from_result(cls, result: RunResult, *, is_baseline: bool = False) -> RunSummary:
        """The summary row of a finished run (figures from the primary phase, else the first)."""
        head = result.primary or (result.phases[0] if result.phases else None)
        figures = head.metrics if head is not None else None
        return cls(
            run_id=result.run_id,
            test_name=result.test_name,
            integration=result.integration,
            target=result.target,
            started_at=result.started_at,
            finished_at=result.finished_at,
            passed=result.passed,
            records=sum(len(p.records) for p in result.phases),
            delivery_rate=figures.delivery_rate if figures else None,
            creation_rate=figures.creation_rate if figures else None,
            assignment_accuracy=figures.assignment_accuracy if figures else None,
            mapping_accuracy=figures.mapping_accuracy if figures else None,
            p95_processing_ms=figures.processing_time.p95_ms if figures else None,
            p95_latency_ms=figures.delivery_latency.p95_ms if figures else None,
            api_requests_per_record=figures.api_requests_per_record if figures else None,
            is_baseline=is_baseline,
        )


@dataclass(frozen=True, slots=True)
class StoredProspect:
    """A prospect a run created (as the API showed it): what cleanup deletes later."""

    prospect_id: int | str
    owner_user_id: int | None
    email: str | None
    first_name: str | None
    phase: str
    deleted_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record a run planned (stored before sending): how cleanup finds what an interrupted run made."""

    name: str
    phase: str
    first_name: str
    last_name: str
    email: str
    expected_user_id: int


class RunStore:
    """The SQLite run store; safe to open from a run and a later cleanup/report process at once."""

    def __init__(self, path: str | Path = DEFAULT_STORE_PATH) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open run store {self.path}: {exc}; check the --store path") from exc
        self._db.row_factory = sqlite3.Row
        with self._op("prepare the schema"):
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA synchronous=NORMAL")
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"run store {self.path} has schema version {version}, newer than this bonzo-bulk "
                    f"understands ({SCHEMA_VERSION}); upgrade bonzo-bulk or use another --store file"
                )
            if version == 0:
                self._db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
            for step in range(max(version, 1) + 1, SCHEMA_VERSION + 1) if version else ():
                self._db.executescript(f"BEGIN IMMEDIATE;{_MIGRATIONS[step]}PRAGMA user_version={step};COMMIT;")

    def __enter__(self) -> RunStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the file stays)."""
        self._db.close()

    @contextmanager
    def _op(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"run store {self.path}: could not {what}: {exc}") from exc

    @contextmanager
    def _tx(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._op(what):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _require_run(self, run_id: str) -> sqlite3.Row:
        row = self._db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            recent = ", ".join(self._recent_ids()) or "none"
            raise StoreError(f"run store {self.path}: no run with id {run_id!r}; recent runs: {recent}")
        return cast(sqlite3.Row, row)

    def _recent_ids(self, limit: int = 10) -> list[str]:
        rows = self._db.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT ?", (limit,))
        return [str(r[0]) for r in rows]

    def begin_run(
        self,
        *,
        run_id: str,
        test_name: str,
        integration: str,
        config_path: str | None,
        target: Target,
        started_at: datetime,
        dry_run: bool,
        config_snapshot: Mapping[str, Any],
    ) -> None:
        """Record that a run started (its config snapshot must already be free of secrets)."""
        with self._tx(f"begin run {run_id}") as db:
            db.execute(
                "INSERT INTO runs (run_id, test_name, integration, config_path, target, started_at, dry_run,"
                " config_snapshot) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET test_name = excluded.test_name,"
                " integration = excluded.integration, config_path = excluded.config_path,"
                " target = excluded.target, started_at = excluded.started_at, dry_run = excluded.dry_run,"
                " config_snapshot = excluded.config_snapshot",
                (
                    run_id,
                    test_name,
                    integration,
                    config_path,
                    target,
                    started_at.isoformat(),
                    int(dry_run),
                    codec.dumps(config_snapshot),
                ),
            )

    def add_records(self, run_id: str, records: Sequence[PlannedRecord]) -> None:
        """Store planned records (call before sending, so an interrupted run is still traceable)."""
        with self._tx(f"add {len(records)} records to run {run_id}") as db:
            self._require_run(run_id)
            self._insert_records(db, run_id, records, self._next_seq(db, "records", run_id))

    def add_deliveries(self, run_id: str, phase: PhaseKind, deliveries: Sequence[DeliveryResult]) -> None:
        """Store a batch of delivery results for one phase (may be called many times)."""
        with self._tx(f"add {len(deliveries)} deliveries to run {run_id}") as db:
            self._require_run(run_id)
            start = self._next_seq(db, "deliveries", run_id, phase)
            self._insert_deliveries(db, run_id, phase, deliveries, start)

    def add_observed_prospects(self, run_id: str, phase: PhaseKind, observations: Sequence[Observation]) -> None:
        """Store what the API showed for records, including every matched prospect (for cleanup)."""
        with self._tx(f"add {len(observations)} observations to run {run_id}") as db:
            self._require_run(run_id)
            start = self._next_seq(db, "observations", run_id, phase)
            self._insert_observations(db, run_id, phase, observations, start)

    def finish_run(self, result: RunResult, *, keep_written: bool = False) -> None:
        """Store a run's final result: every phase in full, its checks and headline figures (idempotent).

        ``keep_written=True`` keeps the records, deliveries and observations written as the run went
        when their counts match the result (the engine's case), instead of writing them again.
        """
        run_id = result.run_id
        with self._tx(f"finish run {run_id}") as db:
            exists = db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if exists is None:
                db.execute(
                    "INSERT INTO runs (run_id, test_name, integration, target, started_at, dry_run,"
                    " config_snapshot) VALUES (?, ?, ?, ?, ?, ?, '{}')",
                    (run_id, result.test_name, result.integration, result.target, result.started_at.isoformat(), 0),
                )
            for table in ("phases", "checks"):
                db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))  # noqa: S608 - fixed names
            # What was written as the run went is kept; a table is rewritten only when it is incomplete.
            stale = [
                table
                for table, rows in (
                    ("records", sum(len(p.records) for p in result.phases)),
                    ("deliveries", sum(len(p.deliveries) for p in result.phases)),
                    ("observations", sum(len(p.observations) for p in result.phases)),
                )
                if not keep_written or self._count(db, table, run_id) != rows
            ]
            for table in stale:
                db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))  # noqa: S608 - fixed names
            record_seq = 0
            for seq, phase in enumerate(result.phases):
                if "records" in stale:
                    self._insert_records(db, run_id, phase.records, record_seq)
                record_seq += len(phase.records)
                if "deliveries" in stale:
                    self._insert_deliveries(db, run_id, phase.kind, phase.deliveries, 0)
                if "observations" in stale:
                    self._insert_observations(db, run_id, phase.kind, phase.observations, 0)
                codec.insert(db, "checks", run_id, phase.kind, 0, phase.checks, codec.CHECK_COLUMNS)
                db.execute(
                    "INSERT INTO phases (run_id, phase, seq, metrics, unexpected_prospects, settled,"
                    " settle_seconds, passed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        phase.kind,
                        seq,
                        codec.dumps(phase.metrics),
                        codec.dumps(phase.unexpected_prospects),
                        int(phase.settled),
                        phase.settle_seconds,
                        int(phase.passed),
                    ),
                )
            summary = RunSummary.from_result(result)
            figures = {name: getattr(summary, name) for name in _FIGURE_COLUMNS}
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
                **figures,
            }
            assignments = ", ".join(f"{name} = :{name}" for name in details)
            db.execute(f"UPDATE runs SET {assignments} WHERE run_id = :run_id", {**details, "run_id": run_id})  # noqa: S608

    @staticmethod
    def _count(db: sqlite3.Connection, table: str, run_id: str) -> int:
        row = db.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (run_id,)).fetchone()  # noqa: S608
        return int(row[0])

    @staticmethod
    def _next_seq(db: sqlite3.Connection, table: str, run_id: str, phase: str | None = None) -> int:
        if phase is None:
            row = db.execute(f"SELECT COALESCE(MAX(seq) + 1, 0) FROM {table} WHERE run_id = ?", (run_id,))  # noqa: S608
        else:
            row = db.execute(
                f"SELECT COALESCE(MAX(seq) + 1, 0) FROM {table} WHERE run_id = ? AND phase = ?",  # noqa: S608
                (run_id, phase),
            )
        return int(row.fetchone()[0])

    @staticmethod
    def _insert_records(db: sqlite3.Connection, run_id: str, records: Sequence[PlannedRecord], start: int) -> None:
        names = ", ".join(f'"{c}"' for c in (*codec.RECORD_COLUMNS, *codec.USER_COLUMNS))
        marks = ", ".join("?" for _ in (*codec.RECORD_COLUMNS, *codec.USER_COLUMNS))
        rows = [
            (
                run_id,
                r.phase,
                start + n,
                *(codec.encode(c, getattr(r, c)) for c in codec.RECORD_COLUMNS),
                *(getattr(r.expected_user, c) for c in codec.USER_FIELDS),
            )
            for n, r in enumerate(records)
        ]
        db.executemany(f"INSERT OR REPLACE INTO records (run_id, phase, seq, {names}) VALUES (?, ?, ?, {marks})", rows)  # noqa: S608

    @staticmethod
    def _insert_deliveries(
        db: sqlite3.Connection, run_id: str, phase: str, deliveries: Sequence[DeliveryResult], start: int
    ) -> None:
        codec.insert(db, "deliveries", run_id, phase, start, deliveries, codec.DELIVERY_COLUMNS)

    @staticmethod
    def _insert_observations(
        db: sqlite3.Connection, run_id: str, phase: str, observations: Sequence[Observation], start: int
    ) -> None:
        codec.insert(db, "observations", run_id, phase, start, observations, codec.OBSERVATION_COLUMNS)
        db.executemany(
            "INSERT INTO prospects (run_id, prospect_id, phase, record_name, owner_user_id, email, first_name)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, prospect_id) DO UPDATE SET"
            " phase = excluded.phase, record_name = excluded.record_name,"
            " owner_user_id = excluded.owner_user_id, email = excluded.email, first_name = excluded.first_name",
            [
                (
                    run_id,
                    str(p.get("id")),
                    phase,
                    o.record_name,
                    codec.owner_of(p),
                    p.get("email"),
                    p.get("first_name"),
                )
                for o in observations
                for p in o.prospects
                if p.get("id") is not None
            ],
        )

    def load_run(self, run_id: str) -> RunResult:
        """Read back the RunResult that ``finish_run`` stored, equal field for field."""
        with self._op(f"load run {run_id}"):
            run = self._require_run(run_id)
            if run["finished_at"] is None:
                raise StoreError(
                    f"run {run_id} in {self.path} never finished (interrupted?); its prospects are listed by"
                    " `observed_prospects` and can still be cleaned up, but there is no result to report"
                )
            phases = [
                self._load_phase(run_id, row)
                for row in self._db.execute("SELECT * FROM phases WHERE run_id = ? ORDER BY seq", (run_id,))
            ]
            return RunResult(
                run_id=run_id,
                test_name=run["test_name"],
                integration=run["integration"],
                config_path=run["config_path"],
                target=run["target"],
                started_at=datetime.fromisoformat(run["started_at"]),
                finished_at=datetime.fromisoformat(run["finished_at"]),
                dry_run=bool(run["dry_run"]),
                phases=tuple(phases),
                notes=tuple(json.loads(run["notes"])),
            )

    def _load_phase(self, run_id: str, row: sqlite3.Row) -> PhaseResult:
        kind = row["phase"]
        records = tuple(
            PlannedRecord(
                run_id=run_id,
                phase=kind,
                expected_user=User(**{f: row[c] for f, c in zip(codec.USER_FIELDS, codec.USER_COLUMNS, strict=True)}),
                **{**codec.decode(row, codec.RECORD_COLUMNS), "body": bytes(row["body"])},
            )
            for row in self._rows("records", run_id, kind)
        )
        deliveries = tuple(
            DeliveryResult(**codec.decode(row, codec.DELIVERY_COLUMNS))
            for row in self._rows("deliveries", run_id, kind)
        )
        observations = tuple(
            Observation(**codec.decode(row, codec.OBSERVATION_COLUMNS))
            for row in self._rows("observations", run_id, kind)
        )
        checks = tuple(
            CheckResult(**codec.decode(row, codec.CHECK_COLUMNS)) for row in self._rows("checks", run_id, kind)
        )
        return PhaseResult(
            kind=kind,
            records=records,
            deliveries=deliveries,
            observations=observations,
            checks=checks,
            unexpected_prospects=tuple(json.loads(row["unexpected_prospects"])),
            metrics=codec.metrics_from_json(json.loads(row["metrics"])),
            settled=bool(row["settled"]),
            settle_seconds=row["settle_seconds"],
            diagnoses=diagnose(kind, checks),
        )

    def _rows(self, table: str, run_id: str, phase: str) -> list[sqlite3.Row]:
        query = f"SELECT * FROM {table} WHERE run_id = ? AND phase = ? ORDER BY seq"  # noqa: S608 - fixed names
        return self._db.execute(query, (run_id, phase)).fetchall()

    def config_snapshot(self, run_id: str) -> dict[str, Any]:
        """The secret-free config snapshot a run was started with."""
        with self._op(f"read the config of run {run_id}"):
            snapshot: dict[str, Any] = json.loads(self._require_run(run_id)["config_snapshot"])
            return snapshot

    def list_runs(self, *, integration: str | None = None, limit: int = 20) -> list[RunSummary]:
        """The most recent runs first, optionally of one integration."""
        where, params = ("WHERE integration = ?", [integration]) if integration else ("", [])
        with self._op("list runs"):
            rows = self._db.execute(
                f"SELECT * FROM runs {where} ORDER BY started_at DESC, rowid DESC LIMIT ?",  # noqa: S608
                (*params, limit),
            ).fetchall()
        return [self._summary(r) for r in rows]

    def _summary(self, row: sqlite3.Row) -> RunSummary:
        values = {name: row[name] for name in _SUMMARY_COLUMNS}
        values["started_at"] = datetime.fromisoformat(row["started_at"])
        values["finished_at"] = codec.parse_time(row["finished_at"])
        values["passed"] = None if row["passed"] is None else bool(row["passed"])
        values["is_baseline"] = bool(row["is_baseline"])
        if row["finished_at"] is None:
            values["records"] = self._count_records(row["run_id"])
        return RunSummary(**values)

    def _count_records(self, run_id: str) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM records WHERE run_id = ?", (run_id,)).fetchone()[0])

    def has_run(self, run_id: str) -> bool:
        """Whether the store knows a run with this id (finished or not)."""
        with self._op(f"look up run {run_id}"):
            return self._db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None

    def latest_run_id(self, integration: str | None = None) -> str | None:
        """The id of the most recently started run (of one integration, if given)."""
        runs = self.list_runs(integration=integration, limit=1)
        return runs[0].run_id if runs else None

    def set_baseline(self, run_id: str) -> None:
        """Make a finished run its integration's baseline (replacing the previous one)."""
        with self._tx(f"set run {run_id} as baseline") as db:
            run = self._require_run(run_id)
            if run["finished_at"] is None:
                raise StoreError(f"run {run_id} never finished, so it cannot be a baseline; pick a finished run")
            db.execute("UPDATE runs SET is_baseline = 0 WHERE integration = ?", (run["integration"],))
            db.execute("UPDATE runs SET is_baseline = 1 WHERE run_id = ?", (run_id,))

    def baseline_run_id(self, integration: str) -> str | None:
        """The baseline run of an integration, if one was set."""
        with self._op(f"read the baseline of {integration}"):
            row = self._db.execute(
                "SELECT run_id FROM runs WHERE integration = ? AND is_baseline = 1", (integration,)
            ).fetchone()
        return str(row[0]) if row else None

    def observed_prospects(self, run_id: str) -> list[StoredProspect]:
        """Every prospect the run's records became (deleted ones carry ``deleted_at``)."""
        with self._op(f"list the prospects of run {run_id}"):
            self._require_run(run_id)
            rows = self._db.execute("SELECT * FROM prospects WHERE run_id = ? ORDER BY rowid", (run_id,)).fetchall()
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

    def run_records(self, run_id: str) -> list[StoredRecord]:
        """The records a run planned, finished or not, in the order they were stored."""
        with self._op(f"list the records of run {run_id}"):
            self._require_run(run_id)
            rows = self._db.execute(
                "SELECT name, phase, first_name, last_name, email, expected_user_id FROM records"
                " WHERE run_id = ? ORDER BY seq",
                (run_id,),
            ).fetchall()
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

    def accepted_records(self, run_id: str) -> set[str]:
        """Names of the run's records the webhook accepted and that should become prospects (not 'drop' cases)."""
        with self._op(f"list the accepted records of run {run_id}"):
            rows = self._db.execute(
                "SELECT d.record_name FROM deliveries d JOIN records r"
                " ON r.run_id = d.run_id AND r.phase = d.phase AND r.name = d.record_name"
                " WHERE d.run_id = ? AND d.status < 400 AND COALESCE(r.expected_handling, '') != 'drop'",
                (run_id,),
            ).fetchall()
        return {str(r[0]) for r in rows}

    def mark_deleted(self, run_id: str, prospect_ids: Sequence[int | str]) -> None:
        """Note that cleanup deleted these prospects (now, UTC)."""
        now = datetime.now(UTC).isoformat()
        with self._tx(f"mark {len(prospect_ids)} prospects of run {run_id} deleted") as db:
            self._require_run(run_id)
            db.executemany(
                "UPDATE prospects SET deleted_at = ? WHERE run_id = ? AND prospect_id = ?",
                [(now, run_id, str(pid)) for pid in prospect_ids],
            )

    def mark_interrupted(self, run_id: str, note: str) -> int:
        """Note in an unfinished run that it was interrupted (it stays unfinished); its deliveries so far."""
        with self._tx(f"mark run {run_id} interrupted") as db:
            row = self._require_run(run_id)
            notes = [*json.loads(row["notes"] or "[]"), note]
            db.execute("UPDATE runs SET notes = ? WHERE run_id = ?", (json.dumps(notes), run_id))
            return self._count(db, "deliveries", run_id)

    def run_notes(self, run_id: str) -> list[str]:
        """The notes of a run (an interrupted run says so here)."""
        with self._op(f"read the notes of run {run_id}"):
            return [str(n) for n in json.loads(self._require_run(run_id)["notes"] or "[]")]

    def interrupted_runs(self) -> list[str]:
        """Ids of runs that began but never finished, most recent first."""
        with self._op("list interrupted runs"):
            rows = self._db.execute("SELECT run_id FROM runs WHERE finished_at IS NULL ORDER BY started_at DESC")
            return [str(r[0]) for r in rows]


_SUMMARY_COLUMNS = tuple(f.name for f in dataclasses.fields(RunSummary))
_FIGURE_COLUMNS = _SUMMARY_COLUMNS[_SUMMARY_COLUMNS.index("records") : _SUMMARY_COLUMNS.index("is_baseline")]
