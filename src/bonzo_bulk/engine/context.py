"""The run context: how every run is opened, whatever the mode (a bulk run, a load, a calibration, a
monitor tick, a delivery only).

:func:`open_run` opens the run store, the HTTP session and the target (live, or a seeded sandbox) and,
for a run that is judged, says loudly where it goes, opens Bonzo's API and runs the preflight. The run
store, the progress display and the log always subscribe; the caller subscribes what it wants done
with the run (publishing, the cleanup policy, its own collectors) and then runs a mode's loop, which
starts the run (:meth:`RunContext.start`). Nothing here imports an output.

Example::

    async with open_run(plan, progress=progress) as run:
        run.subscribe(CleanupPolicy(run), publisher)
        result = await execute(run)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bonzo_bulk._http import make_session
from bonzo_bulk.bonzo import BonzoClient
from bonzo_bulk.engine.events import EventBus, RunStarted, Subscriber
from bonzo_bulk.engine.interrupts import recording_interrupts
from bonzo_bulk.engine.observers import ProgressRecorder, ProgressView, RunLog, StoreRecorder
from bonzo_bulk.engine.preflight import check_store, preflight
from bonzo_bulk.errors import SandboxError
from bonzo_bulk.models import PhaseKind, RunKind, Target
from bonzo_bulk.plan.planner import RunPlan
from bonzo_bulk.plan.seeding import plan_seed
from bonzo_bulk.secrets import redact_url
from bonzo_bulk.store import RunStore
from bonzo_bulk.target.endpoints import (
    Endpoints,
    NullProgress,
    Progress,
    announce,
    open_endpoints,
    session_limit,
    store_location_for,
)

log = logging.getLogger("bonzo_bulk")


@dataclass(frozen=True)
class Destination:
    """Where a run's records are delivered: the target, where that is (printable), and each phase's hook."""

    target: Target
    where: str
    """The sandbox's URL, or the live API's; never a hook URL (it holds a secret)."""
    hook_url: str
    control_hook_url: str | None

    @classmethod
    def of(cls, endpoints: Endpoints) -> Destination:
        """The hooks of opened endpoints."""
        return cls(endpoints.target, endpoints.where, endpoints.hook_url, endpoints.control_hook_url)

    @classmethod
    def hook(cls, target: Target, url: str) -> Destination:
        """One hook URL only (``validate-webhook --url``): the primary phase's records go there."""
        return cls(target, redact_url(url), url, None)

    def url_of(self, kind: PhaseKind) -> str:
        """The hook a phase's records are POSTed to."""
        url = self.hook_url if kind == "primary" else self.control_hook_url
        if url is None:
            raise SandboxError(
                "no control hook URL: set SUPERUSER_WEBHOOK_URL or turn the control off (control: false)"
            )
        return url


@dataclass(frozen=True)
class RunContext:
    """A run under way: its plan, store, bus, session, destination and, when judged, the target's API."""

    plan: RunPlan
    store: RunStore
    bus: EventBus
    session: aiohttp.ClientSession
    destination: Destination
    endpoints: Endpoints | None
    """The target this run opened (None for a run that delivers to a destination it was given)."""
    client: BonzoClient | None
    """Bonzo's API at the target (a judged run's; a delivery-only run has none)."""
    kind: RunKind = "bulk"
    """The mode that opened the run; the store records it when the run starts."""

    def subscribe(self, *subscribers: Subscriber) -> None:
        """Add subscribers; they hear every event from :meth:`start` on, in the order given."""
        for subscriber in subscribers:
            self.bus.subscribe(subscriber)

    def start(self) -> None:
        """The run begins (the store records it): nothing is sent before."""
        self.bus.emit(RunStarted(self.plan, self.destination.target, self.destination.where))


@contextlib.asynccontextmanager
async def open_run(
    plan: RunPlan,
    *,
    kind: RunKind = "bulk",
    progress: Progress | None = None,
    store_path: str | Path | None = None,
    judged: bool = True,
    destination: Destination | None = None,
    store: RunStore | None = None,
) -> AsyncIterator[RunContext]:
    """Open a run of ``plan`` for a mode (``kind``: bulk, load, stress, calibrate, monitor; the store keeps it):
    the store, the session and the target (unless a ``destination`` is given); for a run that is ``judged``, the
    announcement, Bonzo's API client and the preflight.

    Before anything else the store is checked (:func:`~bonzo_bulk.engine.preflight.check_store`) and keeps a
    journal under the reports folder: a write it cannot take mid-run goes there and the run goes on. ``store`` is
    an open store to write to instead of the config's (its caller closes it). A SIGINT or SIGTERM while it is
    open marks the run interrupted in the store and names the cleanup command
    (:func:`~bonzo_bulk.engine.interrupts.recording_interrupts`); whatever the recorder holds is written however
    the run ends.
    """
    if judged and destination is not None:
        raise ValueError("a judged run opens its own target: it takes no destination")
    loaded = plan.loaded
    config = loaded.config
    async with contextlib.AsyncExitStack() as outer:
        if store is None:
            store = outer.enter_context(RunStore(store_path or store_location_for(loaded)))
        if plan.phases:
            check_store(store, plan)
        outer.enter_context(recording_interrupts(loaded, plan.run_id, store))
        recorder = StoreRecorder(store, plan, kind)
        bus = EventBus(
            [recorder, ProgressRecorder(store, plan), ProgressView(progress or NullProgress()), RunLog(loaded.users)]
        )
        try:
            async with contextlib.AsyncExitStack() as stack:
                session = await stack.enter_async_context(
                    make_session(limit=session_limit(config, len(plan.phases)), timeout=config.webhook_settings.timeout)
                )
                endpoints = None
                if destination is None:
                    endpoints = await stack.enter_async_context(
                        open_endpoints(
                            loaded, session, run_id=plan.run_id, new_run=bool(plan.phases), seed=plan_seed(plan)
                        )
                    )
                    destination = Destination.of(endpoints)
                client = None
                if judged and endpoints is not None:
                    announce(endpoints)
                    client = await stack.enter_async_context(
                        BonzoClient(
                            base_url=endpoints.api_base_url,
                            api_key=endpoints.api_key,
                            settings=config.api_settings,
                            session=session,
                        )
                    )
                    checked = await preflight(
                        client,
                        session,
                        users=loaded.users,
                        hooks=endpoints.hooks([phase.kind for phase in plan.phases]),
                        timeout=min(config.webhook_settings.timeout, 10.0),
                        wait_limit=config.api_settings.max_wait,
                    )
                    log.info("%s", checked.describe())
                yield RunContext(plan, store, bus, session, destination, endpoints, client, kind)
        finally:
            recorder.flush()  # also when interrupted: every answered delivery is in the store
