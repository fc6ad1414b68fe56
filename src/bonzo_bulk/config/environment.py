"""Where a config's values come from besides the file: ``{ENV_VAR}`` placeholders, ``.env`` files and the
environment, and the secrets among them (held out of the file, registered for redaction as they are read).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from pydantic import SecretStr

from bonzo_bulk.config.files import YamlFile, line_of
from bonzo_bulk.config.schema import BulkConfig
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.secrets import register_secret, register_secret_parts

_PLACEHOLDER = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")
SECRET_KEYS = ("webhook_url", "superuser_webhook_url", "superuser_api_key")
"""The config keys that hold secrets."""
_LITERAL_TOKEN = re.compile(r"^(?:Bearer\s+)?[A-Za-z0-9_\-]{20,}(?:\.[A-Za-z0-9_\-]+){0,2}$")
_HOOK_HASH = re.compile(r"/api/webhook/[0-9a-fA-F]{16,}")
_URL_PASSWORD = re.compile(r"://[^/@:]*:[^/@]+@")
_LOOPBACK = re.compile(r"^https?://(127\.\d+\.\d+\.\d+|localhost|\[::1\])[:/]")

ENV_SECRETS: tuple[tuple[str, str], ...] = (
    ("TEST_HOOK_URL", "webhook_url"),
    ("SUPERUSER_WEBHOOK_URL", "superuser_webhook_url"),
    ("SUPERUSER_API_KEY", "superuser_api_key"),
)
"""The environment variables that fill a secret key the file leaves empty, and the key each fills."""


def environment(config_dir: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment (or ``environ``) over ``.env`` files (the config's folder, then the working
    directory), as the config loader sees it; also for secrets read later."""
    merged: dict[str, str] = {}
    for env_file in (config_dir / ".env", Path(".env")):
        if env_file.is_file():
            merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def literal_secrets(document: YamlFile, *, allowed: bool) -> list[str]:
    """Refuse secrets written into the file (a warning instead when ``allowed``), and register every secret
    the file holds for redaction."""
    raw = document.data
    warnings = []
    literal = _find_literal_secrets(raw)
    if literal:
        message = (
            f"{', '.join(literal)} hold(s) what looks like a literal secret. Put a placeholder in the file "
            f'(e.g. superuser_api_key: "{{SUPERUSER_API_KEY}}") and the value in the environment or .env'
        )
        if not allowed:
            raise ConfigError(message + "; or pass --allow-literal-secrets to run anyway", source=document.source)
        warnings.append("WARNING: " + message)
    for key in SECRET_KEYS:
        register_secret_parts(raw.get(key))
        register_secret(_scalar_text(document.root, key))
    return warnings


def secrets_from_environment(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """Fill the secret keys the file leaves empty from their environment variables (registered for redaction)."""
    for var, key in ENV_SECRETS:
        register_secret_parts(env.get(var))
        if env.get(var) and not data.get(key):
            data[key] = env[var]


def register_config_secrets(config: BulkConfig) -> None:
    """Register the validated config's secrets for redaction (their final text, after placeholders)."""
    for key in SECRET_KEYS:
        secret: SecretStr | None = getattr(config, key)
        if secret is not None:
            register_secret_parts(secret.get_secret_value())


def _scalar_text(root: yaml.Node | None, key: str) -> str | None:
    """The text of a top-level scalar exactly as written (a number's digits, say), or None."""
    if not isinstance(root, yaml.MappingNode):
        return None
    for key_node, value_node in root.value:
        if getattr(key_node, "value", None) == key and isinstance(value_node, yaml.ScalarNode):
            return str(value_node.value)
    return None


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


def resolve_placeholders(document: YamlFile, env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Replace ``{ENV_VAR}`` in every string of the file; an unresolved secret becomes None (the sandbox
    decides), returned as ``{key: variable}``; any other unresolved placeholder is a :class:`ConfigError`."""
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
            if key in SECRET_KEYS:
                unresolved[key] = missing[0]
                return None
            line = line_of(document.root, loc)
            raise ConfigError(
                f"'{key}'{f' (line {line})' if line else ''}: placeholder {{{missing[0]}}} has no value; set the "
                f"environment variable {missing[0]} (or put it in .env)",
                key=key,
                source=document.source,
            )
        return _PLACEHOLDER.sub(lambda m: env[m.group(1)], value)

    resolved = resolve(document.data, ())
    assert isinstance(resolved, dict)
    return resolved, unresolved
