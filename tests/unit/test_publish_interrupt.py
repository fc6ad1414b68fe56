"""Ctrl-C while a finished run publishes (issue 25.8): the run record stays consistent.

The run finished before publishing began: its row keeps its finish and verdict, its notes say it was interrupted
while its reports were written (never "before it finished"), it is not listed as interrupted, nothing half-written
is left in the reports folder, and ``history`` and ``report --run`` read it without error.

Each publishing step is made to raise KeyboardInterrupt (what Python raises on SIGINT) by replacing it in
:mod:`bonzo_bulk.report.publish`: a real signal cannot be aimed at one step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import pytest
from builders import RunSpec, begin_run_of, build_run
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.config.schema import ProcessingDelayModel
from bonzo_bulk.engine.events import RunDone
from bonzo_bulk.engine.interrupts import recording_interrupts
from bonzo_bulk.errors import Interrupted
from bonzo_bulk.library import run_bulk, tracker_for
from bonzo_bulk.report import publish
from bonzo_bulk.report.publish import Publisher
from bonzo_bulk.report.summary import HEALTH_DIR
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer
from bonzo_bulk.store import RunStore


@pytest.fixture(autouse=True)
def no_live_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "SUPERUSER_WEBHOOK_URL", "BONZO_API_URL"):
        monkeypatch.delenv(name, raising=False)


def _ctrl_c(*args: Any, **kwargs: Any) -> NoReturn:
    raise KeyboardInterrupt


def _assert_consistent(loaded: LoadedConfig, run_id: str, message: str) -> None:
    reports = Path(loaded.config.reports_dir)
    store_at = reports / "runs.sqlite3"
    with RunStore(store_at) as store:
        summary = store.summary(run_id)
        notes = store.run_notes(run_id)
        assert store.interrupted_runs() == []
    assert summary is not None and summary.finished_at is not None and summary.passed is True
    assert not any("before it finished" in note for note in notes), notes
    [note] = [note for note in notes if "interrupted" in note]
    assert note.startswith("finished (passed), then interrupted (SIGINT or SIGTERM) while its reports were written")
    command = f"bonzo-bulk report --run {run_id} --store {store_at}"
    assert command in note and command in message
    assert f"run {run_id} finished and passed" in message
    health = reports / HEALTH_DIR
    assert not [p.name for p in health.glob(".*")] if health.is_dir() else True, "a half-written report is left"

    runner = CliRunner()
    history = runner.invoke(app, ["history", "--store", str(store_at)], env={"COLUMNS": "200"})
    assert history.exit_code == 0, history.output
    assert run_id in history.output and "PASS" in history.output
    report = runner.invoke(app, ["report", "--run", run_id, "--store", str(store_at)], env={"COLUMNS": "300"})
    assert report.exit_code == 0, report.output
    assert (health / f"monitorbase_{run_id}.html").is_file()


def test_ctrl_c_while_a_real_run_renders_its_dashboard_leaves_a_consistent_record(
    tmp_path: Path, make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = ProcessingDelayModel(distribution="fixed", seconds=0.02)
    with SandboxServer(SandboxOptions(db_path=tmp_path / "sandbox.sqlite3", processing=fast)) as server:
        loaded = make_config(tmp_path, sandbox_url=server.url, test_records=3)
        tracker = tracker_for(loaded)
        monkeypatch.setattr(publish, "render_dashboard", _ctrl_c)

        with pytest.raises(Interrupted) as stopped:
            run_bulk(loaded, subscribers=[Publisher(loaded, problems=tracker)], problems=tracker)

    assert stopped.value.run_id is not None
    _assert_consistent(loaded, stopped.value.run_id, str(stopped.value))


@pytest.mark.parametrize("step", ["detect", "write_summary", "write_ci_outputs", "prune"])
def test_ctrl_c_in_any_publishing_step_leaves_a_consistent_record(
    tmp_path: Path, make_config: Any, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """As the engine publishes: the run finished in the store, then its publisher hears RunDone inside the
    run's interrupt recording (what :func:`bonzo_bulk.engine.context.open_run` wraps every subscriber in)."""
    loaded = make_config(tmp_path)
    result = build_run(RunSpec(records=3, invalid=0, run_id="r20260101-000000-c0de"))
    monkeypatch.setattr(publish, step, _ctrl_c)
    with RunStore(Path(loaded.config.reports_dir) / "runs.sqlite3") as store:
        begin_run_of(store, result)
        store.finish_run(result)
        with pytest.raises(Interrupted) as stopped, recording_interrupts(loaded, result.run_id, store):
            Publisher(loaded)(RunDone(result))

    _assert_consistent(loaded, result.run_id, str(stopped.value))
