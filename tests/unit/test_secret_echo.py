"""Canary: a webhook that echoes its own hash ("hook <hash> is paused") must not leak it anywhere we write.

The hook hash alone is a secret (it is the hook's credential), so it is registered on its own, not
only as part of the full URL; every file the run writes and everything it prints is searched for it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.config.schema import ProcessingDelayModel
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer

CANARY_HASH = "c4a7a2y0ec40h45h000000000000beef"


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = f'{{"message": "hook {CANARY_HASH} is paused", "hook": "{CANARY_HASH}"}}'.encode()
        self.send_response(422)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def echoing_hook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/webhook/{CANARY_HASH}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_hook_hash_echoed_in_a_422_body_appears_in_no_output_or_file(tmp_path: Path, echoing_hook: str) -> None:
    users = [{"name": "LO One", "email": "lo.one@lender.test", "user_id": 101, "team_id": 11}]
    options = SandboxOptions(
        db_path=tmp_path / "api.sqlite3", processing=ProcessingDelayModel(distribution="fixed", seconds=0.01)
    )
    with SandboxServer(options) as api:
        token = api.seed(users)["superuser_token"]
        config = tmp_path / "c.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "webhook_url": "{TEST_HOOK_URL}",
                    "superuser_api_key": "{SUPERUSER_API_KEY}",
                    "test_records": 3,
                    "control": False,
                    "test_users": users,
                    "webhook_settings": {"timeout": 2, "retry_attempts": 0},
                    "api_settings": {"retry_attempts": 0},
                    "polling": {"interval": 0.1, "deadline": 0.5},
                    "reports_dir": str(tmp_path / "reports"),
                }
            )
        )
        env = {"TEST_HOOK_URL": echoing_hook, "SUPERUSER_API_KEY": token, "BONZO_API_URL": api.url}
        result = CliRunner().invoke(app, ["run", "--config", str(config), "--json", "--log-level", "DEBUG"], env=env)

    assert result.exit_code == 1, result.output
    assert "http_4xx" in result.output or "422" in result.output
    assert CANARY_HASH not in result.output
    tracked = json.loads(result.stdout)["problems"]
    assert tracked and tracked[0]["new"], "the run's failure is tracked as a problem (a new output to search)"
    listed = CliRunner().invoke(app, ["problems", "--all", "--json", "--config", str(config)], env=env)
    shown = CliRunner().invoke(app, ["problems", "show", tracked[0]["id"], "--config", str(config)], env=env)
    assert listed.exit_code == 0 and shown.exit_code == 0, listed.output + shown.output
    assert tracked[0]["id"] in listed.output and "delivered" in shown.output
    assert CANARY_HASH not in listed.output + shown.output
    written = [p for p in (tmp_path / "reports").rglob("*") if p.is_file()]
    assert any(p.suffix == ".json" for p in written) and any(p.name == "runs.sqlite3" for p in written)
    for path in written:
        assert CANARY_HASH.encode() not in path.read_bytes(), path
