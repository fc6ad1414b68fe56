"""Live mode end to end, with the sandbox playing the real systems: the same command runs unchanged,
and neither the API key nor a hook URL's hash appears in anything the tool prints or writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from bonzo_bulk.sandbox import SandboxOptions, SandboxServer


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bonzo_bulk", *args],
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_live_run_passes_and_never_shows_a_secret(
    tmp_path: Path, sandbox: SandboxServer, users: list[dict[str, object]]
) -> None:
    seeded = sandbox.seed(
        users, [{"type": "monitorbase", "source": "monitorbase"}, {"type": "general", "source": "monitorbase"}]
    )
    hooks = {h["type"]: h for h in seeded["hooks"]}
    token = seeded["superuser_token"]
    config = tmp_path / "live.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "test_name": "live mode",
                "webhook_url": "{TEST_HOOK_URL}",
                "superuser_webhook_url": "{SUPERUSER_WEBHOOK_URL}",
                "superuser_api_key": "{SUPERUSER_API_KEY}",
                "test_records": 6,
                "test_users": users,
                "polling": {"interval": 0.2, "deadline": 5},
                "reports_dir": str(tmp_path / "reports"),
            }
        )
    )
    env = {
        "TEST_HOOK_URL": hooks["monitorbase"]["url"],
        "SUPERUSER_WEBHOOK_URL": hooks["general"]["url"],
        "SUPERUSER_API_KEY": token,
        "BONZO_API_URL": sandbox.url,
    }
    result = run_cli(["run", "--config", str(config), "--log-level", "DEBUG"], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    shown = result.stdout + result.stderr
    assert "Target: LIVE" in shown
    assert "SANDBOX" not in shown
    secrets = [token, hooks["monitorbase"]["hash"], hooks["general"]["hash"]]
    written = [p for p in (tmp_path / "reports").rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in written)
    assert any(p.suffix == ".json" for p in written)
    for secret in secrets:
        assert secret not in shown
        for path in written:
            assert secret.encode() not in path.read_bytes(), f"{secret[:6]}… leaked into {path.name}"


def test_half_set_environment_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    with SandboxServer(SandboxOptions(db_path=tmp_path / "quiet.sqlite3")) as quiet:
        check_nothing_is_sent(tmp_path, quiet)


def check_nothing_is_sent(tmp_path: Path, sandbox: SandboxServer) -> None:
    """A sandbox of its own, so no other test's traffic can land in its request log."""

    def outside_requests() -> list[dict[str, object]]:
        log = sandbox.admin("GET", "requests?limit=200")["requests"]
        return [entry for entry in log if not str(entry["path"]).startswith("/__sandbox")]

    before = outside_requests()
    result = run_cli(
        ["run", "--config", "tests/configs/monitorbase_test_config.yaml", "--reports-dir", str(tmp_path)],
        {"TEST_HOOK_URL": f"{sandbox.url}/api/webhook/{'0' * 32}"},
        Path.cwd(),
    )
    assert result.returncode == 2
    assert "SUPERUSER_API_KEY is not" in result.stderr
    assert "0" * 32 not in result.stdout + result.stderr
    assert outside_requests() == before  # nothing reached the hook or the API
