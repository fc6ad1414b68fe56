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
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bonzo_bulk.bonzo.clock import ClockOffset
from bonzo_bulk.cleanup.policy import CleanupPolicy
from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.engine.context import RunContext, open_run
from bonzo_bulk.engine.events import Polled, RecordsPlanned, RunDone
from bonzo_bulk.engine.interrupts import cleanup_command
from bonzo_bulk.engine.run import Settled, judge_run
from bonzo_bulk.errors import BonzoBulkError
from bonzo_bulk.load.budget import Budget
from bonzo_bulk.load.child import Distribution, LocustChild, free_port
from bonzo_bulk.load.drive import Drive, Driven, Heartbeat
from bonzo_bulk.load.feed import PlanFeed
from bonzo_bulk.load.outcome import Kind, LoadOutcome, summarize
from bonzo_bulk.load.scenario import LoadScenario, StressScenario
from bonzo_bulk.load.schedule import Schedule, build_schedule
from bonzo_bulk.models import Observation, RecordOutcome, RunResult
from bonzo_bulk.plan.planner import RunPlan, plan_run
from bonzo_bulk.report.metrics import MetricsPush
from bonzo_bulk.settle.index import SettleTarget
from bonzo_bulk.settle.policy import SettlePolicy
from bonzo_bulk.store import RunStore
from bonzo_bulk.target.endpoints import Progress, store_location_for

log = logging.getLogger("bonzo_bulk.load")


def for_load(loaded: LoadedConfig, records: int) -> LoadedConfig:
    """The config sending ``records`` valid leads to the primary hook only (no invalid ones, no control)."""
    update: dict[str, Any] = {"test_records": max(1, records), "invalid_records": [], "control": False}
    if loaded.config.distribution == "custom":
        update["distribution"] = "even"
    return dataclasses.replace(loaded, config=loaded.config.model_copy(update=update))


def _feed(
    folder: Path,
    plan: RunPlan,
    schedule: Schedule,
    scenario: LoadScenario | StressScenario,
    run: RunContext,
    users: int,
) -> PlanFeed:
    """The plan fed to Locust as the run goes (``users`` per process); each batch is told to the run (and stored)
    before it is written."""
    header: dict[str, float | int] = {
        "max_in_flight": users,
        "drop_after": scenario.drop_after,
        "timeout": scenario.timeout,
        "drain": scenario.drop_after + scenario.timeout + 1.0,
    }
    return PlanFeed(
        folder / "plan.jsonl",
        plan.phases[0].iter_records(),
        schedule.offsets,
        header=header,
        on_planned=lambda batch: run.bus.emit(RecordsPlanned("primary", batch)),
    )


def _locust(folder: Path, distribution: Distribution, hook_url: str) -> LocustChild:
    """The Locust child that sends the plan in ``folder`` to the hook."""
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
        notes.extend(outcome.listing_notes())
        if not outcome.settled:
            notes.append(f"the deadline ({policy.deadline:g} s) passed before every lead settled")
        settled = Settled(outcome, tuple(notes))
        result = judge_run(
            run.plan,
            run.destination.target,
            settled,
            run.store,
            run.bus,
            api_requests=outcome.api_requests,
            kind=run.kind,
        )
        return result, outcome.observations
    finally:
        outcome.poller.close()


def _say_nothing(line: str) -> None:
    """Where a run's announcements go when the caller wants none."""


async def execute_load(
    loaded: LoadedConfig,
    *,
    kind: Kind,
    scenario: LoadScenario | StressScenario,
    budget: Budget,
    distribution: Distribution,
    say: Callable[[str], None] = _say_nothing,
    progress: Progress | None = None,
    store_path: str | Path | None = None,
    stop: asyncio.Event | None = None,
) -> LoadOutcome:
    """Run a load (stages and thresholds) or stress (steps until the knee) scenario against the config's target,
    within ``budget`` (its stages are the ones that fit the cap); what it sent is cleaned up afterwards as
    ``cleanup.after_run`` says. ``say`` hears the run id, target and cap before the first send, then a progress
    line at least every :data:`~bonzo_bulk.load.drive.PROGRESS_EVERY_S` seconds."""
    stress = scenario if isinstance(scenario, StressScenario) else None
    schedule = build_schedule(budget.stages)
    loaded = for_load(loaded, len(schedule.offsets))
    plan = plan_run(loaded, phases=("primary",))
    folder = Path(loaded.config.reports_dir) / "load" / plan.run_id
    folder.mkdir(parents=True, exist_ok=True)
    settling = SettlePolicy.of(loaded.config, plan.run_id)
    async with open_run(plan, kind=kind, progress=progress, store_path=store_path) as run:
        assert run.client is not None
        cleanup = CleanupPolicy(run)
        heartbeat = Heartbeat(say)
        run.subscribe(cleanup, heartbeat, *MetricsPush.for_run(run))
        say(f"{kind} run {plan.run_id} → {run.destination.target} at {run.destination.where}")
        say(budget.describe(kind))
        remove = cleanup_command(loaded, plan.run_id)
        say(f"Ctrl-C stops it, then settles and reports what was sent; remove its leads with: {remove}")
        run.start()
        drive = Drive(
            run,
            schedule=schedule,
            feed=_feed(folder, plan, schedule, scenario, run, budget.users),
            child=_locust(folder, distribution, run.destination.hook_url),
            poller=settling.poller(run.client, (), users=loaded.users),
            interval=scenario.verify_interval,
            breaking=stress.breaking if stress else None,
            patience=loaded.config.processing_delay,
            heartbeat=heartbeat,
            give_up_after=budget.cap.minutes * 60 - budget.reserve_s + loaded.config.processing_delay,
        )
        ticker = asyncio.create_task(heartbeat.keep_beating())
        try:
            measured = await _measure(run, drive, settling, stop or asyncio.Event())
        except BonzoBulkError:
            say(f"{kind} run {plan.run_id} stopped on an error; remove what it sent with: {remove}")
            raise
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        if cleanup.report is not None:
            measured.notes.append(f"cleanup ({cleanup.after_run}): {len(cleanup.report.deleted)} prospect(s) deleted")
    driven = measured.driven
    assert driven.t0 is not None or not driven.targets
    return summarize(
        kind=kind,
        scenario=scenario,
        run=measured.result,
        schedule=schedule,
        rows=driven.ordered,
        names=drive.feed.names,
        t0=driven.t0 if driven.t0 is not None else time.time(),
        steps=driven.steps,
        stop_reason=driven.stop_reason,
        interrupted=driven.interrupted,
        api_requests=driven.api_requests,
        notes=measured.notes,
        observations=measured.observations,
        lags=measured.lags,
        failed=measured.failed,
        clock=measured.clock,
    )


