"""The loop while Locust sends: read its journal, tell the run each delivery, watch Bonzo, judge stress steps.

Each lead Locust sent is a :class:`~bonzo_bulk.engine.events.RecordDelivered` on the run's bus (the run
store records it as it would a bulk run's delivery) and a target for settling, expected to produce a
prospect by :func:`bonzo_bulk.judge.verify.expects_prospect`, like every other run's records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bonzo_bulk._http import graceful_interrupt
from bonzo_bulk.engine.context import RunContext
from bonzo_bulk.engine.events import DeliveryDone, Event, Polled, RecordDelivered, RecordJudged
from bonzo_bulk.errors import BonzoBulkError
from bonzo_bulk.judge.verify import expects_prospect
from bonzo_bulk.load.child import JournalRow, LocustChild
from bonzo_bulk.load.feed import LOOKAHEAD_S, PlanFeed
from bonzo_bulk.load.knee import StepVerdict, judge_step
from bonzo_bulk.load.scenario import Breaking
from bonzo_bulk.load.schedule import Schedule
from bonzo_bulk.load.stats import Arrival, join
from bonzo_bulk.models import Observation
from bonzo_bulk.settle.index import SettleTarget
from bonzo_bulk.settle.poller import Poller

log = logging.getLogger("bonzo_bulk.load")

EARLY_BREAK_MIN = 10
FEED_EVERY_S = 1.0
"""How often the plan is topped up (it stays :data:`~bonzo_bulk.load.feed.LOOKAHEAD_S` ahead)."""
TICK_S = 1.0
PROGRESS_EVERY_S = 8.0
"""A progress line after this long in silence, whatever the output is (a terminal, a pipe, CI): 2 s under the
promised 10 s, for the moments the loop is busy storing a batch or judging a step on a loaded machine."""


class Heartbeat:
    """Says what the run is doing at least every ``every`` seconds, in a terminal or a pipe: on the run's events
    (subscribed to its bus: settling polls, records judged) and, while the run waits, from a ticker
    (:meth:`keep_beating`) that repeats the latest status."""

    def __init__(self, say: Callable[[str], None], every: float = PROGRESS_EVERY_S) -> None:
        self.say, self.every = say, every
        self.last = time.monotonic()
        self.judged = 0
        self.status: Callable[[], str] | None = None
        """The line that says where the run is now."""
        self.loading = False
        """While the load runs its progress line is the status: polls made while loading are not settling."""

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.every

    def line(self, text: str) -> None:
        self.last = time.monotonic()
        self.say(text)

    def tick(self) -> None:
        """Say the status if nothing was said for ``every`` seconds."""
        if self.status is not None and self.due():
            self.line(self.status())

    async def keep_beating(self) -> None:
        """Tick every second until cancelled."""
        while True:
            await asyncio.sleep(TICK_S)
            self.tick()

    def __call__(self, event: Event) -> None:
        if isinstance(event, Polled):
            found, expected = event.found, event.expected
            if not self.loading:
                self.status = lambda: f"settling: {found:,} of {expected:,} leads seen in Bonzo"
            self.tick()
        elif isinstance(event, RecordJudged):
            self.judged += 1
            self.status = lambda: f"judging: {self.judged:,} leads judged"
            self.tick()


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
        feed: PlanFeed,
        child: LocustChild,
        poller: Poller,
        interval: float,
        breaking: Breaking | None,
        patience: float,
        heartbeat: Heartbeat | None = None,
        give_up_after: float | None = None,
    ) -> None:
        self.run, self.schedule, self.feed, self.child, self.poller = run, schedule, feed, child, poller
        self.interval, self.breaking, self.patience = interval, breaking, patience
        self.heartbeat = heartbeat or Heartbeat(log.info)
        self.say = self.heartbeat.say
        self.give_up_after = give_up_after
        """Seconds after the start when the load is stopped whatever is left (the run's cap of minutes)."""
        self.state = Driven()
        self._started = self._said = time.monotonic()
        self._sent_at_last = self._visible = 0
        self.heartbeat.status = self._progress_text

    def _progress(self, *, force: bool = False) -> None:
        """The progress line, now if ``force``, else when :data:`PROGRESS_EVERY_S` seconds passed in silence."""
        if force:
            self.heartbeat.line(self._progress_text())
        else:
            self.heartbeat.tick()

    def _progress_text(self) -> str:
        """Time into the schedule, leads sent, the rate since the last line, leads seen in Bonzo, steps judged."""
        now = time.monotonic()
        sent = len(self.state.targets)
        rate = (sent - self._sent_at_last) / max(now - self._said, 1e-9)
        self._said, self._sent_at_last = now, sent
        step = f" · {len(self.state.steps)} step(s) judged" if self.breaking is not None else ""
        t0 = self.state.t0
        clock = "senders starting" if t0 is None else f"{min(time.time() - t0, self.schedule.duration):.0f} s"
        return (
            f"progress: {clock} of {self.schedule.duration:g} s · sent {sent:,} of "
            f"{len(self.schedule.offsets):,} · {rate:,.1f} leads/s now · {self._visible:,} visible in Bonzo{step}"
        )

    def _take_rows(self) -> None:
        taken = []
        for row in self.child.rows():
            self.state.rows[row.seq] = row
            if self.state.t0 is None:
                self.state.t0 = row.intended - self.schedule.offsets[row.seq]
            record = self.feed.take(row.seq)
            if row.sent is not None:
                delivery = row.delivery(record)
                self.state.accepted += delivery.accepted
                taken.append(SettleTarget.of(record, expects_prospect(record, delivery)))
                self.run.bus.emit(RecordDelivered("primary", record, delivery))
        self.poller.add(taken)
        self.state.targets += taken

    def _arrivals(self, observations: dict[str, Observation]) -> list[Arrival]:
        return join(self.state.rows.values(), self.feed.names, self.schedule.offsets, observations)

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

    def _over_cap(self) -> None:
        """Past the run's cap of minutes: stop taking arrivals (what is in flight still answers)."""
        if self.give_up_after is None or self.state.stop_reason is not None:
            return
        if time.monotonic() - self._started > self.give_up_after and self.child.running:
            self.child.request_stop()
            self.state.stop_reason = f"the cap of time was reached after {self.give_up_after:g} s of sending"
            self.say(f"stopping the load: {self.state.stop_reason}")

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

    def _first_ctrl_c(self, stop: asyncio.Event) -> None:
        self.say("Ctrl-C: stopping the load; what was sent is settled and reported (Ctrl-C again aborts)")
        stop.set()

    async def run_until_done(self, stop: asyncio.Event) -> Driven:
        """Start Locust and drive until it is done (or ``stop`` is set: the first Ctrl-C sets it); every lead
        it sent has been told to the run, then :class:`~bonzo_bulk.engine.events.DeliveryDone`."""
        self.heartbeat.loading = True
        try:
            with graceful_interrupt(lambda: self._first_ctrl_c(stop)):
                await self._drive(stop)
        finally:
            self.heartbeat.loading = False
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

    async def _keep_feeding(self) -> None:
        """Write the plan :data:`~bonzo_bulk.load.feed.LOOKAHEAD_S` ahead of the schedule until it is all written
        or the load stops (what is never written is never made, stored or sent)."""
        started = time.time()
        while not self.feed.done and self.state.stop_reason is None:
            into = time.time() - (self.state.t0 if self.state.t0 is not None else started)
            self.feed.fill(into + LOOKAHEAD_S)
            await asyncio.sleep(FEED_EVERY_S)

    async def _drive(self, stop: asyncio.Event) -> None:
        self.feed.open()
        await self.child.start()
        feeder = asyncio.create_task(self._keep_feeding())
        try:
            await self._watch(stop, feeder)
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder

    async def _watch(self, stop: asyncio.Event, feeder: asyncio.Task[None]) -> None:
        users = [u.user_id for u in self.run.plan.loaded.users]
        requests_before = self.poller.client.requests_made
        judge_until = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
            if feeder.done() and not feeder.cancelled() and (failed := feeder.exception()) is not None:
                self.child.request_stop()
                raise failed
            if stop.is_set() and not self.state.interrupted:
                self.state.interrupted = True
                self.state.stop_reason = self.state.stop_reason or "interrupted (Ctrl-C)"
                self.child.request_stop()
            self._over_cap()
            self._take_rows()
            if self.state.rows:
                await self.poller.poll(users)
            self._visible = self.poller.found_count
            # What Bonzo shows while the load runs, told like a settle poll (the run's progress, serve's /live).
            self.run.bus.emit(Polled(self._visible, len(self.state.targets)))
            if self._steps_pending():  # a stress step to judge: only then every sighting is read (json and all)
                self._judge_steps(self.poller.observations())
            self._progress()
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
        self._visible = self.poller.found_count
        self._progress(force=True)
        self.state.api_requests = self.poller.client.requests_made - requests_before
