"""A load or stress run end to end: plan the leads, let Locust send them on schedule, watch Bonzo while
it runs, then settle and judge every lead sent exactly as a bulk run does.

The engine's own stages do the work: :func:`bonzo_bulk.plan.planner.plan_run` plans the identifiable records,
:func:`bonzo_bulk.target.endpoints.open_endpoints` starts the sandbox (or names the live systems),
:class:`bonzo_bulk.settle.poller.Poller` samples what Bonzo shows while the load runs, and
:func:`bonzo_bulk.settle.poller.settle` and the engine's :func:`bonzo_bulk.engine.run.judge_run` account for every
lead at the end (created, lost, misrouted, duplicate), one outcome each into the run store. Only the
sending is Locust's, in child processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from bonzo_bulk._http import make_session
from bonzo_bulk.bonzo import BonzoClient
from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.engine.events import EventBus, RecordsPlanned, RunStarted
from bonzo_bulk.engine.observers import StoreRecorder
from bonzo_bulk.engine.preflight import preflight
from bonzo_bulk.engine.run import Settled, judge_run
from bonzo_bulk.errors import BonzoBulkError
from bonzo_bulk.judge.verify import expects_prospect
from bonzo_bulk.load.child import Distribution, JournalRow, LocustChild, free_port, write_plan
from bonzo_bulk.load.knee import StepVerdict, judge_step
from bonzo_bulk.load.outcome import Kind, LoadOutcome, summarize
from bonzo_bulk.load.scenario import Breaking, LoadScenario, StressScenario
from bonzo_bulk.load.schedule import Schedule, build_schedule
from bonzo_bulk.load.stats import (
    Arrival,
    join,
)
from bonzo_bulk.models import (
    DeliveryResult,
    Observation,
    RunResult,
)
from bonzo_bulk.plan.planner import RunPlan, plan_run
from bonzo_bulk.secrets import redact_url
from bonzo_bulk.settle.poller import Poller, SettleTarget, settle
from bonzo_bulk.store import RunStore
from bonzo_bulk.target.endpoints import Endpoints, NullProgress, Progress, open_endpoints, store_location_for

log = logging.getLogger("bonzo_bulk.load")

EARLY_BREAK_MIN = 10


def for_load(loaded: LoadedConfig, records: int) -> LoadedConfig:
    """The config sending ``records`` valid leads to the primary hook only (no invalid ones, no control)."""
    update: dict[str, Any] = {"test_records": max(1, records), "invalid_records": [], "control": False}
    if loaded.config.distribution == "custom":
        update["distribution"] = "even"
    return dataclasses.replace(loaded, config=loaded.config.model_copy(update=update))


@contextlib.contextmanager
def _ctrl_c(stop: asyncio.Event) -> Iterator[None]:
    """While the load runs, the first Ctrl-C asks for a graceful stop; a second one interrupts at once."""
    loop = asyncio.get_running_loop()

    def first() -> None:
        log.warning("Ctrl-C: stopping the load; what was sent is settled and reported (Ctrl-C again aborts)")
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)

    try:
        loop.add_signal_handler(signal.SIGINT, first)
    except (NotImplementedError, RuntimeError, ValueError):
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


@dataclass
class _Driven:
    rows: dict[int, JournalRow] = field(default_factory=dict)
    t0: float | None = None
    steps: list[StepVerdict] = field(default_factory=list)
    stop_reason: str | None = None
    interrupted: bool = False
    api_requests: int = 0


class _Drive:
    """The loop while Locust sends: read the journal, store deliveries, poll Bonzo, judge stress steps."""

    def __init__(
        self,
        *,
        plan: RunPlan,
        schedule: Schedule,
        child: LocustChild,
        poller: Poller,
        store: RunStore,
        interval: float,
        breaking: Breaking | None,
        patience: float,
        progress: Progress,
    ) -> None:
        self.plan, self.schedule, self.child, self.poller, self.store = plan, schedule, child, poller, store
        self.records = plan.phases[0].records
        self.names = [r.name for r in self.records]
        self.interval, self.breaking, self.patience, self.progress = interval, breaking, patience, progress
        self.state = _Driven()
        self._pending: list[DeliveryResult] = []

    def _take_rows(self) -> None:
        for row in self.child.rows():
            self.state.rows[row.seq] = row
            if self.state.t0 is None:
                self.state.t0 = row.intended - self.schedule.offsets[row.seq]
            if row.sent is not None:
                self._pending.append(row.delivery(self.records[row.seq]))
        if self._pending:
            self.store.add_deliveries(self.plan.run_id, "primary", self._pending)
            self._pending = []
        self.progress.update("load", len(self.state.rows), len(self.records))

    def _arrivals(self, observations: dict[str, Observation]) -> list[Arrival]:
        return join(self.state.rows.values(), self.names, self.schedule.offsets, observations)

    def _judge_steps(self, observations: dict[str, Observation]) -> None:
        if self.breaking is None or self.state.t0 is None:
            return
        t0 = self.state.t0
        arrivals = None
        while len(self.state.steps) < len(self.schedule.stages) and not (
            self.state.steps and self.state.steps[-1].broken
        ):
            stage = self.schedule.stages[len(self.state.steps)]
            seqs = range(stage.first, stage.first + stage.count)
            if not all(s in self.state.rows for s in seqs):
                return
            if not any(self.state.rows[s].sent is not None for s in seqs):
                return
            arrivals = arrivals or self._arrivals(observations)
            mine = [a for a in arrivals if a.seq in seqs and a.accepted]
            spent = time.time() >= t0 + stage.end + self.patience
            visible = sum(1 for a in mine if a.created is not None)
            verdict = judge_step(stage, arrivals, t0, self.breaking, patience_spent=spent)
            # A break shows in part of a step (later leads only wait longer); a pass needs every lead seen.
            early_break = verdict.broken and visible >= max(EARLY_BREAK_MIN, len(mine) // 3)
            if visible < len(mine) and not spent and not early_break:
                return
            self.state.steps.append(verdict)
            log.info(
                "step %d at %g leads/s: %s",
                verdict.step,
                verdict.rate,
                "; ".join(verdict.reasons) if verdict.broken else "sustained",
            )
            if verdict.broken:
                if self.child.running and self.state.stop_reason is None:
                    self.child.request_stop()
                    self.state.stop_reason = f"step {verdict.step} ({verdict.rate:g} leads/s) broke"
                return

    def _steps_pending(self) -> bool:
        if self.breaking is None or (self.state.steps and self.state.steps[-1].broken):
            return False
        for stage in self.schedule.stages[len(self.state.steps) :]:
            if any(
                self.state.rows.get(s) and self.state.rows[s].sent
                for s in range(stage.first, stage.first + stage.count)
            ):
                return True
        return False

    async def run(self, stop: asyncio.Event) -> _Driven:
        users = [u.user_id for u in self.plan.loaded.users]
        requests_before = self.poller.client.requests_made
        self.progress.stage("load", len(self.records))
        await self.child.start()
        judge_until = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
            if stop.is_set() and not self.state.interrupted:
                self.state.interrupted = True
                self.state.stop_reason = self.state.stop_reason or "interrupted (Ctrl-C)"
                self.child.request_stop()
            self._take_rows()
            if self.state.rows:
                await self.poller.poll(users)
            observations = self.poller.observations()
            self._judge_steps(observations)
            if self.child.running:
                continue
            self._take_rows()
            if not self._steps_pending() or self.state.interrupted:
                break
            judge_until = judge_until or time.time() + self.patience + self.interval
            if time.time() > judge_until:
                break
        await self.child.wait(15)
        self._take_rows()
        self.state.api_requests = self.poller.client.requests_made - requests_before
        return self.state


def _search(loaded: LoadedConfig, run_id: str) -> str:
    settings = loaded.config.test_data_settings
    return run_id if settings.unique_emails else f"{settings.first_name_pattern}_{settings.last_name_pattern}"


async def _settle_and_judge(
    plan: RunPlan,
    endpoints: Endpoints,
    client: BonzoClient,
    targets: Sequence[SettleTarget],
    recorder: StoreRecorder,
    notes: list[str],
) -> tuple[RunResult, dict[str, Observation]]:
    """Settle what Locust delivered and judge it with the engine's own judge (outcomes go to the store)."""
    loaded = plan.loaded
    config = loaded.config
    deadline = config.polling.deadline or config.processing_delay + config.polling.grace
    outcome = await settle(
        client,
        targets,
        users=loaded.users,
        search=_search(loaded, plan.run_id),
        polling=config.polling,
        deadline_seconds=deadline,
        per_page=config.api_settings.max_prospects_per_request,
        order=config.api_settings.list_order,
    )
    if outcome.clock.known:
        notes.append(f"Bonzo's clock against ours: {outcome.clock.describe()}")
    notes.append(
        f"settled in {outcome.seconds:.1f} s over {outcome.polls} poll(s), {outcome.api_requests} API requests"
    )
    if not outcome.settled:
        notes.append(f"the deadline ({deadline:g} s) passed before every lead settled")
    if endpoints.target == "sandbox":
        notes.append("target: local sandbox — nothing was sent to Bonzo")
    settled = Settled(outcome, deadline, tuple(notes))
    run = judge_run(
        plan, endpoints.target, settled, recorder.store, EventBus([recorder]), api_requests=outcome.api_requests
    )
    recorder.flush()
    observations = outcome.observations
    outcome.poller.close()
    return run, observations


