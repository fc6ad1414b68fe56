"""Run history in the run store: each run's summary row, the baseline of each integration, unfinished runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from bonzo_bulk.store import codec, ledger
from bonzo_bulk.store.backend import Backend, Row
from bonzo_bulk.store.rows import SUMMARY_COLUMNS, RunSummary


def list_runs(db: Backend, *, integration: str | None, limit: int, target: str | None = None) -> list[RunSummary]:
    """The most recent runs first, optionally of one integration (and one target)."""
    where, params = ("WHERE integration = ?", [integration]) if integration else ("", [])
    if target is not None:
        where, params = (f"{where} AND target = ?" if where else "WHERE target = ?"), [*params, target]
    rows = db.fetchall(
        f"SELECT * FROM runs {where} ORDER BY started_at DESC, run_id DESC LIMIT ?",  # noqa: S608
        (*params, limit),
    )
    return [_summary(db, row) for row in rows]


def summary(db: Backend, run_id: str) -> RunSummary | None:
    """One run's summary row (finished or not), if the store knows it."""
    row = db.fetchone("SELECT * FROM runs WHERE run_id = ?", (run_id,))
    return _summary(db, row) if row is not None else None


def _summary(db: Backend, row: Row) -> RunSummary:
    values = {name: row[name] for name in SUMMARY_COLUMNS}
    values["started_at"] = datetime.fromisoformat(row["started_at"])
    values["finished_at"] = codec.parse_time(row["finished_at"])
    values["passed"] = None if row["passed"] is None else bool(row["passed"])
    values["is_baseline"] = bool(row["is_baseline"])
    if row["finished_at"] is None:  # an unfinished run has no figures yet: the records it stored so far
        values["records"] = ledger.count_rows(db, "records", row["run_id"])
    return RunSummary(**values)


def groups(db: Backend) -> list[tuple[str, str]]:
    """Every (integration, target) the store has runs of, sorted."""
    rows = db.fetchall("SELECT DISTINCT integration, target FROM runs ORDER BY integration, target")
    return [(str(row["integration"]), str(row["target"])) for row in rows]


def latest_finished(db: Backend) -> list[str]:
    """The id of the latest finished run of each (integration, target), in that order."""
    rows = db.fetchall(
        "SELECT r.integration, r.target, r.run_id FROM runs r WHERE r.finished_at IS NOT NULL AND r.run_id = ("
        " SELECT l.run_id FROM runs l WHERE l.integration = r.integration AND l.target = r.target"
        " AND l.finished_at IS NOT NULL ORDER BY l.started_at DESC, l.run_id DESC LIMIT 1)"
        " ORDER BY r.integration, r.target"
    )
    return [str(row["run_id"]) for row in rows]


def mark_baseline(db: Backend, run_id: str, integration: str) -> None:
    """Make a run its integration's baseline, replacing the previous one."""
    db.execute(
        "UPDATE runs SET is_baseline = 0 WHERE integration = ? AND is_baseline = 1 AND run_id <> ?",
        (integration, run_id),
    )
    db.execute("UPDATE runs SET is_baseline = 1 WHERE run_id = ?", (run_id,))


def baseline_run_id(db: Backend, integration: str) -> str | None:
    """The baseline run of an integration, if one was set."""
    row = db.fetchone("SELECT run_id FROM runs WHERE integration = ? AND is_baseline = 1", (integration,))
    return str(row["run_id"]) if row else None


def interrupted_runs(db: Backend) -> list[str]:
    """Ids of runs that began but never finished, most recent first."""
    rows = db.fetchall("SELECT run_id FROM runs WHERE finished_at IS NULL ORDER BY started_at DESC, run_id DESC")
    return [str(row["run_id"]) for row in rows]


def webhook_concurrency(db: Backend, run_ids: Sequence[str]) -> dict[str, int | None]:
    """Each known run's webhook concurrency (``webhook_settings.concurrent_requests`` in its config snapshot),
    None where the snapshot does not say (a run copied or written without one)."""
    found: dict[str, int | None] = {}
    unique = list(dict.fromkeys(run_ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        rows = db.fetchall(f"SELECT run_id, config_snapshot FROM runs WHERE run_id IN ({marks})", chunk)  # noqa: S608
        for row in rows:
            settings = json.loads(row["config_snapshot"] or "{}").get("webhook_settings")
            value = settings.get("concurrent_requests") if isinstance(settings, dict) else None
            found[str(row["run_id"])] = value if isinstance(value, int) else None
    return found
