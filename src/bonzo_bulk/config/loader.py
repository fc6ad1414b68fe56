"""Load a bulk-test config: YAML + ``{ENV_VAR}`` placeholders + ``.env`` + command-line overrides.

Precedence, lowest first: schema defaults < YAML < environment < command line. Every overridable
option is declared once in :data:`OPTIONS`; the CLI flags and the pytest options are generated
from it. Secrets come only from the environment (or ``.env``), are held as ``SecretStr`` and are
registered for redaction the moment they are read.

>>> loaded = load_config("tests/configs/monitorbase_test_config.yaml", environ={})
>>> loaded.target, loaded.config.test_records
('sandbox', 21)
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from pydantic import SecretStr, ValidationError

from bonzo_bulk.config.options import DEFAULT_CONFIG, OPTIONS, Option
from bonzo_bulk.config.schema import BulkConfig, check_url
from bonzo_bulk.config.store_location import StoreLocation
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.models import Target, User
from bonzo_bulk.secrets import redact, register_secret, register_secret_parts

log = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")
_SECRET_KEYS = ("webhook_url", "superuser_webhook_url", "superuser_api_key")
_LITERAL_TOKEN = re.compile(r"^(?:Bearer\s+)?[A-Za-z0-9_\-]{20,}(?:\.[A-Za-z0-9_\-]+){0,2}$")
_HOOK_HASH = re.compile(r"/api/webhook/[0-9a-fA-F]{16,}")
_URL_PASSWORD = re.compile(r"://[^/@:]*:[^/@]+@")
_LOOPBACK = re.compile(r"^https?://(127\.\d+\.\d+\.\d+|localhost|\[::1\])[:/]")


_ENV_SECRETS: tuple[tuple[str, str], ...] = (
    ("TEST_HOOK_URL", "webhook_url"),
    ("SUPERUSER_WEBHOOK_URL", "superuser_webhook_url"),
    ("SUPERUSER_API_KEY", "superuser_api_key"),
)


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config with its origin, the resolved target and any warnings."""

    config: BulkConfig
    path: Path | None
    base_dir: Path
    target: Target
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

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
    source = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"config file {source!r} does not exist; pass --config with the path of a YAML config "
            f"(see tests/configs/test_config_template.yaml)",
            key="--config",
        ) from exc
    except OSError as exc:
        raise ConfigError(f"config file {source!r} cannot be read: {exc.strerror}", key="--config") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {source!r} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "save it as UTF-8",
            key="--config",
        ) from exc
    try:
        root_node = yaml.compose(text)
        raw = load_yaml(text)
    except DuplicateKeyError as exc:
        raise ConfigError(str(exc), key=exc.key, source=source) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"not valid YAML{line}: {problem}", source=source) from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("the top level must be a mapping of keys (test_name:, test_users:, ...)", source=source)

    env = _environment(file.parent, environ)
    warnings: list[str] = []
    literal = _find_literal_secrets(raw)
    if literal:
        message = (
            f"{', '.join(literal)} hold(s) what looks like a literal secret. Put a placeholder in the file "
            f'(e.g. superuser_api_key: "{{SUPERUSER_API_KEY}}") and the value in the environment or .env'
        )
        if not allow_literal_secrets:
            raise ConfigError(message + "; or pass --allow-literal-secrets to run anyway", source=source)
        warnings.append("WARNING: " + message)
    for key in _SECRET_KEYS:
        register_secret_parts(raw.get(key))
        register_secret(_scalar_text(root_node, key))

    data, unresolved = _resolve_placeholders(raw, env, source, root_node)
    for var, key in _ENV_SECRETS:
        register_secret_parts(env.get(var))
        if env.get(var) and not data.get(key):
            data[key] = env[var]
    origins: dict[tuple[str, ...], str] = {}
    """Where a value came from when not from the file: an environment variable or a flag."""
    if env.get("BONZO_API_URL"):
        _set(data, ("api_settings", "base_url"), env["BONZO_API_URL"])
        origins[("api_settings", "base_url")] = "environment variable BONZO_API_URL"
    for option in OPTIONS:
        if option.env and env.get(option.env):
            _set(data, option.path, env[option.env])
            origins[option.path] = f"environment variable {option.env}"
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        option = _option(key)
        _set(data, option.path, value)
        origins[option.path] = option.flag

    try:
        config = BulkConfig.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, source, root_node, origins) from exc

    for key in _SECRET_KEYS:
        secret: SecretStr | None = getattr(config, key)
        if secret is not None:
            register_secret_parts(secret.get_secret_value())
    _check_store(config, source, origins)
    config = _resolve_files(config, file.parent.resolve(), source)
    target = _resolve_target(config, unresolved, source)
    _check_faults(config, target, file.parent.resolve(), source, origins)
    if not writable_folder(Path(config.reports_dir)):
        origin = origins.get(("reports_dir",), "reports_dir")
        raise ConfigError(
            f"'reports_dir' (from {origin}): {config.reports_dir!r} cannot be written (not a folder, or no write "
            "permission); pick a writable folder (--reports-dir)",
            key="reports_dir",
            source=source,
        )
    if target == "live":
        for key in ("webhook_url", "superuser_webhook_url"):
            secret = getattr(config, key)
            if secret is not None:
                try:
                    check_url(secret.get_secret_value())
                except ValueError as exc:
                    raise ConfigError(
                        f"'{key}': the value is not an http(s) URL; check the environment variable it comes from",
                        key=key,
                        source=source,
                    ) from exc
    return LoadedConfig(
        config=config, path=file, base_dir=file.parent.resolve(), target=target, warnings=tuple(warnings)
    )


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


