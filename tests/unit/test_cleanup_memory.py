"""Cleanup remembers and respects (issues 24.5 and 25.4): what it deleted is recorded in the run store, so a
repeated cleanup says "nothing left" and exits 0, also after a run that stopped before settling; and
``--all-test-data`` keeps the records of a run still in progress on the same store unless ``--include-running``.

Each test runs against a sandbox of its own, so "nothing left" is the sandbox's whole prospect count.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import RunSpec, begin_run_of, build_run
from typer.testing import CliRunner

from bonzo_bulk.cleanup.clean import deleted_earlier
from bonzo_bulk.cli import app
from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.config.schema import ProcessingDelayModel
from bonzo_bulk.library import run_bulk
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer
from bonzo_bulk.store import RunStore

FAST = ProcessingDelayModel(distribution="fixed", seconds=0.02)
ROOT = Path(__file__).resolve().parents[2]


def _served(tmp_path: Path, faults: dict[str, Any] | None = None) -> SandboxServer:
    return SandboxServer(SandboxOptions(db_path=tmp_path / "own-sandbox.sqlite3", processing=FAST, faults=faults))


def _prospects(server: SandboxServer) -> int:
    with urllib.request.urlopen(f"{server.url}/__sandbox/state", timeout=5) as answer:  # noqa: S310 - loopback
        return int(json.loads(answer.read())["prospects"])


def _cli(loaded: LoadedConfig, *args: str) -> tuple[int, str]:
    assert loaded.path is not None
    result = CliRunner().invoke(app, [*args, "--config", str(loaded.path)], env={"COLUMNS": "300"})
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture(autouse=True)
def no_live_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "SUPERUSER_WEBHOOK_URL", "BONZO_API_URL"):
        monkeypatch.delenv(name, raising=False)


def test_a_second_cleanup_of_a_run_says_nothing_left_and_exits_0(tmp_path: Path, make_config: Any) -> None:
    with _served(tmp_path) as server:
        loaded = make_config(tmp_path, sandbox_url=server.url, test_records=4)
        result = run_bulk(loaded)
        code, output = _cli(loaded, "cleanup", "--run", result.run_id, "--yes")
        assert (code, _prospects(server)) == (0, 0), output
        assert "deleted 4" in output

        code, output = _cli(loaded, "cleanup", "--run", result.run_id, "--yes")
        assert code == 0, output
        assert f"nothing left of run {result.run_id}: an earlier cleanup deleted its 4 prospect(s)" in output
        assert "may still appear" not in output


def test_after_a_run_stopped_before_settling_repeated_cleanups_never_claim_deleted_records(
    tmp_path: Path, make_config: Any
) -> None:
    """``generate`` delivers and stops, as a run interrupted mid-settle does: the store holds the records and their
    deliveries but no prospect the run saw. The first cleanup deletes them; later ones must remember that."""
    with _served(tmp_path) as server:
        loaded = make_config(tmp_path, sandbox_url=server.url, test_records=5)
        code, output = _cli(loaded, "generate")
        assert code == 0, output
        with RunStore(tmp_path / "reports" / "runs.sqlite3") as store:
            [run_id] = store.interrupted_runs()
            assert store.observed_prospects(run_id) == []
        code, output = _cli(loaded, "cleanup", "--run", run_id, "--yes", "--wait", "10")
        assert (code, _prospects(server)) == (0, 0), output
        assert "deleted 5" in output

        for _ in range(2):
            code, output = _cli(loaded, "cleanup", "--run", run_id, "--yes")
            assert code == 0, output
            assert "may still appear" not in output
            assert f"nothing left of run {run_id}: an earlier cleanup deleted its 5 prospect(s)" in output
        with RunStore(tmp_path / "reports" / "runs.sqlite3") as store:
            gone = store.observed_prospects(run_id)
        assert len(gone) == 5 and all(p.deleted_at is not None for p in gone)
        assert {p.first_name for p in gone} == {f"TestRecord_MonitorBase_00{i}" for i in range(1, 6)}


def _hold_in_child(store_at: Path) -> subprocess.Popen[str]:
    """A child process that begins a run in the store (holding it in progress) and sleeps until killed."""
    script = (
        "import sys, time\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from builders import begin_run_of, build_run\n"
        "from bonzo_bulk.store import RunStore\n"
        "store = RunStore(sys.argv[1])\n"
        "begin_run_of(store, build_run(run_id='r20260101-000000-abcd'))\n"
        "print('begun', flush=True)\n"
        "time.sleep(120)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(store_at), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "begun"
    return child


def test_a_run_is_in_progress_while_its_process_lives_and_not_after_it_is_killed(tmp_path: Path) -> None:
    store_at = tmp_path / "runs.sqlite3"
    finished = build_run(run_id="r20250101-000000-0000")
    with RunStore(store_at) as store:
        begin_run_of(store, finished)
        store.finish_run(finished)
    child = _hold_in_child(store_at)
    try:
        with RunStore(store_at) as store:
            assert store.running_runs() == ["r20260101-000000-abcd"]
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert child.stdout is not None
        child.stdout.close()
    with RunStore(store_at) as store:
        assert store.interrupted_runs() == ["r20260101-000000-abcd"], "it never finished"
        assert store.running_runs() == [], "but its process is dead: it is not running"


def test_all_test_data_keeps_the_records_of_a_run_in_progress(tmp_path: Path, make_config: Any) -> None:
    """Issue 25.4: ``cleanup --all-test-data`` deleted a run in flight, which then failed with false "not created"."""
    late = {"seed": 1, "faults": [{"kind": "late", "delay_seconds": 4, "records": ["*_00[12]"]}]}
    with _served(tmp_path, faults=late) as server:
        loaded = make_config(tmp_path, sandbox_url=server.url, test_records=4, polling={"deadline": 30.0})
        assert loaded.path is not None
        env = {k: v for k, v in os.environ.items() if k not in ("TEST_HOOK_URL", "SUPERUSER_API_KEY")}
        running = subprocess.Popen(
            [sys.executable, "-m", "bonzo_bulk", "run", "--config", str(loaded.path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            give_up = time.monotonic() + 60
            while _prospects(server) < 2 and running.poll() is None and time.monotonic() < give_up:
                time.sleep(0.1)
            assert _prospects(server) >= 2, "the run's first records appeared"

            code, output = _cli(loaded, "cleanup", "--all-test-data", "--yes")
            assert "is still in progress (--include-running deletes it too)" in output, output
            assert "deleted 0" in output
            assert _prospects(server) >= 2

            ran, _ = running.communicate(timeout=90)
        finally:
            if running.poll() is None:
                running.kill()
                running.wait(timeout=10)
        assert running.returncode == 0, ran
        assert "PASSED" in ran and "not created" not in ran

        code, output = _cli(loaded, "cleanup", "--all-test-data", "--yes")
        assert (code, _prospects(server)) == (0, 0), output
        assert "deleted 4" in output


def test_automatic_cleanup_records_stragglers_as_pending_and_cleanup_pending_removes_them(
    tmp_path: Path, make_config: Any
) -> None:
    """Issue 25.3: Bonzo slower than the settle deadline and ``cleanup.after_run: always`` with no straggler wait:
    the run's cleanup finds nothing yet, so it must say how many records are pending and the command, and exit
    non-zero; ``cleanup --pending`` (waiting until the leads appear) deletes them all and exits 0."""
    slow = ProcessingDelayModel(distribution="fixed", seconds=2.0)
    with SandboxServer(SandboxOptions(db_path=tmp_path / "slow-sandbox.sqlite3", processing=slow)) as server:
        loaded = make_config(
            tmp_path,
            sandbox_url=server.url,
            test_records=3,
            polling={"deadline": 0.3},
            cleanup={"after_run": "always", "straggler_wait": 0},
        )
        code, output = _cli(loaded, "run")
        assert code == 1, output
        assert "3 record(s) delivered but not found" in output
        assert "are pending cleanup" in output and "`bonzo-bulk cleanup --pending --yes`" in output
        assert "FAILED" in output
        with RunStore(tmp_path / "reports" / "runs.sqlite3") as store:
            [run_id] = store.pending_cleanup_runs()
            assert store.cleanup_pending(run_id) == 3

        code, output = _cli(loaded, "cleanup", "--pending", "--yes", "--wait", "60")
        assert code == 0, output
        assert "deleted 3" in output
        assert _prospects(server) == 0
        with RunStore(tmp_path / "reports" / "runs.sqlite3") as store:
            assert store.pending_cleanup_runs() == []
            assert store.cleanup_pending(run_id) == 0

        code, output = _cli(loaded, "cleanup", "--pending", "--yes")
        assert code == 0, output
        assert "nothing left" in output


def test_automatic_cleanup_waits_for_stragglers_within_straggler_wait(tmp_path: Path, make_config: Any) -> None:
    """With a straggler wait longer than Bonzo's delay, the run's own cleanup finds and deletes every record:
    nothing is pending and the sandbox is empty."""
    slow = ProcessingDelayModel(distribution="fixed", seconds=1.0)
    with SandboxServer(SandboxOptions(db_path=tmp_path / "slow-sandbox.sqlite3", processing=slow)) as server:
        loaded = make_config(
            tmp_path,
            sandbox_url=server.url,
            test_records=3,
            polling={"deadline": 0.2},
            cleanup={"after_run": "always", "straggler_wait": 60},
        )
        result = run_bulk(loaded)
        with RunStore(tmp_path / "reports" / "runs.sqlite3") as store:
            assert deleted_earlier(store, result.run_id) == 3
            assert store.pending_cleanup_runs() == []
        assert _prospects(server) == 0


def test_a_later_runs_automatic_cleanup_removes_what_an_earlier_run_left_pending(
    tmp_path: Path, make_config: Any
) -> None:
    """Both runs share one sandbox (``sandbox.url``): the first leaves its records pending; the second waits long
    enough for its own and removes the first run's too, so nothing is pending and the sandbox is empty."""
    slow = ProcessingDelayModel(distribution="fixed", seconds=1.0)
    with SandboxServer(SandboxOptions(db_path=tmp_path / "slow-sandbox.sqlite3", processing=slow)) as server:
        settings = {"sandbox_url": server.url, "test_records": 3, "polling": {"deadline": 0.2}}
        first = run_bulk(make_config(tmp_path, **settings, cleanup={"after_run": "always", "straggler_wait": 0}))
        with RunStore(tmp_path / "reports" / "runs.sqlite3") as store:
            assert store.pending_cleanup_runs() == [first.run_id]

        run_bulk(make_config(tmp_path, **settings, cleanup={"after_run": "always", "straggler_wait": 60}))
        with RunStore(tmp_path / "reports" / "runs.sqlite3") as store:
            assert store.pending_cleanup_runs() == []
            assert deleted_earlier(store, first.run_id) == 3
        assert _prospects(server) == 0


