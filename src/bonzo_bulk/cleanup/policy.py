"""The ``cleanup.after_run`` policy as a subscriber: when the run is done, remove what it made (or not)."""

from __future__ import annotations

import logging

import aiohttp

from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.engine.events import Event, RunDone
from bonzo_bulk.store import RunStore
from bonzo_bulk.target.endpoints import Endpoints

log = logging.getLogger("bonzo_bulk")


class CleanupPolicy:
    """Deletes the run's records after it finishes, when the config says so (``always`` / ``on_success``)."""

    def __init__(
        self, loaded: LoadedConfig, endpoints: Endpoints, session: aiohttp.ClientSession, store: RunStore
    ) -> None:
        self.loaded, self.endpoints, self.session, self.store = loaded, endpoints, session, store

    def __call__(self, event: Event) -> object:
        if not isinstance(event, RunDone):
            return None
        policy = self.loaded.config.cleanup.after_run
        if policy == "always" or (policy == "on_success" and event.result.passed):
            return self._clean(event, policy)
        return None

    async def _clean(self, event: RunDone, policy: str) -> None:
        from bonzo_bulk.cleanup.clean import cleanup_run

        report = await cleanup_run(
            self.loaded, event.result.run_id, endpoints=self.endpoints, session=self.session, store=self.store
        )
        log.info(
            "Cleanup after the run (%s): %d deleted, %d left for removal by hand%s",
            policy,
            len(report.deleted),
            len(report.manual),
            f" ({report.refused})" if report.refused else "",
        )
