"""Where the run store's space goes, and giving back the per-record rows of old runs (retention).

A run's per-record rows (each record's payload and body, its delivery, what Bonzo showed, every check and the
outcome) are most of a store: about 11 kB per lead. History, trends, baselines and regressions read only the
run's summary, its phases' figures and diagnoses, which stay when the per-record rows are trimmed; so do the
prospects a run made, which cleanup needs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from bonzo_bulk.store.backend import Backend
from bonzo_bulk.store.schema import TABLES

PER_RECORD_TABLES: tuple[str, ...] = ("checks", "outcomes", "observations", "deliveries", "records")
"""The tables holding a row (or more) per record of a run: what trimming an old run deletes."""
RUN_TABLES: tuple[str, ...] = TABLES
"""Where a run's rows may be: what deleting a run deletes (tables without a ``run_id`` are skipped)."""
_CHUNK = 500


def human_bytes(count: int) -> str:
    """``4.8 MB``-style sizes (decimal units, like ``du --si``).

    >>> human_bytes(4_812_345)
    '4.8 MB'
    """
    size = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _chunks(run_ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(run_ids), _CHUNK):
        yield run_ids[start : start + _CHUNK]


def rows_of(db: Backend, table: str, run_ids: Sequence[str]) -> int:
    """How many rows these runs have in ``table``."""
    total = 0
    for chunk in _chunks(run_ids):
        marks = ", ".join("?" for _ in chunk)
        row = db.fetchone(f"SELECT COUNT(*) AS n FROM {table} WHERE run_id IN ({marks})", tuple(chunk))  # noqa: S608
        total += int(row["n"]) if row is not None else 0
    return total


def usage(db: Backend) -> list[tuple[str, int, int | None]]:
    """Each table of the store: its rows and its bytes on disk (None when the backend cannot say), largest first."""
    sizes = db.table_bytes()
    found = []
    for table in TABLES:
        row = db.fetchone(f"SELECT COUNT(*) AS n FROM {table}")  # noqa: S608 - names from the schema
        found.append((table, int(row["n"]) if row is not None else 0, sizes.get(table)))
    return sorted(found, key=lambda t: (t[2] or 0, t[1]), reverse=True)


def estimated_bytes(db: Backend, run_ids: Sequence[str], tables: Sequence[str]) -> int:
    """About how many bytes these runs' rows take in ``tables``: each table's size times their share of its rows."""
    if not run_ids:
        return 0
    sizes = db.table_bytes()
    total = 0.0
    for table in tables:
        size = sizes.get(table, 0)
        if not size or "run_id" not in db.columns(table):
            continue
        row = db.fetchone(f"SELECT COUNT(*) AS n FROM {table}")  # noqa: S608 - names from the schema
        all_rows = int(row["n"]) if row is not None else 0
        if all_rows:
            total += size * rows_of(db, table, run_ids) / all_rows
    return round(total)


def trim(db: Backend, run_ids: Sequence[str]) -> int:
    """Delete these runs' per-record rows (inside the caller's transaction); the rows deleted."""
    deleted = 0
    for table in PER_RECORD_TABLES:
        deleted += rows_of(db, table, run_ids)
        for chunk in _chunks(run_ids):
            marks = ", ".join("?" for _ in chunk)
            db.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", tuple(chunk))  # noqa: S608
    return deleted
