"""The engine: one bulk run end to end — (plan) -> preflight -> deliver -> settle -> judge — as events.

Records stream: each batch is planned, handed to the subscribers (the run store writes it before a
byte is sent), delivered, and reduced to what settling needs; after settling, the records are read
back from the store a batch at a time, judged into one :class:`~bonzo_bulk.models.RecordOutcome`
each, tallied and handed on. Nothing holds every payload, response and check of a big run.

Every front door opens the run with :func:`bonzo_bulk.engine.context.open_run`, subscribes what it wants
done with it — reports, the cleanup policy, its own collectors — and calls :func:`execute` (or
:func:`deliver_only`). Nothing here imports an output.

Example::

    async with open_run(plan_run(loaded)) as run:
        run.subscribe(print)
        result = await execute(run)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from bonzo_bulk.bonzo import BonzoClient
from bonzo_bulk.config.schema import Thresholds
from bonzo_bulk.deliver.sender import deliver
from bonzo_bulk.deliver.watch import PROGRESS_LOG
from bonzo_bulk.engine.context import Destination, RunContext
from bonzo_bulk.engine.events import (
    DeliveryDone,
    EventBus,
    PhaseDone,
    Polled,
    RecordDelivered,
    RecordJudged,
    RecordsPlanned,
    RunDone,
)
from bonzo_bulk.engine.unfinished import store_back, unfinished
from bonzo_bulk.errors import BonzoAPIError, StoreError
from bonzo_bulk.judge.diagnosis import Diagnoser, pinned_zone_contradicted
from bonzo_bulk.judge.stamps import StampEvidence, StampMapping
from bonzo_bulk.judge.tally import PhaseTally
from bonzo_bulk.judge.timing import describe_widths
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
    RunKind,
    RunResult,
    Target,
)
from bonzo_bulk.plan.planner import PhasePlan, RunPlan
from bonzo_bulk.settle.index import SettleIndex, SettleTarget
from bonzo_bulk.settle.policy import SettlePolicy
from bonzo_bulk.settle.poller import SettleOutcome
from bonzo_bulk.store import RunStore
from bonzo_bulk.store.ledger import BATCH

log = logging.getLogger("bonzo_bulk")

STORE_BATCH = BATCH
"""Records planned, stored and then sent together (deliveries and outcomes are stored in batches as big)."""


async def execute(run: RunContext) -> RunResult:
    """Start an opened run, send it, wait for it to settle, judge it; every step is an event."""
    assert run.client is not None, "a judged run is opened with judged=True"
    run.start()
    index = SettleIndex()
    stage = "settling"
    try:
        await deliver_phases(run.plan, run.destination, run.session, run.bus, index)
        settled = await settle_run(run.plan, run.client, index, run.bus)
        stage = "judging"
        await store_back(run.store)
        result = judge_run(
            run.plan,
            run.destination.target,
            settled,
            run.store,
            run.bus,
            api_requests=run.client.requests_made,
            kind=run.kind,
        )
    except (StoreError, BonzoAPIError) as exc:
        raise unfinished(run, index, exc, stage) from exc
    finally:
        index.close()
    await run.bus.emit_async(RunDone(result))
    return result


async def deliver_only(run: RunContext) -> None:
    """Part of a run: start it, record and send the plan, nothing after (``bonzo-bulk generate``,
    ``validate-webhook --send``). Subscribers hear each :class:`~bonzo_bulk.engine.events.RecordDelivered`
    and :class:`~bonzo_bulk.engine.events.DeliveryDone`."""
    run.start()
    await deliver_phases(run.plan, run.destination, run.session, run.bus)


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
    destination: Destination,
    session: aiohttp.ClientSession,
    bus: EventBus,
    index: SettleIndex | None = None,
) -> None:
    """Send every phase's records to its hook; what settling needs of each goes into ``index`` (nothing is kept)."""
    config = plan.loaded.config
    for phase in plan.phases:
        url = destination.url_of(phase.kind)
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
            on_status=logging.getLogger(PROGRESS_LOG).info,
            total=phase.size,
            collect=False,
        )
        bus.emit(DeliveryDone(phase.kind, valid=counts[0], accepted=counts[1], invalid_accepted=counts[2]))


