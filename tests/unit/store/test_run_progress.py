"""Runs in flight in the run store (migration 10, ``run_progress``), on SQLite and PostgreSQL: written by the
engine's progress subscriber at most once a second and when the run is done, read by ``serve``'s ``/live``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import begin_bare_run, build_run

from bonzo_bulk._http import run_async
from bonzo_bulk.engine.events import Polled, RecordsPlanned, RunDone
from bonzo_bulk.engine.observers import ProgressRecorder
from bonzo_bulk.library import execute
from bonzo_bulk.plan.planner import plan_run
from bonzo_bulk.sandbox import SandboxServer
from bonzo_bulk.store import RunStore
from bonzo_bulk.store.progress import RunProgress, UserProgress

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _begin(store: RunStore, run_id: str) -> None:
    begin_bare_run(store, run_id, START)


def _progress(run_id: str, updated_at: datetime, **counts: Any) -> RunProgress:
    return RunProgress(
        run_id=run_id,
        test_name="t",
        integration="monitorbase",
        target="sandbox",
        started_at=START,
        updated_at=updated_at,
        **counts,
    )


def test_progress_round_trips_replaces_and_is_read_by_recency(store_at: str | Path) -> None:
    now = datetime.now(UTC)
    with RunStore(store_at) as store:
        _begin(store, "old")
        _begin(store, "live")
        store.save_progress(_progress("old", now - timedelta(hours=2), planned=5, finished=True, passed=True))
        first = _progress("live", now, planned=10, sent=4, per_user={"a@x.test": UserProgress(6, 3, 1, 1)})
        store.save_progress(first)
        later = _progress("live", now + timedelta(seconds=1), planned=10, sent=10, accepted=9, visible=7, expected=9)
        store.save_progress(later)
        assert store.progress_of("live") == later
        assert later.backlog == 2
        assert [p.run_id for p in store.progress_since(now - timedelta(minutes=5))] == ["live"]
        assert {p.run_id for p in store.progress_since(now - timedelta(hours=3))} == {"live", "old"}
        old = store.progress_of("old")
        assert old is not None and old.finished and old.passed is True
        store.delete_runs(["live"])
        assert store.progress_of("live") is None


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_recorder_writes_at_most_once_a_second_and_always_when_the_run_is_done(
    store_at: str | Path, make_config: Any, tmp_path: Path
) -> None:
    plan = plan_run(make_config(tmp_path, test_records=6))
    records = plan.phases[0].records
    clock = _Clock()
    with RunStore(store_at) as store:
        _begin(store, plan.run_id)
        recorder = ProgressRecorder(store, plan, clock=clock)
        recorder(RecordsPlanned("primary", records[:2]))
        assert store.progress_of(plan.run_id) is not None  # the first event is written at once
        clock.now = 0.5
        recorder(RecordsPlanned("primary", records[2:]))
        recorder(Polled(1, 6))
        written = store.progress_of(plan.run_id)
        assert written is not None and written.planned == 2 and written.visible == 0  # within the second: held
        clock.now = 1.0
        recorder(Polled(3, 6))
        written = store.progress_of(plan.run_id)
        assert written is not None and (written.planned, written.visible, written.expected) == (6, 3, 6)
        assert sum(u.planned for u in written.per_user.values()) == 6
        clock.now = 1.2
        recorder(RunDone(build_run(run_id=plan.run_id)))
        done = store.progress_of(plan.run_id)
        assert done is not None and done.finished and done.passed is True


def test_a_run_leaves_its_whole_funnel_in_the_store(make_config: Any, tmp_path: Path, sandbox: SandboxServer) -> None:
    loaded = make_config(tmp_path, sandbox.url, test_records=9)
    result = run_async(execute(plan_run(loaded)))
    with RunStore(Path(loaded.config.reports_dir) / "runs.sqlite3") as store:
        progress = store.progress_of(result.run_id)
    assert progress is not None and progress.finished and progress.passed is result.passed
    assert (progress.planned, progress.sent, progress.accepted, progress.judged) == (9, 9, 9, 9)
    assert progress.visible == progress.expected == 9 and progress.backlog == 0
    assert sum(u.judged for u in progress.per_user.values()) == 9
    assert progress.failed == sum(p.failed_records for p in result.phases)


def test_a_progress_write_that_fails_is_a_warning_and_the_run_goes_on(
    store_at: str | Path, make_config: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plan = plan_run(make_config(tmp_path, test_records=3))
    store = RunStore(store_at)
    _begin(store, plan.run_id)
    store.close()  # the store went away under the run
    recorder = ProgressRecorder(store, plan, clock=_Clock())
    recorder(RecordsPlanned("primary", plan.phases[0].records))
    recorder(RunDone(build_run(run_id=plan.run_id)))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "progress is not written to the store any more" in warnings[0]
