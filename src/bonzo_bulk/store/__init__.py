"""The run store: every run's records, deliveries, prospects and checks, on SQLite or PostgreSQL.

SQLite (a file, WAL) is the embedded default; a ``postgresql://user@host:port/db`` location
(``--store-url`` / ``BONZO_BULK_STORE_URL`` / ``store_url:``, password from ``PGPASSWORD``) gives a
team or CI one shared history. Every reader and writer goes through :class:`RunStore`.

Modules, one concept each:

- ``interface``  :class:`RunStore`, the one API (streamed writes, reads, baselines, cleanup marks)
- ``ledger``     each record's rows, written as it is judged and read back in batches
- ``results``    a finished run: each phase's figures, stray checks and diagnoses as the run made them
- ``history``    run summaries, baselines, runs that never finished
- ``prospects``  what cleanup reads and marks: a run's prospects, planned and accepted records
- ``problems``   the rows of failures tracked across runs (:mod:`bonzo_bulk.problems` decides them)
- ``rows``       the rows readers get back (:class:`RunSummary`, :class:`StoredProspect`, :class:`ProblemRow`, ...)
- ``health``     whether a store can take a run, checked before sending (``PRAGMA quick_check``, free space, a
                 rolled-back write)
- ``journal``    a run's writes the store could not take, in a local JSON lines file until they are replayed
- ``backend``    what a backend provides; ``sqlite`` and ``postgres`` are the two
- ``schema``     numbered migrations, one SQL text for both dialects, applied on first use
- ``codec``      dataclass fields <-> columns (JSON, times, flags)
- ``transfer``   ``store migrate`` and ``store copy`` (moving history between stores)

Where a store is (a path or URL, its printable label without the password) is
:mod:`bonzo_bulk.config.store_location`.

Adding a table (load stages, monitor/alert state, ...) is one entry appended to
``schema.MIGRATIONS``::

    Migration(8, "example stages", '''
        CREATE TABLE IF NOT EXISTS example_stages (
            run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, stage TEXT NOT NULL,
            users {INT} NOT NULL, p95_ms {REAL}, PRIMARY KEY (run_id, stage)
        )''', tables=("example_stages",))

Both backends apply it on their next open (a store already newer than the tool is refused), and
``store copy`` moves the new table too (tables with a ``run_id`` run by run, others whole). Then
add the :class:`RunStore` methods that write and read it, with ``?`` parameters and SQL both
dialects accept (``ON CONFLICT ... DO UPDATE``, no ``rowid``, no ``INSERT OR REPLACE``).
"""

from __future__ import annotations

from bonzo_bulk.config.store_location import DEFAULT_STORE_PATH, STORE_URL_ENV, StoreLocation
from bonzo_bulk.store.interface import RunStore
from bonzo_bulk.store.rows import DeletedProspect, RunSummary, StoredProspect, StoredRecord
from bonzo_bulk.store.schema import MIGRATIONS, SCHEMA_VERSION, Migration

__all__ = [
    "DEFAULT_STORE_PATH",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "STORE_URL_ENV",
    "DeletedProspect",
    "Migration",
    "RunStore",
    "RunSummary",
    "StoreLocation",
    "StoredProspect",
    "StoredRecord",
]
