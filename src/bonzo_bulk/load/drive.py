"""The loop while Locust sends: read its journal, tell the run each delivery, watch Bonzo, judge stress steps.

Each lead Locust sent is a :class:`~bonzo_bulk.engine.events.RecordDelivered` on the run's bus (the run
store records it as it would a bulk run's delivery) and a target for settling, expected to produce a
prospect by :func:`bonzo_bulk.judge.verify.expects_prospect`, like every other run's records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from bonzo_bulk.engine.context import RunContext
from bonzo_bulk.engine.events import DeliveryDone, Polled, RecordDelivered
from bonzo_bulk.errors import BonzoBulkError
from bonzo_bulk.judge.verify import expects_prospect
from bonzo_bulk.load.child import JournalRow, LocustChild
from bonzo_bulk.load.knee import StepVerdict, judge_step
from bonzo_bulk.load.scenario import Breaking
from bonzo_bulk.load.schedule import Schedule
from bonzo_bulk.load.stats import Arrival, join
from bonzo_bulk.models import Observation
from bonzo_bulk.settle.index import SettleTarget
from bonzo_bulk.settle.poller import Poller

log = logging.getLogger("bonzo_bulk.load")

EARLY_BREAK_MIN = 10


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
class Driven:
    """What the load did: each arrival's journal row, the stress steps judged, why it stopped, what was sent."""

    rows: dict[int, JournalRow] = field(default_factory=dict)
    t0: float | None = None
    steps: list[StepVerdict] = field(default_factory=list)
    stop_reason: str | None = None
    interrupted: bool = False
    api_requests: int = 0
    targets: list[SettleTarget] = field(default_factory=list)
    """Every lead sent, as settling waits for it."""
    accepted: int = 0

    @property
    def ordered(self) -> list[JournalRow]:
        """The journal rows in arrival order."""
        return sorted(self.rows.values(), key=lambda r: r.seq)


class Drive:
    """The loop while Locust sends: read the journal, tell the run each delivery, poll Bonzo, judge stress steps."""

    def __init__(
        self,
        run: RunContext,
        *,
        schedule: Schedule,
        child: LocustChild,
        poller: Poller,
        interval: float,
        breaking: Breaking | None,
        patience: float,
    ) -> None:
        self.run, self.schedule, self.child, self.poller = run, schedule, child, poller
        self.records = run.plan.phases[0].records
        self.names = [r.name for r in self.records]
        self.interval, self.breaking, self.patience = interval, breaking, patience
        self.state = Driven()

    def _take_rows(self) -> None:
        taken = []
        for row in self.child.rows():
            self.state.rows[row.seq] = row
            if self.state.t0 is None:
                self.state.t0 = row.intended - self.schedule.offsets[row.seq]
            if row.sent is not None:
                record = self.records[row.seq]
                delivery = row.delivery(record)
                self.state.accepted += delivery.accepted
                taken.append(SettleTarget.of(record, expects_prospect(record, delivery)))
                self.run.bus.emit(RecordDelivered("primary", record, delivery))
        self.poller.add(taken)
        self.state.targets += taken

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

    async def run_until_done(self, stop: asyncio.Event) -> Driven:
        """Start Locust and drive until it is done (or ``stop`` is set: the first Ctrl-C sets it); every lead
        it sent has been told to the run, then :class:`~bonzo_bulk.engine.events.DeliveryDone`."""
        try:
            with _ctrl_c(stop):
                await self._drive(stop)
        finally:
            self.child.kill()
            self.poller.close()
        self.run.bus.emit(
            DeliveryDone("primary", valid=len(self.state.targets), accepted=self.state.accepted, invalid_accepted=0)
        )
        if not self.state.rows:
            raise BonzoBulkError(
                "Locust sent nothing; its output ends with:\n" + (self.child.tail_of_log() or "(no output)")
            )
        return self.state

    async def _drive(self, stop: asyncio.Event) -> None:
        users = [u.user_id for u in self.run.plan.loaded.users]
        requests_before = self.poller.client.requests_made
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
            # What Bonzo shows while the load runs, told like a settle poll (the run's progress, serve's /live).
            self.run.bus.emit(Polled(len(observations), len(self.state.targets)))
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
