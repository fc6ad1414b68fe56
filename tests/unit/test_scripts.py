"""The spec's scripts end to end against the session sandbox: exit codes, output, files.

Each script runs as a program in a subprocess where the process is the point: its exit code on a usage error or a
bad config, and the secrets that must appear in none of its output; the helper scripts too. The longer flows
(generate then clean up, the health check, the webhook validator) run the same script file in this process
(``runpy``, its ``__main__`` block, ``sys.argv`` and the environment set as the shell would, its output read at
the file descriptors), which spares a Python start and the package's import per step."""

from __future__ import annotations

import itertools
import json
import os
import runpy
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from bonzo_bulk.sandbox import SandboxServer

ROOT = Path(__file__).resolve().parents[2]
CANARY_KEY = "canaryTOKEN0123456789abcdefghijklmnop"
_user_ids = itertools.count(950_001, 3)


def _users() -> list[dict[str, Any]]:
    first = next(_user_ids)
    return [
        {"name": f"Script LO {first + i}", "email": f"slo{first + i}@lender.test", "user_id": first + i, "team_id": 88}
        for i in range(3)
    ]


def _config(tmp_path: Path, sandbox: SandboxServer, **overrides: Any) -> Path:
    data: dict[str, Any] = {
        "test_name": "script test",
        "integration_type": "monitorbase",
        "test_records": 9,
        "control": False,
        "test_users": _users(),
        "webhook_settings": {"timeout": 2.0, "retry_attempts": 1, "retry_delay": 0.05, "concurrent_requests": 4},
        "api_settings": {"retry_delay": 0.05, "retry_attempts": 1, "default_retry_after": 1},
        "polling": {"interval": 0.15, "deadline": 3.0, "max_interval": 0.5},
        "reports_dir": str(tmp_path / "reports"),
        "sandbox": {"url": sandbox.url},
        **overrides,
    }
    path = tmp_path / "monitorbase_test_config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _script(name: str, *args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "BONZO_API_URL")}
    base.update(COLUMNS="200", NO_COLOR="1", **(env or {}))
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *map(str, args)],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _here(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, name: str, *args: str | Path
) -> subprocess.CompletedProcess[str]:
    """``python scripts/NAME ARGS`` run in this process: the script's exit code (its SystemExit) and output."""
    path = ROOT / "scripts" / name
    argv = [str(path), *map(str, args)]
    with monkeypatch.context() as patched:
        for variable in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "BONZO_API_URL"):
            patched.delenv(variable, raising=False)
        patched.setenv("COLUMNS", "200")
        patched.setenv("NO_COLOR", "1")
        patched.setattr(sys, "argv", argv)
        patched.chdir(ROOT)
        capfd.readouterr()
        try:
            runpy.run_path(str(path), run_name="__main__")
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
        out, err = capfd.readouterr()
    return subprocess.CompletedProcess(argv, code, out, err)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback sandbox
        return json.loads(response.read())


def _post(url: str, body: Any) -> Any:
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback sandbox
        return json.loads(response.read())


def _hook_posts_since(sandbox: SandboxServer, marker: object) -> int:
    """Lead POSTs the sandbox received after ``marker`` (its last logged request before the command)."""
    assert sandbox.app is not None
    log = list(sandbox.app.sandbox.request_log)
    start = next((i + 1 for i, entry in enumerate(log) if entry is marker), 0)
    return sum(1 for entry in log[start:] if entry["method"] == "POST" and "/api/webhook" in entry["path"])


def _last_request(sandbox: SandboxServer) -> object:
    assert sandbox.app is not None
    log = sandbox.app.sandbox.request_log
    return log[-1] if log else None


def _drain(sandbox: SandboxServer) -> None:
    deadline = time.monotonic() + 10
    while _get(f"{sandbox.url}/__sandbox/pending")["pending"] and time.monotonic() < deadline:
        time.sleep(0.05)


