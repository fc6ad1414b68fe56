"""Where a run sends and looks: the live systems from the config, or a seeded local sandbox; and where it records.

Shared by the engine, cleanup and the commands that only deliver or only look, so none of them
imports another's pipeline.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.config.schema import BulkConfig
from bonzo_bulk.config.store_location import StoreLocation, resolve_store
from bonzo_bulk.errors import SandboxError
from bonzo_bulk.models import PhaseKind, Target
from bonzo_bulk.secrets import redact_cut, redact_url, register_secret
from bonzo_bulk.target.banner import target_banner
from bonzo_bulk.target.sandbox_files import sandbox_db_for
from bonzo_bulk.target.seed import SandboxSeed

log = logging.getLogger("bonzo_bulk")


class Progress(Protocol):
    """Where a run reports what it is doing (rich bars in the CLI; nothing under pytest)."""

    def stage(self, name: str, total: int | None) -> None: ...
    def advance(self, name: str, amount: int = 1) -> None: ...
    def update(self, name: str, completed: int, total: int | None = None) -> None: ...


class NullProgress:
    """A progress sink that shows nothing."""

    def stage(self, name: str, total: int | None) -> None:
        """Ignore a stage start."""

    def advance(self, name: str, amount: int = 1) -> None:
        """Ignore progress."""

    def update(self, name: str, completed: int, total: int | None = None) -> None:
        """Ignore progress."""


@dataclass(frozen=True)
class Endpoints:
    """Where a run sends and looks: the sandbox's or the live systems'."""

    target: Target
    hook_url: str
    control_hook_url: str | None
    api_base_url: str
    api_key: str
    sandbox_url: str | None = None
    automatic: bool = False
    """The sandbox was chosen because the live settings are missing (``target: auto``), not asked for."""

    @property
    def where(self) -> str:
        """Printable: the sandbox's URL, or the live API's (hook URLs hold secrets)."""
        return self.sandbox_url if self.target == "sandbox" and self.sandbox_url else redact_url(self.api_base_url)

    def hooks(self, phases: Collection[PhaseKind]) -> list[tuple[str, str]]:
        """(name, URL) of each hook a run of ``phases`` POSTs to."""
        hooks = [("webhook", self.hook_url)] if "primary" in phases else []
        if "control" in phases and self.control_hook_url:
            hooks.append(("control webhook", self.control_hook_url))
        return hooks


@contextlib.asynccontextmanager
async def open_endpoints(
    loaded: LoadedConfig,
    session: aiohttp.ClientSession,
    *,
    run_id: str,
    new_run: bool,
    seed: SandboxSeed,
    sandbox_db: Path | None = None,
) -> AsyncIterator[Endpoints]:
    """The live systems from the config, or a local sandbox (started here unless one runs) seeded with ``seed``.

    A started sandbox owns its database (``sandbox_db``, else :func:`sandbox_db_for` run ``run_id``, a new
    one when ``new_run``) and its port, so concurrent runs never process each other's leads.
    """
    config = loaded.config
    if loaded.target == "live":
        assert config.webhook_url is not None
        assert config.superuser_api_key is not None
        yield Endpoints(
            target="live",
            hook_url=config.webhook_url.get_secret_value(),
            control_hook_url=config.superuser_webhook_url.get_secret_value() if config.superuser_webhook_url else None,
            api_base_url=config.api_settings.base_url,
            api_key=config.superuser_api_key.get_secret_value(),
        )
        return
    from bonzo_bulk.sandbox.process import SandboxProcess
    from bonzo_bulk.sandbox.state import SandboxOptions

    with contextlib.ExitStack() as stack:
        url = config.sandbox.url
        if url is None:
            options = SandboxOptions.from_settings(config.sandbox, base_dir=loaded.base_dir)
            if config.sandbox.db is None:
                options.db_path = sandbox_db or sandbox_db_for(loaded, run_id, new_run=new_run)
            # A process of its own: a sandbox sharing the engine's GIL slowed its own processing (p50 17 s at 10k).
            server = stack.enter_context(SandboxProcess(options))
            url = server.url
        endpoints = await _seed_sandbox(loaded, seed, session, url)
        yield endpoints


async def _seed_sandbox(loaded: LoadedConfig, seed: SandboxSeed, session: aiohttp.ClientSession, url: str) -> Endpoints:
    config = loaded.config
    try:
        async with session.post(f"{url}/__sandbox/seed", json=seed.body(), allow_redirects=False) as response:
            body = await response.json()
            if response.status != 200:
                raise SandboxError(f"the sandbox refused the seed ({response.status}): {redact_cut(str(body), 300)}")
        if isinstance(config.sandbox.faults, str | dict) and config.sandbox.url is not None:
            from bonzo_bulk.sandbox import SandboxOptions

            options = SandboxOptions.from_settings(config.sandbox, base_dir=loaded.base_dir)
            async with session.put(f"{url}/__sandbox/faults", json=options.faults, allow_redirects=False) as response:
                if response.status != 200:
                    raise SandboxError(f"the sandbox refused the fault profile ({response.status})")
        # A running sandbox keeps its own strictness unless the config sets one explicitly.
        chosen = config.sandbox.model_fields_set & {"strictness", "mapped_custom_fields", "listing", "search"}
        if config.sandbox.url is not None and chosen:
            settings = config.sandbox.model_dump(mode="json", include=chosen)
            async with session.put(f"{url}/__sandbox/settings", json=settings, allow_redirects=False) as response:
                if response.status != 200:
                    raise SandboxError(f"the sandbox refused its settings ({response.status})")
    except aiohttp.ClientError as exc:
        raise SandboxError(f"the sandbox at {url} did not answer: {exc}") from exc
    by_type = {h["type"]: h["url"] for h in body["hooks"]}
    for hook in body["hooks"]:
        register_secret(str(hook["hash"]))
    register_secret(str(body["superuser_token"]))
    return Endpoints(
        target="sandbox",
        hook_url=by_type[seed.primary["type"]],
        control_hook_url=by_type.get(seed.control["type"]) if seed.control is not None else None,
        api_base_url=url,
        api_key=str(body["superuser_token"]),
        sandbox_url=url,
        automatic=loaded.automatic,
    )


def config_snapshot(loaded: LoadedConfig) -> dict[str, Any]:
    """The config as stored with the run: secrets reduced to whether they were set."""
    data = loaded.config.model_dump(mode="json")
    for key in ("webhook_url", "superuser_webhook_url", "superuser_api_key"):
        data[key] = "<set>" if data.get(key) else None
    if loaded.config.store_url:
        data["store_url"] = StoreLocation.parse(loaded.config.store_url).label
    return data


def session_limit(config: BulkConfig, phases: int) -> int:
    """Connections a run of ``phases`` phases needs: each one's webhook concurrency plus the API client's."""
    return config.webhook_settings.concurrent_requests * max(1, phases) + config.api_settings.concurrent_requests


def store_location_for(loaded: LoadedConfig) -> str | Path:
    """The run store a config names: ``store_url``, else ``run_store``, else ``<reports_dir>/runs.sqlite3``
    (:func:`~bonzo_bulk.config.store_location.resolve_store`; the loader drops the file's store when
    ``--reports-dir`` is given without ``--store-url``)."""
    config = loaded.config
    named = config.store_url or (Path(config.run_store) if config.run_store else None)
    return resolve_store(named, config.reports_dir)


def announce(endpoints: Endpoints) -> None:
    """Say loudly which target the run goes to (:func:`~bonzo_bulk.target.banner.target_banner`)."""
    log.warning("%s", target_banner(endpoints.target, endpoints.where, automatic=endpoints.automatic))
