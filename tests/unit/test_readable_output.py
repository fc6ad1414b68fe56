"""Output that reads well everywhere: piped output keeps each row and message on one line, full run ids,
NO_COLOR, --version, and a last line that says what the exit code says (never PASSED with exit 1)."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.sandbox import SandboxServer
from bonzo_bulk.store import RunStore

ROOT = Path(__file__).resolve().parents[2]
_user_ids = itertools.count(960_001, 3)
COLOR = re.compile(r"\x1b\[[0-9;]*3[0-7]m|\x1b\[[0-9;]*38;")


def _config(directory: Path, sandbox: SandboxServer, name: str, **overrides: Any) -> Path:
    first = next(_user_ids)
    data: dict[str, Any] = {
        "test_name": "readable output",
        "integration_type": "monitorbase",
        "test_records": 9,
        "control": False,
        "test_users": [
            {"name": f"Readable LO {first + i}", "email": f"rlo{first + i}@lender.test", "user_id": first + i}
            | {"team_id": 70 + i}
            for i in range(3)
        ],
        "webhook_settings": {"timeout": 2.0, "retry_attempts": 1, "retry_delay": 0.05, "concurrent_requests": 4},
        "api_settings": {"retry_delay": 0.05, "retry_attempts": 1, "default_retry_after": 1},
        "polling": {"interval": 0.15, "deadline": 3.0, "max_interval": 0.5},
        "reports_dir": str(directory / "reports"),
        "sandbox": {"url": sandbox.url, "faults": {"seed": 1, "faults": []}},  # whatever an earlier test left
        **overrides,
    }
    path = directory / name
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(*args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``bonzo-bulk ARGS`` in a subprocess whose stdout and stderr are pipes, as in CI or ``| cat``."""
    base = {k: v for k, v in os.environ.items() if k not in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "NO_COLOR")}
    base.update({"COLUMNS": "80", **env})
    return subprocess.run(
        [sys.executable, "-m", "bonzo_bulk", *map(str, args)],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass(frozen=True)
class Runs:
    """A baseline run, then the same config with one misrouted record: regressions enforced, then only warned."""

    store: Path
    clean: subprocess.CompletedProcess[str]
    enforced: subprocess.CompletedProcess[str]
    warned: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def runs(sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    directory = tmp_path_factory.mktemp("readable")
    clean = _config(directory, sandbox, "clean.yaml")
    misrouted = yaml.safe_load(clean.read_text())
    misrouted["sandbox"]["faults"] = {
        "seed": 1,
        "faults": [{"kind": "wrong_owner", "records": ["TestRecord_MonitorBase_004"]}],
    }
    misrouted["thresholds"] = {"assignment_accuracy": 0.8}  # 8 of 9 right: the thresholds still pass
    regressed = directory / "regressed.yaml"
    regressed.write_text(yaml.safe_dump(misrouted))
    store = directory / "reports" / "runs.sqlite3"
    first = _cli("run", "--config", clean)
    with RunStore(store) as opened:
        latest = opened.latest_run_id()
        assert latest is not None, first.stderr
        opened.set_baseline(latest)
    try:
        enforced = _cli("run", "--config", regressed, "--fail-on-regression")
        warned = _cli("run", "--config", regressed)
        yield Runs(store, first, enforced, warned)
    finally:  # the session sandbox is shared: leave it without the fault
        httpx.put(f"{sandbox.url}/__sandbox/faults", json={"seed": 1, "faults": []}).raise_for_status()


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout.rstrip().splitlines()[-1]


def test_the_last_line_names_the_verdict_the_exit_code_gives(runs: Runs) -> None:
    assert runs.clean.returncode == 0, runs.clean.stdout + runs.clean.stderr
    assert re.fullmatch(r"Run r\S+ \(sandbox\): PASSED \(exit 0\)", _last_line(runs.clean))

    assert runs.enforced.returncode == 1, runs.enforced.stdout + runs.enforced.stderr
    assert _last_line(runs.enforced).endswith(": FAILED (regression) (exit 1)")
    assert "PASSED" not in runs.enforced.stdout
    assert "regression vs baseline" in runs.enforced.stdout
    # The fault makes assignment regress; timing may regress too on a busy machine: each is printed once.
    lines = [line for line in runs.enforced.stdout.splitlines() if "regression vs baseline" in line]
    both = runs.enforced.stdout + runs.enforced.stderr
    for line in lines:
        message = line.split(": ", 1)[1]
        assert both.count(message) == 1, f"issue 24.4: each regression is printed once\n{both}"
    assert any("assign" in line for line in lines), lines

    assert runs.warned.returncode == 0, runs.warned.stdout + runs.warned.stderr
    assert re.search(r": PASSED with \d+ regressions? \(a warning: --fail-on-regression", _last_line(runs.warned))
    assert _last_line(runs.warned).endswith("(exit 0)")


def test_piped_output_keeps_every_row_and_message_on_one_line(runs: Runs) -> None:
    lines = runs.enforced.stdout.splitlines()
    record_rows = [line for line in lines if "TestRecord_MonitorBase_004" in line]
    assert len(record_rows) == 1, "\n".join(lines)
    assert re.search(
        r"TestRecord_MonitorBase_004 +│ assignment +│ visibility: \[\d+\] → \[\d+\] \(.*list\)", record_rows[0]
    )
    email_rows = [line for line in lines if "owner_email:" in line]
    assert email_rows, runs.enforced.stdout
    assert all(re.search(r"rlo\d+@lender\.test → rlo\d+@lender\.test", line) for line in email_rows)
    assert any("assigned correctly 8/9" in line and "88.9%" in line and ">= 80.0%" in line for line in lines)
    headline = runs.enforced.stderr.splitlines()[0]
    assert headline.startswith("readable output: 9 records over 3 users") and headline.endswith("target sandbox")
    target = [line for line in runs.enforced.stderr.splitlines() if "Target:" in line]
    assert target and target[0].startswith("WARNING Target: the local SANDBOX")
    assert target[0].rstrip() == target[0], "log lines are not padded to a width"
    assert not COLOR.search(runs.enforced.stdout + runs.enforced.stderr)


def test_history_piped_shows_full_run_ids_and_every_column(runs: Runs) -> None:
    runner = CliRunner(env={"COLUMNS": "80"})  # its stdout is not a terminal, like a pipe
    done = runner.invoke(app, ["history", "--store", str(runs.store)])
    assert done.exit_code == 0, done.output
    with RunStore(runs.store) as store:
        ids = [s.run_id for s in store.list_runs(limit=10)]
        baseline = store.baseline_run_id("monitorbase")
    assert len(ids) == 3
    for run_id in ids:
        [row] = [line for line in done.stdout.splitlines() if run_id in line]
        assert re.search(rf"{run_id}( ★)? +\d\d-\d\d \d\d:\d\d +(PASS|FAIL) +9 +100\.0%", row), row
    assert f"{baseline} ★" in done.stdout
    shown = runner.invoke(app, ["baseline", "show", "--store", str(runs.store)])
    assert f"{baseline} ★" in shown.stdout and "…" not in shown.stdout


def test_no_color_turns_colour_off_even_when_colour_is_forced(runs: Runs) -> None:
    forced = _cli("history", "--store", runs.store, FORCE_COLOR="1")
    assert COLOR.search(forced.stdout), "FORCE_COLOR should colour the verdicts (else this test proves nothing)"
    plain = _cli("history", "--store", runs.store, FORCE_COLOR="1", NO_COLOR="1")
    assert plain.returncode == 0, plain.stderr
    assert not COLOR.search(plain.stdout)
    assert "PASS" in plain.stdout


def test_version_prints_the_installed_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"bonzo-bulk {version('bonzo-bulk')}\n"
