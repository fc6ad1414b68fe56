"""``bonzo-bulk sandbox``: serve a seeded sandbox until Ctrl-C (the CLI command is a thin call into this)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bonzo_bulk.errors import ConfigError, SandboxError
from bonzo_bulk.sandbox.faults import load_profile
from bonzo_bulk.sandbox.server import SandboxServer
from bonzo_bulk.sandbox.state import SandboxOptions
from bonzo_bulk.settings import TestUserConfig

DEFAULT_DB = Path("reports/sandbox.sqlite3")


def load_test_users(path: Path) -> list[TestUserConfig]:
    """The ``test_users`` of a bonzo-bulk YAML config (other keys, placeholders included, are not read)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"cannot read it ({exc.strerror}); give a bonzo-bulk YAML config", key="--users", source=str(path)
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML ({exc})", key="--users", source=str(path)) from exc
    entries = data.get("test_users") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(
            "'test_users' is missing or empty; add a list of {name, email, user_id, team_id}",
            key="test_users",
            source=str(path),
        )
    users = []
    for index, entry in enumerate(entries):
        try:
            users.append(TestUserConfig.model_validate(entry))
        except ValidationError as exc:
            problems = "; ".join(
                f"test_users[{index}]{''.join(f'.{p}' for p in err['loc'])}: {err['msg']}"
                + (f" (got {err['input']!r})" if not isinstance(err.get("input"), dict) else "")
                for err in exc.errors()
            )
            raise ConfigError(f"{problems}; fix that entry", key=f"test_users[{index}]", source=str(path)) from exc
    return users


def build_options(db: Path | None, faults: Path | None, capacity: float | None = None) -> SandboxOptions:
    """Options for a served sandbox: a persistent database, an optional fault profile file and capacity."""
    try:
        profile = load_profile(faults) if faults is not None else None
    except SandboxError as exc:
        raise ConfigError(
            f"{exc}; fix the profile (kinds and fields are listed in the sandbox docs)", key="--faults"
        ) from exc
    if capacity is not None and not capacity > 0:
        raise ConfigError(f"--capacity {capacity:g}: give the leads/s the sandbox processes, above 0", key="--capacity")
    return SandboxOptions(db_path=db or DEFAULT_DB, faults=profile, capacity=capacity)


def serve(
    *,
    host: str,
    port: int,
    db: Path | None,
    users_file: Path | None,
    faults: Path | None,
    echo: Callable[[str], Any],
    capacity: float | None = None,
    until: Callable[[], bool] | None = None,
) -> None:
    """Start, seed and announce a sandbox, then serve until Ctrl-C (or until ``until()`` says stop)."""
    users = load_test_users(users_file) if users_file is not None else []
    options = build_options(db, faults, capacity)
    seed_users = [
        u.model_dump(include={"name", "email", "user_id", "team_id", "team_name", "external_id"}) for u in users
    ]
    server = SandboxServer(options, host=host, port=port)
    try:
        server.start()
    except SandboxError as exc:
        raise ConfigError(f"{exc}; check --host/--port/--db", key="--port") from exc
    with server:
        seeded = server.seed(seed_users, [{"type": "monitorbase"}, {"type": "general"}])
        echo(f"bonzo-bulk sandbox (a local stand-in for Bonzo, NOT Bonzo) at {server.url}")
        echo(f"  database:     {Path(str(options.db_path)).resolve()}")
        echo(f"  API base:     {server.url}/api/v3   (OpenAPI: {server.url}/openapi.json)")
        for hook in seeded["hooks"]:
            echo(f"  hook URL ({hook['type']}, source {hook['source']}): {hook['url']}")
        echo(f"  sandbox-only superuser token (works only on this sandbox): {seeded['superuser_token']}")
        for user_id, token in seeded["user_tokens"].items():
            echo(f"  sandbox-only token of user {user_id}: {token}")
        if faults is not None:
            echo(f"  fault profile: {faults}")
        if capacity is not None:
            echo(f"  capacity:     {capacity:g} leads/s (beyond it the backlog and the lag grow)")
        echo("Press Ctrl-C to stop.")
        terminated: list[int] = []
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda signum, frame: terminated.append(signum))
        try:
            while not terminated and (until is None or not until()):
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        echo("stopping the sandbox")
