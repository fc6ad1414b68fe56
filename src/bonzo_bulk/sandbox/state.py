"""The sandbox's runtime: options, the database thread, in-memory caches, fault counters, rate limits, request log."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import tempfile
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar, get_args

from bonzo_bulk.config.faults import FaultProfile, load_profile, parse_profile
from bonzo_bulk.config.sandbox_clock import SandboxClock
from bonzo_bulk.config.schema import (
    ProcessingDelayModel,
    SandboxHookType,
    SandboxListing,
    SandboxSettings,
    SearchFields,
    Strictness,
)
from bonzo_bulk.errors import SandboxError
from bonzo_bulk.sandbox.db import Database
from bonzo_bulk.sandbox.rows import HookRow, UserRow

P = ParamSpec("P")
T = TypeVar("T")

UnknownLoEmail = Literal["reject", "fallback", "drop"]
HOOK_TYPE_NAMES: tuple[str, ...] = get_args(SandboxHookType)
REQUEST_LOG_SIZE = 10_000


@dataclass
class SandboxOptions:
    """How a sandbox behaves; ``db_path=None`` means a temporary file removed when the app stops.

    Example: ``SandboxOptions(db_path="sandbox.sqlite3", processing=ProcessingDelayModel(distribution="fixed",
    seconds=0.05))``.
    """

    db_path: str | Path | None = None
    processing: ProcessingDelayModel = field(default_factory=ProcessingDelayModel)
    unknown_lo_email: UnknownLoEmail = "reject"
    fallback_user_id: int | None = None
    rate_limit_per_minute: int | None = None
    faults: dict[str, Any] | None = None
    seed: int = 0
    listing: SandboxListing = field(default_factory=SandboxListing)
    """How ``GET /prospects`` pages: style, per-page cap, hints, hostile pages (:mod:`bonzo_bulk.sandbox.paging`)."""
    capacity: float | None = None
    """Leads per second the worker creates at most (None: unbounded); beyond it the queue grows."""
    strictness: Strictness = "lenient"
    mapped_custom_fields: dict[SandboxHookType, list[str]] = field(default_factory=dict)
    """strict only: per hook type, the custom fields its webhook's Mapping tab maps (the rest are not stored)."""
    clock: SandboxClock = field(default_factory=SandboxClock)
    """How stamps and ``Date`` headers are written (:mod:`bonzo_bulk.sandbox.clock`)."""
    search: SearchFields = "all"
    """What ``search`` matches: names, email and phone (``all``), or the names alone (``names``)."""

    def __post_init__(self) -> None:
        """Refuse bad options early, with the option named."""
        if self.unknown_lo_email not in ("reject", "fallback", "drop"):
            raise SandboxError(
                f"unknown_lo_email: {self.unknown_lo_email!r} is not a policy; use reject, fallback or drop"
            )
        if self.strictness not in ("lenient", "strict"):
            raise SandboxError(f"strictness: {self.strictness!r} is not a mode; use lenient or strict")
        unknown = sorted(set(self.mapped_custom_fields) - set(HOOK_TYPE_NAMES))
        if unknown:
            raise SandboxError(
                f"mapped_custom_fields: {unknown[0]!r} is not a hook type; use one of {', '.join(HOOK_TYPE_NAMES)}"
            )
        if self.search not in ("all", "names"):
            raise SandboxError(f"search: {self.search!r} is not a choice; use all or names")
        if not isinstance(self.listing, SandboxListing):
            raise SandboxError(f"listing: {self.listing!r} is not a SandboxListing; build one from sandbox.listing")
        if self.capacity is not None and not self.capacity > 0:
            raise SandboxError(f"capacity: {self.capacity} must be more than 0 leads/s (or None)")
        if self.rate_limit_per_minute is not None and self.rate_limit_per_minute < 1:
            raise SandboxError(f"rate_limit_per_minute: {self.rate_limit_per_minute} must be at least 1 (or None)")
        try:
            parse_profile(self.faults, default_seed=self.seed)
        except ValueError as exc:
            raise SandboxError(f"fault profile: {exc}") from exc

    @classmethod
    def from_settings(cls, settings: SandboxSettings, *, base_dir: str | Path) -> SandboxOptions:
        """Options from the config's ``sandbox:`` section; relative ``db``/``faults`` paths are under ``base_dir``."""
        base = Path(base_dir)
        db_path: Path | None = None
        if settings.db:
            db_path = Path(settings.db) if Path(settings.db).is_absolute() else base / settings.db
        return cls(
            db_path=db_path,
            processing=settings.processing,
            unknown_lo_email=settings.unknown_lo_email,
            fallback_user_id=settings.fallback_user_id,
            rate_limit_per_minute=settings.rate_limit_per_minute,
            capacity=settings.capacity,
            faults=load_profile(settings.faults, base_dir=base),
            strictness=settings.strictness,
            mapped_custom_fields={k: list(v) for k, v in settings.mapped_custom_fields.items()},
            listing=settings.listing,
            clock=settings.clock,
            search=settings.search,
        )


