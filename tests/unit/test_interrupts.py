"""SIGINT and SIGTERM during a run: deliveries so far recorded, the run marked interrupted, cleanup named.

The run goes to a sandbox of the test's own whose intake hangs on the later records, so the signal
arrives mid-delivery with a known number of records already answered.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from bonzo_bulk.config.schema import ProcessingDelayModel
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer
from bonzo_bulk.store import RunStore

ROOT = Path(__file__).resolve().parents[2]
ANSWERED_FIRST = 12
"""Records 001-012 are answered at once; the intake hangs on every later one."""
SENDERS = 2
"""The run's ``webhook_settings.concurrent_requests``."""
KILLED_RUN = 20
"""The records of the run killed mid-delivery."""


def _held(server: SandboxServer) -> int:
    """How many deliveries the sandbox holds (``intake_hang``): each sender that holds one has had every earlier
    answer, and has handed it to the run, before it took its held record."""
    with urllib.request.urlopen(f"{server.url}/__sandbox/ground-truth", timeout=5) as answer:  # noqa: S310
        return sum(1 for entry in json.loads(answer.read())["faults"] if entry["fault"] == "intake_hang")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_records_its_deliveries_and_says_how_to_clean_up(tmp_path: Path, signum: int) -> None:
    hang = {"kind": "intake_hang", "seconds": 60, "records": ["TestRecord_MonitorBase_01[3-9]", "*_0[2-4]?"]}
    options = SandboxOptions(
        db_path=tmp_path / "sandbox.sqlite3",
        processing=ProcessingDelayModel(distribution="fixed", seconds=0.01),
        faults={"seed": 1, "faults": [hang]},
    )
    with SandboxServer(options) as server:
        config = tmp_path / "c.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "test_name": "interrupt",
                    "integration_type": "monitorbase",
                    "test_records": 40,
                    "control": False,
                    "test_users": [{"name": "LO One", "email": "lo.one@lender.test", "user_id": 101, "team_id": 11}],
                    "webhook_settings": {"timeout": 60, "retry_attempts": 0, "concurrent_requests": SENDERS},
                    "reports_dir": str(tmp_path / "reports"),
                    "sandbox": {"url": server.url},
                }
            )
        )
        env = {k: v for k, v in os.environ.items() if k not in ("TEST_HOOK_URL", "SUPERUSER_API_KEY")}
        env.update(COLUMNS="300", NO_COLOR="1")
        child = subprocess.Popen(
            [sys.executable, "-m", "bonzo_bulk", "run", "--config", str(config)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            # Both senders held: records 001-012 are answered and recorded; the run is stuck on 013 and 014.
            give_up = time.monotonic() + 60
            while _held(server) < SENDERS and time.monotonic() < give_up and child.poll() is None:
                time.sleep(0.05)
            assert _held(server) == SENDERS, "the run never held both senders"
            child.send_signal(signum)
            output, _ = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()

    flat = " ".join(output.split())
    assert child.returncode == 130, flat
    store_file = tmp_path / "reports" / "runs.sqlite3"
    with RunStore(store_file) as store:
        (run_id,) = store.interrupted_runs()
        assert any("interrupted" in note for note in store.run_notes(run_id))
    with sqlite3.connect(store_file) as db:
        (recorded,) = db.execute("SELECT COUNT(*) FROM deliveries WHERE run_id = ?", (run_id,)).fetchone()
    assert recorded == ANSWERED_FIRST
    assert f"{ANSWERED_FIRST} deliveries are recorded" in flat
    assert f"run {run_id} stopped" in flat
    assert f"bonzo-bulk cleanup --run {run_id} --yes --config {config}" in flat
    assert "Traceback" not in output


def _cleanup(config: Path, run_id: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from bonzo_bulk.cli import app

    result = CliRunner().invoke(
        app, ["cleanup", "--run", run_id, "--yes", "--config", str(config)], env={"COLUMNS": "300", "NO_COLOR": "1"}
    )
    return result.exit_code, " ".join(result.output.split())


def _prospects(server: SandboxServer) -> int:
    with urllib.request.urlopen(f"{server.url}/__sandbox/state", timeout=5) as answer:  # noqa: S310
        return int(json.loads(answer.read())["prospects"])


def test_the_first_cleanup_after_a_sigkill_counts_every_record_that_may_still_appear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 25.8: SIGKILL mid-delivery loses the run's buffered answers. Records 001-012 were answered (Bonzo
    makes them 0.5 s later), 013 and 014 are in flight, the rest never left: none has an answer in the store, so
    the first cleanup must count every record it did not delete as possibly sent and exit 1 (it said "nothing
    left" and exited 0); a later one deletes those of the 12 that appeared since and still counts the rest."""
    for name in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "SUPERUSER_WEBHOOK_URL", "BONZO_API_URL"):
        monkeypatch.delenv(name, raising=False)
    hang = {"kind": "intake_hang", "seconds": 60, "records": ["TestRecord_MonitorBase_01[3-9]", "*_0[2-4]?"]}
    options = SandboxOptions(
        db_path=tmp_path / "sandbox.sqlite3",
        processing=ProcessingDelayModel(distribution="fixed", seconds=0.5),
        faults={"seed": 1, "faults": [hang]},
    )
    with SandboxServer(options) as server:
        config = tmp_path / "c.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "test_name": "killed",
                    "integration_type": "monitorbase",
                    "test_records": KILLED_RUN,
                    "control": False,
                    "test_users": [{"name": "LO One", "email": "lo.one@lender.test", "user_id": 101, "team_id": 11}],
                    "webhook_settings": {"timeout": 60, "retry_attempts": 0, "concurrent_requests": SENDERS},
                    "polling": {"deadline": 600},
                    "reports_dir": str(tmp_path / "reports"),
                    "sandbox": {"url": server.url},
                }
            )
        )
        child = subprocess.Popen(
            [sys.executable, "-m", "bonzo_bulk", "run", "--config", str(config)],
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if k not in ("TEST_HOOK_URL", "SUPERUSER_API_KEY")},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            give_up = time.monotonic() + 60
            while _held(server) < SENDERS and time.monotonic() < give_up and child.poll() is None:
                time.sleep(0.05)
            assert _held(server) == SENDERS, "the run never held both senders"
        finally:
            child.kill()
            child.wait()
        with RunStore(tmp_path / "reports" / "runs.sqlite3") as store:
            (run_id,) = store.interrupted_runs()

        code, output = _cleanup(config, run_id)
        assert code == 1, output
        deleted = int(re.findall(r"deleted (\d+), failed", output)[0])
        assert f"{KILLED_RUN - deleted} record(s) may still appear" in output
        assert "nothing left" not in output

        give_up = time.monotonic() + 30
        while _prospects(server) < ANSWERED_FIRST - deleted and time.monotonic() < give_up:
            time.sleep(0.1)
        code, output = _cleanup(config, run_id)
        assert code == 1, output
        assert f"deleted {ANSWERED_FIRST - deleted}," in output
        assert f"{KILLED_RUN - ANSWERED_FIRST} record(s) may still appear" in output
        assert _prospects(server) == 0
        with RunStore(tmp_path / "reports" / "runs.sqlite3") as store:
            assert store.cleanup_pending(run_id) == KILLED_RUN - ANSWERED_FIRST
