"""The monitor's tables (migration 4) on SQLite and PostgreSQL: alert state, runs and deliveries survive a reopen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bonzo_bulk.monitor.policy import AlertState
from bonzo_bulk.monitor.state import Delivery, MonitorRun, MonitorStore
from bonzo_bulk.store import RunStore

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_state_runs_and_deliveries_survive_a_reopen(store_at: str | Path) -> None:
    state = AlertState(runs=3, consecutive_failures=2, alerted=True, failing_since=NOW, recent=(True, True))
    first = MonitorRun("mb", NOW, NOW, "r1", "failed", 1, "failure 1 of 2 before an alert", ())
    second = MonitorRun(
        "mb", NOW + timedelta(minutes=15), NOW + timedelta(minutes=16), "r2", "failed", 1, "alert", ("alert",)
    )
    sent = [Delivery("alert", "json://h #1", True), Delivery("alert", "none", False, "no channel")]
    with RunStore(store_at) as store:
        monitors = MonitorStore(store)
        assert monitors.load_state("mb") == AlertState()
        monitors.save(first, AlertState(runs=1), [])
        monitors.save(second, state, sent)
    with RunStore(store_at) as store:
        monitors = MonitorStore(store)
        assert monitors.load_state("mb") == state
        assert monitors.runs("mb") == [(second, sent), (first, [])]
        assert monitors.names() == ["mb"]
