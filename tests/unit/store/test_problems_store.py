"""Problems in the run store (migration 9), on SQLite and PostgreSQL: one problem across runs, resolved after
clean runs, reopened when seen again, and never opened twice by trackers racing on one store."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from builders import RunSpec, build_run, with_checks

from bonzo_bulk.config.monitor import ProblemSettings
from bonzo_bulk.models import CheckResult, RunResult, Stage
from bonzo_bulk.problems.state import acknowledge, state_of
from bonzo_bulk.problems.track import ProblemTracker
from bonzo_bulk.store import RunStore

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _run(number: int, *, faulty: bool, records: int = 6) -> RunResult:
    """A run whose every record lands with the wrong owner (``faulty``), or a clean one: the judge's check names."""
    result = build_run(RunSpec(records=records, invalid=0, run_id=f"20260301_0900{number:02d}_ab12"))
    primary = result.phases[0]
    checks = [
        CheckResult(o.name, name, Stage.ASSIGNMENT, not faulty, want, got)
        for o in primary.outcomes
        for name, want, got in (("owner", 101, 102), ("owner_email", "a@x.test", "b@x.test"))
    ]
    checks += [CheckResult(o.name, "created", Stage.PROCESSING, True, 1, 1) for o in primary.outcomes]
    return dataclasses.replace(result, phases=(with_checks(primary, checks, replace=True),))


def _clock(start: datetime = NOW) -> Callable[[], datetime]:
    ticks = iter(range(1000))
    return lambda: start + timedelta(minutes=15 * next(ticks))


def test_three_faulty_runs_one_problem_two_clean_resolve_it_the_fault_again_reopens(store_at: str | Path) -> None:
    tracker = ProblemTracker(store_at, ProblemSettings(resolve_after=2), clock=_clock())
    changes = []
    for number, faulty in enumerate([True, True, True, False, False, True], start=1):
        found = tracker.track(_run(number, faulty=faulty))
        assert found is not None
        changes.append(sorted({t.change for t in found.problems}))
    assert changes == [["new"], ["known"], ["known"], [], ["resolved"], ["reopened"]]
    with RunStore(store_at) as store:
        problems = store.problems(integration="monitorbase", target="sandbox")
        assert len(problems) == 1, [p.title for p in problems]
        problem = problems[0]
        assert problem.status == "reopened" and problem.runs == 4 and problem.records_affected == 24
        assert problem.cause == "systemic" and problem.last_failed == 6 and problem.last_judged == 6
        seen, events = store.problem_history(problem.problem_id)
        assert [s.run_id for s in seen] == [f"20260301_0900{n:02d}_ab12" for n in (6, 3, 2, 1)]
        assert seen[0].samples[0].startswith("TestRecord_MonitorBase_")
        assert [e.event for e in events] == ["reopened", "resolved", "opened"]


def test_an_acknowledgement_survives_a_failing_run_and_lapses_when_it_is_resolved(store_at: str | Path) -> None:
    tracker = ProblemTracker(store_at, ProblemSettings(resolve_after=1), clock=_clock())
    first = tracker.track(_run(1, faulty=True))
    assert first is not None
    problem_id = first.problems[0].problem.problem_id
    with RunStore(store_at) as store:
        store.change_problem(
            problem_id, lambda p: acknowledge(p, by="ana", note="Bonzo support is on it", until=None, now=NOW)
        )
    again = tracker.track(_run(2, faulty=True))
    assert again is not None and [(t.change, t.state) for t in again.problems] == [("known", "acknowledged")]
    assert again.problems[0].label == f"known problem {problem_id} (acknowledged)"
    tracker.track(_run(3, faulty=False))
    reopened = tracker.track(_run(4, faulty=True))
    assert reopened is not None and [(t.change, t.state) for t in reopened.problems] == [("reopened", "reopened")]
    with RunStore(store_at) as store:
        stored = store.problem(problem_id)
        assert stored is not None and stored.ack_by is None and state_of(stored, NOW) == "reopened"


def test_two_trackers_racing_on_one_store_open_the_problem_once(store_at: str | Path) -> None:
    RunStore(store_at).close()  # migrate once, before the race
    runs = [_run(n, faulty=True) for n in range(1, 9)]
    found: list[str] = []
    errors: list[BaseException] = []

    def monitor(batch: list[RunResult]) -> None:
        tracker = ProblemTracker(store_at, ProblemSettings())
        for result in batch:
            try:
                tracked = tracker.track(result)
                assert tracked is not None, tracker.error
                found.extend(t.change for t in tracked.problems)
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

    threads = [threading.Thread(target=monitor, args=(runs[i::2],)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    problems_per_run = len(found) // len(runs)
    assert found.count("new") == problems_per_run, found
    with RunStore(store_at) as store:
        problems = store.problems()
        assert len(problems) == problems_per_run
        assert all(p.runs == len(runs) for p in problems)


def test_a_run_that_never_judged_the_check_does_not_count_as_clean(store_at: str | Path) -> None:
    tracker = ProblemTracker(store_at, ProblemSettings(resolve_after=2), clock=_clock())
    tracker.track(_run(1, faulty=True))
    result = build_run(RunSpec(records=6, invalid=0, run_id="20260301_090002_ab12"))
    primary = result.phases[0]
    refused = [CheckResult(o.name, "delivered", Stage.DELIVERY, False, "2xx", 503) for o in primary.outcomes]
    down = dataclasses.replace(result, phases=(with_checks(primary, refused, replace=True),))
    changes = []
    for result in [*(dataclasses.replace(down, run_id=f"{down.run_id}_{n}") for n in range(3)), _run(7, faulty=False)]:
        found = tracker.track(result)  # the hook refused everything: no owner judged, nothing says the misroute is gone
        assert found is not None
        changes.append(sorted({t.change for t in found.problems if t.problem.check == "owner"}))
    last = tracker.track(_run(8, faulty=False))
    assert last is not None
    assert changes == [[], [], [], []] and [t.change for t in last.problems] == ["resolved"]
