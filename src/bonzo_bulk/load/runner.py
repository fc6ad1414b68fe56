"""A load or stress run end to end: plan the leads, let Locust send them on schedule, watch Bonzo while
it runs, then settle and judge every lead sent exactly as a bulk run does.

The run is opened like every other (:func:`bonzo_bulk.engine.context.open_run`: store, target,
announcement, API client, preflight) and the engine's own stages do the work: :class:`~bonzo_bulk.load.drive.Drive`
tells the run each lead Locust sent and samples what Bonzo shows while the load runs, and the run's
:class:`~bonzo_bulk.settle.policy.SettlePolicy` and the engine's :func:`bonzo_bulk.engine.run.judge_run`
account for every lead at the end (created, lost, misrouted, duplicate), one outcome each into the run
store. Only the sending is Locust's, in child processes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from bonzo_bulk.cleanup.policy import CleanupPolicy
from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.engine.context import RunContext, open_run
from bonzo_bulk.engine.events import Polled, RecordsPlanned, RunDone
from bonzo_bulk.engine.run import Settled, judge_run
from bonzo_bulk.errors import BonzoBulkError
from bonzo_bulk.load.child import Distribution, LocustChild, free_port, write_plan
from bonzo_bulk.load.drive import Drive
from bonzo_bulk.load.outcome import Kind, LoadOutcome, summarize
from bonzo_bulk.load.scenario import LoadScenario, StressScenario
from bonzo_bulk.load.schedule import Schedule, build_schedule
from bonzo_bulk.models import Observation, PlannedRecord, RunResult
from bonzo_bulk.plan.planner import plan_run
from bonzo_bulk.report.metrics import MetricsPush
from bonzo_bulk.settle.index import SettleTarget
from bonzo_bulk.settle.policy import SettlePolicy
from bonzo_bulk.store import RunStore
from bonzo_bulk.target.endpoints import Progress, store_location_for


def for_load(loaded: LoadedConfig, records: int) -> LoadedConfig:
    """The config sending ``records`` valid leads to the primary hook only (no invalid ones, no control)."""
    update: dict[str, Any] = {"test_records": max(1, records), "invalid_records": [], "control": False}
    if loaded.config.distribution == "custom":
        update["distribution"] = "even"
    return dataclasses.replace(loaded, config=loaded.config.model_copy(update=update))


def _locust(
    folder: Path,
    records: Sequence[PlannedRecord],
    schedule: Schedule,
    scenario: LoadScenario | StressScenario,
    distribution: Distribution,
    hook_url: str,
) -> LocustChild:
    """The Locust child that sends ``records`` on ``schedule`` to the hook (its plan written into ``folder``)."""
    write_plan(
        folder / "plan.jsonl",
        records,
        schedule.offsets,
        max_in_flight=scenario.max_in_flight,
        drop_after=scenario.drop_after,
        timeout=scenario.timeout,
    )
    if distribution.bind_port == 0:
        distribution = dataclasses.replace(distribution, bind_port=free_port(distribution.bind_host))
    return LocustChild(folder, hook_url=hook_url, distribution=distribution)


async def _settle_and_judge(
    run: RunContext, policy: SettlePolicy, targets: Sequence[SettleTarget], early: Sequence[str]
) -> tuple[RunResult, dict[str, Observation]]:
    """Settle what Locust delivered and judge it with the engine's own judge (each outcome an event)."""
    assert run.client is not None
    outcome = await policy.settle(
        run.client,
        targets,
        users=run.plan.loaded.users,
        on_poll=lambda found, expected: run.bus.emit(Polled(found, expected)),
    )
    try:
        notes = list(early)
        if outcome.clock.known:
            notes.append(f"Bonzo's clock against ours: {outcome.clock.describe()}")
        notes.append(
            f"settled in {outcome.seconds:.1f} s over {outcome.polls} poll(s), {outcome.api_requests} API requests"
        )
        redirects = run.client.redirects.describe()
        if redirects:
            notes.append(redirects)
        if not outcome.settled:
            notes.append(f"the deadline ({policy.deadline:g} s) passed before every lead settled")
        settled = Settled(outcome, tuple(notes))
        result = judge_run(
            run.plan, run.destination.target, settled, run.store, run.bus, api_requests=outcome.api_requests
        )
        return result, outcome.observations
    finally:
        outcome.poller.close()