def _announce(endpoints: Endpoints, progress: Progress) -> None:
    if endpoints.target == "sandbox":
        log.warning("Target: the local SANDBOX at %s — nothing is sent to Bonzo", endpoints.sandbox_url)
    else:
        log.warning("Target: LIVE — load goes to the configured webhook %s only", redact_url(endpoints.hook_url))


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
    """Run a load (stages and thresholds) or stress (steps until the knee) scenario against the config's target."""
    progress = progress or NullProgress()
    stress = scenario if isinstance(scenario, StressScenario) else None
    stages = stress.stages() if stress is not None else cast(LoadScenario, scenario).stages
    schedule = build_schedule(stages)
    loaded = for_load(loaded, len(schedule.offsets))
    config = loaded.config
    plan = plan_run(loaded, phases=("primary",))
    records = plan.phases[0].records
    folder = Path(config.reports_dir) / "load" / plan.run_id
    folder.mkdir(parents=True, exist_ok=True)
    stop = stop or asyncio.Event()
    notes: list[str] = []
    store_file = store_path or store_location_for(loaded)
    with RunStore(store_file) as store:
        async with (
            make_session(
                limit=config.api_settings.concurrent_requests + 4, timeout=config.api_settings.timeout
            ) as session,
            open_endpoints(plan, session) as endpoints,
        ):
            _announce(endpoints, progress)
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
            child = LocustChild(folder, hook_url=endpoints.hook_url, distribution=distribution)
            async with BonzoClient(
                base_url=endpoints.api_base_url,
                api_key=endpoints.api_key,
                settings=config.api_settings,
                session=session,
            ) as client:
                checked = await preflight(
                    client,
                    session,
                    users=loaded.users,
                    hooks=[("webhook", endpoints.hook_url)],
                    timeout=min(config.webhook_settings.timeout, 10.0),
                )
                log.info("%s", checked.describe())
                recorder = StoreRecorder(store, plan)
                recorder(RunStarted(plan, endpoints.target, endpoints.where))
                recorder(RecordsPlanned("primary", records))
                poller = Poller(
                    client,
                    [SettleTarget.of(r, expects=r.is_valid) for r in records],
                    users=loaded.users,
                    search=_search(loaded, plan.run_id),
                    per_page=config.api_settings.max_prospects_per_request,
                    order=config.api_settings.list_order,
                )
                drive = _Drive(
                    plan=plan,
                    schedule=schedule,
                    child=child,
                    poller=poller,
                    store=store,
                    interval=scenario.verify_interval,
                    breaking=stress.breaking if stress else None,
                    patience=config.processing_delay,
                    progress=progress,
                )
                try:
                    with _ctrl_c(stop):
                        driven = await drive.run(stop)
                finally:
                    child.kill()
                    poller.close()
                if not driven.rows:
                    raise BonzoBulkError(
                        "Locust sent nothing; its output ends with:\n" + (child.tail_of_log() or "(no output)")
                    )
                ordered = sorted(driven.rows.values(), key=lambda r: r.seq)
                sent = [(records[r.seq], r.delivery(records[r.seq])) for r in ordered if r.sent is not None]
                targets = [SettleTarget.of(record, expects_prospect(record, d)) for record, d in sent]
                if driven.stop_reason:
                    notes.append(f"load stopped early: {driven.stop_reason}")
                run, observations = await _settle_and_judge(plan, endpoints, client, targets, recorder, notes)
                clock = client.clock.estimate
            store.finish_run(run)
            lags = store.processing_seconds(plan.run_id, "primary")
            failed = list(store.outcomes(plan.run_id, "primary", failed_only=True))
            if config.cleanup.after_run == "always" or (config.cleanup.after_run == "on_success" and run.passed):
                from bonzo_bulk.cleanup.clean import cleanup_run

                report = await cleanup_run(loaded, plan.run_id, endpoints=endpoints, session=session, store=store)
                notes.append(f"cleanup ({config.cleanup.after_run}): {len(report.deleted)} prospect(s) deleted")
    assert driven.t0 is not None or not sent
    t0 = driven.t0 if driven.t0 is not None else time.time()
    return summarize(
        kind=kind,
        scenario=scenario,
        run=run,
        schedule=schedule,
        rows=ordered,
        names=[r.name for r in records],
        t0=t0,
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
