"""Whether a run store can take a run, checked before the first record is sent (the engine's preflight).

Three checks, none of which leaves a trace: the file's integrity (SQLite ``PRAGMA quick_check``), the free
space on the store's filesystem against what the run will write (SQLite), and a write that is rolled back
(both backends: a read-only file or folder, a read-only database user, a standby server). A store that fails
one is refused with :class:`~bonzo_bulk.errors.StoreUnusable` (exit 2): nothing is sent.
"""

from __future__ import annotations

from bonzo_bulk.errors import StoreUnusable
from bonzo_bulk.secrets import redact
from bonzo_bulk.store.backend import Backend
from bonzo_bulk.store.space import human_bytes

BYTES_PER_RECORD = 11_000
"""About what a record takes in the store (its payload and body, delivery, observation, checks, outcome)."""
MIN_FREE_BYTES = 64 * 1024 * 1024
"""The least free space a run starts with, however small: SQLite's write-ahead log and the checkpoint need room."""
_PROBE_TABLE = "bonzo_bulk_write_probe"


class _RolledBack(Exception):
    """Raised inside the probe's transaction so that it rolls back."""


def needed_bytes(records: int) -> int:
    """The free space a run of ``records`` records needs before it starts."""
    return max(MIN_FREE_BYTES, 2 * BYTES_PER_RECORD * records)


def check_store(db: Backend, *, records: int) -> None:
    """Refuse a store that cannot take a run of ``records`` records: damaged, full, or not writable."""
    fix = "point --store-url / --store at another location, or fix this one; nothing was sent"
    damage = db.integrity_problem()
    if damage is not None:
        raise StoreUnusable(
            f"run store {db.label} is damaged (SQLite PRAGMA quick_check: {damage}); {fix} (a damaged file can be "
            "moved away: a new store is made in its place)"
        )
    free = db.free_bytes()
    needed = needed_bytes(records)
    if free is not None and free < needed:
        raise StoreUnusable(
            f"run store {db.label}: {human_bytes(free)} free on its filesystem, {human_bytes(needed)} needed for a "
            f"run of {records} record(s) (about {human_bytes(BYTES_PER_RECORD)} a record, twice over for the "
            f"write-ahead log, at least {human_bytes(MIN_FREE_BYTES)}); free some space or {fix}"
        )
    try:
        with db.transaction():
            db.execute(f"CREATE TABLE {_PROBE_TABLE} (probe INTEGER)")
            db.execute(f"INSERT INTO {_PROBE_TABLE} (probe) VALUES (1)")  # noqa: S608 - a fixed name
            raise _RolledBack
    except _RolledBack:
        return
    except Exception as exc:
        if not db.is_error(exc):
            raise
        raise StoreUnusable(
            f"run store {db.label} cannot be written ({redact(' '.join(str(exc).split()))}); {fix}"
        ) from exc
