"""Load results in the run store: per-stage figures, stress steps and per-second series beside the run.

Three additive tables in the same store file as the runs (``load_runs``, ``load_stages``,
``load_series``), keyed by the run id the engine stored the leads under, so ``bonzo-bulk history``
and ``cleanup --run`` see a load run like any other. The summary document is what ``--json`` prints.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bonzo_bulk.errors import StoreError
from bonzo_bulk.load.outcome import LoadOutcome
from bonzo_bulk.load.stats import SeriesPoint, StageFigures
from bonzo_bulk.models import to_jsonable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS load_runs (
    run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, scenario TEXT NOT NULL, t0 REAL NOT NULL,
    knee_rate REAL, summary TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS load_stages (
    run_id TEXT NOT NULL, stage INTEGER NOT NULL, figures TEXT NOT NULL, PRIMARY KEY (run_id, stage)
);
CREATE TABLE IF NOT EXISTS load_series (
    run_id TEXT NOT NULL, t REAL NOT NULL, target_rate REAL NOT NULL, achieved_rate REAL NOT NULL,
    dropped INTEGER NOT NULL, errors INTEGER NOT NULL, hook_p95_ms REAL, e2e_lag_p95_s REAL,
    backlog INTEGER NOT NULL, PRIMARY KEY (run_id, t)
);
"""
_STAGE_KEYS = ("target_rate", "achieved_rate", "dropped_arrivals", "hook_p95_ms", "e2e_lag_p95_s", "lost")


def summary_document(outcome: LoadOutcome) -> dict[str, Any]:
    """The ``--json`` summary: per stage the issue's six figures first, the accounting, thresholds, the knee."""
    run = outcome.run
    metrics = run.phases[0].metrics if run.phases else None
    stages = []
    for figures in outcome.stages:
        row = dataclasses.asdict(figures)
        stages.append({"stage": figures.stage, **{k: row[k] for k in _STAGE_KEYS}, **row})
    document: dict[str, Any] = {
        "run_id": run.run_id,
        "kind": outcome.kind,
        "scenario": outcome.scenario.get("name"),
        "target": run.target,
        "passed": outcome.passed,
        "exit_code": outcome.exit_code,
        "stages": stages,
        "overall": {k: getattr(outcome.overall, k) for k in _STAGE_KEYS},
        "accounting": {
            "planned": outcome.planned,
            "sent": outcome.sent,
            "dropped_arrivals": outcome.dropped,
            "not_sent": outcome.cancelled,
            "accepted": metrics.delivered if metrics else 0,
            "created": metrics.created if metrics else 0,
            "lost": outcome.overall.lost,
            "misrouted": outcome.overall.misrouted,
            "duplicates": outcome.overall.duplicates,
            "errors": outcome.overall.errors,
        },
        "thresholds": [to_jsonable(v) for v in outcome.verdicts],
        "api_requests_while_loading": outcome.api_requests_while_loading,
        "stop_reason": outcome.stop_reason,
        "notes": list(outcome.notes),
    }
    if outcome.kind == "stress":
        document["knee_rate"] = outcome.knee_rate
        document["knee_reached"] = outcome.knee_reached
        document["steps"] = [to_jsonable(s) for s in outcome.steps]
    return document


@dataclass(frozen=True)
class StoredLoad:
    """A load run as read back from the store (for the dashboard)."""

    run_id: str
    kind: str
    scenario: dict[str, Any]
    t0: float
    knee_rate: float | None
    summary: dict[str, Any]
    stages: tuple[StageFigures, ...]
    series: tuple[SeriesPoint, ...]


class LoadStore:
    """The load tables of a run store file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"run store {self.path}: cannot prepare the load tables: {exc}") from exc

    def __enter__(self) -> LoadStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self._db.close()

    @contextmanager
    def _tx(self, what: str) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"run store {self.path}: could not {what}: {exc}") from exc

    def save(self, outcome: LoadOutcome) -> None:
        """Store a finished load run's figures (replacing any earlier write of the same run)."""
        run_id = outcome.run_id
        with self._tx(f"store the load figures of run {run_id}") as db:
            for table in ("load_runs", "load_stages", "load_series"):
                db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))  # noqa: S608 - fixed names
            db.execute(
                "INSERT INTO load_runs (run_id, kind, scenario, t0, knee_rate, summary) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    outcome.kind,
                    json.dumps(outcome.scenario),
                    outcome.t0,
                    outcome.knee_rate,
                    json.dumps(summary_document(outcome)),
                ),
            )
            db.executemany(
                "INSERT INTO load_stages (run_id, stage, figures) VALUES (?, ?, ?)",
                [(run_id, s.stage, json.dumps(dataclasses.asdict(s))) for s in outcome.stages],
            )
            db.executemany(
                "INSERT INTO load_series VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        p.t,
                        p.target_rate,
                        p.achieved_rate,
                        p.dropped,
                        p.errors,
                        p.hook_p95_ms,
                        p.e2e_lag_p95_s,
                        p.backlog,
                    )
                    for p in outcome.series
                ],
            )

    def load(self, run_id: str) -> StoredLoad | None:
        """A stored load run, or None when ``run_id`` is not a load run."""
        try:
            row = self._db.execute(
                "SELECT kind, scenario, t0, knee_rate, summary FROM load_runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            if row is None:
                return None
            stages = self._db.execute(
                "SELECT figures FROM load_stages WHERE run_id = ? ORDER BY stage", (run_id,)
            ).fetchall()
            series = self._db.execute(
                "SELECT t, target_rate, achieved_rate, dropped, errors, hook_p95_ms, e2e_lag_p95_s, backlog"
                " FROM load_series WHERE run_id = ? ORDER BY t",
                (run_id,),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"run store {self.path}: cannot read load run {run_id}: {exc}") from exc
        return StoredLoad(
            run_id=run_id,
            kind=str(row[0]),
            scenario=json.loads(row[1]),
            t0=float(row[2]),
            knee_rate=None if row[3] is None else float(row[3]),
            summary=json.loads(row[4]),
            stages=tuple(StageFigures(**json.loads(s[0])) for s in stages),
            series=tuple(SeriesPoint(*s) for s in series),
        )

    def run_ids(self, limit: int = 20) -> list[str]:
        """The latest load runs' ids, newest first."""
        rows = self._db.execute("SELECT run_id FROM load_runs ORDER BY t0 DESC LIMIT ?", (limit,)).fetchall()
        return [str(r[0]) for r in rows]
