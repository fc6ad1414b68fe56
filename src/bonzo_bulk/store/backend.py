"""What a run-store backend provides: statements in one SQL dialect (``?`` marks), transactions, versions.

The store's queries are written once, in the SQL both SQLite and PostgreSQL speak (``ON CONFLICT``,
``COALESCE``, ``?`` parameters that a backend may rewrite); a backend only connects, runs them,
keeps the schema version and says which of its errors are worth retrying.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from bonzo_bulk.config.store_location import Dialect


class Row(Protocol):
    """A result row read by column name (``sqlite3.Row`` or a psycopg dict row)."""

    def __getitem__(self, key: str, /) -> Any: ...


class Backend(Protocol):
    """One open connection to a run store; statements outside ``transaction()`` commit at once."""

    dialect: Dialect
    label: str
    """Where the store is, safe to print (no password)."""
    types: dict[str, str]
    """How the migrations' type tokens ({INT}, {REAL}, {BLOB}) read in this dialect."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run ``sql`` for each row; the rows of one INSERT must not repeat a conflict key (sent together)."""
        ...

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    def batches(self, sql: str, params: Sequence[Any] = (), *, size: int = 2000) -> Iterator[list[Row]]:
        """Rows of a large result in lists of ``size``, without holding the whole result."""
        ...

    def columns(self, table: str) -> list[str]:
        """The column names of a table, in order."""
        ...

    def transaction(self, *, for_schema: bool = False) -> AbstractContextManager[None]:
        """All statements inside commit together (``for_schema``: also serialise schema changes)."""
        ...

    def schema_version(self) -> int: ...

    def set_schema_version(self, version: int, summary: str) -> None:
        """Record that migration ``version`` was applied (inside the migration's transaction)."""
        ...

    def is_error(self, exc: BaseException) -> bool:
        """Whether ``exc`` is this driver's database error (mapped to StoreError at the store)."""
        ...

    def is_transient(self, exc: BaseException) -> bool:
        """Whether a failed transaction may simply be tried again (lock timeout, deadlock, serialisation)."""
        ...

    def compact(self) -> None:
        """Give freed space back to the disk (SQLite: VACUUM; PostgreSQL's autovacuum does it)."""

    def table_bytes(self) -> dict[str, int]:
        """Bytes each table takes on disk, indexes included (empty when the backend cannot say)."""

    def hold_run(self, run_id: str) -> None:
        """Mark run ``run_id`` as in progress for as long as this connection (or its process) lives: a lock the
        operating system or the server drops when the process dies, so a killed run is never "running"."""
        ...

    def run_is_held(self, run_id: str) -> bool:
        """Whether another connection holds run ``run_id``'s in-progress lock (:meth:`hold_run`)."""
        ...

    def integrity_problem(self) -> str | None:
        """What an integrity check of the store found wrong (SQLite ``PRAGMA quick_check``), or None."""
        ...

    def free_bytes(self) -> int | None:
        """Free bytes on the store's filesystem (None when the backend cannot say: a database server)."""
        ...

    def reconnect(self) -> None:
        """Drop the connection and open a new one (after the server or file failed), holding the same runs."""
        ...

    def close(self) -> None: ...
