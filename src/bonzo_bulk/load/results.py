"""Load results in the run store: per-stage figures, stress steps and per-second series beside the run.

Three tables of the run store (migration 5: ``load_runs``, ``load_stages``, ``load_series``), keyed by
the run id the engine stored the leads under, on SQLite or PostgreSQL alike, so ``bonzo-bulk history``,
``cleanup --run`` and retention treat a load run like any other. The summary document is what ``--json`` prints.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bonzo_bulk.load.outcome import LoadOutcome
from bonzo_bulk.load.stats import SeriesPoint, StageFigures
from bonzo_bulk.models import to_jsonable
from bonzo_bulk.store import RunStore

SERIES_COLUMNS = ("t", "target_rate", "achieved_rate", "dropped", "errors", "hook_p95_ms", "e2e_lag_p95_s", "backlog")
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
            "sender_errors": outcome.overall.sender_errors,
        },
        "thresholds": [to_jsonable(v) for v in outcome.verdicts],
        "api_requests_while_loading": outcome.api_requests_while_loading,
        "stop_reason": outcome.stop_reason,
        "notes": list(outcome.notes),
    }
    if outcome.kind == "stress":
        knee = outcome.knee
        document["knee_rate"] = knee.rate if knee else None
        document["knee_reached"] = knee.reached if knee else False
        document["sustained_up_to"] = knee.sustained_up_to if knee else None
        document["knee"] = knee.sentence() if knee else "no step was judged: no knee measured"
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
    """The load tables of a run store (either backend), written and read through the store's connection."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def save(self, outcome: LoadOutcome) -> None:
        """Store a finished load run's figures (replacing any earlier write of the same run)."""
        run_id = outcome.run_id
        db = self.store.backend
        with self.store.operation(f"store the load figures of run {run_id}"), db.transaction():
            for table in ("load_series", "load_stages", "load_runs"):
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
            # A load run's verdict is its thresholds' (or, for stress, its knee's), not the bulk thresholds'.
            db.execute("UPDATE runs SET passed = ? WHERE run_id = ?", (int(outcome.passed), run_id))
            db.executemany(
                "INSERT INTO load_stages (run_id, stage, figures) VALUES (?, ?, ?)",
                [(run_id, s.stage, json.dumps(dataclasses.asdict(s))) for s in outcome.stages],
            )
            db.executemany(
                "INSERT INTO load_series (run_id, t, target_rate, achieved_rate, dropped, errors, hook_p95_ms,"
                " e2e_lag_p95_s, backlog) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

    def headlines(self, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The ``--json`` summary of each of these runs that is a stored load or stress run (for ``history``)."""
        if not run_ids:
            return {}
        db = self.store.backend
        marks = ", ".join("?" for _ in run_ids)
        with self.store.operation("read the load summaries"):
            rows = db.fetchall(
                f"SELECT run_id, summary FROM load_runs WHERE run_id IN ({marks})",  # noqa: S608 - only ? marks
                tuple(run_ids),
            )
        return {str(row["run_id"]): json.loads(row["summary"]) for row in rows}

    def load(self, run_id: str) -> StoredLoad | None:
        """A stored load run, or None when ``run_id`` is not a load run."""
        db = self.store.backend
        with self.store.operation(f"read load run {run_id}"):
            row = db.fetchone(
                "SELECT kind, scenario, t0, knee_rate, summary FROM load_runs WHERE run_id = ?", (run_id,)
            )
            if row is None:
                return None
            stages = db.fetchall("SELECT figures FROM load_stages WHERE run_id = ? ORDER BY stage", (run_id,))
            series = db.fetchall(
                "SELECT t, target_rate, achieved_rate, dropped, errors, hook_p95_ms, e2e_lag_p95_s, backlog"
                " FROM load_series WHERE run_id = ? ORDER BY t",
                (run_id,),
            )
        return StoredLoad(
            run_id=run_id,
            kind=str(row["kind"]),
            scenario=json.loads(row["scenario"]),
            t0=float(row["t0"]),
            knee_rate=None if row["knee_rate"] is None else float(row["knee_rate"]),
            summary=json.loads(row["summary"]),
            stages=tuple(StageFigures(**json.loads(s["figures"])) for s in stages),
            series=tuple(SeriesPoint(*(s[k] for k in SERIES_COLUMNS)) for s in series),
        )
