"""How a run changes problems, as a pure function: signatures from the run's own findings, escalation when a
sporadic problem's share grows past monitor.problems.escalate_share, the same run tracked twice changing nothing."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from builders import RunSpec, build_run, with_checks

from bonzo_bulk.config.monitor import ProblemSettings
from bonzo_bulk.models import CheckResult, RunResult, Stage
from bonzo_bulk.problems.signature import sightings
from bonzo_bulk.problems.track import track
from bonzo_bulk.store.rows import ProblemRow

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _misrouted(number: int, wrong: int, records: int = 10) -> RunResult:
    """A run where the first ``wrong`` records land with another owner (and so another team)."""
    result = build_run(RunSpec(records=records, invalid=0, run_id=f"run{number}"))
    primary = result.phases[0]
    checks = []
    for index, outcome in enumerate(primary.outcomes):
        ok = index >= wrong
        checks += [
            CheckResult(outcome.name, "owner", Stage.ASSIGNMENT, ok, 101, 101 if ok else 102),
            CheckResult(outcome.name, "team", Stage.ASSIGNMENT, ok, 11, 11 if ok else 12),
            CheckResult(outcome.name, "first_name", Stage.MAPPING, index != 0, "Ann", "ANN" if index == 0 else "Ann"),
        ]
    return dataclasses.replace(result, phases=(with_checks(primary, checks, replace=True),))


def test_sporadic_signatures_fold_one_misroute_and_name_each_field() -> None:
    found = {(s.signature.check, s.signature.cause): s for s in sightings(_misrouted(1, wrong=2))}
    assert set(found) == {("owner", "misrouted"), ("first_name", "mangled")}
    misrouted = found["owner", "misrouted"]
    assert (misrouted.failed, misrouted.judged, misrouted.checks) == (2, 10, ("owner", "team"))
    assert misrouted.samples == ("TestRecord_MonitorBase_001", "TestRecord_MonitorBase_002")


def test_a_sporadic_problem_escalates_once_when_its_share_passes_the_threshold() -> None:
    settings = ProblemSettings(escalate_share=0.5)
    rows: list[ProblemRow] = []
    changes = []
    for number, wrong in enumerate([2, 3, 6, 7], start=1):
        applied, tracked = track(rows, _misrouted(number, wrong), settings, NOW + timedelta(minutes=number))
        rows = [*{p.problem_id: p for p in [*rows, *applied.problems]}.values()]
        changes.append({t.problem.check: t.change for t in tracked})
    assert [c["owner"] for c in changes] == ["new", "known", "escalated", "known"]
    assert [c["first_name"] for c in changes] == ["new", "known", "known", "known"]
    owner = next(p for p in rows if p.check == "owner")
    assert owner.escalated and owner.peak_share == 0.7 and owner.records_affected == 2 + 3 + 6 + 7


def test_the_same_run_tracked_twice_changes_nothing() -> None:
    result = _misrouted(1, wrong=2)
    first, _ = track([], result, ProblemSettings(), NOW)
    again, tracked = track(list(first.problems), result, ProblemSettings(), NOW + timedelta(minutes=1))
    assert {t.change for t in tracked} == {"known"} and again.events == ()
    assert [p.runs for p in again.problems] == [1, 1]
