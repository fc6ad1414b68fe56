"""The subscribers every run has: the run store, the progress display and the log.

Each turns the engine's events (:mod:`bonzo_bulk.engine.events`) into one output; the engine knows
none of them. A front door adds its own (publishing, a pytest reporter) beside these.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from bonzo_bulk.engine.events import (
    DeliveryDone,
    Event,
    PhaseDone,
    Polled,
    RecordDelivered,
    RecordJudged,
    RecordsPlanned,
    RunDone,
    RunStarted,
)
from bonzo_bulk.errors import StoreError
from bonzo_bulk.models import DeliveryResult, PhaseKind, PhaseMetrics, RecordOutcome, User, percent
from bonzo_bulk.plan.planner import RunPlan
from bonzo_bulk.store import RunStore
from bonzo_bulk.store.ledger import BATCH
from bonzo_bulk.store.progress import RunProgress, UserProgress
from bonzo_bulk.target.endpoints import Progress, config_snapshot

log = logging.getLogger("bonzo_bulk")


class StoreRecorder:
    """Writes the run into the run store as it happens: the run and each record before it is sent, each
    delivery and outcome in batches, the final figures when the run is done."""

    def __init__(self, store: RunStore, plan: RunPlan) -> None:
        self.store, self.plan = store, plan
        self.deliveries: dict[PhaseKind, list[DeliveryResult]] = {}
        self.outcomes: dict[PhaseKind, list[RecordOutcome]] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, RecordDelivered):
            pending = self.deliveries.setdefault(event.phase, [])
            pending.append(event.delivery)
            if len(pending) >= BATCH:
                self._flush_deliveries(event.phase)
        elif isinstance(event, RecordJudged):
            phase = event.outcome.record.phase
            judged = self.outcomes.setdefault(phase, [])
            judged.append(event.outcome)
            if len(judged) >= BATCH:
                self._flush_outcomes(phase)
        elif isinstance(event, RecordsPlanned):
            self.store.add_records(self.plan.run_id, event.records)
        elif isinstance(event, DeliveryDone):
            self._flush_deliveries(event.phase)
        elif isinstance(event, PhaseDone):
            self._flush_outcomes(event.result.kind)
        elif isinstance(event, RunStarted):
            self._begin()
        elif isinstance(event, RunDone):
            self.flush()
            started = time.perf_counter()
            self.store.finish_run(event.result)
            log.info("Run store: run finished in %.2f s", time.perf_counter() - started)

    def _begin(self) -> None:
        loaded = self.plan.loaded
        config = loaded.config
        self.store.begin_run(
            run_id=self.plan.run_id,
            test_name=config.test_name,
            integration=config.integration_type,
            config_path=str(loaded.path) if loaded.path else None,
            target=loaded.target,
            started_at=self.plan.identity.started_at,
            dry_run=False,
            config_snapshot=config_snapshot(loaded),
        )

    def _flush_deliveries(self, phase: PhaseKind) -> None:
        pending = self.deliveries.pop(phase, [])
        if pending:
            self.store.add_deliveries(self.plan.run_id, phase, pending)

    def _flush_outcomes(self, phase: PhaseKind) -> None:
        judged = self.outcomes.pop(phase, [])
        if judged:
            self.store.add_outcomes(self.plan.run_id, phase, judged)

    def flush(self) -> None:
        """Write whatever is buffered (also when the run is interrupted)."""
        for phase in list(self.deliveries):
            self._flush_deliveries(phase)
        for phase in list(self.outcomes):
            self._flush_outcomes(phase)


PROGRESS_INTERVAL = 1.0
"""Seconds between two writes of a run's progress to the store (the last one, when the run is done, always goes)."""


