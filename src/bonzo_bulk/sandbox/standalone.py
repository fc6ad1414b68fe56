"""Serve a seeded sandbox until Ctrl-C, standalone (what ``bonzo-bulk sandbox`` calls), and its options."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bonzo_bulk.config.faults import load_profile
from bonzo_bulk.config.loader import LoadedConfig, load_config
from bonzo_bulk.errors import ConfigError, SandboxError
from bonzo_bulk.sandbox.hooktypes import stored_source
from bonzo_bulk.sandbox.rows import HookRow
from bonzo_bulk.sandbox.server import SandboxServer
from bonzo_bulk.sandbox.state import SandboxOptions

DEFAULT_DB = Path("reports/sandbox.sqlite3")
NO_CONFIG_SEED: Mapping[str, Any] = {"users": [], "hooks": [{"type": "monitorbase"}, {"type": "general"}]}
"""What a sandbox served without a config is seeded with: no users, a monitorbase and a general hook."""


def build_options(
    db: Path | None, faults: Path | None, *, strict: bool = False, capacity: float | None = None
) -> SandboxOptions:
    """Options for a sandbox served without a config: a persistent database, an optional fault profile file
    and an optional processing capacity."""
    profile = _profile(faults)
    return SandboxOptions(
        db_path=db or DEFAULT_DB,
        faults=profile,
        strictness="strict" if strict else "lenient",
        capacity=_capacity(capacity),
    )


def _capacity(capacity: float | None) -> float | None:
    """``--capacity``, checked: leads/s above 0, or None for unbounded."""
    if capacity is not None and not capacity > 0:
        raise ConfigError(f"--capacity {capacity:g}: give the leads/s the sandbox processes, above 0", key="--capacity")
    return capacity


def _profile(faults: Path | None) -> dict[str, Any] | None:
    """The fault profile file, validated; a bad one is a ConfigError naming ``--faults``."""
    try:
        return load_profile(faults) if faults is not None else None
    except ConfigError as exc:
        raise ConfigError(
            f"{exc}; fix the profile (kinds and fields are listed in the sandbox docs)", key="--faults"
        ) from exc


def load_for_sandbox(config_file: Path, *, strict: bool) -> LoadedConfig:
    """A config as the sandbox served for it reads it: target sandbox, ``--strict`` over its strictness."""
    overrides: dict[str, Any] = {"target": "sandbox"}
    if strict:
        overrides["sandbox_strictness"] = "strict"
    return load_config(config_file, overrides=overrides)


def options_for_config(loaded: LoadedConfig, *, db: Path | None, faults: Path | None) -> SandboxOptions:
    """Options for a sandbox served for a config: what a run of that config starts.

    The config's ``sandbox:`` section applies (strictness, mapped custom fields, processing, policies, faults,
    rate limit); ``--db`` and ``--faults`` override it.
    """
    config = loaded.config
    try:
        options = SandboxOptions.from_settings(config.sandbox, base_dir=loaded.base_dir)
    except SandboxError as exc:
        raise ConfigError(f"{exc}; fix the config's sandbox: section", key="sandbox", source=str(loaded.path)) from exc
    if faults is not None:
        options.faults = _profile(faults)
    if db is not None:
        options.db_path = db
    elif config.sandbox.db is None:
        options.db_path = Path(config.reports_dir) / "sandbox.sqlite3"
    return options


def serve(
    *,
    host: str,
    port: int,
    db: Path | None,
    faults: Path | None,
    echo: Callable[[str], Any],
    loaded: LoadedConfig | None = None,
    seed: Mapping[str, Any] = NO_CONFIG_SEED,
    strict: bool = False,
    capacity: float | None = None,
    until: Callable[[], bool] | None = None,
) -> None:
    """Start, seed (``seed``: the ``POST /__sandbox/seed`` body) and announce a sandbox, then serve until
    Ctrl-C (or until ``until()`` says stop).

    With a config (``loaded``, read by :func:`load_for_sandbox`), its ``sandbox:`` section applies, and the
    seed is what a run of it seeds; without one, ``strict`` sets the strictness.
    """
    if loaded is not None:
        options = options_for_config(loaded, db=db, faults=faults)
        if capacity is not None:
            options.capacity = _capacity(capacity)
    else:
        options = build_options(db, faults, strict=strict, capacity=capacity)
    server = SandboxServer(options, host=host, port=port)
    try:
        server.start()
    except SandboxError as exc:
        raise ConfigError(f"{exc}; check --host/--port/--db", key="--port") from exc
    with server:
        seeded = server.seed(seed["users"], seed["hooks"])
        echo(f"bonzo-bulk sandbox (a local stand-in for Bonzo, NOT Bonzo) at {server.url}")
        echo(f"  database:     {Path(str(options.db_path)).resolve()}")
        echo(f"  API base:     {server.url}/api/v3   (OpenAPI: {server.url}/openapi.json)")
        echo(f"  strictness:   {describe_strictness(options)}")
        for hook in seeded["hooks"]:
            source = stored_source(HookRow("", hook["type"], hook["source"]), strict=options.strictness == "strict")
            echo(f"  hook URL ({hook['type']}, source {source}): {hook['url']}")
        echo(f"  sandbox-only superuser token (works only on this sandbox): {seeded['superuser_token']}")
        for user_id, token in seeded["user_tokens"].items():
            echo(f"  sandbox-only token of user {user_id}: {token}")
        if options.faults:
            echo(f"  fault profile: {faults or 'from the config'}")
        if options.capacity is not None:
            echo(f"  capacity:     {options.capacity:g} leads/s (beyond it the backlog and the lag grow)")
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


def describe_strictness(options: SandboxOptions) -> str:
    """One line on the sandbox's strictness, with the custom fields it keeps when strict."""
    if options.strictness == "lenient":
        return "lenient (keeps every custom field, the hook's source label; --strict for the reference's least)"
    mapped = "; ".join(f"{t}: {', '.join(f)}" for t, f in options.mapped_custom_fields.items() if f) or "none"
    return f"strict (custom fields kept only where mapped: {mapped}; the general hook sets source 'webhook')"
