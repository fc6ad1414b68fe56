"""The bad-input corpus (cases.yaml): each case through the real CLI, exit 2, key and value named, 0 requests.

Every URL the tool could reach (the webhook, the API, a running sandbox) points at one counting
loopback server, so "nothing sent" is measured, not assumed. The corpus is data: add a case to
cases.yaml, not code here.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from counting_server import CountingServer
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.report import terminal as console_module

HERE = Path(__file__).parent
CASES: list[dict[str, Any]] = yaml.safe_load((HERE / "cases.yaml").read_text(encoding="utf-8"))
HOOK_HASH = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
API_KEY = "corpusKEY0123456789abcdefghijklmn"
BASE: dict[str, Any] = {
    "test_name": "bad input corpus",
    "integration_type": "monitorbase",
    "webhook_url": "{TEST_HOOK_URL}",
    "superuser_api_key": "{SUPERUSER_API_KEY}",
    "test_records": 3,
    "processing_delay": 1,
    "control": False,
    "test_users": [
        {"name": "LO One", "email": "lo.one@lender.test", "user_id": 101, "team_id": 11},
        {"name": "LO Two", "email": "lo.two@lender.test", "user_id": 102, "team_id": 12},
    ],
    "webhook_settings": {"timeout": 1, "retry_attempts": 0, "concurrent_requests": 2},
    "api_settings": {"timeout": 1, "retry_attempts": 0, "retry_delay": 0},
    "polling": {"interval": 0.1, "deadline": 1, "grace": 0},
}
_INDEX = re.compile(r"^(.*)\[(\d+)\]$")


@pytest.fixture(scope="module")
def counting() -> Iterator[CountingServer]:
    """One counting server for the whole corpus."""
    with CountingServer() as server:
        yield server


def _walk(data: Any, dotted: str) -> tuple[Any, str | int]:
    """The container holding ``dotted``'s last part (creating mappings on the way) and that part."""
    parts: list[str | int] = []
    for piece in dotted.split("."):
        match = _INDEX.match(piece)
        if match:
            parts.extend([match.group(1), int(match.group(2))])
        else:
            parts.append(piece)
    node = data
    for part in parts[:-1]:
        node = node[part] if isinstance(part, int) else node.setdefault(part, {})
    return node, parts[-1]


def _config_text(case: dict[str, Any], tmp_path: Path, server_url: str) -> str:
    if "raw" in case:
        return str(case["raw"])
    data = copy.deepcopy(BASE)
    data["reports_dir"] = str(tmp_path / "reports")
    for dotted in case.get("unset", []):
        node, last = _walk(data, dotted)
        node.pop(last) if isinstance(node, dict) else node.__delitem__(last)
    for dotted, value in (case.get("set") or {}).items():
        node, last = _walk(data, dotted)
        node[last] = value.replace("{server}", server_url) if isinstance(value, str) else value
    return yaml.safe_dump(data, sort_keys=False) + str(case.get("append", ""))


def _environment(case: dict[str, Any], server_url: str) -> dict[str, str | None]:
    env: dict[str, str | None] = {
        "TEST_HOOK_URL": f"{server_url}/api/webhook/{HOOK_HASH}",
        "SUPERUSER_API_KEY": API_KEY,
        "BONZO_API_URL": server_url,
        "SUPERUSER_WEBHOOK_URL": None,
        "BONZO_BULK_REPORTS_DIR": None,
        "BONZO_BULK_TARGET": None,
        "BONZO_BULK_TEST_RECORDS": None,
        "BONZO_BULK_PROCESSING_DELAY": None,
        "BONZO_BULK_DISTRIBUTION": None,
        "COLUMNS": "400",
    }
    for name, value in (case.get("env") or {}).items():
        env[name] = None if value is None else str(value).replace("{server}", server_url)
    return env


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input_is_refused_before_the_first_byte(
    case: dict[str, Any], counting: CountingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(console_module.console, "width", 400)
    for name, text in (case.get("files") or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(str(text).replace("{server}", counting.url), encoding="utf-8")
    for name, hexed in (case.get("binary_files") or {}).items():
        (tmp_path / name).write_bytes(bytes.fromhex(hexed))
    config = tmp_path / "c.yaml"
    if "raw_hex" in case:
        config.write_bytes(bytes.fromhex(case["raw_hex"]))
    else:
        config.write_text(_config_text(case, tmp_path, counting.url), encoding="utf-8")
    args = [str(a).replace("{tmp}", str(tmp_path)) for a in case.get("args", [])]
    command = str(case.get("command", "run")).split()
    counting.reset()

    result = CliRunner().invoke(app, [*command, "--config", str(config), *args], env=_environment(case, counting.url))

    output = _flat(result.output)
    assert result.exit_code == 2, f"exit {result.exit_code}, output: {output}"
    assert counting.requests == 0, f"{counting.requests} request(s) sent; output: {output}"
    assert "Traceback" not in output
    for wanted in case["expect"]:
        assert _flat(str(wanted)) in output, f"{wanted!r} not in: {output}"
    for unwanted in case.get("absent", []):
        assert str(unwanted) not in result.output
    assert HOOK_HASH not in result.output and API_KEY not in result.output


def test_the_corpus_is_large_and_the_counter_counts(counting: CountingServer, tmp_path: Path) -> None:
    """At least 130 cases, and the base config does send (so a 0 above means refused, not unreachable)."""
    assert len(CASES) >= 130
    assert len({c["id"] for c in CASES}) == len(CASES)
    config = tmp_path / "c.yaml"
    config.write_text(_config_text({"id": "base"}, tmp_path, counting.url), encoding="utf-8")
    counting.reset()
    result = CliRunner().invoke(app, ["generate", "--config", str(config)], env=_environment({}, counting.url))
    assert counting.requests >= 3, result.output
