"""The per-problem alert policy, as pure decisions: what each problem owes after a run, and which run-level
notices stay when problems page instead."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from bonzo_bulk.config.monitor import AlertPolicy
from bonzo_bulk.monitor.policy import AlertState, Decision, problem_notices, run_notices
from bonzo_bulk.problems.signature import Signature
from bonzo_bulk.problems.state import state_of
from bonzo_bulk.problems.track import Change, RunProblems, Tracked
from bonzo_bulk.store.rows import ProblemRow

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = AlertPolicy(remind_every_runs=2, max_reminders=1)


def _problem(**changes: object) -> ProblemRow:
    signature = Signature("monitorbase", "sandbox", "primary", "owner", "systemic")
    row = ProblemRow(
        problem_id=signature.problem_id, integration="monitorbase", target="sandbox", phase="primary", check="owner",
        cause="systemic", title=signature.title, status="open", first_seen_at=NOW, last_seen_at=NOW,
        first_run_id="r1", last_run_id="r1", runs=1, records_affected=3, last_failed=3, last_judged=3,
        peak_share=1.0, clean_runs=0, escalated=True, fix="check test_users", detail="owner wrong",
    )  # fmt: skip
    return dataclasses.replace(row, **changes)  # type: ignore[arg-type]


def _kinds(change: Change, problem: ProblemRow, policy: AlertPolicy = POLICY) -> list[str]:
    tracked = Tracked(problem, change, None, state_of(problem, NOW))
    return [n.kind for n in problem_notices(RunProblems("r9", NOW, (tracked,), {}), policy, NOW)]


def test_each_change_owes_its_notice() -> None:
    assert _kinds("new", _problem()) == ["new"]
    assert _kinds("reopened", _problem(status="reopened")) == ["reopened"]
    assert _kinds("escalated", _problem()) == ["escalated"]
    assert _kinds("resolved", _problem(status="resolved", clean_runs=2)) == ["resolved"]


def test_reminders_every_n_runs_up_to_the_limit_or_after_m_minutes() -> None:
    assert _kinds("known", _problem(runs_since_notice=1)) == []
    assert _kinds("known", _problem(runs_since_notice=2)) == ["reminder"]
    assert _kinds("known", _problem(runs_since_notice=5, reminders_sent=1)) == []
    by_time = AlertPolicy(remind_every_minutes=60)
    assert _kinds("known", _problem(last_notice_at=NOW - timedelta(minutes=59)), by_time) == []
    assert _kinds("known", _problem(last_notice_at=NOW - timedelta(minutes=61)), by_time) == ["reminder"]


def test_acknowledged_or_muted_never_page_and_a_lapsed_ack_pages_again() -> None:
    acked = _problem(ack_by="ana", ack_note="ticket", runs_since_notice=9)
    muted = _problem(muted_until=NOW + timedelta(hours=1), runs_since_notice=9)
    for change in ("known", "escalated"):
        assert _kinds(change, acked) == [] and _kinds(change, muted) == []
    assert _kinds("resolved", dataclasses.replace(acked, status="resolved")) == ["resolved"]
    assert _kinds("resolved", dataclasses.replace(muted, status="resolved")) == []
    lapsed = dataclasses.replace(acked, ack_until=NOW - timedelta(minutes=1))
    assert _kinds("known", lapsed) == ["reminder"]


def test_run_level_notices_kept_when_problems_page() -> None:
    down = AlertState(last_status="failed")
    errored = AlertState(last_status="error")
    assert run_notices(Decision(down, ("alert",), ""), down, "failed", per_problem=True) == ()
    assert run_notices(Decision(down, ("alert",), ""), down, "error", per_problem=True) == ("alert",)
    assert run_notices(Decision(down, ("recovery",), ""), down, "ok", per_problem=True) == ()
    assert run_notices(Decision(down, ("recovery",), ""), errored, "ok", per_problem=True) == ("recovery",)
    assert run_notices(Decision(down, ("degraded",), ""), down, "degraded", per_problem=True) == ("degraded",)
    assert run_notices(Decision(down, ("flapping",), ""), down, "failed", per_problem=True) == ()
    assert run_notices(Decision(down, ("alert",), ""), down, "failed", per_problem=False) == ("alert",)
