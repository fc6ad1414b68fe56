"""Moving history between stores (``store copy``) and bringing a schema up to date (``store migrate``).

A copy goes run by run, each in one transaction on the target, streaming rows in batches, so a
100k-record run never sits in memory and an interrupted copy leaves whole runs only. Runs the
target already has are skipped (copying twice is harmless); a baseline is copied only where the
target has none for that integration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bonzo_bulk.config.store_location import StoreLocation
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.store.backend import Backend
from bonzo_bulk.store.interface import RunStore
from bonzo_bulk.store.schema import SCHEMA_VERSION, TABLES, Migration

BATCH_ROWS = 2000


@dataclass(frozen=True, slots=True)
class Migrated:
    """What ``store migrate`` did: the store, its schema version now and the migrations applied."""

    label: str
    version: int
    applied: tuple[Migration, ...]


@dataclass
class CopyReport:
    """What ``store copy`` did: runs copied and skipped, rows per table."""

    source: str
    target: str
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


def migrate_store(store_at: str | Path) -> Migrated:
    """Open a store (creating a SQLite file or the tables if needed) and apply every pending migration."""
    with RunStore(store_at) as store:
        return Migrated(store.label, SCHEMA_VERSION, tuple(store.applied))


def copy_store(
    source_at: str | Path,
    target_at: str | Path,
    *,
    on_run: Callable[[str], None] | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> CopyReport:
    """Copy every run (and every other table) from one store into another, run by run; ``on_run`` hears of each
    run copied, ``on_rows`` of each batch of rows (progress for a long copy)."""
    source_location = StoreLocation.parse(source_at, key="--from")
    target_location = StoreLocation.parse(target_at, key="--to")
    if not source_location.exists:
        raise ConfigError(f"--from {source_location.label!r}: no run store there; check the path", key="--from")
    if source_location.label == target_location.label:
        raise ConfigError(f"--from and --to both name {source_location.label!r}; give two different stores", key="--to")
    with RunStore(source_location) as source, RunStore(target_location) as target:
        report = CopyReport(source.label, target.label)
        src, dst = source.backend, target.backend
        have = {str(r["run_id"]) for r in dst.fetchall("SELECT run_id FROM runs")}
        baselines = {str(r["integration"]) for r in dst.fetchall("SELECT integration FROM runs WHERE is_baseline = 1")}
        columns = {table: src.columns(table) for table in TABLES}
        per_run = [t for t in TABLES if "run_id" in columns[t]]
        run_ids = [str(r["run_id"]) for r in src.fetchall("SELECT run_id FROM runs ORDER BY started_at, run_id")]
        for run_id in run_ids:
            if run_id in have:
                report.skipped.append(run_id)
                continue
            with target.operation(f"copy run {run_id}"), source.operation(f"read run {run_id}"), dst.transaction():
                for table in per_run:
                    _copy_rows(
                        src, dst, table, columns[table], report, run_id=run_id, baselines=baselines, on_rows=on_rows
                    )
            report.copied.append(run_id)
            if on_run is not None:
                on_run(run_id)
        with target.operation("copy the tables that belong to no run"), dst.transaction():
            for table in TABLES:
                if table not in per_run:
                    _copy_rows(src, dst, table, columns[table], report)
    return report


def _copy_rows(
    src: Backend,
    dst: Backend,
    table: str,
    columns: list[str],
    report: CopyReport,
    *,
    run_id: str | None = None,
    baselines: set[str] | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> None:
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    insert = f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING"  # noqa: S608 - schema names
    where, params = ("WHERE run_id = ?", (run_id,)) if run_id is not None else ("", ())
    for batch in src.batches(f"SELECT {names} FROM {table} {where}", params, size=BATCH_ROWS):  # noqa: S608
        rows = [[row[c] for c in columns] for row in batch]
        if table == "runs" and baselines is not None:
            rows = [_one_baseline(row, columns, baselines) for row in rows]
        dst.executemany(insert, rows)
        report.rows[table] = report.rows.get(table, 0) + len(rows)
        if on_rows is not None:
            on_rows(len(rows))


def _one_baseline(row: list[object], columns: list[str], baselines: set[str]) -> list[object]:
    """A copied run stays a baseline only if the target has none yet for its integration."""
    flag, integration = columns.index("is_baseline"), str(row[columns.index("integration")])
    if row[flag]:
        if integration in baselines:
            row[flag] = 0
        else:
            baselines.add(integration)
    return row
