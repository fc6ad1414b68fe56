"""The monitor's done-when drill: a faulty sandbox, then a clean one, against a local notification receiver.

Exactly one alert after N failures, nothing during further failures except the configured reminder,
one recovery; the notification URL (a canary secret) appears in no output and no file written.

The drill's six runs go to one sandbox the test serves, faulty then fixed; the single runs below start
``monitor run``'s own sandbox process, as a scheduled monitor without ``sandbox.url`` does.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.config.loader import load_config
from bonzo_bulk.config.schema import ProcessingDelayModel
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.monitor.runner import monitor_run, refuse_automatic_sandbox
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer
from bonzo_bulk.store import RunStore

FAULTS = Path(__file__).parents[1] / "configs" / "faults" / "monitor_outage.yaml"
CANARY_TOKEN = "CanaryNotifyToken4F9A2C"
CANARY_PASSWORD = "CanaryPassw0rd7731"
CANARY_PING = "0b6e1f4a-canary-ping-uuid"


class Receiver:
    """A tiny HTTP server on a free loopback port that keeps every JSON notification posted to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        pinged: list[str] = []
        self.received, self.pinged = received, pinged

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path.startswith("/ping/"):
                    pinged.append(self.path.removeprefix(f"/ping/{CANARY_PING}").lstrip("/") or "success")
                else:
                    received.append({"path": self.path, "body": json.loads(body or b"{}")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The notification receiver, started and stopped around one test."""
    found = Receiver()
    found.thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()


def _config(tmp_path: Path, users: list[dict[str, object]], sandbox_url: str | None = None) -> Path:
    data: dict[str, Any] = {
        "test_name": "monitor drill",
        "integration_type": "monitorbase",
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
            "problems": {"alerts": False},  # the run-level policy's drill (per problem: test_problems_drill.py)
        },
    }
    if sandbox_url is not None:
        data["sandbox"]["url"] = sandbox_url
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _put_faults(sandbox: SandboxServer, profile: dict[str, Any]) -> None:
    """Replace the sandbox's fault profile (a run without ``--faults`` keeps the one it finds)."""
    request = urllib.request.Request(  # noqa: S310 - loopback sandbox
        f"{sandbox.url}/__sandbox/faults",
        data=json.dumps(profile).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback sandbox
        assert json.loads(answer.read())["faults"] == profile["faults"]


def test_one_alert_one_reminder_one_recovery_and_no_url_anywhere(
    tmp_path: Path, receiver: Receiver, users: list[dict[str, object]]
) -> None:
    options = SandboxOptions(
        db_path=tmp_path / "drill_sandbox.sqlite3", processing=ProcessingDelayModel(distribution="fixed", seconds=0.02)
    )
    with SandboxServer(options) as sandbox:
        _drill(tmp_path, receiver, users, sandbox)


def _drill(tmp_path: Path, receiver: Receiver, users: list[dict[str, object]], sandbox: SandboxServer) -> None:
    config = _config(tmp_path, users, sandbox.url)
    url = f"json://bonzo:{CANARY_PASSWORD}@127.0.0.1:{receiver.port}/notify/{CANARY_TOKEN}"
    env = {
        "BONZO_BULK_NOTIFY_URLS": url,
        "BONZO_BULK_PING_URL": f"http://127.0.0.1:{receiver.port}/ping/{CANARY_PING}",
    }
    runner = CliRunner()
    seen: list[int] = []
    outputs: list[str] = []
    plan = ["faulty"] * 4 + ["clean"] * 2
    for step in plan:
        args = ["monitor", "run", "--config", str(config), "--target", "sandbox"]
        if step == "faulty":
            args += ["--faults", str(FAULTS)]
        else:
            _put_faults(sandbox, {"faults": []})  # the integration is fixed
        result = runner.invoke(app, args, env=env)
        outputs.append(result.output)
        assert result.exit_code == (1 if step == "faulty" else 0), result.output
        seen.append(len(receiver.received))

    # alert after the 2nd failure, nothing on the 3rd, the one configured reminder on the 4th,
    # the recovery on the first clean run, nothing after it.
    assert seen == [0, 1, 1, 2, 3, 3]
    kinds = [n["body"]["type"] for n in receiver.received]
    assert kinds == ["failure", "failure", "success"]
    titles = [n["body"]["title"] for n in receiver.received]
    assert "FAILING" in titles[0] and "STILL FAILING" in titles[1] and "RECOVERED" in titles[2]
    alert = receiver.received[0]["body"]["message"]
    assert "monitorbase" in alert
    assert "systemic: primary owner failed for 3/3 records" in alert and "Fix: check test_users" in alert
    assert "TestRecord_MonitorBase_001" in alert
    assert "Dashboard: " in alert and ".html" in alert
    assert receiver.received[0]["path"] == f"/notify/{CANARY_TOKEN}"
    assert receiver.pinged == ["start", "fail"] * 4 + ["start", "success"] * 2, "the dead-man's switch saw each run"

    with RunStore(tmp_path / "reports" / "runs.sqlite3") as store:
        assert {s.kind for s in store.list_runs(limit=100)} == {"monitor"}, "each monitor run is stored as one"

    status = runner.invoke(app, ["monitor", "status", "--config", str(config)], env=env)
    assert status.exit_code == 0, status.output
    assert "alert -> json://127.0.0.1" in status.output and ": ok" in status.output
    outputs.append(status.output)

    for secret in (CANARY_TOKEN, CANARY_PASSWORD, CANARY_PING):
        assert not any(secret in text for text in outputs), "a notification secret reached the output"
        leaks = [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
        leaks = [p for p in leaks if p != config]
        assert leaks == [], f"a notification secret was written to {leaks}"


def test_a_failed_notification_never_fails_the_run(tmp_path: Path, users: list[dict[str, object]]) -> None:
    config = _config(tmp_path, users)
    env = {"BONZO_BULK_NOTIFY_URLS": f"json://127.0.0.1:9/notify/{CANARY_TOKEN} nosuchscheme://x/{CANARY_PASSWORD}"}
    runner = CliRunner()
    data = yaml.safe_load(config.read_text())
    data["monitor"]["alerts"]["failures_before_alert"] = 1
    config.write_text(yaml.safe_dump(data))
    args = ["monitor", "run", "--config", str(config), "--target", "sandbox", "--faults", str(FAULTS), "--json"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["notices"] == ["alert"]
    assert [(d["kind"], d["ok"]) for d in document["deliveries"]] == [("alert", False), ("alert", False)]
    assert "does not understand this URL" in document["deliveries"][1]["detail"]
    assert CANARY_TOKEN not in result.output and CANARY_PASSWORD not in result.output


def test_a_run_that_cannot_finish_in_time_is_an_error_that_counts_as_a_failure(
    tmp_path: Path, users: list[dict[str, object]]
) -> None:
    config = _config(tmp_path, users)
    data = yaml.safe_load(config.read_text())
    data["monitor"]["max_duration"] = 1.5
    data["monitor"]["alerts"]["failures_before_alert"] = 1
    data["sandbox"]["processing"]["seconds"] = 30  # nothing settles within the bound
    config.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(
        app,
        ["monitor", "run", "--config", str(config), "--target", "sandbox", "--json"],
        env={"BONZO_BULK_NOTIFY_URLS": ""},
    )
    assert result.exit_code == 3, result.output
    document = json.loads(result.stdout)
    assert document["status"] == "error" and "monitor.max_duration (1.5 s)" in document["error"]
    assert document["notices"] == ["alert"]
    assert document["deliveries"] == [
        {"kind": "alert", "channel": "none", "ok": False, "detail": "no channel: set BONZO_BULK_NOTIFY_URLS"}
    ]


@pytest.mark.parametrize("target", [[], ["--target", "auto"], ["--target", "live"]], ids=["default", "auto", "live"])
def test_without_the_live_secrets_a_monitor_exits_2_and_sends_nothing(
    tmp_path: Path,
    receiver: Receiver,
    users: list[dict[str, object]],
    monkeypatch: pytest.MonkeyPatch,
    target: list[str],
) -> None:
    """Issue 24.10: a scheduled monitor whose secrets are missing silently tested the sandbox, so it could only
    pass; now it refuses (exit 2, one line naming the variables and the fix) before any ping, sandbox or send."""
    for name in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "SUPERUSER_WEBHOOK_URL", "BONZO_BULK_TARGET"):
        monkeypatch.delenv(name, raising=False)
    config = _config(tmp_path, users)
    env = {
        "BONZO_BULK_NOTIFY_URLS": f"json://127.0.0.1:{receiver.port}/notify/{CANARY_TOKEN}",
        "BONZO_BULK_PING_URL": f"http://127.0.0.1:{receiver.port}/ping/{CANARY_PING}",
    }
    result = CliRunner().invoke(app, ["monitor", "run", "--config", str(config), *target], env=env)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "TEST_HOOK_URL and SUPERUSER_API_KEY" in lines[0] and "--target sandbox" in lines[0]
    assert receiver.received == [] and receiver.pinged == [], "a refused monitor notified or pinged"
    reports = tmp_path / "reports"
    written = sorted(p.relative_to(reports).as_posix() for p in reports.rglob("*")) if reports.exists() else []
    assert written == [], f"a refused monitor started something: {written}"


def test_the_automatic_sandbox_is_refused_by_the_library_too_and_an_explicit_one_is_not(
    tmp_path: Path, users: list[dict[str, object]]
) -> None:
    config = _config(tmp_path, users)
    automatic = load_config(config, environ={})
    assert (automatic.target, automatic.automatic, automatic.missing) == (
        "sandbox",
        True,
        ("TEST_HOOK_URL", "SUPERUSER_API_KEY"),
    )
    with pytest.raises(ConfigError, match="pass --target sandbox") as raised:
        monitor_run(automatic, env={})
    assert raised.value.key == "target"
    explicit = load_config(config, environ={}, overrides={"target": "sandbox"})
    assert (explicit.target, explicit.automatic) == ("sandbox", False)
    refuse_automatic_sandbox(explicit)  # an explicit sandbox runs (the drills above run with --target sandbox)
    live = load_config(config, environ={"TEST_HOOK_URL": "https://hooks.test/h/abc", "SUPERUSER_API_KEY": "k" * 20})
    assert (live.target, live.automatic, live.missing) == ("live", False, ())
