"""Where a run store lives: a SQLite file (path or ``sqlite:///path``) or a ``postgresql://`` URL.

The password of a PostgreSQL URL is registered as a secret the moment the URL is parsed, and the
URL is only ever shown as :attr:`StoreLocation.label` (no password), so no message can carry it.

>>> StoreLocation.parse("postgresql://ci:hunter2hunter2@db.example:5432/bonzo").label
'postgresql://ci@db.example:5432/bonzo'
>>> StoreLocation.parse("reports/runs.sqlite3").path
PosixPath('reports/runs.sqlite3')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from bonzo_bulk.errors import ConfigError
from bonzo_bulk.secrets import register_secret

Dialect = Literal["sqlite", "postgresql"]
DEFAULT_STORE_PATH = Path("reports/runs.sqlite3")
STORE_URL_ENV = "BONZO_BULK_STORE_URL"
REPORTS_DIR_ENV = "BONZO_BULK_REPORTS_DIR"
STORE_FILE = "runs.sqlite3"
_POSTGRES_SCHEMES = ("postgresql", "postgres")


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """A parsed store location: its dialect, the SQLite path or the PostgreSQL URL, and a printable label."""

    dialect: Dialect
    label: str
    """Safe to print: the path, or the URL without its password."""
    path: Path | None = None
    url: str | None = None
    """The full PostgreSQL URL (may hold a password): for the driver only, never for a message."""

    @classmethod
    def parse(cls, location: str | Path, *, key: str = "store_url") -> StoreLocation:
        """Parse a path, ``sqlite:///path`` or ``postgresql://user@host:port/db``; ConfigError naming ``key``."""
        if isinstance(location, Path):
            return cls(dialect="sqlite", label=str(location), path=location)
        text = location.strip()
        if not text:
            raise ConfigError(f"{key}: empty; give a SQLite file path or a postgresql:// URL", key=key)
        if text.startswith("sqlite:"):
            raw = text.removeprefix("sqlite:")
            if not raw.startswith("///") or len(raw) == 3:
                raise ConfigError(
                    f"{key} {text!r}: a SQLite URL is sqlite:///relative/path or sqlite:////absolute/path", key=key
                )
            path = Path(unquote(raw[3:]))
            return cls(dialect="sqlite", label=str(path), path=path)
        scheme, sep, _ = text.partition("://")
        if not sep:
            return cls(dialect="sqlite", label=text, path=Path(text))
        if scheme.lower() not in _POSTGRES_SCHEMES:
            safe = f"{scheme}://…"
            raise ConfigError(
                f"{key} {safe!r}: unknown store scheme {scheme!r}; use a SQLite path, sqlite:///path or "
                "postgresql://user@host:port/db",
                key=key,
            )
        return cls._postgres(text, key)

    @classmethod
    def _postgres(cls, text: str, key: str) -> StoreLocation:
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise ConfigError(
                f"{key}: not a valid postgresql:// URL ({exc}); the form is postgresql://user@host:port/db", key=key
            ) from exc
        if parts.password:
            register_secret(parts.password)
            register_secret(unquote(parts.password))
        register_secret(os.environ.get("PGPASSWORD"))
        user = f"{parts.username}@" if parts.username else ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        label = f"postgresql://{user}{host}{f':{port}' if port else ''}{parts.path}"
        if not parts.path.strip("/"):
            raise ConfigError(f"{key} {label!r}: name the database, e.g. postgresql://user@host:5432/bonzo", key=key)
        return cls(dialect="postgresql", label=label, url=text)

    @property
    def exists(self) -> bool:
        """False only for a SQLite file that is not there yet (a server database is asked when opened)."""
        return self.path is None or self.path.is_file()


def resolve_store(
    store_url: str | Path | None = None, reports_dir: str | Path | None = None, *, configured: str | Path | None = None
) -> str | Path:
    """The one rule every command names its run store by: ``--store-url`` (a path or a postgresql:// URL), else
    ``<--reports-dir>/runs.sqlite3``, else the configured store (the config's, or the environment's), else
    ``reports/runs.sqlite3``.

    >>> resolve_store("postgresql://ci@db/bonzo", "elsewhere")
    'postgresql://ci@db/bonzo'
    >>> resolve_store(None, "elsewhere", configured="team.sqlite3")
    PosixPath('elsewhere/runs.sqlite3')
    >>> resolve_store(None, None, configured="team.sqlite3")
    'team.sqlite3'
    >>> resolve_store()
    PosixPath('reports/runs.sqlite3')
    """
    if store_url is not None and str(store_url).strip():
        return store_url
    if reports_dir is not None and str(reports_dir).strip():
        return Path(reports_dir) / STORE_FILE
    if configured is not None and str(configured).strip():
        return configured
    return DEFAULT_STORE_PATH


def store_from_environment(environ: Mapping[str, str] | None = None) -> str | Path | None:
    """The store the environment names (``BONZO_BULK_STORE_URL``, else ``BONZO_BULK_REPORTS_DIR``), or None."""
    env = os.environ if environ is None else environ
    if env.get(STORE_URL_ENV, "").strip():
        return env[STORE_URL_ENV]
    if env.get(REPORTS_DIR_ENV, "").strip():
        return Path(env[REPORTS_DIR_ENV]) / STORE_FILE
    return None
