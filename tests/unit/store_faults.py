"""Run-store faults as a wrapper around a real backend: the driver's own error, raised at the backend boundary.

:class:`FaultyBackend` wraps a real :class:`~bonzo_bulk.store.sqlite.SqliteBackend` (or PostgreSQL one) and
forwards everything, except that while :attr:`fault` is set, every statement that writes (and, with
``reads=True``, every statement) raises it — the real ``sqlite3`` / ``psycopg`` exception the driver raises
for a full disk, a lock held past the busy timeout or a damaged page. ``after`` lets that many writes through
first (a store that fails mid-run), ``times`` heals it after raising that often (a store that comes back).
Reconnecting fails too while ``reads`` is set (a server that is down).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from bonzo_bulk.store.backend import Backend, Row

DISK_FULL = sqlite3.OperationalError("database or disk is full")
LOCKED = sqlite3.OperationalError("database is locked")
MALFORMED = sqlite3.DatabaseError("database disk image is malformed")
READ_ONLY = sqlite3.OperationalError("attempt to write a readonly database")
_WRITES = ("INSERT", "UPDATE", "DELETE", "CREATE")


class FaultyBackend:
    """A real backend whose writes (or all statements) raise :attr:`fault` while it is set."""

    def __init__(self, real: Backend) -> None:
        self.real = real
        self.dialect = real.dialect
        self.label = real.label
        self.types = real.types
        self.fault: BaseException | None = None
        self.reads = False
        self.after = 0
        self.times: int | None = None
        self.raised = 0
        self.reconnects = 0

    def fail(self, fault: BaseException, *, after: int = 0, reads: bool = False, times: int | None = None) -> None:
        """Raise ``fault`` from the write after ``after`` more have gone through (every statement with ``reads``),
        ``times`` times (for ever if None)."""
        self.fault, self.after, self.reads, self.times = fault, after, reads, times

    def heal(self) -> None:
        self.fault = None

    def _check(self, sql: str) -> None:
        if self.fault is None or not (self.reads or sql.lstrip().upper().startswith(_WRITES)):
            return
        if self.after > 0:
            self.after -= 1
            return
        self.raised += 1
        fault = self.fault
        if self.times is not None and self.raised >= self.times:
            self.fault = None
        raise fault

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._check(sql)
        self.real.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._check(sql)
        self.real.executemany(sql, rows)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._check(sql)
        return self.real.fetchall(sql, params)

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self._check(sql)
        return self.real.fetchone(sql, params)

    def batches(self, sql: str, params: Sequence[Any] = (), *, size: int = 2000) -> Iterator[list[Row]]:
        self._check(sql)
        return self.real.batches(sql, params, size=size)

    def transaction(self, *, for_schema: bool = False) -> AbstractContextManager[None]:
        return self.real.transaction(for_schema=for_schema)

    def reconnect(self) -> None:
        self.reconnects += 1
        if self.fault is not None and self.reads:
            raise self.fault
        self.real.reconnect()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)
