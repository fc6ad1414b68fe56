"""Preflight: a wrong key, an unreachable user or a dead hook stops the run before its first POST (exit 2)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from builders import sandbox_server

from bonzo_bulk.sandbox import SandboxServer
from bonzo_bulk.sandbox.state import REQUEST_LOG_SIZE


def hook_posts(sandbox: SandboxServer) -> int:
    log = httpx.get(f"{sandbox.url}/__sandbox/requests", params={"limit": REQUEST_LOG_SIZE}).json()["requests"]
    return sum(1 for line in log if line["method"] == "POST" and line["path"].startswith("/api/webhook/"))


def live_run(tmp_path: Path, env: dict[str, str], users: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "live.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "webhook_url": "{TEST_HOOK_URL}",
                "superuser_webhook_url": "{SUPERUSER_WEBHOOK_URL}",
                "superuser_api_key": "{SUPERUSER_API_KEY}",
                "test_records": 3,
                "test_users": users,
                "polling": {"interval": 0.2, "deadline": 3},
                "reports_dir": str(tmp_path / "reports"),
            }
        )
    )
    return subprocess.run(
        [sys.executable, "-m", "bonzo_bulk", "run", "--config", str(config)],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "COLUMNS": "200", **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """A sandbox of these tests' own, so its request log holds only what they sent."""
    with sandbox_server(tmp_path_factory.mktemp("preflight") / "sandbox.sqlite3") as server:
        yield server


@pytest.fixture
def live_env(sandbox: SandboxServer, users: list[dict[str, Any]]) -> dict[str, str]:
    seeded = sandbox.seed(
        users, [{"type": "monitorbase", "source": "monitorbase"}, {"type": "general", "source": "monitorbase"}]
    )
    hooks = {h["type"]: h["url"] for h in seeded["hooks"]}
    return {
        "TEST_HOOK_URL": hooks["monitorbase"],
        "SUPERUSER_WEBHOOK_URL": hooks["general"],
        "SUPERUSER_API_KEY": seeded["superuser_token"],
        "BONZO_API_URL": sandbox.url,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_api_key_sends_nothing(
    tmp_path: Path, sandbox: SandboxServer, users: list[dict[str, Any]], live_env: dict[str, str]
) -> None:
    before = hook_posts(sandbox)
    result = live_run(tmp_path, {**live_env, "SUPERUSER_API_KEY": "not-a-valid-token-0123456789"}, users)
    assert result.returncode == 2, result.stdout + result.stderr
    shown = result.stdout + result.stderr
    assert "refused the API key (401)" in shown and "SUPERUSER_API_KEY" in shown
    assert "Traceback" not in shown
    assert hook_posts(sandbox) == before


def test_an_unknown_user_is_named_and_nothing_is_sent(
    tmp_path: Path, sandbox: SandboxServer, users: list[dict[str, Any]], live_env: dict[str, str]
) -> None:
    before = hook_posts(sandbox)
    stranger = {"name": "Nobody", "email": "nobody@lender.test", "user_id": 999_999, "team_id": 1}
    result = live_run(tmp_path, live_env, [*users, stranger])
    assert result.returncode == 2, result.stdout + result.stderr
    assert "On-Behalf-Of 999999 (nobody@lender.test)" in result.stdout + result.stderr
    assert hook_posts(sandbox) == before


def test_a_dead_hook_is_named_and_nothing_is_sent(
    tmp_path: Path, sandbox: SandboxServer, users: list[dict[str, Any]], live_env: dict[str, str]
) -> None:
    before = hook_posts(sandbox)
    dead = f"http://127.0.0.1:{free_port()}/api/webhook/{'0' * 32}"
    result = live_run(tmp_path, {**live_env, "SUPERUSER_WEBHOOK_URL": dead}, users)
    shown = result.stdout + result.stderr
    assert result.returncode == 2, shown
    assert "control webhook" in shown and "does not answer" in shown
    assert "0" * 32 not in shown  # the hook hash is a secret even in an error
    assert hook_posts(sandbox) == before