class ProgressRecorder:
    """Writes the run's funnel (planned -> sent -> accepted -> visible in Bonzo -> judged) and per-user split into
    the run store at most once a second, and once more when the run is done, so that a server reading the store
    (``bonzo-bulk serve``'s ``/live``) shows the run wherever it runs. A failed write is a warning: progress is a
    view, the run goes on."""

    def __init__(
        self,
        store: RunStore,
        plan: RunPlan,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = PROGRESS_INTERVAL,
    ) -> None:
        self.store, self.plan, self.clock, self.interval = store, plan, clock, interval
        self.counts: Counter[str] = Counter()
        self.users: dict[str, Counter[str]] = {}
        self.visible = self.expected = 0
        self.last_write: float | None = None
        self.dirty = False
        self.broken = False

    def _user(self, email: str) -> Counter[str]:
        return self.users.setdefault(email, Counter())

    def __call__(self, event: Event) -> None:
        if isinstance(event, RecordDelivered):
            self.counts["sent"] += 1
            if event.record.is_valid and event.delivery.accepted:
                self.counts["accepted"] += 1
                self._user(event.record.expected_user.email)["accepted"] += 1
        elif isinstance(event, RecordJudged):
            outcome = event.outcome
            self.counts["judged"] += 1
            self.counts["failed"] += not outcome.passed
            user = self._user(outcome.record.expected_user.email)
            user["judged"] += 1
            user["passed"] += outcome.passed
        elif isinstance(event, RecordsPlanned):
            self.counts["planned"] += len(event.records)
            for record in event.records:
                self._user(record.expected_user.email)["planned"] += 1
        elif isinstance(event, Polled):
            self.visible, self.expected = event.found, event.expected
        self.dirty = True
        if isinstance(event, RunDone):
            self._write(finished=True, passed=event.result.passed)
        elif self.last_write is None or self.clock() - self.last_write >= self.interval:
            self._write()

    def state(self, *, finished: bool = False, passed: bool | None = None) -> RunProgress:
        """The funnel as the events so far tell it."""
        config = self.plan.loaded.config
        started = self.plan.identity.started_at
        return RunProgress(
            run_id=self.plan.run_id,
            test_name=config.test_name,
            integration=config.integration_type,
            target=self.plan.loaded.target,
            started_at=started,
            updated_at=datetime.now(UTC),
            planned=self.counts["planned"],
            sent=self.counts["sent"],
            accepted=self.counts["accepted"],
            visible=self.visible,
            expected=self.expected,
            judged=self.counts["judged"],
            failed=self.counts["failed"],
            per_user={
                email: UserProgress(c["planned"], c["accepted"], c["judged"], c["passed"])
                for email, c in self.users.items()
            },
            finished=finished,
            passed=passed,
        )

    def _write(self, *, finished: bool = False, passed: bool | None = None) -> None:
        if self.broken or not self.dirty:
            return
        self.last_write = self.clock()
        self.dirty = False
        try:
            self.store.save_progress(self.state(finished=finished, passed=passed))
        except StoreError as exc:
            self.broken = True
            log.warning("the run's progress is not written to the store any more (%s); the run goes on", exc)


class ProgressView:
    """Drives a progress display (rich bars in the CLI, nothing under pytest) from the events:
    deliver (records sent), settle (expected prospects seen), judge (records judged)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.size = 0
        self.started: set[str] = set()

    def _bar(self, name: str, total: int | None) -> None:
        if name not in self.started:
            self.started.add(name)
            self.progress.stage(name, total)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RecordDelivered):
            self.progress.advance("deliver")
        elif isinstance(event, RecordJudged):
            self._bar("judge", self.size)
            self.progress.advance("judge")
        elif isinstance(event, Polled):
            self._bar("settle", event.expected)
            self.progress.update("settle", event.found, event.expected)
        elif isinstance(event, RunStarted):
            self.size = event.plan.size
            self._bar("deliver", self.size)


class RunLog:
    """The run's log lines: deliveries, what was found per user, the figures and the verdict."""

    def __init__(self, users: Sequence[User]) -> None:
        self.users = users
        self.found: dict[tuple[PhaseKind, int], list[int]] = {}
        self.found_any: dict[PhaseKind, int] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, RecordJudged):
            outcome = event.outcome
            if outcome.record.is_valid:
                row = self.found.setdefault((outcome.record.phase, outcome.record.expected_user.user_id), [0, 0])
                row[0] += 1
                observation = outcome.observation
                row[1] += observation is not None and outcome.record.expected_user.user_id in observation.seen_in
                self.found_any[outcome.record.phase] = self.found_any.get(outcome.record.phase, 0) + outcome.found
        elif isinstance(event, DeliveryDone):
            label = "Webhook delivery" if event.phase == "primary" else "Control webhook delivery"
            log.info(
                "%s: %d/%d successful (%s)", label, event.accepted, event.valid, percent(event.accepted, event.valid)
            )
            if event.invalid_accepted:
                log.info("%s: %d invalid test record(s) accepted by the webhook", label, event.invalid_accepted)
        elif isinstance(event, PhaseDone):
            self._phase(event)
        elif isinstance(event, RunDone):
            log.info("Run %s: thresholds %s", event.result.run_id, "met" if event.result.passed else "FAILED")

    def _phase(self, event: PhaseDone) -> None:
        phase = event.result
        kind = phase.kind
        for user in self.users:
            expected, found = self.found.get((kind, user.user_id), [0, 0])
            log.info(
                "Found %d/%d %stest prospects for %s",
                found,
                expected,
                "control " if kind == "control" else "",
                user.email,
            )
        m = phase.metrics
        label = "Prospect creation" if kind == "primary" else "Control prospect creation"
        found_total = self.found_any.get(kind, 0)
        log.info("%s: %d/%d prospects found (%s)", label, found_total, m.valid, percent(found_total, m.valid))
        prefix = "" if kind == "primary" else "Control "
        log.info("%sUser assignment accuracy: %d/%d correct (%s)", *_accuracy(prefix, m.assigned_correctly, m))
        log.info("%sData mapping accuracy: %d/%d (%s)", *_accuracy(prefix, m.mapped_correctly, m))
        log.info(
            "%sProcessing time: p50 %.2f s, p95 %.2f s; API requests per verified record: %.3f",
            prefix,
            m.processing_time.p50_ms / 1000,
            m.processing_time.p95_ms / 1000,
            m.api_requests_per_record,
        )


def _accuracy(prefix: str, correct: int, metrics: PhaseMetrics) -> tuple[str, int, int, str]:
    return prefix, correct, metrics.created, percent(correct, metrics.created)