@dataclass(frozen=True)
class Settled:
    """What settling left for judging: the poller's view of each record, and how settling went."""

    outcome: SettleOutcome
    notes: tuple[str, ...]


async def settle_run(plan: RunPlan, client: BonzoClient, index: SettleIndex, bus: EventBus) -> Settled:
    """Poll Bonzo until every record that should be there is, and stays, or the deadline passes."""
    loaded = plan.loaded
    for user in loaded.users:
        log.info("Using On-Behalf-Of: %s (%s)", user.user_id, user.email)
    policy = SettlePolicy.of(loaded.config, plan.run_id)
    deadline = policy.deadline
    outcome = await policy.settle(
        client, index, users=loaded.users, on_poll=lambda found, expected: bus.emit(Polled(found, expected))
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
    redirects = client.redirects.describe()
    if redirects:
        notes.append(redirects)
    notes.extend(outcome.listing_notes())
    if outcome.stopped_early:
        notes.append(f"settling stopped early: {outcome.stopped_early}")
    elif not outcome.settled:
        notes.append(f"the deadline ({deadline:g} s after the last delivery) passed before every record settled")
    return Settled(outcome, tuple(notes))


def learn_stamps(plan: RunPlan, settled: Settled, store: RunStore) -> StampMapping:
    """What the run's records say about ``created_at`` (its zone, Bonzo's clock): one pass before judging."""
    evidence = StampEvidence()
    for phase in plan.phases:
        for batch in store.deliveries(plan.run_id, phase.kind):  # a record never sent says nothing
            seen = settled.outcome.observations_of(delivery.record_name for delivery in batch)
            for delivery in batch:
                evidence.add(delivery, seen.get(delivery.record_name))
    return evidence.mapping(settled.outcome.clock, plan.loaded.config.contract.created_at)


def judge_run(
    plan: RunPlan,
    target: Target,
    settled: Settled,
    store: RunStore,
    bus: EventBus,
    *,
    api_requests: int,
    kind: RunKind = "bulk",
) -> RunResult:
    """Judge every record, read back from the store a batch at a time; each outcome is an event (the result
    is of the run's ``kind``, as it was opened)."""
    config = plan.loaded.config
    outcome = settled.outcome
    total_records = max(1, plan.size)
    stamps = learn_stamps(plan, settled, store)
    notes = [*settled.notes, *stamps.notes]
    phases = []
    for phase in plan.phases:
        judge = Judge.for_phase(
            phase.kind,
            config.validation_rules,
            transforms=phase.contract.transforms,
            thresholds=config.thresholds,
            integration_type=config.integration_type,
            stamps=stamps,
            unverified=outcome.unverified_reason(),
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
            stamps=stamps,
        )
        notes.append(describe_widths(phase.kind, result.metrics.timing_widths))
        bus.emit(PhaseDone(result))
        phases.append(result)
    if target == "sandbox":
        notes.append("target: local sandbox — nothing was sent to Bonzo")
    return run_result(plan, target, phases, notes, datetime.now(UTC), kind=kind)


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
        stamps: StampMapping | None = None,
    ) -> PhaseResult:
        self.tally.add_stray(stray)
        diagnoses = self.diagnoser.diagnoses(provenance=provenance, sources=sources)
        pinned = pinned_zone_contradicted(self.kind, stamps.pin_contradiction if stamps else None, self.tally.found)
        if pinned is not None:
            diagnoses = (*diagnoses, pinned)
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
            diagnoses=diagnoses,
            judged=dict(self.diagnoser.judged),
        )


def run_result(
    plan: RunPlan,
    target: Target,
    phases: Sequence[PhaseResult],
    notes: Sequence[str],
    finished_at: datetime,
    *,
    kind: RunKind = "bulk",
) -> RunResult:
    """The result of a run of ``plan`` (opened as ``kind``) whose phases have been judged."""
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
        kind=kind,
    )
