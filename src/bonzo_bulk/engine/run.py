"""The engine: one bulk run end to end — (plan) -> preflight -> deliver -> settle -> judge — as events.

Records stream: each batch is planned, handed to the subscribers (the run store writes it before a
byte is sent), delivered, and reduced to what settling needs; after settling, the records are read
back from the store a batch at a time, judged into one :class:`~bonzo_bulk.models.RecordOutcome`
each, tallied and handed on. Nothing holds every payload, response and check of a big run.

The CLI, the pytest plugin and the library API all call :func:`bonzo_bulk.plan.planner.plan_run` and
:func:`execute` (or :func:`run_bulk`, both at once); what they want done with the run — progress,
logs, reports, cleanup — they subscribe (:mod:`bonzo_bulk.engine.events`). Nothing here imports an output.

Example::

    from bonzo_bulk import load_config, run_bulk

    result = run_bulk(load_config("tests/configs/monitorbase_test_config.yaml"))
    result.passed, result.primary.metrics.assignment_accuracy
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bonzo_bulk._http import make_session, run_async
from bonzo_bulk.bonzo import BonzoClient
from bonzo_bulk.cleanup.policy import CleanupPolicy
from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.config.schema import Thresholds
from bonzo_bulk.deliver.sender import deliver
from bonzo_bulk.engine.events import (
    DeliveryDone,
    EventBus,
    PhaseDone,
    Polled,
    RecordDelivered,
    RecordJudged,
    RecordsPlanned,
    RunDone,
    RunStarted,
    Subscriber,
)
from bonzo_bulk.engine.interrupts import recording_interrupts
from bonzo_bulk.engine.observers import ProgressView, RunLog, StoreRecorder
from bonzo_bulk.engine.preflight import preflight
from bonzo_bulk.errors import SandboxError
from bonzo_bulk.judge.diagnosis import Diagnoser
from bonzo_bulk.judge.tally import PhaseTally
from bonzo_bulk.judge.verify import Judge, expects_prospect, verify_unexpected
from bonzo_bulk.models import (
    KEEP_ALL,
    CheckResult,
    DeliveryResult,
    PhaseKind,
    PhaseResult,
    PlannedRecord,
    Prospect,
    RecordOutcome,
    RunResult,
    Target,
)
from bonzo_bulk.plan.planner import PhasePlan, RunPlan, plan_run
from bonzo_bulk.settle.poller import SettleIndex, SettleOutcome, SettleTarget, settle
from bonzo_bulk.store import RunStore
from bonzo_bulk.store.ledger import BATCH
from bonzo_bulk.target.endpoints import (
    Endpoints,
    NullProgress,
    Progress,
    announce,
    hooks,
    open_endpoints,
    session_limit,
    store_location_for,
)

log = logging.getLogger("bonzo_bulk")

STORE_BATCH = BATCH
"""Records planned, stored and then sent together (deliveries and outcomes are stored in batches as big)."""


@dataclass
class _Running:
    """A run under way: its store, bus, session, endpoints and API client."""

    store: RunStore
    bus: EventBus
    session: aiohttp.ClientSession
    endpoints: Endpoints
    client: BonzoClient | None
    """The API client (a judged run's; a delivery-only run has none)."""


@contextlib.asynccontextmanager
async def _running(
    plan: RunPlan,
    *,
    progress: Progress | None,
    store_path: str | Path | None,
    subscribers: Sequence[Subscriber],
    judged: bool,
    endpoints: Endpoints | None = None,
) -> AsyncIterator[_Running]:
    """Open the store, the target (unless ``endpoints`` are given) and, for a run that is ``judged``, the
    API client and the preflight; then announce the run.

    The run store, the progress display and the log always subscribe, and the cleanup policy for a
    judged run; ``subscribers`` (publishing, a front door's own) hear every event after them.
    """
    loaded = plan.loaded
    config = loaded.config
    with RunStore(store_path or store_location_for(loaded)) as store, recording_interrupts(loaded, plan.run_id, store):
        recorder = StoreRecorder(store, plan)
        bus = EventBus([recorder, ProgressView(progress or NullProgress()), RunLog(loaded.users)])
        try:
            async with contextlib.AsyncExitStack() as stack:
                session = await stack.enter_async_context(
                    make_session(limit=session_limit(plan), timeout=config.webhook_settings.timeout)
                )
                if endpoints is None:
                    endpoints = await stack.enter_async_context(open_endpoints(plan, session))
                client = None
                if judged:
                    announce(loaded, endpoints)
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
                        hooks=hooks(plan, endpoints),
                        timeout=min(config.webhook_settings.timeout, 10.0),
                    )
                    log.info("%s", checked.describe())
                    bus.subscribe(CleanupPolicy(loaded, endpoints, session, store))
                for subscriber in subscribers:
                    bus.subscribe(subscriber)
                bus.emit(RunStarted(plan, endpoints.target, endpoints.where))
                yield _Running(store, bus, session, endpoints, client)
        finally:
            recorder.flush()  # also when interrupted: every answered delivery is in the store


