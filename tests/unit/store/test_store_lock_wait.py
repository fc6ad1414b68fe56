"""A writer left waiting on the run store's lock says what it waits for: on SQLite the write lock, the file and the
runs in progress that may hold it; on PostgreSQL the store, the table (or lock) and the sessions holding it (one
line, once the wait passes LOCK_NOTICE_SECONDS)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgcluster import PASSWORD, PgCluster

from bonzo_bulk.config.store_location import StoreLocation
from bonzo_bulk.store import postgres as postgres_backend
from bonzo_bulk.store import sqlite as sqlite_backend
from bonzo_bulk.store.postgres import PostgresBackend
from bonzo_bulk.store.sqlite import SqliteBackend


class _Heard(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.event.set()


def test_a_writer_waiting_on_the_store_lock_logs_one_line_naming_the_lock_the_file_and_the_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_backend, "LOCK_NOTICE_SECONDS", 0.2)
    path = tmp_path / "runs.db"
    heard = _Heard()
    logger = logging.getLogger("bonzo_bulk.store")
    logger.addHandler(heard)
    holder = SqliteBackend(path)
    holder.execute("CREATE TABLE marks (x INTEGER)")
    holder.hold_run("run-holding-1")
    written: list[int] = []

    def write() -> None:
        waiter = SqliteBackend(path)
        try:
            with waiter.transaction():
                waiter.execute("INSERT INTO marks VALUES (2)")
            written.append(2)
        finally:
            waiter.close()

    try:
        with holder.transaction():
            holder.execute("INSERT INTO marks VALUES (1)")
            thread = threading.Thread(target=write)
            thread.start()
            assert heard.event.wait(30), "the waiting writer never said it was waiting"
        thread.join(30)
    finally:
        logger.removeHandler(heard)
        holder.close()
    assert written == [2]
    assert len(heard.lines) == 1
    line = heard.lines[0]
    assert "run store's write lock" in line and str(path) in line
    assert "run-holding-1 (pid " in line and "pid ?" not in line


def test_a_writer_that_gets_the_lock_at_once_says_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    backend = SqliteBackend(tmp_path / "runs.db")
    with backend.transaction():
        backend.execute("CREATE TABLE marks (x INTEGER)")
    backend.close()
    assert "write lock" not in caplog.text


def _waiting_writer(backend: Any, statement: str, done: list[str]) -> threading.Thread:
    def write() -> None:
        with backend.transaction():
            backend.execute(statement)
        done.append(statement)

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_a_postgresql_writer_waiting_on_a_row_lock_logs_the_store_the_table_and_the_holder(
    pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 25.8: the PostgreSQL store waited silently for a row another session held; now, past the notice
    time, one line names the store (its URL without password), the table and the session holding it."""
    monkeypatch.setattr(postgres_backend, "LOCK_NOTICE_SECONDS", 0.2)
    url = pg_cluster.new_database()
    heard = _Heard()
    logger = logging.getLogger("bonzo_bulk.store")
    logger.addHandler(heard)
    waiter = PostgresBackend(StoreLocation.parse(url))
    done: list[str] = []
    try:
        waiter.execute("CREATE TABLE marks (id INTEGER PRIMARY KEY, x INTEGER)")
        waiter.execute("INSERT INTO marks VALUES (1, 0)")
        with psycopg.connect(url, autocommit=True, application_name="the-holder") as holder, holder.transaction():
            holder.execute("UPDATE marks SET x = 1 WHERE id = 1")
            thread = _waiting_writer(waiter, "UPDATE marks SET x = 2 WHERE id = 1", done)
            assert heard.event.wait(30), "the waiting writer never said what it waited for"
        thread.join(30)
    finally:
        logger.removeHandler(heard)
        waiter.close()
    assert done == ["UPDATE marks SET x = 2 WHERE id = 1"]
    [line] = heard.lines
    assert line.startswith(f"waiting for a lock on the run store {StoreLocation.parse(url).label} (PostgreSQL: ")
    assert "a row of table marks" in line
    assert "held by pid " in line and "(the-holder, idle in transaction" in line
    assert PASSWORD not in line


def test_a_postgresql_transaction_that_waits_for_no_lock_says_nothing(
    pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(postgres_backend, "LOCK_NOTICE_SECONDS", 0.05)
    backend = PostgresBackend(StoreLocation.parse(pg_cluster.new_database()))
    try:
        with backend.transaction():
            backend.execute("SELECT pg_sleep(0.5)")
    finally:
        backend.close()
    assert "waiting for a lock" not in caplog.text
