"""The sandbox served by uvicorn on a free loopback port: start/stop, persistence, socket-level faults, the CLI."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from sandbox_helpers import FAST, SEED_USERS, lead
from typer.testing import CliRunner

from bonzo_bulk.cli import app as cli_app
from bonzo_bulk.cli.sandbox import serve_sandbox
from bonzo_bulk.config.schema import ProcessingDelayModel
from bonzo_bulk.errors import ConfigError, SandboxError
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer


def settle(srv: SandboxServer, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while srv.admin("GET", "pending")["pending"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_starts_on_loopback_ready_to_answer_and_stops_without_leaks(tmp_path: Path) -> None:
    threads_before = threading.active_count()
    with SandboxServer(SandboxOptions(db_path=tmp_path / "s.sqlite3")) as srv:
        assert srv.url.startswith("http://127.0.0.1:") and srv.port > 0
        assert httpx.get(f"{srv.url}/openapi.json").status_code == 200
    assert threading.active_count() == threads_before
    with pytest.raises(SandboxError, match="not running"):
        _ = srv.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{srv.port}/openapi.json")


def test_temporary_database_is_removed_and_port_in_use_is_a_clear_error() -> None:
    with SandboxServer() as srv:
        db_path = srv.app.sandbox.db.path if srv.app else None
        assert db_path is not None and db_path.exists()
        with pytest.raises(SandboxError, match="cannot listen"):
            SandboxServer(port=srv.port).start()
    assert not db_path.exists()


def test_state_persists_across_restarts_including_pending_intake(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    slow = ProcessingDelayModel(distribution="fixed", seconds=0.6)
    with SandboxServer(SandboxOptions(db_path=db, processing=slow)) as srv:
        seeded = srv.seed(SEED_USERS, [{"type": "monitorbase"}])
        hook = seeded["hooks"][0]["url"]
        headers = {"Authorization": f"Bearer {seeded['superuser_token']}", "On-Behalf-Of": "101"}
        created = httpx.post(
            f"{srv.url}/api/v3/prospects", headers=headers, json={"first_name": "A", "email": "a@b.test"}
        )
        assert created.status_code == 201
        assert httpx.post(hook, json=lead(1)).status_code == 200
        assert srv.admin("GET", "pending") == {"pending": 1}
    with SandboxServer(SandboxOptions(db_path=db, processing=FAST)) as srv:
        again = srv.seed(SEED_USERS, [{"type": "monitorbase"}])
        assert again["superuser_token"] == seeded["superuser_token"]
        assert again["user_tokens"] == seeded["user_tokens"]
        assert again["hooks"][0]["hash"] == seeded["hooks"][0]["hash"]
        settle(srv)
        listed = httpx.get(f"{srv.url}/api/v3/prospects", headers=headers).json()["data"]
        assert sorted(p["first_name"] for p in listed) == ["A", "TestRecord_MonitorBase_001"]


def test_reset_and_hang_faults_over_a_real_socket(tmp_path: Path) -> None:
    options = SandboxOptions(db_path=tmp_path / "s.sqlite3", processing=FAST)
    with SandboxServer(options) as srv:
        hook = srv.seed(SEED_USERS, [{"type": "monitorbase"}])["hooks"][0]["url"]
        srv.admin("PUT", "faults", {"faults": [{"kind": "reset", "times": 1}]})
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            httpx.post(hook, json=lead(1))
        assert httpx.post(hook, json=lead(1)).status_code == 200
        # A hang far longer than the server's own stop timeout: stopping must end it, not wait it out
        # (a stop that waited would raise SandboxError "did not stop within 10 s").
        srv.admin("PUT", "faults", {"faults": [{"kind": "intake_hang", "seconds": 3600}]})
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(hook, json=lead(2), timeout=0.3)
        truth = srv.admin("GET", "ground-truth")["faults"]
        assert [e["fault"] for e in truth] == ["reset", "intake_hang"]
        log = srv.admin("GET", "requests")["requests"]
        assert any(line["status"] is None and line["outcome"] == "no answer" for line in log)
    assert srv.app is not None
    held = [line for line in srv.app.sandbox.request_log if line["path"].startswith("/api/webhook/")][-1]
    assert held["status"] == 504, "stopping answers the held request"


def test_admin_helper_raises_sandbox_error_on_refusal(tmp_path: Path) -> None:
    with SandboxServer(SandboxOptions(db_path=tmp_path / "s.sqlite3")) as srv, pytest.raises(SandboxError, match="422"):
        srv.admin("PUT", "faults", {"faults": [{"kind": "nope"}]})


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_serve_takes_users_from_a_config_with_unset_secret_placeholders(tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.yaml",
        'superuser_api_key: "{SUPERUSER_API_KEY}"\ntest_users:\n'
        "  - {name: A, email: a@x.test, user_id: 1, team_id: 2, weight: 1}\n",
    )
    lines: list[str] = []
    serve_sandbox(
        host="127.0.0.1",
        port=0,
        db=tmp_path / "s.sqlite3",
        config_file=config,
        faults=None,
        echo=lines.append,
        until=lambda: True,
    )
    assert any("token of user 1:" in line for line in lines)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("test_users: []\n", "test_users"),
        ("other: 1\n", "'other'"),
        ("test_users:\n  - {name: A, email: nope, user_id: 1, team_id: 2}\n", "test_users[0].email"),
        ("test_users:\n  - {name: A, email: a@x.test, user_id: -1, team_id: 2}\n", "test_users[0].user_id"),
        ("test_users: [\n", "not valid YAML"),
    ],
)
def test_bad_config_is_a_config_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        serve_sandbox(
            host="127.0.0.1",
            port=0,
            db=tmp_path / "s.sqlite3",
            config_file=write(tmp_path / "c.yaml", text),
            faults=None,
            echo=print,
            until=lambda: True,
        )
    assert message in str(caught.value)


def test_serve_prints_urls_and_the_labelled_sandbox_token(tmp_path: Path) -> None:
    lines: list[str] = []
    serve_sandbox(
        host="127.0.0.1",
        port=0,
        db=tmp_path / "s.sqlite3",
        config_file=None,
        faults=None,
        echo=lines.append,
        strict=True,
        until=lambda: True,
    )
    text = "\n".join(lines)
    assert "NOT Bonzo" in text and "/api/webhook/" in text and "(monitorbase, source monitorbase)" in text
    assert "(general, source webhook)" in text and "strictness:   strict" in text
    assert "sandbox-only superuser token" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--users", "missing.yaml"], "does not exist"),
        (["--config", "missing.yaml", "--strict"], "does not exist"),
        (["--faults", "faults.yaml"], "faults[0].kind"),
        (["--port", "70000"], "--port"),
    ],
)
def test_cli_bad_input_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "faults.yaml", "faults:\n  - kind: nope\n")
    result = CliRunner().invoke(cli_app, ["sandbox", "--db", str(tmp_path / "s.sqlite3"), *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


@pytest.mark.parametrize("strict", [False, True])
def test_the_engine_test_helper_serves_either_strictness(tmp_path: Path, strict: bool) -> None:
    from builders import sandbox_server

    with sandbox_server(
        tmp_path / "s.sqlite3", strict=strict, mapped_custom_fields={"monitorbase": ["custom_1"]}
    ) as srv:
        seeded = srv.seed(SEED_USERS, [{"type": "monitorbase"}])
        settings = srv.admin("GET", "settings")
        hook = seeded["hooks"][0]["url"]
        assert httpx.post(hook, json=lead(1, custom_1="c1", custom_2="c2")).status_code == 200
        settle(srv)
        headers = {"Authorization": f"Bearer {seeded['superuser_token']}", "On-Behalf-Of": "101"}
        (prospect,) = httpx.get(f"{srv.url}/api/v3/prospects", headers=headers).json()["data"]
    assert settings["strictness"] == ("strict" if strict else "lenient")
    expected = [{"key": "custom_1", "value": "c1"}] if strict else {"custom_1": "c1", "custom_2": "c2"}
    assert prospect["custom_fields"] == expected
