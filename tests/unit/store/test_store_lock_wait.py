"""A writer left waiting on the SQLite run store's write lock says what it waits for: the lock, the file and the
runs in progress that may hold it (one line, once the wait passes LOCK_NOTICE_SECONDS)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from bonzo_bulk.store import sqlite as sqlite_backend
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
