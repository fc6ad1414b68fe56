"""The team backend: a PostgreSQL database reached with psycopg 3 (one connection per store).

Why psycopg 3 and not asyncpg: the store is called synchronously from every stage (the engine
writes a batch between awaits, readers are plain functions), psycopg speaks the DB-API the SQLite
backend speaks (so the store's SQL is written once), pipelines ``executemany`` for streamed batches,
and reads ``PGPASSWORD``/``.pgpass`` like every PostgreSQL tool. asyncpg would need an event loop in
every reader and its own ``$1`` SQL. No ORM: a dozen fixed statements and a codec over our own
dataclasses are shorter than a mapping layer, and the migrations stay readable SQL for both dialects.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any, cast

import psycopg
from psycopg.rows import dict_row

from bonzo_bulk.config.store_location import Dialect, StoreLocation
from bonzo_bulk.errors import StoreUnreachable
from bonzo_bulk.secrets import redact
from bonzo_bulk.store.backend import Row

CONNECT_TIMEOUT_SECONDS = 10
LOCK_NOTICE_SECONDS = 3.0
"""A transaction still waiting for a lock after this long logs one line naming the store, the lock and its holders
(as the SQLite backend does for its write lock)."""
_VERSION_TABLE = "bonzo_bulk_schema"
_MIGRATION_LOCK = 0x626F6E7A6F  # one advisory lock id for "bonzo" schema changes
_RETRY_STATES = frozenset({"40001", "40P01", "55P03"})  # serialization failure, deadlock, lock not available
_WAITS = (
    "SELECT l.locktype, l.relation::regclass::text AS relation, l.classid::bigint AS classid, l.objid::bigint AS objid,"
    " l.mode, l.granted FROM pg_locks AS l"
    " WHERE l.pid = %s AND (NOT l.granted OR l.locktype = 'tuple')"
)
_HOLDERS = (
    "SELECT a.pid, a.application_name, a.state, EXTRACT(EPOCH FROM now() - a.xact_start) AS seconds"
    " FROM pg_stat_activity AS a WHERE a.pid = ANY(pg_blocking_pids(%s)) ORDER BY a.pid"
)

log = logging.getLogger("bonzo_bulk.store")


_INSERT = re.compile(r"INSERT INTO (?P<table>\w+) \((?P<names>[^)]*)\) VALUES \(%s(?:, %s)*\)(?P<rest>.*)\Z", re.DOTALL)


@functools.lru_cache(maxsize=256)
def _dialect(sql: str) -> str:
    """The store's ``?`` parameter marks as psycopg's ``%s`` (a literal ``%`` doubled first)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresBackend:
    """A connection to a PostgreSQL run store; connection failures exit 2 naming the URL without password."""

    dialect: Dialect = "postgresql"

    def __init__(self, location: StoreLocation) -> None:
        assert location.url is not None
        self.label = location.label
        self._url = location.url
        self.types = {"INT": "BIGINT", "REAL": "DOUBLE PRECISION", "BLOB": "BYTEA"}
        self._cursors = itertools.count(1)
        self._staged: set[str] = set()
        """Tables whose staging table this connection has made (temporary: gone when it closes)."""
        self._held: set[str] = set()
        """Runs this connection holds as in progress (a session advisory lock each)."""
        self._url = location.url
        self._conn = self._connect()

    def _connect(self, application_name: str = "bonzo-bulk") -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                row_factory=dict_row,
                application_name=application_name,
            )
        except psycopg.Error as exc:
            reason = redact(" ".join(str(exc).split()) or type(exc).__name__)
            raise StoreUnreachable(
                f"cannot connect to run store {self.label}: {reason}; check that the server is up and the URL "
                "(--store-url / BONZO_BULK_STORE_URL), and that PGPASSWORD holds the right password"
            ) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(_dialect(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """An INSERT is streamed with COPY into a session-private staging table, then upserted in one statement."""
        statement = _dialect(sql)
        parts = _INSERT.match(statement)
        if parts is None:
            with self._conn.cursor() as cursor:
                cursor.executemany(statement, rows)
            return
        table, names, rest = parts.group("table"), parts.group("names"), parts.group("rest")
        stage = f"bonzo_bulk_stage_{table}"
        with self._conn.transaction(), self._conn.cursor() as cursor:
            if table not in self._staged:
                cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table})")
                self._staged.add(table)
            with cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage}{rest}")  # noqa: S608
            cursor.execute(f"TRUNCATE {stage}")

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return cast(list[Row], self._conn.execute(_dialect(sql), params).fetchall())

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return cast(Row | None, self._conn.execute(_dialect(sql), params).fetchone())

    def batches(self, sql: str, params: Sequence[Any] = (), *, size: int = 2000) -> Iterator[list[Row]]:
        # Each call its own server-side cursor, held outside any transaction: export reads two result sets at once
        # (records and their checks), and nested transactions could not end in the order the generators do.
        name = f"bonzo_bulk_batches_{next(self._cursors)}"
        with self._conn.cursor(name=name, withhold=True) as cursor:
            cursor.execute(_dialect(sql), params)
            while rows := cursor.fetchmany(size):
                yield cast(list[Row], rows)

    def columns(self, table: str) -> list[str]:
        rows = self.fetchall(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = ? ORDER BY ordinal_position",
            (table,),
        )
        return [str(r["column_name"]) for r in rows]

    @contextmanager
    def transaction(self, *, for_schema: bool = False) -> Iterator[None]:
        with self._conn.transaction(), self._lock_watch():
            if for_schema:
                # Several runs may open a fresh database at once: one applies the migrations, the rest wait.
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                self._conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {_VERSION_TABLE} (version INTEGER PRIMARY KEY,"
                    " summary TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
            yield

    @contextmanager
    def _lock_watch(self) -> Iterator[None]:
        """While the block runs, a timer: past :data:`LOCK_NOTICE_SECONDS` it asks the server what this connection
        waits for and logs it (nothing when it waits for no lock: a slow statement is no lock wait)."""
        timer = threading.Timer(LOCK_NOTICE_SECONDS, self._notice_lock_wait, args=(self._conn.info.backend_pid,))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def _notice_lock_wait(self, pid: int) -> None:
        """Log what session ``pid`` (this connection, busy waiting) waits for, asked on a short connection of its
        own: the lock (a table, a row of it, the schema-migration lock, a run's in-progress lock) and who holds it."""
        try:
            with self._connect("bonzo-bulk lock check") as probe:
                locks = probe.execute(_WAITS, (pid,)).fetchall()
                holders = probe.execute(_HOLDERS, (pid,)).fetchall() if locks else []
        except (psycopg.Error, StoreUnreachable) as exc:
            log.debug("cannot tell what the run store %s waits for: %s", self.label, redact(str(exc)))
            return
        if not any(not lock["granted"] for lock in locks):
            return
        log.warning(
            "waiting for a lock on the run store %s (PostgreSQL: %s) for %g s so far, without a limit: %s",
            self.label,
            _describe_wait(locks),
            LOCK_NOTICE_SECONDS,
            _describe_holders(holders),
        )

    def schema_version(self) -> int:
        row = self.fetchone(f"SELECT to_regclass('{_VERSION_TABLE}') IS NOT NULL AS present")
        if row is None or not row["present"]:
            return 0
        found = self.fetchone(f"SELECT COALESCE(MAX(version), 0) AS version FROM {_VERSION_TABLE}")  # noqa: S608
        return int(found["version"]) if found is not None else 0

    def set_schema_version(self, version: int, summary: str) -> None:
        self.execute(
            f"INSERT INTO {_VERSION_TABLE} (version, summary, applied_at) VALUES (?, ?, ?)",  # noqa: S608
            (version, summary, datetime.now(UTC).isoformat()),
        )

    def is_error(self, exc: BaseException) -> bool:
        return isinstance(exc, psycopg.Error)

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, psycopg.Error) and exc.sqlstate in _RETRY_STATES

    def compact(self) -> None:
        """Nothing to do: PostgreSQL's autovacuum reclaims deleted rows."""

    def table_bytes(self) -> dict[str, int]:
        """Bytes each table of the store's schema takes, its indexes and TOAST included."""
        rows = self.fetchall(
            "SELECT c.relname AS tbl, pg_total_relation_size(c.oid) AS size FROM pg_class AS c"
            " JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = current_schema()"
        )
        return {str(row["tbl"]): int(row["size"] or 0) for row in rows}

    def hold_run(self, run_id: str) -> None:
        """A session advisory lock keyed by the run id: the server drops it when this connection ends."""
        if run_id in self._held:
            return
        row = self.fetchone("SELECT pg_try_advisory_lock(?) AS got", (_run_key(run_id),))
        if row is not None and row["got"]:  # else another session holds it: the run is in progress either way
            self._held.add(run_id)

    def run_is_held(self, run_id: str) -> bool:
        if run_id in self._held:
            return False
        row = self.fetchone("SELECT pg_try_advisory_lock(?) AS got", (_run_key(run_id),))
        if row is None or not row["got"]:
            return True
        self.execute("SELECT pg_advisory_unlock(?)", (_run_key(run_id),))
        return False

    def integrity_problem(self) -> str | None:
        """None: the server keeps its own files sound."""
        return None

    def free_bytes(self) -> int | None:
        """None: the server's disk is not ours to see."""
        return None

    def reconnect(self) -> None:
        """A new connection (the old one's session, its staging tables and advisory locks, are gone)."""
        with suppress(psycopg.Error):
            self._conn.close()
        self._conn = self._connect()
        self._staged.clear()
        held, self._held = self._held, set()
        for run_id in held:
            self.hold_run(run_id)

    def close(self) -> None:
        self._conn.close()