def test_generator_dry_run_writes_payloads_and_sends_nothing(
    sandbox: SandboxServer, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, sandbox)
    before = _last_request(sandbox)
    done = _here(
        capfd,
        monkeypatch,
        "bulk_test_generator.py",
        "--dry-run",
        "--config",
        config,
        "--seed",
        "3",
        "--out",
        tmp_path / "o",
    )
    assert done.returncode == 0, done.stderr
    payloads = list((tmp_path / "o").glob("*_payloads.jsonl"))
    spread = json.loads(next((tmp_path / "o").glob("*_distribution.json")).read_text())
    assert len(payloads) == 1 and len(payloads[0].read_text().splitlines()) == 9
    assert [u["records"] for u in spread["phases"]["primary"]["per_user"]] == [3, 3, 3]
    assert "dry run: nothing sent" in done.stdout
    assert _hook_posts_since(sandbox, before) == 0
    assert not (tmp_path / "reports" / "runs.sqlite3").exists()


def test_generated_run_is_recorded_and_cleanup_removes_exactly_it(
    sandbox: SandboxServer, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, sandbox)
    sent = _here(capfd, monkeypatch, "bulk_test_generator.py", "--config", config, "--json")
    assert sent.returncode == 0, sent.stderr
    summary = json.loads(sent.stdout)
    assert summary["target"] == "sandbox" and summary["phases"][0]["accepted"] == 9
    assert "SANDBOX" in sent.stderr
    _drain(sandbox)

    other = _here(capfd, monkeypatch, "bulk_test_generator.py", "--config", config, "--json")
    assert other.returncode == 0, other.stderr
    _drain(sandbox)

    listed = _here(capfd, monkeypatch, "cleanup_test_data.py", "--run", summary["run_id"], "--config", config, "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["counts"]["deletable"] == 9
    assert json.loads(listed.stdout)["dry_run"] is True

    removed = _here(
        capfd, monkeypatch, "cleanup_test_data.py", "--run", summary["run_id"], "--config", config, "--yes", "--json"
    )
    assert removed.returncode == 0, removed.stderr
    report = json.loads(removed.stdout)
    assert report["counts"]["deleted"] == 9 and report["counts"]["failed"] == 0
    assert {c["run_id"] for c in report["deleted"]} == {summary["run_id"]}

    rest = _here(
        capfd,
        monkeypatch,
        "cleanup_test_data.py",
        "--pattern",
        "TestRecord_MonitorBase_*",
        "--config",
        config,
        "--json",
    )
    assert {c["run_id"] for c in json.loads(rest.stdout)["candidates"]} == {json.loads(other.stdout)["run_id"]}


def test_health_check_writes_the_report_and_fails_on_a_threshold(
    sandbox: SandboxServer, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, sandbox)
    healthy = _here(
        capfd, monkeypatch, "integration_health_check.py", "--integration", "monitorbase", "--config", config, "--json"
    )
    assert healthy.returncode == 0, healthy.stderr
    document = json.loads(healthy.stdout)
    report = Path(document["health_report"])
    assert report.is_file() and report.parent == tmp_path / "reports" / "integration_health_reports"

    strict = _config(tmp_path, sandbox, thresholds={"max_avg_response_seconds": 1e-9})
    failing = _here(
        capfd, monkeypatch, "integration_health_check.py", "--integration", "monitorbase", "--config", strict
    )
    assert failing.returncode == 1, failing.stderr
    assert "UNHEALTHY" in failing.stdout and "webhook response, mean" in failing.stdout


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("bulk_test_generator.py", []),
        ("integration_health_check.py", ["--integration", "monitorbase"]),
        ("webhook_validator.py", ["--send", "3"]),
        ("cleanup_test_data.py", ["--all-test-data", "--yes"]),
    ],
)
def test_bad_config_exits_2_and_sends_nothing(
    sandbox: SandboxServer, tmp_path: Path, script: str, args: list[str]
) -> None:
    config = _config(tmp_path, sandbox, test_records=0)
    before = _last_request(sandbox)
    done = _script(script, *args, "--config", config)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "'test_records'" in done.stderr and "Traceback" not in done.stderr
    assert _hook_posts_since(sandbox, before) == 0


