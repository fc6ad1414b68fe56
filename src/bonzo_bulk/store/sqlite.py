"""The embedded backend: one SQLite file in WAL mode, written in ``BEGIN IMMEDIATE`` transactions.

WAL lets a report read while a run writes; ``BEGIN IMMEDIATE`` with a 30 s busy timeout queues
several writers (runs, a monitor) instead of failing them; the schema version is ``PRAGMA user_version``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, cast

from bonzo_bulk.config.store_location import Dialect
from bonzo_bulk.errors import StoreError, StoreUnusable
from bonzo_bulk.store.backend import Row

BUSY_TIMEOUT_SECONDS = 30.0
LOCK_NOTICE_SECONDS = 3.0
"""A wait for the write lock longer than this is logged once, naming the lock, the file and who may hold it."""

log = logging.getLogger("bonzo_bulk.store")


class SqliteBackend:
    """A connection to a SQLite run store file (created with its folder when missing)."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = str(path)
        self.types = {"INT": "INTEGER", "REAL": "REAL", "BLOB": "BLOB"}
        self._held: dict[str, IO[str]] = {}
        """Runs this connection holds as in progress: each an open lock file under ``<store>-running/``."""
        self._db = self._connect()
        try:
            self._prepare()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if isinstance(exc, sqlite3.OperationalError):
                raise StoreError(f"run store {path}: could not prepare the schema: {exc}") from exc
            raise StoreUnusable(
                f"run store {path} is not a SQLite database bonzo-bulk can use ({exc}: another kind of file, or a "
                "damaged or truncated one); nothing was sent: point --store-url / --store at another file, or move "
                "this one away and a new store is made"
            ) from exc
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreError(f"run store {path}: could not prepare the schema: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        """A connection to the file (made with its folder when missing); a place that cannot hold it is refused."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnusable(
                f"cannot open run store {self.path}: {exc}; nothing was sent: point --store-url / --store (or "
                "--reports-dir) at a folder that can be written"
            ) from exc
        db.row_factory = sqlite3.Row
        return db

    def _prepare(self) -> None:
        """WAL mode and the pragmas; a new file opened by several runs at once is busy for a moment, and
        SQLite answers the WAL switch "locked" without waiting, so that answer is retried (bounded)."""
        give_up = time.monotonic() + BUSY_TIMEOUT_SECONDS
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > give_up:
                    raise
                time.sleep(0.05)
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA synchronous=NORMAL")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._db.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._db.executemany(sql, rows)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return cast(list[Row], self._db.execute(sql, params).fetchall())

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return cast(Row | None, self._db.execute(sql, params).fetchone())

    def batches(self, sql: str, params: Sequence[Any] = (), *, size: int = 2000) -> Iterator[list[Row]]:
        cursor = self._db.execute(sql, params)
        while rows := cursor.fetchmany(size):
            yield cast(list[Row], rows)

    def columns(self, table: str) -> list[str]:
        return [str(r["name"]) for r in self._db.execute("SELECT name FROM pragma_table_info(?)", (table,))]

    @contextmanager
    def transaction(self, *, for_schema: bool = False) -> Iterator[None]:
        self._begin()
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _begin(self) -> None:
        """``BEGIN IMMEDIATE``, waiting up to the busy timeout while another writer holds the file; a wait past
        :data:`LOCK_NOTICE_SECONDS` logs one line saying what it waits for."""
        notice = min(LOCK_NOTICE_SECONDS, BUSY_TIMEOUT_SECONDS)
        self._set_busy_timeout(notice)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
        finally:
            self._set_busy_timeout(BUSY_TIMEOUT_SECONDS)
        log.warning(
            "waiting for the run store's write lock (SQLite BEGIN IMMEDIATE on %s) for %.0f s so far, up to %.0f s: "
            "another writer holds it; %s",
            self.path,
            notice,
            BUSY_TIMEOUT_SECONDS,
            self._likely_holders(),
        )
        self._set_busy_timeout(BUSY_TIMEOUT_SECONDS - notice)
        try:
            self._db.execute("BEGIN IMMEDIATE")
        finally:
            self._set_busy_timeout(BUSY_TIMEOUT_SECONDS)

    def _set_busy_timeout(self, seconds: float) -> None:
        self._db.execute(f"PRAGMA busy_timeout = {max(0, int(seconds * 1000))}")

    def _likely_holders(self) -> str:
        """The runs in progress on this store (each's lock file names its process), which may hold the lock."""
        folder = self.path.with_name(f"{self.path.name}-running")
        try:
            locks = sorted(folder.glob("*.lock"))
        except OSError:
            locks = []
        held = []
        for lock in locks:
            if self.run_is_held(lock.stem):
                try:
                    pid = lock.read_text(encoding="utf-8").split()[0]
                except (OSError, IndexError):
                    pid = "?"
                held.append(f"{lock.stem} (pid {pid})")
        if not held:
            return "no run is in progress on this store (a monitor, cleanup or other command may be writing)"
        return f"runs in progress on this store, one of which may hold it: {', '.join(held)}"

    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, version: int, summary: str) -> None:
        self._db.execute(f"PRAGMA user_version = {int(version)}")

    def is_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.Error)

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)

    def compact(self) -> None:
        """VACUUM the file and truncate the write-ahead log."""
        self._db.execute("VACUUM")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def table_bytes(self) -> dict[str, int]:
        """Bytes each table takes with its indexes (SQLite's ``dbstat``; empty where it is not compiled in)."""
        try:
            rows = self._db.execute(
                "SELECT m.tbl_name AS tbl, SUM(s.pgsize) AS size FROM dbstat AS s"
                " JOIN sqlite_master AS m ON m.name = s.name GROUP BY m.tbl_name"
            ).fetchall()
        except sqlite3.OperationalError:
            return {}
        return {str(row["tbl"]): int(row["size"] or 0) for row in rows}

    def _run_lock(self, run_id: str) -> Path:
        return self.path.with_name(f"{self.path.name}-running") / f"{run_id}.lock"

    def hold_run(self, run_id: str) -> None:
        """An exclusive ``flock`` on ``<store>-running/<run id>.lock``, released by :meth:`close` or the process's
        death (even SIGKILL)."""
        if run_id in self._held:
            return
        lock = self._run_lock(run_id)
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            handle = lock.open("a+", encoding="utf-8")
        except OSError as exc:
            raise StoreError(f"run store {self.path}: cannot write the in-progress mark {lock}: {exc}") from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another process holds it: the run is in progress either way
            handle.close()
            return
        try:  # who holds it, for a writer left waiting on the store; the lock alone is what counts
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()} {run_id}\n")
            handle.flush()
        except OSError:
            pass
        self._held[run_id] = handle

    def run_is_held(self, run_id: str) -> bool:
        lock = self._run_lock(run_id)
        if run_id in self._held or not lock.exists():
            return False
        try:
            with lock.open("a+", encoding="utf-8") as handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                return False
        except OSError:
            return False

    def integrity_problem(self) -> str | None:
        try:
            found = [str(row[0]) for row in self._db.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            return str(exc)
        return (
            None
            if found == ["ok"]
            else "; ".join(found[:3]) + (f" (and {len(found) - 3} more)" if len(found) > 3 else "")
        )

    def free_bytes(self) -> int | None:
        try:
            return shutil.disk_usage(self.path.parent).free
        except OSError:
            return None

    def reconnect(self) -> None:
        """A new connection to the same file (the runs' lock files stay held)."""
        with suppress(sqlite3.Error):
            self._db.close()
        self._db = self._connect()
        try:
            self._prepare()
        except sqlite3.Error as exc:
            raise StoreError(f"run store {self.path}: could not reopen it: {exc}") from exc

    def close(self) -> None:
        for run_id, handle in self._held.items():
            self._run_lock(run_id).unlink(missing_ok=True)
            handle.close()
        self._held.clear()
        self._db.close()
