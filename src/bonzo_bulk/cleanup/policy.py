"""The ``cleanup.after_run`` policy as a subscriber: when the run is done, remove what it made (or not).

The front doors subscribe it to the run they open (the engine never does), so every mode cleans up
after a run the same way: at the run's own target, through its session and store.

Example::

    async with open_run(plan) as run:
        policy = CleanupPolicy(run)
        run.subscribe(policy)
        result = await execute(run)
    policy.report  # what was deleted, when the policy said to clean up
"""

from __future__ import annotations

import logging

from bonzo_bulk.cleanup.clean import cleanup_run
from bonzo_bulk.cleanup.report import CleanupReport
from bonzo_bulk.engine.context import RunContext
from bonzo_bulk.engine.events import Event, RunDone

log = logging.getLogger("bonzo_bulk")


class CleanupPolicy:
    """Deletes the run's records after it finishes, when the config says so (``always`` / ``on_success``)."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.loaded = run.plan.loaded
        self.report: CleanupReport | None = None
        """What the cleanup did, once it ran."""

    @property
    def after_run(self) -> str:
        """``keep``, ``on_success`` or ``always``."""
        return self.loaded.config.cleanup.after_run

    def cleans_after(self, passed: bool) -> bool:
        """Whether a run that finished (``passed`` or not) is cleaned up."""
        return self.after_run == "always" or (self.after_run == "on_success" and passed)

    def __call__(self, event: Event) -> object:
        if isinstance(event, RunDone) and self.cleans_after(event.result.passed):
            return self._after_run()
        return None

    async def _after_run(self) -> None:
        report = await self.clean()
        log.info(
            "Cleanup after the run (%s): %d deleted, %d left for removal by hand%s",
            self.after_run,
            len(report.deleted),
            len(report.manual),
            f" ({report.refused})" if report.refused else "",
        )
        if report.missing:
            log.warning(pending_line(len(report.missing), self.loaded.config.cleanup.straggler_wait))
        await self._clean_earlier_pending()

    async def clean(self, *, wait: float | None = None) -> CleanupReport:
        """Delete what the run made, now, at its own target (also for a run that could not finish), waiting up to
        ``cleanup.straggler_wait`` for records delivered but not found yet; what is still missing stays pending
        in the store (the run's exit code is then 1: :class:`bonzo_bulk.judge.verdict.RunVerdict`). ``wait``
        overrides the setting (0: record what is missing as pending at once)."""
        run = self.run
        if run.endpoints is None:
            raise ValueError("a run that delivers to a given destination has no target to clean up")
        self.report = await cleanup_run(
            self.loaded,
            run.plan.run_id,
            endpoints=run.endpoints,
            session=run.session,
            store=run.store,
            wait=self.loaded.config.cleanup.straggler_wait if wait is None else wait,
            own_run=True,
        )
        return self.report

    async def _clean_earlier_pending(self) -> None:
        """Remove what earlier runs of this store left pending, when they share this run's target (live, or one
        shared sandbox); each run's own sandbox is only reachable through ``bonzo-bulk cleanup --pending``."""
        run, config = self.run, self.loaded.config
        shared = self.loaded.target != "sandbox" or bool(config.sandbox.url or config.sandbox.db)
        if run.endpoints is None or not shared:
            return
        for run_id in run.store.pending_cleanup_runs():
            earlier = run.store.summary(run_id)
            if run_id == run.plan.run_id or earlier is None or earlier.target != self.loaded.target:
                continue
            report = await cleanup_run(
                self.loaded, run_id, endpoints=run.endpoints, session=run.session, store=run.store
            )
            log.info(
                "Cleanup of run %s's pending records: %d deleted, %d still pending",
                run_id,
                len(report.deleted),
                len(report.missing),
            )


def pending_line(count: int, waited: float) -> str:
    """The one line that says a cleanup left records pending, and the exact command that removes them."""
    return (
        f"{count} record(s) delivered but not found after waiting {waited:g} s (cleanup.straggler_wait) are pending "
        "cleanup; they may still appear in Bonzo: run `bonzo-bulk cleanup --pending --yes` (or the next run's "
        "automatic cleanup) to remove them"
    )
