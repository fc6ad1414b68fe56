"""Ctrl-C while the ``bulk_run`` fixture runs stops the pytest session with pytest's interrupted exit (2),
naming the run and its cleanup command, instead of failing one test and going on with the rest.

The run goes to a sandbox of the test's own whose intake hangs on the later records, so the signal arrives
while a delivery is held (the sandbox says so), inside the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_plugin import FAST, write_config

from bonzo_bulk.config.schema import ProcessingDelayModel
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer


def _held(server: SandboxServer) -> int:
    """How many deliveries the sandbox holds (its ``intake_hang`` fault)."""
    with urllib.request.urlopen(f"{server.url}/__sandbox/ground-truth", timeout=5) as answer:  # noqa: S310
        return sum(1 for entry in json.loads(answer.read())["faults"] if entry["fault"] == "intake_hang")


def test_ctrl_c_while_the_bulk_run_fixture_runs_ends_the_session_as_interrupted(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    hang = {"kind": "intake_hang", "seconds": 60, "records": ["TestRecord_MonitorBase_00[3-9]"]}
    options = SandboxOptions(
        db_path=tmp_path / "sandbox.sqlite3",
        processing=ProcessingDelayModel(distribution="fixed", seconds=0.01),
        faults={"seed": 1, "faults": [hang]},
    )
    pytester.makepyfile(
        test_first="def test_ran(bulk_run):\n    assert bulk_run.passed\n",
        test_second="def test_after():\n    print('SECOND TEST RAN')\n",
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "BONZO_BULK_TARGET")}
    env.update(COLUMNS="300", NO_COLOR="1")
    with SandboxServer(options) as server:
        config = write_config(
            pytester.path,
            control=False,
            invalid_records=[],
            sandbox={"url": server.url},
            webhook_settings={"timeout": 60, "retry_attempts": 0, "concurrent_requests": 2},
        )
        child = subprocess.Popen(
            [sys.executable, "-m", "pytest", *FAST, "-s", f"--config={config}", "test_first.py", "test_second.py"],
            cwd=pytester.path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            give_up = time.monotonic() + 60
            while _held(server) < 1 and time.monotonic() < give_up and child.poll() is None:
                time.sleep(0.05)
            assert _held(server) >= 1, "the run never reached the held delivery"
            child.send_signal(signal.SIGINT)
            output, _ = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    flat = " ".join(output.split())
    assert child.returncode == pytest.ExitCode.INTERRUPTED, flat
    assert "Interrupted: run " in flat and "bonzo-bulk cleanup --run " in flat
    assert "SECOND TEST RAN" not in output and "failed" not in flat
