"""The alert policy, rule by rule: escalation by runs or minutes, reminders, recovery, degraded, flapping."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from bonzo_bulk.config.monitor import AlertPolicy, MonitorSettings
from bonzo_bulk.models import ThresholdVerdict
from bonzo_bulk.monitor.policy import AlertState, Status, decide, near_limit

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def play(statuses: Sequence[Status], policy: AlertPolicy, *, every: timedelta = timedelta(minutes=15)) -> list[str]:
    """The notices of each run of a status sequence ('-' when none), the state carried run to run."""
    state = AlertState()
    heard = []
    for n, status in enumerate(statuses):
        decision = decide(state, status, T0 + n * every, policy)
        state = decision.state
        heard.append(",".join(decision.notices) or "-")
    return heard


def test_alert_after_n_consecutive_failures_then_silence_then_one_recovery() -> None:
    policy = AlertPolicy(failures_before_alert=3)
    heard = play(["failed", "failed", "failed", "failed", "error", "ok", "ok"], policy)
    assert heard == ["-", "-", "alert", "-", "-", "recovery", "-"]


def test_a_success_between_failures_resets_the_count() -> None:
    policy = AlertPolicy(failures_before_alert=2, flapping_failures=5, flapping_window=10)
    assert play(["failed", "ok", "failed", "ok", "failed", "failed"], policy) == ["-", "-", "-", "-", "-", "alert"]


def test_alert_by_minutes_failing() -> None:
    policy = AlertPolicy(failures_before_alert=10, minutes_before_alert=30)
    heard = play(["failed"] * 4, policy, every=timedelta(minutes=15))
    assert heard == ["-", "-", "alert", "-"], "failing since 0 min: 30 min reached on the third run"


def test_reminders_by_runs_stop_at_the_maximum() -> None:
    policy = AlertPolicy(failures_before_alert=1, remind_every_runs=2, max_reminders=2)
    heard = play(["failed"] * 8, policy)
    assert heard == ["alert", "-", "reminder", "-", "reminder", "-", "-", "-"]


def test_reminders_by_minutes() -> None:
    policy = AlertPolicy(failures_before_alert=1, remind_every_minutes=60)
    heard = play(["failed"] * 6, policy, every=timedelta(minutes=30))
    assert heard == ["alert", "-", "reminder", "-", "reminder", "-"]


def test_no_recovery_message_when_recovery_is_off() -> None:
    policy = AlertPolicy(failures_before_alert=1, recovery=False)
    assert play(["failed", "ok"], policy) == ["alert", "-"]


def test_degraded_is_notified_once_per_episode() -> None:
    policy = AlertPolicy()
    heard = play(["degraded", "degraded", "ok", "degraded"], policy)
    assert heard == ["degraded", "-", "-", "degraded"]
    assert play(["degraded"], AlertPolicy(degraded=False)) == ["-"]


def test_recovery_into_degraded_says_both() -> None:
    assert play(["failed", "degraded"], AlertPolicy(failures_before_alert=1)) == ["alert", "recovery,degraded"]


def test_flapping_x_failures_in_y_runs_never_consecutive() -> None:
    policy = AlertPolicy(failures_before_alert=2, flapping_failures=3, flapping_window=6)
    pair: list[Status] = ["failed", "ok"]
    calm: list[Status] = ["ok"]
    flapping = pair * 3 + calm * 6
    heard = play(flapping, policy)
    assert heard[:6] == ["-", "-", "-", "-", "flapping", "-"]
    assert heard[6:].count("recovery") == 1, "once the window is clean, one recovery"
    assert heard.count("flapping") == 1


def test_state_survives_a_round_trip_through_json() -> None:
    policy = AlertPolicy(failures_before_alert=1, remind_every_runs=1)
    state = decide(AlertState(), "failed", T0, policy).state
    restored = AlertState.from_json(state.to_json())
    assert restored == state
    assert decide(restored, "failed", T0 + timedelta(minutes=1), policy).notices == ("reminder",)


@pytest.mark.parametrize(
    ("verdict", "near"),
    [
        (ThresholdVerdict("processing_p95_seconds", 60, 55, True, "<="), True),
        (ThresholdVerdict("processing_p95_seconds", 60, 50, True, "<="), False),
        (ThresholdVerdict("delivery_rate", 0.95, 0.952, True, ">="), True),
        (ThresholdVerdict("delivery_rate", 0.95, 1.0, True, ">="), False),
        (ThresholdVerdict("control_assignment_accuracy", 1.0, 1.0, True, ">="), False),
        (ThresholdVerdict("delivery_rate", 0.95, 0.5, False, ">="), False),
    ],
)
def test_near_limit(verdict: ThresholdVerdict, near: bool) -> None:
    assert near_limit(verdict, 0.1) is near


def test_settings_refuse_a_url_where_a_variable_name_belongs() -> None:
    with pytest.raises(ValueError, match="is not an environment variable name"):
        MonitorSettings(notify_env="json://host/token")
    with pytest.raises(ValueError, match="flapping_failures"):
        AlertPolicy(flapping_failures=5, flapping_window=3)
