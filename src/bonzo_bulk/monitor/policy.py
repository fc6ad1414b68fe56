"""The alert policy as a pure state machine: (state, this run's status, now) -> (new state, notices to send).

No I/O here, so every rule is tested directly and the same decisions come out under cron, systemd,
Kubernetes or GitHub Actions; the state is stored in the run store between runs (``state.py``).

Example::

    decision = decide(AlertState(), "failed", now, AlertPolicy(failures_before_alert=2))
    decision.notices   # () -- the first failure only counts
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from bonzo_bulk.config.monitor import AlertPolicy
from bonzo_bulk.models import RunResult, ThresholdVerdict
from bonzo_bulk.problems.state import pages, state_of
from bonzo_bulk.problems.track import RunProblems, Tracked

Status = Literal["ok", "degraded", "failed", "error"]
"""ok; degraded (passed, but near a limit or regressed); failed (a check failed); error (the run could not finish)."""
NoticeKind = Literal[
    "alert", "reminder", "recovery", "degraded", "flapping", "new", "reopened", "escalated", "resolved"
]
"""A run's notices (alert, reminder, recovery, degraded, flapping) and a problem's (new, reopened, escalated,
resolved, reminder)."""


@dataclass(frozen=True, slots=True)
class AlertState:
    """What the policy remembers between runs (stored as JSON in the run store)."""

    runs: int = 0
    last_status: Status | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    alerted: bool = False
    """An alert went out for the current outage (a recovery is owed)."""
    last_notice_at: datetime | None = None
    failures_since_notice: int = 0
    reminders_sent: int = 0
    degraded_notified: bool = False
    flapping_notified: bool = False
    recent: tuple[bool, ...] = ()
    """Whether each of the last runs failed, oldest first (as many as the flapping window)."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields (times as ISO strings)."""
        data = dataclasses.asdict(self)
        for key in ("failing_since", "last_notice_at"):
            data[key] = data[key].isoformat() if data[key] else None
        data["recent"] = list(self.recent)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertState:
        """The state :meth:`to_json` wrote (unknown keys from a newer version are ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("failing_since", "last_notice_at"):
            values[key] = datetime.fromisoformat(values[key]) if values.get(key) else None
        values["recent"] = tuple(bool(v) for v in values.get("recent", ()))
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Decision:
    """The new state and the notices this run owes, with the reason in words."""

    state: AlertState
    notices: tuple[NoticeKind, ...]
    reason: str


def decide(state: AlertState, status: Status, now: datetime, policy: AlertPolicy) -> Decision:
    """Apply one run's status to the alert state."""
    failed = status in ("failed", "error")
    recent = (*state.recent, failed)[-policy.flapping_window :]
    base = dataclasses.replace(state, runs=state.runs + 1, last_status=status, recent=recent)
    if failed:
        return _on_failure(base, now, policy)
    return _on_success(base, status, policy)


def _on_failure(state: AlertState, now: datetime, policy: AlertPolicy) -> Decision:
    streak = state.consecutive_failures + 1
    since = state.failing_since or now
    state = dataclasses.replace(state, consecutive_failures=streak, failing_since=since)
    if not state.alerted:
        by_runs = streak >= policy.failures_before_alert
        by_time = policy.minutes_before_alert is not None and now - since >= timedelta(
            minutes=policy.minutes_before_alert
        )
        if by_runs or by_time:
            why = f"{streak} failed run(s) in a row" if by_runs else f"failing for {_minutes(now - since)}"
            alerted = dataclasses.replace(
                state, alerted=True, last_notice_at=now, failures_since_notice=0, reminders_sent=0
            )
            return Decision(alerted, ("alert",), f"alert: {why}")
        failures = sum(state.recent)
        if failures >= policy.flapping_failures and not state.flapping_notified:
            flapping = dataclasses.replace(state, flapping_notified=True, last_notice_at=now)
            return Decision(
                flapping, ("flapping",), f"flapping: {failures} failures in the last {len(state.recent)} runs"
            )
        return Decision(state, (), f"failure {streak} of {policy.failures_before_alert} before an alert")
    state = dataclasses.replace(state, failures_since_notice=state.failures_since_notice + 1)
    if state.reminders_sent >= policy.max_reminders:
        return Decision(state, (), f"still down ({streak} failed runs); reminders used up")
    by_runs = policy.remind_every_runs is not None and state.failures_since_notice >= policy.remind_every_runs
    by_time = (
        policy.remind_every_minutes is not None
        and state.last_notice_at is not None
        and now - state.last_notice_at >= timedelta(minutes=policy.remind_every_minutes)
    )
    if by_runs or by_time:
        reminded = dataclasses.replace(
            state, reminders_sent=state.reminders_sent + 1, last_notice_at=now, failures_since_notice=0
        )
        return Decision(reminded, ("reminder",), f"reminder {reminded.reminders_sent}: still down ({streak} runs)")
    return Decision(state, (), f"still down ({streak} failed runs); already alerted")


