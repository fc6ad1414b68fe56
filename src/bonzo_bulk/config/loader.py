"""Load a bulk-test config: YAML + ``{ENV_VAR}`` placeholders + ``.env`` + command-line overrides.

Precedence, lowest first: schema defaults < YAML < environment < command line. Every overridable
option is declared once in :data:`OPTIONS`; the CLI flags and the pytest options are generated
from it. Secrets come only from the environment (or ``.env``), are held as ``SecretStr`` and are
registered for redaction the moment they are read (:mod:`bonzo_bulk.config.environment`); the file
is read and its mistakes told by :mod:`bonzo_bulk.config.files`.

>>> loaded = load_config("tests/configs/monitorbase_test_config.yaml", environ={})
>>> loaded.target, loaded.config.test_records
('sandbox', 21)
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bonzo_bulk.config.environment import (
    ENV_SECRETS,
    environment,
    literal_secrets,
    register_config_secrets,
    resolve_placeholders,
    secrets_from_environment,
)
from bonzo_bulk.config.faults import load_profile
from bonzo_bulk.config.files import read_yaml, validate
from bonzo_bulk.config.options import DEFAULT_CONFIG, OPTIONS, Option
from bonzo_bulk.config.schema import BulkConfig, check_url
from bonzo_bulk.config.store_location import StoreLocation
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.models import Target, User


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config with its origin, the resolved target and any warnings."""

    config: BulkConfig
    path: Path | None
    base_dir: Path
    target: Target
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    automatic: bool = False
    """The sandbox was chosen because the live settings are missing (``target: auto``), not asked for."""
    missing: tuple[str, ...] = ()
    """The environment variables of the live settings that are not set (``TEST_HOOK_URL``, ...), in order."""

    @property
    def users(self) -> list[User]:
        return [
            User(name=u.name, email=u.email, user_id=u.user_id, team_id=u.team_id, external_id=u.external_id)
            for u in self.config.test_users
        ]

    def resolve_path(self, value: str) -> Path:
        """A path from the config: absolute, else relative to the working directory if it exists
        there, else relative to the config file's folder."""
        candidate = Path(value)
        if candidate.is_absolute() or candidate.exists():
            return candidate
        return self.base_dir / candidate


def load_config(
    path: str | Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    allow_literal_secrets: bool = False,
) -> LoadedConfig:
    """Load, resolve and validate a config file; every mistake is a :class:`ConfigError`.

    ``overrides`` maps option names (``test_records`` or ``test-records``) to command-line values;
    None values are ignored.
    """
    file = Path(path) if path is not None else DEFAULT_CONFIG
    document = read_yaml(
        file,
        what="config file",
        key="--config",
        missing_fix="pass --config with the path of a YAML config (see tests/configs/test_config_template.yaml)",
        shape="keys (test_name:, test_users:, ...)",
    )
    source = document.source
    env = environment(file.parent, environ)
    warnings = literal_secrets(document, allowed=allow_literal_secrets)
    data, unresolved = resolve_placeholders(document, env)
    secrets_from_environment(data, env)
    origins = _apply_environment_and_flags(data, env, overrides or {})
    config = validate(BulkConfig, data, source=source, root=document.root, origins=origins)
    register_config_secrets(config)
    base_dir = file.parent.resolve()
    _check_store(config, source, origins)
    config = _resolve_files(config, base_dir, source)
    missing = _missing_live(config, unresolved)
    target = _resolve_target(config, missing, source)
    _check_faults(config, target, base_dir, source, origins)
    _check_reports_dir(config, source, origins)
    if target == "live":
        _check_live_urls(config, source)
    return LoadedConfig(
        config=config,
        path=file,
        base_dir=base_dir,
        target=target,
        warnings=tuple(warnings),
        automatic=config.target == "auto" and target == "sandbox",
        missing=missing,
    )


def _apply_environment_and_flags(
    data: dict[str, Any], env: Mapping[str, str], overrides: Mapping[str, Any]
) -> dict[tuple[str, ...], str]:
    """Set the options given by environment variables, then by flags (which win), into the file's data;
    returns where each such value came from (an environment variable or a flag), by its key path."""
    origins: dict[tuple[str, ...], str] = {}
    if env.get("BONZO_API_URL"):
        _set(data, ("api_settings", "base_url"), env["BONZO_API_URL"])
        origins[("api_settings", "base_url")] = "environment variable BONZO_API_URL"
    for option in OPTIONS:
        if option.env and env.get(option.env):
            _set(data, option.path, env[option.env])
            origins[option.path] = f"environment variable {option.env}"
    if overrides.get("reports_dir") is not None and overrides.get("store_url") is None:
        # --reports-dir names the store (its runs.sqlite3) over the file's and the environment's (resolve_store).
        for key in ("store_url", "run_store"):
            data.pop(key, None)
            origins.pop((key,), None)
    for key, value in overrides.items():
        if value is None:
            continue
        option = _option(key)
        _set(data, option.path, value)
        origins[option.path] = option.flag
    return origins


def _check_reports_dir(config: BulkConfig, source: str, origins: Mapping[tuple[str, ...], str]) -> None:
    if not writable_folder(Path(config.reports_dir)):
        origin = origins.get(("reports_dir",), "reports_dir")
        raise ConfigError(
            f"'reports_dir' (from {origin}): {config.reports_dir!r} cannot be written (not a folder, or no write "
            "permission); pick a writable folder (--reports-dir)",
            key="reports_dir",
            source=source,
        )