@pytest.mark.parametrize("stopped_ago", [5.0, 3600.0], ids=["just-stopped", "stopped-an-hour-ago"])
def test_records_a_dead_run_never_recorded_an_answer_for_are_pending_until_its_settle_horizon(
    tmp_path: Path, make_config: Any, stopped_ago: float
) -> None:
    """Issue 25.8: a run killed before recording any answer. Its records may have been sent, so a cleanup within
    its settle deadline plus straggler wait counts them as may still appear (exit 1, pending); one after that
    horizon takes those still unseen as never sent (exit 0, nothing pending)."""
    started = datetime.now(UTC) - timedelta(seconds=stopped_ago)
    killed = build_run(RunSpec(records=3, invalid=0, run_id="r20260101-000000-dead", started_at=started))
    with _served(tmp_path) as server:
        loaded = make_config(
            tmp_path, sandbox_url=server.url, test_records=3, polling={"deadline": 60}, cleanup={"straggler_wait": 0}
        )
        with RunStore(tmp_path / "reports" / "runs.sqlite3") as store:
            begin_run_of(store, killed)
            store.add_records(killed.run_id, [o.record for o in killed.phases[0].outcomes])

        code, output = _cli(loaded, "cleanup", "--run", killed.run_id, "--yes")
        with RunStore(tmp_path / "reports" / "runs.sqlite3") as store:
            pending = store.cleanup_pending(killed.run_id)
    if stopped_ago < 60:
        assert (code, pending) == (1, 3), output
        assert "3 record(s) may still appear" in output
        assert "3 of them have no answer recorded" in output
    else:
        assert (code, pending) == (0, 0), output
        assert "3 record(s) with no answer recorded were not found" in output
        assert "taken as never sent" in output
