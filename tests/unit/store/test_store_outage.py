"""A PostgreSQL run store stopped mid-run and started again: what the run wrote meanwhile waits in its journal,
the store reconnects (with back-off) and takes it, and the run's in-progress mark is held again (issue 25.2)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from builders import begin_bare_run
from pgcluster import PgCluster

from bonzo_bulk.models import DeliveryResult
from bonzo_bulk.store import RunStore


def delivery(name: str) -> DeliveryResult:
    now = datetime.now(UTC)
    return DeliveryResult(name, 200, 1, 1.0, 1.0, now, now)


def test_postgresql_stopped_mid_run_loses_no_delivery(
    pg_cluster: PgCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = pg_cluster.new_database()
    journal = tmp_path / "journal" / "r1.jsonl"
    with RunStore(url) as store, RunStore(url) as other:
        begin_bare_run(store)
        store.keep_journal(journal)
        store.add_deliveries("r1", "primary", [delivery("A")])
        pg_cluster.stop_server()
        try:
            store.add_deliveries("r1", "primary", [delivery("B")])
            store.add_deliveries("r1", "primary", [delivery("C")])  # within the back-off: straight to the journal
            assert store.failing and journal.is_file()
        finally:
            pg_cluster.start_server()
        assert store.replay_journal(now=True)
        store.add_deliveries("r1", "primary", [delivery("D")])
        assert not journal.exists()
        rows = store.backend.fetchall("SELECT record_name FROM deliveries WHERE run_id = ? ORDER BY seq", ("r1",))
        assert [r["record_name"] for r in rows] == ["A", "B", "C", "D"]
        other.backend.reconnect()  # the other connection was cut too
        assert other.running_runs() == ["r1"]  # the reconnected store holds the run's in-progress lock again
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("the run goes on" in m for m in messages) == 1
    assert any("answers again after" in m and "2 journaled batch(es) written" in m for m in messages)