def _on_success(state: AlertState, status: Status, policy: AlertPolicy) -> Decision:
    notices: list[NoticeKind] = []
    reasons: list[str] = []
    owed = state.alerted or (state.flapping_notified and not any(state.recent))
    if owed:
        if policy.recovery:
            notices.append("recovery")
        reasons.append(f"recovered after {state.consecutive_failures} failed run(s)" if state.alerted else "stable")
    flapping = state.flapping_notified and any(state.recent)
    state = dataclasses.replace(
        state,
        consecutive_failures=0,
        failing_since=None,
        alerted=False,
        failures_since_notice=0,
        reminders_sent=0,
        flapping_notified=flapping,
    )
    if status == "degraded":
        if policy.degraded and not state.degraded_notified:
            notices.append("degraded")
            reasons.append("degraded")
        state = dataclasses.replace(state, degraded_notified=True)
    else:
        state = dataclasses.replace(state, degraded_notified=False)
    return Decision(state, tuple(notices), "; ".join(reasons) or status)


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:.0f} min"


def near_limit(verdict: ThresholdVerdict, margin: float) -> bool:
    """Whether a passed threshold has less than ``margin`` of its room left (a time near its ceiling, or a
    rate that used most of its allowed failures).

    >>> near_limit(ThresholdVerdict("processing_p95_seconds", 60, 57, True, "<="), 0.1)
    True
    >>> near_limit(ThresholdVerdict("delivery_rate", 0.95, 0.99, True, ">="), 0.1)
    False
    """
    if not verdict.passed or margin <= 0:
        return False
    if verdict.comparison == "<=":
        return verdict.threshold > 0 and verdict.actual > verdict.threshold * (1 - margin)
    if verdict.threshold <= 1:
        room = 1 - verdict.threshold
        return room > 0 and (1 - verdict.actual) > room * (1 - margin)
    return verdict.actual < verdict.threshold * (1 + margin)


def near_limits(result: RunResult, margin: float) -> list[str]:
    """``phase threshold`` of every passed threshold near its limit."""
    return [
        f"{phase.kind} {verdict.name}"
        for phase in result.phases
        for verdict in phase.metrics.thresholds
        if near_limit(verdict, margin)
    ]


_RUN_LEVEL_KEPT: frozenset[NoticeKind] = frozenset({"degraded"})


def run_notices(
    decision: Decision, previous: AlertState, status: Status, *, per_problem: bool
) -> tuple[NoticeKind, ...]:
    """The run's own notices when problems page instead (``monitor.problems.alerts``): a failed run's alert,
    reminder, recovery and flapping are said per problem; a run that could not finish (no problems to tell),
    its recovery, and degraded are still said per run."""
    if not per_problem:
        return decision.notices
    kept: list[NoticeKind] = []
    for kind in decision.notices:
        errored = kind in ("alert", "reminder") and status == "error"
        recovered = kind == "recovery" and previous.last_status == "error"
        if kind in _RUN_LEVEL_KEPT or errored or recovered:
            kept.append(kind)
    return tuple(kept)


@dataclass(frozen=True, slots=True)
class ProblemNotice:
    """One notice about one problem, and why it goes out."""

    kind: NoticeKind
    tracked: Tracked
    reason: str


def problem_notices(found: RunProblems, policy: AlertPolicy, now: datetime) -> list[ProblemNotice]:
    """What each problem of a run owes: new, reopened, escalated and resolved as they happen, a reminder for an
    open problem nobody acknowledged (every ``remind_every_runs`` runs or ``remind_every_minutes``, at most
    ``max_reminders``). An acknowledged or muted problem never pages; a muted one is not even told resolved."""
    notices: list[ProblemNotice] = []
    for tracked in found.problems:
        problem = tracked.problem
        if tracked.change == "resolved":
            muted = problem.muted_until is not None and problem.muted_until > now
            if not muted:
                notices.append(ProblemNotice("resolved", tracked, f"resolved after {problem.clean_runs} clean run(s)"))
            continue
        if not pages(problem, now):
            continue
        if tracked.change == "new":
            notices.append(ProblemNotice("new", tracked, "a new problem"))
        elif tracked.change == "reopened":
            notices.append(ProblemNotice("reopened", tracked, "seen again after it was resolved"))
        elif tracked.change == "escalated":
            notices.append(
                ProblemNotice("escalated", tracked, f"now {problem.last_failed} of {problem.last_judged} records")
            )
        elif _reminder_due(tracked, policy, now):
            notices.append(
                ProblemNotice(
                    "reminder", tracked, f"still {state_of(problem, now)}, unacknowledged, {problem.runs} run(s)"
                )
            )
    return notices


def _reminder_due(tracked: Tracked, policy: AlertPolicy, now: datetime) -> bool:
    problem = tracked.problem
    if problem.reminders_sent >= policy.max_reminders:
        return False
    by_runs = policy.remind_every_runs is not None and problem.runs_since_notice >= policy.remind_every_runs
    by_time = (
        policy.remind_every_minutes is not None
        and problem.last_notice_at is not None
        and now - problem.last_notice_at >= timedelta(minutes=policy.remind_every_minutes)
    )
    return by_runs or by_time