class RateLimiter:
    """Laravel-style fixed one-minute windows per token."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, token: str, limit: int, now: float) -> tuple[bool, int, int]:
        """Count one request: (allowed, remaining, seconds until the window resets)."""
        start, count = self._windows.get(token, (now, 0))
        if now - start >= 60:
            start, count = now, 0
        reset_in = max(1, math.ceil(start + 60 - now))
        if count >= limit:
            return False, 0, reset_in
        self._windows[token] = (start, count + 1)
        return True, limit - count - 1, reset_in


class SandboxState:
    """Everything one running sandbox shares between its routes, the intake queue and the worker."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.processing = options.processing
        self.unknown_lo_email: UnknownLoEmail = options.unknown_lo_email
        self.fallback_user_id = options.fallback_user_id
        self.rate_limit_per_minute = options.rate_limit_per_minute
        self.capacity = options.capacity
        self.strictness: Strictness = options.strictness
        self.listing: SandboxListing = options.listing
        self.clock = options.clock
        self.search: SearchFields = options.search
        self.mapped_custom_fields: dict[str, list[str]] = {k: list(v) for k, v in options.mapped_custom_fields.items()}
        self.profile = parse_profile(options.faults, default_seed=options.seed)
        self.intake_counters: dict[tuple[int, str], int] = {}
        self.api_requests = 0
        self.rate_limiter = RateLimiter()
        self.request_log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
        self.delay_rng = random.Random(options.seed)
        self.users: dict[int, UserRow] = {}
        self.users_by_token: dict[str, UserRow] = {}
        self.users_by_email: dict[str, UserRow] = {}
        self.users_by_external: dict[str, UserRow] = {}
        self.teams: dict[int, str] = {}
        self.hooks: dict[str, HookRow] = {}
        self.round_robin: dict[str, int] = {}
        """Per hook hash: how many leads its round-robin routing has handed out (reset when it is seeded)."""
        self.superuser: UserRow | None = None
        self.stopping = asyncio.Event()
        self.startup_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._temp_dir: tempfile.TemporaryDirectory[str] | None = None
        self._db: Database | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def db(self) -> Database:
        """The open database (only between :meth:`open` and :meth:`close`)."""
        if self._db is None:
            raise SandboxError("the sandbox is not running: its app lifespan has not started")
        return self._db

    @property
    def strict(self) -> bool:
        """True when the sandbox keeps only what the reference promises (see the package docstring)."""
        return self.strictness == "strict"

    @property
    def running(self) -> bool:
        """True between :meth:`open` and :meth:`close`."""
        return self._db is not None

    def wake_stopping(self) -> None:
        """From any thread: end held (``intake_hang``) requests so the server can stop now."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.stopping.set)

    async def open(self) -> None:
        """Open the database on its own thread and load the caches."""
        self.stopping = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        path = self.options.db_path
        if path is None:
            self._temp_dir = tempfile.TemporaryDirectory(prefix="bonzo-sandbox-")
            path = Path(self._temp_dir.name) / "sandbox.sqlite3"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-db")
        self._db = await asyncio.get_running_loop().run_in_executor(self._executor, Database, path)
        await self.refresh()

    async def close(self) -> None:
        """Close the database, stop its thread and remove a temporary database."""
        if self._db is not None:
            await self.run(self._db.close)
            self._db = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._loop = None
        if self._temp_dir is not None:
            with contextlib.suppress(OSError):
                self._temp_dir.cleanup()
            self._temp_dir = None

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a database call on the database thread (never blocks the event loop)."""
        if self._executor is None:
            raise SandboxError("the sandbox is not running: its app lifespan has not started")
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def refresh(self) -> None:
        """Reload users, teams and hooks into memory (after a seed or reset)."""
        db = self.db
        users, teams, hooks = await self.run(lambda: (db.users(), db.teams(), db.hooks()))
        self.users = {u.id: u for u in users}
        self.users_by_token = {u.token: u for u in users}
        self.users_by_email = {u.email.lower(): u for u in users}
        self.users_by_external = {u.external_id: u for u in users if u.external_id}
        self.teams = teams
        self.hooks = {h.hash: h for h in hooks}
        self.superuser = next(u for u in users if u.is_superuser)

    def set_profile(self, profile: FaultProfile) -> None:
        """Replace the fault profile and reset its counters."""
        self.profile = profile
        self.intake_counters.clear()
        self.api_requests = 0

    def processing_delay(self) -> float:
        """One seeded draw from the processing delay model, in seconds."""
        model = self.processing
        if model.distribution == "fixed":
            return model.seconds
        if model.distribution == "uniform":
            return self.delay_rng.uniform(min(model.low, model.high), max(model.low, model.high))
        if model.seconds <= 0:
            return 0.0
        return self.delay_rng.lognormvariate(math.log(model.seconds), model.sigma)

    def log_request(self, method: str, path: str, status: int | None, started: float, outcome: str = "") -> None:
        """Add one line to the request log (hook hashes masked)."""
        if path.startswith("/api/webhook/"):
            path = "/api/webhook/" + path[13:17] + "****"
        entry: dict[str, Any] = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started)) + f".{int(started % 1 * 1e6):06d}Z",
            "method": method,
            "path": path,
            "status": status,
            "latency_ms": round((time.time() - started) * 1000, 3),
        }
        if outcome:
            entry["outcome"] = outcome
        self.request_log.append(entry)