async def execute_load(
    loaded: LoadedConfig,
    *,
    kind: Kind,
    scenario: LoadScenario | StressScenario,
    distribution: Distribution,
    progress: Progress | None = None,
    store_path: str | Path | None = None,
    stop: asyncio.Event | None = None,
) -> LoadOutcome:
    """Run a load (stages and thresholds) or stress (steps until the knee) scenario against the config's target;
    what it sent is cleaned up afterwards as ``cleanup.after_run`` says."""
    stress = scenario if isinstance(scenario, StressScenario) else None
    schedule = build_schedule(stress.stages() if stress is not None else cast(LoadScenario, scenario).stages)
    loaded = for_load(loaded, len(schedule.offsets))
    plan = plan_run(loaded, phases=("primary",))
    records = plan.phases[0].records
    folder = Path(loaded.config.reports_dir) / "load" / plan.run_id
    folder.mkdir(parents=True, exist_ok=True)
    settling = SettlePolicy.of(loaded.config, plan.run_id)
    async with open_run(plan, progress=progress, store_path=store_path) as run:
        assert run.client is not None
        cleanup = CleanupPolicy(run)
        run.subscribe(cleanup, *MetricsPush.for_run(run))
        run.start()
        run.bus.emit(RecordsPlanned("primary", records))
        drive = Drive(
            run,
            schedule=schedule,
            child=_locust(folder, records, schedule, scenario, distribution, run.destination.hook_url),
            poller=settling.poller(run.client, (), users=loaded.users),
            interval=scenario.verify_interval,
            breaking=stress.breaking if stress else None,
            patience=loaded.config.processing_delay,
        )
        driven = await drive.run_until_done(stop or asyncio.Event())
        early = [f"load stopped early: {driven.stop_reason}"] if driven.stop_reason else []
        result, observations = await _settle_and_judge(run, settling, driven.targets, early)
        await run.bus.emit_async(RunDone(result))
        notes = list(result.notes)
        if cleanup.report is not None:
            notes.append(f"cleanup ({cleanup.after_run}): {len(cleanup.report.deleted)} prospect(s) deleted")
        lags = run.store.processing_seconds(plan.run_id, "primary")
        failed = list(run.store.outcomes(plan.run_id, "primary", failed_only=True))
        clock = run.client.clock.estimate
    assert driven.t0 is not None or not driven.targets
    return summarize(
        kind=kind,
        scenario=scenario,
        run=result,
        schedule=schedule,
        rows=driven.ordered,
        names=[r.name for r in records],
        t0=driven.t0 if driven.t0 is not None else time.time(),
        steps=driven.steps,
        stop_reason=driven.stop_reason,
        interrupted=driven.interrupted,
        api_requests=driven.api_requests,
        notes=notes,
        observations=observations,
        lags=lags,
        failed=failed,
        clock=clock,
    )


def run_load(
    loaded: LoadedConfig,
    *,
    kind: Kind,
    scenario: LoadScenario | StressScenario,
    distribution: Distribution,
    out: Path | None = None,
) -> tuple[LoadOutcome, Path]:
    """``bonzo-bulk load | stress``: run the scenario, keep it in the run store, render its dashboard.

    Returns the outcome and the dashboard's path (``out``, else ``<reports>/load/<run id>/dashboard.html``).
    """
    from bonzo_bulk._http import run_async
    from bonzo_bulk.load.dashboard import render_load_dashboard
    from bonzo_bulk.load.results import LoadStore

    outcome = run_async(execute_load(loaded, kind=kind, scenario=scenario, distribution=distribution))
    with RunStore(store_location_for(loaded)) as store:
        LoadStore(store).save(outcome)
        stored = LoadStore(store).load(outcome.run_id)
    if stored is None:
        raise BonzoBulkError(f"load run {outcome.run_id} was saved but cannot be read back from the run store")
    folder = Path(loaded.config.reports_dir) / "load" / outcome.run_id
    return outcome, render_load_dashboard(stored, out=out or folder / "dashboard.html")