def _describe_wait(locks: Sequence[dict[str, Any]]) -> str:
    """What a session waits for, in words: ``a row of table runs``, ``table runs (AccessExclusiveLock)``, ``the
    schema-migration lock`` or ``a run's in-progress lock``."""
    waiting = next(lock for lock in locks if not lock["granted"])
    table = waiting["relation"] or next((lock["relation"] for lock in locks if lock["relation"]), None)
    if waiting["locktype"] == "advisory":
        key = (waiting["classid"] << 32) | waiting["objid"]
        if key == _MIGRATION_LOCK:
            return "the schema-migration lock (another bonzo-bulk is migrating the store)"
        return "a run's in-progress lock"
    if waiting["locktype"] in ("transactionid", "tuple"):
        return f"a row of table {table} that another transaction is writing" if table else "another transaction"
    if table:
        return f"table {table} ({waiting['mode']})"
    return f"a {waiting['locktype']} lock ({waiting['mode']})"


def _describe_holders(holders: Sequence[dict[str, Any]]) -> str:
    """Who holds the lock: each blocking session's pid, program and how long its transaction has been open."""
    if not holders:
        return "its holder has just let go"
    return "held by " + ", ".join(
        f"pid {h['pid']} ({h['application_name'] or 'unnamed'}, {h['state']}"
        + (f", transaction open {float(h['seconds']):.0f} s" if h["seconds"] is not None else "")
        + ")"
        for h in holders
    )


def _run_key(run_id: str) -> int:
    """The advisory lock key of a run: 64 bits of a hash of its id (PostgreSQL's ``bigint``)."""
    digest = hashlib.sha256(f"bonzo-bulk run {run_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