@dataclass
class _Measured:
    """What a load run measured once its leads are settled and judged."""

    driven: Driven
    result: RunResult
    observations: dict[str, Observation]
    notes: list[str]
    lags: dict[str, float]
    failed: list[RecordOutcome]
    clock: ClockOffset


async def _measure(run: RunContext, drive: Drive, settling: SettlePolicy, stop: asyncio.Event) -> _Measured:
    """Drive the load, then settle and judge every lead sent; the run is done (``RunDone``) when this returns."""
    assert run.client is not None
    try:
        driven = await drive.run_until_done(stop)
    finally:
        drive.feed.close()  # every payload written is in the run store; the plan was only Locust's
    early = [f"load stopped early: {driven.stop_reason}"] if driven.stop_reason else []
    result, observations = await _settle_and_judge(run, settling, driven.targets, early)
    await run.bus.emit_async(RunDone(result))
    run_id = run.plan.run_id
    return _Measured(
        driven=driven,
        result=result,
        observations=observations,
        notes=list(result.notes),
        lags=run.store.processing_seconds(run_id, "primary"),
        failed=list(run.store.outcomes(run_id, "primary", failed_only=True)),
        clock=run.client.clock.estimate,
    )


@dataclass(frozen=True)
class LoadRun:
    """A finished ``load`` or ``stress`` command: what it measured, its JSON summary as the store keeps it (made
    once, by :meth:`~bonzo_bulk.load.results.LoadStore.save`), and its dashboard."""

    outcome: LoadOutcome
    summary: dict[str, Any]
    dashboard: Path


def run_load(
    loaded: LoadedConfig,
    *,
    kind: Kind,
    scenario: LoadScenario | StressScenario,
    budget: Budget,
    distribution: Distribution,
    say: Callable[[str], None] = _say_nothing,
    out: Path | None = None,
) -> LoadRun:
    """``bonzo-bulk load | stress``: run the scenario, keep it in the run store, render its dashboard.

    Returns the outcome, its stored JSON summary and the dashboard's path (``out``, else
    ``<reports>/load/<run id>/dashboard.html``).
    """
    from bonzo_bulk._http import run_async
    from bonzo_bulk.load.dashboard import render_load_dashboard
    from bonzo_bulk.load.results import LoadStore

    outcome = run_async(
        execute_load(loaded, kind=kind, scenario=scenario, budget=budget, distribution=distribution, say=say)
    )
    say(f"storing the figures of run {outcome.run_id} and drawing its dashboard")
    with RunStore(store_location_for(loaded)) as store:
        LoadStore(store).save(outcome)
        stored = LoadStore(store).load(outcome.run_id)
    if stored is None:
        raise BonzoBulkError(f"load run {outcome.run_id} was saved but cannot be read back from the run store")
    folder = Path(loaded.config.reports_dir) / "load" / outcome.run_id
    dashboard = render_load_dashboard(stored, out=out or folder / "dashboard.html")
    _retention(loaded)
    return LoadRun(outcome, stored.summary, dashboard)


def _retention(loaded: LoadedConfig) -> None:
    """``reports.keep_runs`` after a load run as after any run: older runs' files and per-record rows go."""
    from bonzo_bulk.report.retention import prune
    from bonzo_bulk.report.summary import HEALTH_DIR
    from bonzo_bulk.store.space import human_bytes

    keep = loaded.config.reports.keep_runs
    if not keep:
        return
    try:
        report = prune(store_location_for(loaded), Path(loaded.config.reports_dir) / HEALTH_DIR, keep=keep)
    except BonzoBulkError as exc:
        log.warning("retention after the load run failed: %s (`bonzo-bulk prune` can do it by hand)", exc)
        return
    if report.pruned:
        log.info(
            "reports.keep_runs %d: %d older run(s) pruned, %s freed",
            keep,
            len(report.pruned),
            human_bytes(report.freed_bytes),
        )