async def execute(
    plan: RunPlan,
    *,
    progress: Progress | None = None,
    store_path: str | Path | None = None,
    subscribers: Sequence[Subscriber] = (),
) -> RunResult:
    """Preflight, send a planned run, wait for it to settle, judge it; every step is an event."""
    async with _running(plan, progress=progress, store_path=store_path, subscribers=subscribers, judged=True) as run:
        assert run.client is not None
        index = SettleIndex()
        try:
            await deliver_phases(plan, run.endpoints, run.session, run.bus, index)
            settled = await settle_run(plan, run.client, index, run.bus)
            result = judge_run(
                plan, run.endpoints.target, settled, run.store, run.bus, api_requests=run.client.requests_made
            )
        finally:
            index.close()
        await run.bus.emit_async(RunDone(result))
    return result


async def deliver_only(
    plan: RunPlan,
    *,
    progress: Progress | None = None,
    store_path: str | Path | None = None,
    subscribers: Sequence[Subscriber] = (),
    endpoints: Endpoints | None = None,
) -> None:
    """Part of a run: record and send the plan, nothing after (``bonzo-bulk send``, ``validate-webhook
    --send``), to ``endpoints`` when given. Subscribers hear each :class:`~bonzo_bulk.engine.events.RecordDelivered`
    and :class:`~bonzo_bulk.engine.events.DeliveryDone`."""
    async with _running(
        plan, progress=progress, store_path=store_path, subscribers=subscribers, judged=False, endpoints=endpoints
    ) as run:
        await deliver_phases(plan, run.endpoints, run.session, run.bus)


def _planned(phase: PhasePlan, bus: EventBus) -> Iterator[PlannedRecord]:
    """A phase's records as they are made, each batch told to the subscribers (and so stored) before it is sent."""
    batch: list[PlannedRecord] = []
    for record in phase.iter_records():
        batch.append(record)
        if len(batch) == STORE_BATCH:
            bus.emit(RecordsPlanned(phase.kind, batch))
            yield from batch
            batch = []
    if batch:
        bus.emit(RecordsPlanned(phase.kind, batch))
        yield from batch


async def deliver_phases(
    plan: RunPlan,
    endpoints: Endpoints,
    session: aiohttp.ClientSession,
    bus: EventBus,
    index: SettleIndex | None = None,
) -> None:
    """Send every phase's records to its hook; what settling needs of each goes into ``index`` (nothing is kept)."""
    config = plan.loaded.config
    for phase in plan.phases:
        url = endpoints.hook_url if phase.kind == "primary" else endpoints.control_hook_url
        if url is None:
            raise SandboxError(
                "no control hook URL: set SUPERUSER_WEBHOOK_URL or turn the control off (control: false)"
            )
        counts = [0, 0, 0]  # valid, valid accepted, invalid accepted

        def delivered(
            record: PlannedRecord, result: DeliveryResult, kind: PhaseKind = phase.kind, counts: list[int] = counts
        ) -> None:
            counts[0] += record.is_valid
            counts[1 if record.is_valid else 2] += result.accepted
            if index is not None:
                index.add(SettleTarget.of(record, expects_prospect(record, result)))
            bus.emit(RecordDelivered(kind, record, result))

        await deliver(
            _planned(phase, bus),
            url=url,
            settings=config.webhook_settings,
            session=session,
            on_result=delivered,
            on_status=log.warning,
            total=phase.size,
            collect=False,
        )
        bus.emit(DeliveryDone(phase.kind, valid=counts[0], accepted=counts[1], invalid_accepted=counts[2]))


@dataclass(frozen=True)
class Settled:
    """What settling left for judging: the poller's view of each record, and how settling went."""

    outcome: SettleOutcome
    deadline: float
    notes: tuple[str, ...]


async def settle_run(plan: RunPlan, client: BonzoClient, index: SettleIndex, bus: EventBus) -> Settled:
    """Poll Bonzo until every record that should be there is, and stays, or the deadline passes."""
    loaded = plan.loaded
    config = loaded.config
    for user in loaded.users:
        log.info("Using On-Behalf-Of: %s (%s)", user.user_id, user.email)
    deadline = config.polling.deadline or config.processing_delay + config.polling.grace
    outcome = await settle(
        client,
        index,
        users=loaded.users,
        search=plan.run_id if config.test_data_settings.unique_emails else _name_prefix(loaded),
        polling=config.polling,
        deadline_seconds=deadline,
        per_page=config.api_settings.max_prospects_per_request,
        order=config.api_settings.list_order,
        on_poll=lambda found, expected: bus.emit(Polled(found, expected)),
    )
    notes = [
        f"settled in {outcome.seconds:.1f} s over {outcome.polls} poll(s); {client.requests_made} API requests in all "
        f"({outcome.api_requests} while settling)",
        f"clock offset to Bonzo's API: {outcome.clock.describe()}",
    ]
    if outcome.rate_limited_seconds:
        notes.append(
            f"rate limiting: {client.rate_limited_answers} answer(s) 429, {outcome.rate_limited_seconds:.1f} s of the "
            f"{deadline:g} s deadline spent waiting on Retry-After"
        )
    if outcome.stopped_early:
        notes.append(f"settling stopped early: {outcome.stopped_early}")
    elif not outcome.settled:
        notes.append(f"the deadline ({deadline:g} s after the last delivery) passed before every record settled")
    return Settled(outcome, deadline, tuple(notes))