def environment(config_dir: Path) -> dict[str, str]:
    """The process environment over ``.env`` files, as the config loader sees it (for secrets read later)."""
    return _environment(config_dir, None)


def _environment(config_dir: Path, environ: Mapping[str, str] | None) -> dict[str, str]:
    """The process environment over ``.env`` files (the config's folder, then the working directory)."""
    merged: dict[str, str] = {}
    for env_file in (config_dir / ".env", Path(".env")):
        if env_file.is_file():
            merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


class DuplicateKeyError(yaml.YAMLError):
    """A mapping in the YAML names the same key twice (YAML would silently keep the last)."""

    def __init__(self, key: str, line: int, first_line: int) -> None:
        self.key = key
        super().__init__(f"key {key!r} is given twice (line {line}, first at line {first_line}); keep one of them")


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping instead of keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise DuplicateKeyError(str(key), line, seen[key])
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse YAML safely, refusing duplicate keys (:class:`DuplicateKeyError`)."""
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _scalar_text(root: yaml.Node | None, key: str) -> str | None:
    """The text of a top-level scalar exactly as written (a number's digits, say), or None."""
    if not isinstance(root, yaml.MappingNode):
        return None
    for key_node, value_node in root.value:
        if getattr(key_node, "value", None) == key and isinstance(value_node, yaml.ScalarNode):
            return str(value_node.value)
    return None


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
    from bonzo_bulk.errors import SandboxError
    from bonzo_bulk.sandbox.faults import load_profile

    try:
        load_profile(faults, base_dir=base_dir)
    except SandboxError as exc:
        raise ConfigError(f"'sandbox.faults' (from {origin}): {exc}", key="sandbox.faults", source=source) from exc


def _find_literal_secrets(raw: Mapping[str, Any]) -> list[str]:
    found = []
    key = raw.get("superuser_api_key")
    if isinstance(key, int | float) and not isinstance(key, bool):
        found.append("'superuser_api_key' (a number)")
    if isinstance(key, str) and not _PLACEHOLDER.search(key) and _LITERAL_TOKEN.match(key.strip()):
        found.append("'superuser_api_key'")
    store_url = raw.get("store_url")
    if isinstance(store_url, str) and not _PLACEHOLDER.search(store_url) and _URL_PASSWORD.search(store_url):
        found.append("'store_url' (a password)")
    for name in ("webhook_url", "superuser_webhook_url"):
        url = raw.get(name)
        literal = isinstance(url, str) and not _PLACEHOLDER.search(url) and _HOOK_HASH.search(url)
        if literal and not _LOOPBACK.match(str(url)):
            found.append(f"'{name}'")
    return found


def _resolve_placeholders(
    raw: dict[str, Any], env: Mapping[str, str], source: str, root: yaml.Node | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Replace ``{ENV_VAR}`` in every string; unresolved secrets become None (the sandbox decides)."""
    unresolved: dict[str, str] = {}

    def resolve(value: Any, loc: tuple[str | int, ...]) -> Any:
        if isinstance(value, dict):
            return {k: resolve(v, (*loc, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v, (*loc, i)) for i, v in enumerate(value)]
        if not isinstance(value, str) or not _PLACEHOLDER.search(value):
            return value
        missing = [m.group(1) for m in _PLACEHOLDER.finditer(value) if not env.get(m.group(1))]
        if missing:
            key = ".".join(str(p) for p in loc)
            if key in _SECRET_KEYS:
                unresolved[key] = missing[0]
                return None
            line = _line_of(root, loc)
            raise ConfigError(
                f"'{key}'{line}: placeholder {{{missing[0]}}} has no value; set the environment variable "
                f"{missing[0]} (or put it in .env)",
                key=key,
                source=source,
            )
        return _PLACEHOLDER.sub(lambda m: env[m.group(1)], value)

    resolved = resolve(raw, ())
    assert isinstance(resolved, dict)
    return resolved, unresolved


def _resolve_target(config: BulkConfig, unresolved: Mapping[str, str], source: str) -> Target:
    have_hook = config.webhook_url is not None
    have_key = config.superuser_api_key is not None
    if config.target == "sandbox":
        return "sandbox"
    if config.target == "live":
        missing = [
            unresolved.get(key, env_var)
            for key, env_var, present in (
                ("webhook_url", "TEST_HOOK_URL", have_hook),
                ("superuser_api_key", "SUPERUSER_API_KEY", have_key),
            )
            if not present
        ]
        if missing:
            raise ConfigError(
                f"target 'live' needs {' and '.join(missing)} set in the environment (or .env); "
                "without them use --target sandbox",
                key="target",
                source=source,
            )
        return "live"
    if have_hook and have_key:
        return "live"
    if have_hook != have_key:
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


def _line_of(root: yaml.Node | None, loc: Sequence[str | int]) -> str:
    """`` (line N)`` for the YAML node at ``loc``, the deepest one found, or ''."""
    node = root
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if kv[0].value == part), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return f" (line {line})" if line else ""


def _known_keys(model: type[Any]) -> list[str]:
    return list(getattr(model, "model_fields", {}).keys())


def _config_error(
    exc: ValidationError, source: str, root: yaml.Node | None, origins: Mapping[tuple[str, ...], str]
) -> ConfigError:
    """Turn pydantic's errors into one message naming each key, bad value and fix."""
    lines = []
    first_key = None
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(top level)"
        first_key = first_key or key
        origin = origins.get(tuple(str(p) for p in loc))
        where = f" (from {origin})" if origin else _line_of(root, loc)
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            parent = _model_at(loc[:-1])
            hint = difflib.get_close_matches(str(loc[-1]), _known_keys(parent), n=1) if parent else []
            message = f"unknown key{'; did you mean ' + repr(hint[0]) + '?' if hint else ''}"
        elif error["type"] == "missing":
            message = "required key is missing"
        elif "input" in error and error["type"] not in ("model_type",) and not isinstance(error["input"], dict):
            message = f"{redact(repr(error['input']))} is not valid: {message}"
        lines.append(f"{message}" if not loc else f"'{key}'{where}: {message}")
    return ConfigError("; ".join(lines), key=first_key, source=source)


def _model_at(loc: Sequence[str | int]) -> type[Any] | None:
    model: Any = BulkConfig
    for part in loc:
        if isinstance(part, int):
            continue
        info = getattr(model, "model_fields", {}).get(part)
        if info is None:
            return None
        annotation = info.annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if hasattr(a, "model_fields")), None)
        if model is None:
            return None
    return model  # type: ignore[no-any-return]
