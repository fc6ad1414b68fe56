"""The streaming engine: events in order, each record judged once, big phases kept lean, the ledger in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bonzo_bulk._http import run_async
from bonzo_bulk.engine import run as engine
from bonzo_bulk.engine.events import (
    DeliveryDone,
    Event,
    EventBus,
    PhaseDone,
    Polled,
    RecordDelivered,
    RecordJudged,
    RecordsPlanned,
    RunDone,
    RunStarted,
)
from bonzo_bulk.library import execute
from bonzo_bulk.models import Stage
from bonzo_bulk.plan.planner import plan_run
from bonzo_bulk.sandbox import SandboxServer
from bonzo_bulk.store import RunStore


def _faulty(sandbox: SandboxServer) -> dict[str, Any]:
    return {"url": sandbox.url, "faults": {"seed": 3, "faults": [{"kind": "wrong_owner", "rate": 0.3}]}}


def test_every_record_is_stored_before_it_is_sent_and_judged_once(
    make_config: Any, tmp_path: Path, sandbox: SandboxServer
) -> None:
    loaded = make_config(tmp_path, sandbox.url, test_records=12, sandbox=_faulty(sandbox))
    plan = plan_run(loaded)
    events: list[Event] = []
    result = run_async(execute(plan, subscribers=[events.append]))

    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == RunStarted.__name__ and kinds[-1] == RunDone.__name__
    planned = [r.name for e in events if isinstance(e, RecordsPlanned) for r in e.records]
    delivered = [e.record.name for e in events if isinstance(e, RecordDelivered)]
    judged = [e.outcome.name for e in events if isinstance(e, RecordJudged)]
    assert sorted(planned) == sorted(delivered) == sorted(judged)
    assert len(judged) == len(set(judged)) == plan.size
    # A record is told to the store (RecordsPlanned) before its delivery is.
    first_seen = {name: i for i, e in enumerate(events) for name in _names(e)}
    for i, event in enumerate(events):
        if isinstance(event, RecordDelivered):
            assert first_seen[event.record.name] < i
    phases = [e.result.kind for e in events if isinstance(e, PhaseDone)]
    assert phases == [p.kind for p in result.phases]
    assert [e.phase for e in events if isinstance(e, DeliveryDone)] == [p.kind for p in plan.phases]

    # The outcomes in the result are the ones judged, and the store holds the same ledger.
    assert result.primary is not None and result.primary.complete
    judged_outcomes = {e.outcome.name: e.outcome for e in events if isinstance(e, RecordJudged)}
    for outcome in result.primary.outcomes:
        assert judged_outcomes[outcome.name] == outcome
    with RunStore(Path(loaded.config.reports_dir) / "runs.sqlite3") as store:
        stored = {o.name: o for o in store.outcomes(result.run_id, "primary")}
        assert stored == {o.name: o for o in result.primary.outcomes}
        assert store.load_run(result.run_id) == result
    wrong = {o.name for o in result.primary.outcomes if not o.stage_ok(Stage.ASSIGNMENT)}
    failed = {o.name for o in result.primary.outcomes if not o.passed}
    assert wrong and wrong <= failed and result.primary.failed_records == len(failed)


def test_settling_polls_while_records_are_delivered_and_counts_only_what_was_sent(
    make_config: Any, tmp_path: Path, sandbox: SandboxServer
) -> None:
    # One request at a time: delivering 120 records takes many 20 ms poll intervals.
    loaded = make_config(
        tmp_path,
        sandbox.url,
        test_records=120,
        webhook_settings={"concurrent_requests": 1},
        polling={"interval": 0.02, "max_interval": 0.05, "deadline": 2.0},
    )
    events: list[Event] = []
    result = run_async(execute(plan_run(loaded), subscribers=[events.append]))

    delivery_done = max(i for i, e in enumerate(events) if isinstance(e, DeliveryDone))
    polls = [(i, e) for i, e in enumerate(events) if isinstance(e, Polled)]
    assert any(i < delivery_done for i, _ in polls)  # polled while delivering
    for i, poll in polls:  # a progress view never hears of more expected records than were delivered
        delivered = sum(isinstance(e, RecordDelivered) for e in events[:i])
        assert poll.found <= poll.expected <= delivered
    primary = result.primary
    assert primary is not None
    assert result.unverified == 0 and not primary.unexpected_prospects  # nothing seen early passed for a stray
    assert primary.metrics.created == 120
    note = next(n for n in result.notes if n.startswith("settled in"))
    assert "after the last delivery" in note and "while delivering" in note


def _names(event: Event) -> list[str]:
    if isinstance(event, RecordsPlanned):
        return [r.name for r in event.records]
    return []


def test_a_big_phase_keeps_only_its_failing_records_and_the_store_keeps_all(
    make_config: Any, tmp_path: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "KEEP_ALL", 5)
    loaded = make_config(tmp_path, sandbox.url, test_records=18, control=False, sandbox=_faulty(sandbox))
    result = run_async(execute(plan_run(loaded)))
    phase = result.primary
    assert phase is not None and not phase.complete
    assert phase.outcomes and all(not o.passed for o in phase.outcomes)
    assert len(phase.outcomes) == min(5, phase.failed_records)
    assert phase.metrics.generated == 18 + len(loaded.config.invalid_records)
    with RunStore(Path(loaded.config.reports_dir) / "runs.sqlite3") as store:
        every = list(store.outcomes(result.run_id, "primary"))
        assert len(every) == phase.metrics.generated
        assert sum(not o.passed for o in every) == phase.failed_records
        assert len(store.processing_seconds(result.run_id, "primary")) == phase.metrics.processing_time.count
        [summary] = [s for s in store.list_runs() if s.run_id == result.run_id]
        assert summary.records == phase.metrics.generated  # every record, not the ones kept in memory
        loaded_back = store.load_run(result.run_id, keep=5)
        assert loaded_back.primary is not None and not loaded_back.primary.complete
        assert loaded_back.primary.metrics == phase.metrics
        assert [d.check for d in loaded_back.primary.diagnoses] == [d.check for d in phase.diagnoses]


def test_a_per_record_subscriber_may_not_await() -> None:
    async def sleepy(event: Event) -> None:
        return None

    bus = EventBus([sleepy])
    with pytest.raises(TypeError, match="only RunDone awaits"):
        bus.emit(DeliveryDone("primary", 1, 1, 0))
    seen: list[Event] = []

    async def later(event: Event) -> None:
        seen.append(event)

    async def done() -> None:
        await EventBus([later]).emit_async(DeliveryDone("primary", 1, 1, 0))

    run_async(done())
    assert len(seen) == 1