def _check_live_urls(config: BulkConfig, source: str) -> None:
    """A live run's hook URLs (from the environment, after placeholders) must be http(s) URLs."""
    variables = {key: var for var, key in ENV_SECRETS}
    for key in ("webhook_url", "superuser_webhook_url"):
        secret = getattr(config, key)
        if secret is not None:
            try:
                check_url(secret.get_secret_value(), shown="the value")
            except ValueError as exc:
                raise ConfigError(
                    f"'{key}' (from {variables[key]}, or the file): {exc} (the value is a secret, so it is not "
                    f"shown); check {variables[key]}",
                    key=key,
                    source=source,
                ) from exc


def writable_folder(folder: Path) -> bool:
    """Whether ``folder`` (or, when it does not exist yet, its nearest existing parent) can be written."""
    for candidate in (folder, *folder.absolute().parents):
        if candidate.exists():
            return candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK)
    return False


def _check_store(config: BulkConfig, source: str, origins: Mapping[tuple[str, ...], str]) -> None:
    """Parse ``store_url`` now (registering its password as a secret): a bad one fails before anything is sent."""
    if config.store_url is None:
        return
    origin = origins.get(("store_url",))
    key = f"store_url (from {origin})" if origin else "store_url"
    StoreLocation.parse(config.store_url, key=key)
    if config.run_store is not None:
        raise ConfigError(
            "'store_url' and 'run_store' both name a run store; keep store_url (run_store is the older "
            "SQLite-only key)",
            key="store_url",
            source=source,
        )


def _resolve_files(config: BulkConfig, base_dir: Path, source: str) -> BulkConfig:
    """Make the config's file paths absolute (the working directory first, then the config's folder)
    and fail early, naming the key, when a file it needs does not exist."""
    updates: dict[str, Any] = {}
    for key in ("payload_template", "superuser_payload_template"):
        value = getattr(config, key)
        if value:
            updates[key] = str(_existing(value, base_dir, key, source))
    sandbox_updates: dict[str, Any] = {}
    if isinstance(config.sandbox.faults, str):
        sandbox_updates["faults"] = str(_existing(config.sandbox.faults, base_dir, "sandbox.faults (--faults)", source))
    if sandbox_updates:
        updates["sandbox"] = config.sandbox.model_copy(update=sandbox_updates)
    return config.model_copy(update=updates) if updates else config


def _existing(value: str, base_dir: Path, key: str, source: str) -> Path:
    candidate = Path(value)
    for path in (candidate,) if candidate.is_absolute() else (candidate, base_dir / candidate):
        if path.is_file():
            return path.resolve()
    raise ConfigError(
        f"'{key}': file {value!r} does not exist (looked in the working directory and in {base_dir}); check the path",
        key=key,
        source=source,
    )


def _option(key: str) -> Option:
    wanted = key.replace("_", "-")
    for option in OPTIONS:
        if option.name == wanted:
            return option
    names = [o.name for o in OPTIONS]
    hint = difflib.get_close_matches(wanted, names, n=1)
    raise ConfigError(
        f"unknown option {key!r}" + (f"; did you mean --{hint[0]}?" if hint else f"; options: {', '.join(names)}")
    )


def _set(data: dict[str, Any], path: Sequence[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def _check_faults(
    config: BulkConfig, target: Target, base_dir: Path, source: str, origins: Mapping[tuple[str, ...], str]
) -> None:
    """A fault profile is validated now, and refused when the target cannot apply it (a live run)."""
    faults = config.sandbox.faults
    if faults is None:
        return
    origin = origins.get(("sandbox", "faults"), "sandbox.faults")
    if target == "live":
        raise ConfigError(
            f"'sandbox.faults' (from {origin}): a fault profile is applied by the local sandbox only, and this run's "
            "target is live; drop it or pass --target sandbox",
            key="sandbox.faults",
            source=source,
        )
    try:
        load_profile(faults, base_dir=base_dir)
    except ConfigError as exc:
        raise ConfigError(f"'sandbox.faults' (from {origin}): {exc}", key="sandbox.faults", source=source) from exc


def _missing_live(config: BulkConfig, unresolved: Mapping[str, str]) -> tuple[str, ...]:
    """The environment variables a live run needs that are not set (a placeholder's own variable if it has one)."""
    return tuple(
        unresolved.get(key, env_var)
        for key, env_var, present in (
            ("webhook_url", "TEST_HOOK_URL", config.webhook_url is not None),
            ("superuser_api_key", "SUPERUSER_API_KEY", config.superuser_api_key is not None),
        )
        if not present
    )


def _resolve_target(config: BulkConfig, missing: Sequence[str], source: str) -> Target:
    """The target a run goes to: the config's (or ``--target``'s) choice, or for ``auto`` live when both live
    settings are set and the local sandbox when neither is."""
    if config.target == "sandbox":
        return "sandbox"
    if config.target == "live":
        if missing:
            raise ConfigError(
                f"target 'live' needs {' and '.join(missing)} set in the environment (or .env); "
                "without them use --target sandbox",
                key="target",
                source=source,
            )
        return "live"
    if not missing:
        return "live"
    if len(missing) == 1:
        have_hook = config.webhook_url is not None
        present, absent = (
            ("TEST_HOOK_URL", "SUPERUSER_API_KEY") if have_hook else ("SUPERUSER_API_KEY", "TEST_HOOK_URL")
        )
        raise ConfigError(
            f"{present} is set but {absent} is not: set both for a live run, or neither for the local "
            "sandbox (or pass --target sandbox)",
            key="target",
            source=source,
        )
    return "sandbox"