def test_usage_errors_exit_2(sandbox: SandboxServer, tmp_path: Path) -> None:
    config = _config(tmp_path, sandbox)
    assert _script("cleanup_test_data.py", "--config", config).returncode == 2
    assert _script("cleanup_test_data.py", "--pattern", "X*", "--yes", "--dry-run", "--config", config).returncode == 2
    assert _script("integration_health_check.py", "--integration", "nosuch").returncode == 2
    assert _script("bulk_test_generator.py", "--no-such-flag").returncode == 2


def test_webhook_validator_probes_then_sends(
    sandbox: SandboxServer, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, sandbox)
    before = _last_request(sandbox)
    probed = _here(capfd, monkeypatch, "webhook_validator.py", "--config", config, "--json")
    assert probed.returncode == 0, probed.stderr
    assert json.loads(probed.stdout)["probes"]["primary"]["reachable"] is True
    assert _hook_posts_since(sandbox, before) == 0, "a probe never POSTs"

    sent = _here(capfd, monkeypatch, "webhook_validator.py", "--config", config, "--send", "4", "--json")
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["delivery"][0]["accepted"] == 4

    down = _here(
        capfd, monkeypatch, "webhook_validator.py", "--config", config, "--url", "http://127.0.0.1:9/api/webhook/x"
    )
    assert down.returncode == 1
    assert "FAILED" in down.stdout


def test_helper_scripts_print_records_and_prospects(sandbox: SandboxServer, tmp_path: Path) -> None:
    config = _config(tmp_path, sandbox)
    records = _script("test_data_factory.py", "--config", config, "--test-records", "4", "--json")
    assert records.returncode == 0, records.stderr
    names = [json.loads(line)["name"] for line in records.stdout.splitlines()]
    assert names == [f"TestRecord_MonitorBase_{i:03d}" for i in range(1, 5)]
    listed = _script("bonzo_api_client.py", "--config", config, "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []


def test_secrets_never_appear_in_output(sandbox: SandboxServer, tmp_path: Path) -> None:
    config = _config(tmp_path, sandbox, webhook_url="{TEST_HOOK_URL}", superuser_api_key="{SUPERUSER_API_KEY}")
    users = yaml.safe_load(config.read_text())["test_users"]
    seeded = _post(f"{sandbox.url}/__sandbox/seed", {"users": users, "hooks": [{"type": "monitorbase"}]})
    hook_url = seeded["hooks"][0]["url"]
    hook_hash = hook_url.rsplit("/", 1)[1]
    live = {"TEST_HOOK_URL": hook_url, "SUPERUSER_API_KEY": CANARY_KEY, "BONZO_API_URL": sandbox.url}
    runs = [
        _script("webhook_validator.py", "--config", config, "--send", "2", "--log-level", "DEBUG", env=live),
        _script(
            "cleanup_test_data.py", "--config", config, "--pattern", "TestRecord_*", "--log-level", "DEBUG", env=live
        ),
        _script("integration_health_check.py", "--config", config, "--json", env=live),
    ]
    # the health check's run stops at preflight on the refused key: exit 2, nothing sent
    assert [r.returncode for r in runs] == [0, 1, 2], [r.stderr for r in runs]
    assert "401" in runs[1].stderr
    assert "refused the API key (401)" in runs[2].stdout + runs[2].stderr
    literal = _config(tmp_path, sandbox, superuser_api_key=CANARY_KEY)
    runs.append(_script("bulk_test_generator.py", "--config", literal))
    assert runs[-1].returncode == 2
    for done in runs:
        for secret in (CANARY_KEY, hook_hash):
            assert secret not in done.stdout and secret not in done.stderr
