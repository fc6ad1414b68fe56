"""The subscribers every run has: the run store, the progress display and the log.

Each turns the engine's events (:mod:`bonzo_bulk.engine.events`) into one output; the engine knows
none of them. A front door adds its own (publishing, a pytest reporter) beside these.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

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
from bonzo_bulk.models import DeliveryResult, PhaseKind, PhaseMetrics, RecordOutcome, RunKind, User, percent
from bonzo_bulk.plan.planner import RunPlan
from bonzo_bulk.store import RunStore
from bonzo_bulk.store.ledger import BATCH
from bonzo_bulk.target.endpoints import Progress, config_snapshot

log = logging.getLogger("bonzo_bulk")


class StoreRecorder:
    """Writes the run into the run store as it happens: the run and each record before it is sent, each
    delivery and outcome in batches, the final figures when the run is done."""

    def __init__(self, store: RunStore, plan: RunPlan, kind: RunKind = "bulk") -> None:
        self.store, self.plan, self.kind = store, plan, kind
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
            kind=self.kind,
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