def judge_run(
    plan: RunPlan, target: Target, settled: Settled, store: RunStore, bus: EventBus, *, api_requests: int
) -> RunResult:
    """Judge every record, read back from the store a batch at a time; each outcome is an event."""
    config = plan.loaded.config
    outcome = settled.outcome
    total_records = max(1, plan.size)
    phases = []
    for phase in plan.phases:
        judge = Judge.for_phase(
            phase.kind,
            config.validation_rules,
            transforms=phase.contract.transforms,
            thresholds=config.thresholds,
            integration_type=config.integration_type,
            clock=outcome.clock,
        )
        judging = PhaseJudging(phase.kind, keep_all=phase.size <= KEEP_ALL)
        for batch in store.ledger(plan.run_id, phase.kind):
            seen = outcome.observations_of(record.name for record, _ in batch)
            for record, delivery in batch:
                judged = judge(record, delivery, seen.get(record.name))
                judging.add(judged)
                bus.emit(RecordJudged(judged))
        unexpected = outcome.unexpected if phase.kind == "primary" else []
        result = judging.result(
            stray=verify_unexpected(unexpected),
            unexpected=unexpected,
            thresholds=config.thresholds,
            api_requests=round(api_requests * phase.size / total_records),
            settled=outcome.settled,
            settle_seconds=round(outcome.seconds, 3),
            provenance={f.field: f.by for f in phase.contract.fields},
            sources={f.field: f.source for f in phase.contract.fields if f.source},
        )
        bus.emit(PhaseDone(result))
        phases.append(result)
    notes = list(settled.notes)
    if target == "sandbox":
        notes.append("target: local sandbox — nothing was sent to Bonzo")
    return run_result(plan, target, phases, notes, datetime.now(UTC))


class PhaseJudging:
    """One phase's outcomes as they are judged: tallied, diagnosed, and kept only while small or failing."""

    def __init__(self, kind: PhaseKind, *, keep_all: bool) -> None:
        self.kind = kind
        self.tally = PhaseTally(kind)
        self.diagnoser = Diagnoser(kind)
        self.keep_all = keep_all
        self.kept: list[RecordOutcome] = []

    def add(self, outcome: RecordOutcome) -> None:
        self.tally.add(outcome)
        self.diagnoser.add(outcome.checks)
        if self.keep_all or (not outcome.passed and len(self.kept) < KEEP_ALL):
            self.kept.append(outcome)

    def result(
        self,
        *,
        stray: Sequence[CheckResult],
        unexpected: Sequence[Prospect],
        thresholds: Thresholds,
        api_requests: int,
        settled: bool,
        settle_seconds: float,
        provenance: Mapping[str, str] | None = None,
        sources: Mapping[str, str] | None = None,
    ) -> PhaseResult:
        self.tally.add_stray(stray)
        return PhaseResult(
            kind=self.kind,
            metrics=self.tally.metrics(thresholds=thresholds, api_requests=api_requests),
            outcomes=tuple(self.kept),
            complete=self.keep_all,
            failed_records=self.tally.failed_records,
            stray_checks=tuple(stray),
            unexpected_prospects=tuple(unexpected),
            settled=settled,
            settle_seconds=settle_seconds,
            diagnoses=self.diagnoser.diagnoses(provenance=provenance, sources=sources),
            judged=dict(self.diagnoser.judged),
        )


def run_result(
    plan: RunPlan, target: Target, phases: Sequence[PhaseResult], notes: Sequence[str], finished_at: datetime
) -> RunResult:
    """The result of a run of ``plan`` whose phases have been judged."""
    loaded = plan.loaded
    return RunResult(
        run_id=plan.run_id,
        test_name=loaded.config.test_name,
        integration=loaded.config.integration_type,
        config_path=str(loaded.path) if loaded.path else None,
        target=target,
        started_at=plan.identity.started_at,
        finished_at=finished_at,
        dry_run=False,
        phases=tuple(phases),
        notes=tuple(notes),
    )


def _name_prefix(loaded: LoadedConfig) -> str:
    settings = loaded.config.test_data_settings
    return f"{settings.first_name_pattern}_{settings.last_name_pattern}"


def run_bulk(
    loaded: LoadedConfig,
    *,
    phases: Sequence[PhaseKind] = ("primary", "control"),
    progress: Progress | None = None,
    store_path: str | Path | None = None,
    subscribers: Sequence[Subscriber] = (),
) -> RunResult:
    """Plan and execute a bulk run synchronously (on uvloop where available)."""
    plan = plan_run(loaded, phases=phases)
    return run_async(execute(plan, progress=progress, store_path=store_path, subscribers=subscribers))
