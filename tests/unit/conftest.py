"""Shared fixtures for the framework's own tests: a sandbox on a free loopback port, small configs."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import yaml
from aioresponses import aioresponses
from browser import FLAGS, require_chromium

from bonzo_bulk.config.loader import LoadedConfig, load_config
from bonzo_bulk.config.schema import ProcessingDelayModel
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser

USERS = [
    {"name": "LO One", "email": "lo.one@lender.test", "user_id": 101, "team_id": 11},
    {"name": "LO Two", "email": "lo.two@lender.test", "user_id": 102, "team_id": 12},
    {"name": "LO Three", "email": "lo.three@lender.test", "user_id": 103, "team_id": 13},
]


@pytest.fixture
def users() -> list[dict[str, object]]:
    """The three test loan officers the unit tests use."""
    return [dict(u) for u in USERS]


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """One fast sandbox for the session (fixed 50 ms processing), stopped at the end."""
    db = tmp_path_factory.mktemp("sandbox") / "sandbox.sqlite3"
    options = SandboxOptions(db_path=db, processing=ProcessingDelayModel(distribution="fixed", seconds=0.05))
    with SandboxServer(options) as server:
        yield server


@pytest.fixture(scope="session")
def strict_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """A strict sandbox for the session (the least Bonzo's reference promises), Monitorbase's custom_1..3
    mapped as a user's Mapping tab would, stopped at the end."""
    db = tmp_path_factory.mktemp("strict-sandbox") / "sandbox.sqlite3"
    options = SandboxOptions(
        db_path=db,
        processing=ProcessingDelayModel(distribution="fixed", seconds=0.05),
        strictness="strict",
        mapped_custom_fields={"monitorbase": ["custom_1", "custom_2", "custom_3"]},
    )
    with SandboxServer(options) as server:
        yield server


@pytest.fixture(autouse=True)
def _session_sandboxes_left_clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used a session sandbox, its fault profile is taken off: no test inherits another's faults."""
    yield
    for name in ("sandbox", "strict_sandbox"):
        if name in request.fixturenames:
            server: SandboxServer = request.getfixturevalue(name)
            server.admin("PUT", "faults", {"faults": []})


@pytest.fixture(params=["lenient", "strict"])
def any_sandbox(request: pytest.FixtureRequest) -> SandboxServer:
    """The lenient and the strict session sandbox in turn: verdicts must hold on both."""
    fixture = "sandbox" if request.param == "lenient" else "strict_sandbox"
    server: SandboxServer = request.getfixturevalue(fixture)
    return server


@pytest.fixture
def make_config() -> Any:
    """The :func:`small_config` builder, as a fixture."""
    return small_config


DECLARED_CONTRACT: dict[str, Any] = {
    "primary": [
        {"to": "source", "value": "monitorbase"},
        *({"from": f"custom_{n}", "to": f"custom_fields.custom_{n}"} for n in (1, 2, 3)),
    ]
}
"""What the lenient sandbox's Monitorbase hook is declared to store beyond the documented fields."""


def small_config(tmp_path: Path, sandbox_url: str | None = None, **overrides: Any) -> LoadedConfig:
    """A quick config: 9 records over 3 users, short timeouts and deadline, reports under tmp_path."""
    data: dict[str, Any] = {
        "test_name": "engine test",
        "integration_type": "monitorbase",
        "test_records": 9,
        "control": False,
        "test_users": USERS,
        "webhook_settings": {"timeout": 1.0, "retry_attempts": 1, "retry_delay": 0.05, "concurrent_requests": 4},
        "api_settings": {"retry_delay": 0.05, "default_retry_after": 1},
        "polling": {"interval": 0.15, "deadline": 2.0, "max_interval": 0.5},
        "reports_dir": str(tmp_path / "reports"),
        "contract": DECLARED_CONTRACT,
    }
    if sandbox_url is not None:
        data["sandbox"] = {"url": sandbox_url}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path, environ={})


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The Chromium the browser tests use: without one, skipped with the install hint, or failed under CI=true."""
    return require_chromium()


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    """Playwright driving that Chromium (headless, no sandbox, no background network), one per test module:
    while Playwright's sync API is open the thread looks like it runs an event loop, which async tests refuse."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=list(FLAGS))
        yield launched
        launched.close()


class _ResponseWithWriter(aiohttp.ClientResponse):
    """aiohttp >= 3.14 wants ``stream_writer``; aioresponses 0.7.x does not pass it (aioresponses#289)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(*args, **kwargs)


@pytest.fixture
def mocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses]:
    """aioresponses, bridged to aiohttp 3.14's response constructor until upstream catches up."""
    if "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters:
        monkeypatch.setattr("aioresponses.core.ClientResponse", _ResponseWithWriter)
    with aioresponses() as mock:
        yield mock
