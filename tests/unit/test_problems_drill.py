"""The problems drill: a wrong-owner fault on every record for three monitor runs, two clean runs, the fault
again — one problem, alerts exactly for new, reminder, resolved and reopened; after `problems ack` a failing
run sends nothing for it while a different new fault still alerts. Against a local notification receiver
(the notification URL is a canary secret: it appears in no output and no file).

The runs go to one sandbox the test serves (``sandbox.url``): each `monitor run --faults` puts its profile on it,
and the clean runs find it fixed. A sandbox started for each run (``monitor run``'s own, as
test_monitor_loop.py's single runs use) cost a child process start and stop per run, and the drill is about the
problems across runs, not about where the sandbox runs."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_monitor_loop import CANARY_PASSWORD, CANARY_TOKEN, FAULTS, Receiver
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.config.schema import ProcessingDelayModel
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer

SECOND_FAULT = {
    "seed": 5,
    "faults": [{"kind": "wrong_owner", "rate": 1.0}, {"kind": "mangle_field", "field": "last_name", "rate": 1.0}],
}


@contextlib.contextmanager
def receiving() -> Iterator[Receiver]:
    """The notification receiver on a free loopback port, started and stopped around a block."""
    found = Receiver()
    found.thread.start()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The notification receiver around one test."""
    with receiving() as found:
        yield found


@contextlib.contextmanager
def serving_a_sandbox(db: Path) -> Iterator[SandboxServer]:
    """A sandbox with the drill config's 20 ms processing, served around a block."""
    options = SandboxOptions(db_path=db, processing=ProcessingDelayModel(distribution="fixed", seconds=0.02))
    with SandboxServer(options) as server:
        yield server


@pytest.fixture
def drill_sandbox(tmp_path: Path) -> Iterator[SandboxServer]:
    """The drill's own sandbox, served around one test."""
    with serving_a_sandbox(tmp_path / "drill_sandbox.sqlite3") as server:
        yield server


def fix_the_sandbox(sandbox: SandboxServer) -> None:
    """Take every fault off the sandbox (a clean run passes no ``--faults``, so it keeps what it was given)."""
    body = json.dumps({"faults": []}).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback sandbox
        f"{sandbox.url}/__sandbox/faults", data=body, method="PUT", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback sandbox
        assert json.loads(answer.read())["faults"] == []


def drill_config(
    tmp_path: Path, users: list[dict[str, object]], *, store_url: str | None = None, sandbox_url: str | None = None
) -> Path:
    """A 3-record monitor with one reminder every 2 runs, problems resolved after 2 clean runs (against the
    sandbox at ``sandbox_url``, else one started for each run)."""
    data: dict[str, Any] = {
        "test_name": "problems drill",
        "integration_type": "monitorbase",
        "target": "sandbox",  # on purpose: a monitor refuses a sandbox it would only fall back to
        "test_records": 3,
        "control": False,
        "processing_delay": 2,
        "test_users": users,
        "polling": {"interval": 0.15, "grace": 1, "max_interval": 0.5},
        "sandbox": {"processing": {"distribution": "fixed", "seconds": 0.02}},
        "reports_dir": str(tmp_path / "reports"),
        "monitor": {
            "max_duration": 60,
            "alerts": {"failures_before_alert": 2, "remind_every_runs": 2, "max_reminders": 1},
            "problems": {"resolve_after": 2},
        },
    }
    if store_url is not None:
        data["store_url"] = store_url
    if sandbox_url is not None:
        data["sandbox"]["url"] = sandbox_url
    path = tmp_path / "drill.yaml"
    path.write_text(yaml.safe_dump(data))
    (tmp_path / "second_fault.yaml").write_text(yaml.safe_dump(SECOND_FAULT))
    return path


def monitor_once(
    runner: CliRunner, config: Path, env: dict[str, str], faults: Path | None, sandbox: SandboxServer | None = None
) -> dict[str, Any]:
    """One `monitor run --json` (with no ``faults``, a shared ``sandbox`` is fixed first); its document."""
    if faults is None and sandbox is not None:
        fix_the_sandbox(sandbox)
    args = ["monitor", "run", "--config", str(config), "--json"]
    if faults is not None:
        args += ["--faults", str(faults)]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == (1 if faults else 0), result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_one_problem_alerts_for_new_reminder_resolved_reopened_then_ack_silences_it(
    tmp_path: Path, receiver: Receiver, users: list[dict[str, object]], drill_sandbox: SandboxServer
) -> None:
    config = drill_config(tmp_path, users, sandbox_url=drill_sandbox.url)
    env = {"BONZO_BULK_NOTIFY_URLS": f"json://bonzo:{CANARY_PASSWORD}@127.0.0.1:{receiver.port}/notify/{CANARY_TOKEN}"}
    runner = CliRunner()
    outputs: list[str] = []
    notices: list[list[str]] = []
    for faults in [FAULTS, FAULTS, FAULTS, None, None, FAULTS]:
        document = monitor_once(runner, config, env, faults, drill_sandbox)
        notices.append([n.split()[0] for n in document["notices"]])
        outputs.append(json.dumps(document))
    assert notices == [["new"], [], ["reminder"], [], ["resolved"], ["reopened"]]
    titles = [n["body"]["title"] for n in receiver.received]
    assert len(titles) == 4, titles
    for title, word in zip(
        titles, ("NEW PROBLEM", "PROBLEM STILL OPEN", "PROBLEM RESOLVED", "PROBLEM REOPENED"), strict=True
    ):
        assert word in title, title
    problem_ids = {
        t.split(word)[1].split(":")[0].strip()
        for t, word in zip(titles, ("NEW PROBLEM", "STILL OPEN", "RESOLVED", "REOPENED"), strict=True)
    }
    assert len(problem_ids) == 1, titles
    (problem_id,) = problem_ids
    first = receiver.received[0]["body"]["message"]
    assert "owner fails on (nearly) every record" in first and "Sample records:" in first
    assert "TestRecord_MonitorBase_001" in first and "Fix: check test_users" in first
    assert f"bonzo-bulk problems ack {problem_id}" in first

    listed = runner.invoke(app, ["problems", "--config", str(config), "--all", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [p["id"] for p in json.loads(listed.stdout)] == [problem_id]
    acked = runner.invoke(
        app, ["problems", "ack", problem_id, "--note", "Bonzo support is on it", "--by", "ana", "--config", str(config)]
    )
    assert acked.exit_code == 0, acked.output
    outputs += [listed.output, acked.output]

    before = len(receiver.received)
    silent = monitor_once(runner, config, env, FAULTS)
    assert silent["notices"] == [] and len(receiver.received) == before
    assert [(p["id"], p["state"]) for p in silent["problems"]] == [(problem_id, "acknowledged")]
    second = monitor_once(runner, config, env, tmp_path / "second_fault.yaml")
    assert [n.split()[0] for n in second["notices"]] == ["new"]
    assert len(receiver.received) == before + 1
    assert "last_name" in receiver.received[-1]["body"]["title"]
    outputs += [json.dumps(silent), json.dumps(second)]

    shown = runner.invoke(app, ["problems", "show", problem_id, "--config", str(config)])
    assert shown.exit_code == 0, shown.output
    assert "acknowledged by ana: Bonzo support is on it" in shown.output and "notified: reopened" in shown.output
    outputs.append(shown.output)
    for secret in (CANARY_TOKEN, CANARY_PASSWORD):
        assert not any(secret in text for text in outputs), "a notification secret reached the output"
        leaks = [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
        assert leaks == [], f"a notification secret was written to {leaks}"
