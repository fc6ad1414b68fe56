"""Regression detection against a baseline run: each rule, its tolerance, and what it leaves alone."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from builders import FAULTY, MANGLED, MISSING, WRONG_OWNER, build_run

from bonzo_bulk.config.schema import RegressionSettings
from bonzo_bulk.models import LatencySummary, PhaseMetrics, RunResult, percent
from bonzo_bulk.report.regression import MIN_COST_RECORDS, Regression, comparable_concurrency, compare

BASE = build_run(run_id="base_1", control=3)


def _with_metrics(result: RunResult, kind: str = "primary", **changes: Any) -> RunResult:
    phases = tuple(
        dataclasses.replace(p, metrics=dataclasses.replace(p.metrics, **changes)) if p.kind == kind else p
        for p in result.phases
    )
    return dataclasses.replace(result, run_id="now_2", phases=phases)


def _metric(result: RunResult, kind: str = "primary") -> PhaseMetrics:
    return next(p for p in result.phases if p.kind == kind).metrics


def test_an_identical_run_has_no_regressions() -> None:
    assert compare(BASE, BASE, RegressionSettings()) == []


def test_p95_processing_beyond_tolerance_is_flagged_with_its_ceiling() -> None:
    before = _metric(BASE).processing_time
    slower = dataclasses.replace(before, p95_ms=before.p95_ms * 1.6)
    [regression] = compare(_with_metrics(BASE, processing_time=slower), BASE, RegressionSettings())
    assert regression == Regression(
        metric="p95_processing_ms",
        phase="primary",
        baseline=before.p95_ms,
        current=before.p95_ms * 1.6,
        allowed=pytest.approx(before.p95_ms * 1.5),  # type: ignore[arg-type]
        message=regression.message,
    )
    assert "base_1" in regression.message
    assert "+50%" in regression.message


def test_within_tolerance_is_not_a_regression() -> None:
    before = _metric(BASE).processing_time
    slower = dataclasses.replace(before, p95_ms=before.p95_ms * 1.49)
    assert compare(_with_metrics(BASE, processing_time=slower), BASE, RegressionSettings()) == []
    tight = RegressionSettings(p95_processing_increase=0.1)
    assert [r.metric for r in compare(_with_metrics(BASE, processing_time=slower), BASE, tight)] == [
        "p95_processing_ms"
    ]


def test_latency_and_api_cost_growth_are_flagged() -> None:
    big = build_run(run_id="base_big", records=MIN_COST_RECORDS, control=3)
    m = _metric(big)
    worse = _with_metrics(
        big,
        delivery_latency=dataclasses.replace(m.delivery_latency, p95_ms=m.delivery_latency.p95_ms * 2),
        api_requests_per_record=m.api_requests_per_record * 1.6,
    )
    assert {r.metric for r in compare(worse, big, RegressionSettings())} == {
        "p95_latency_ms",
        "api_requests_per_record",
    }
    lenient = RegressionSettings(p95_latency_increase=1.5, api_requests_increase=1.0)
    assert compare(worse, big, lenient) == []


def test_api_cost_of_a_small_run_is_not_its_fixed_costs_spread_thin() -> None:
    """Issue 24.4: 3 records against a 21-record baseline "rose to 2.33 from 0.29" API requests per record."""
    baseline = build_run(run_id="base_21", records=21, invalid=0, api_requests_per_record=0.29)
    small = build_run(run_id="now_3", records=3, invalid=0, api_requests_per_record=2.33)
    assert compare(small, baseline, RegressionSettings()) == []
    # Above the minimum sample, the baseline's cost is taken at this run's size: all of its requests may be fixed.
    big = build_run(run_id="base_1000", records=1000, invalid=0, api_requests_per_record=0.015)
    smaller = build_run(run_id="now_200", records=200, invalid=0, api_requests_per_record=0.07)
    assert compare(smaller, big, RegressionSettings()) == [], "15 requests / 200 = 0.075 per record is allowed"
    costly = build_run(run_id="now_200", records=200, invalid=0, api_requests_per_record=0.2)
    [regression] = compare(costly, big, RegressionSettings())
    assert regression.metric == "api_requests_per_record"
    assert regression.message == (
        "primary API requests per record 0.2 is above the allowed ceiling 0.112 (baseline base_1000: 0.015 over 1000"
        " records, 0.075 at this run's size, +50% allowed)"
    )


def test_latency_is_compared_only_at_a_comparable_concurrency() -> None:
    """Issue 24.4: 31 ms against 2 ms was flagged on a ``--concurrency 32`` run against a concurrency-4 baseline."""
    m = _metric(BASE)
    base = _with_metrics(BASE, delivery_latency=dataclasses.replace(m.delivery_latency, p95_ms=2.0))
    base = dataclasses.replace(base, run_id="base_1")
    busy = _with_metrics(BASE, delivery_latency=dataclasses.replace(m.delivery_latency, p95_ms=31.0))
    assert compare(busy, base, RegressionSettings(), concurrency={"now_2": 32, "base_1": 4}) == []
    assert compare(busy, base, RegressionSettings(), concurrency={"now_2": 32, "base_1": None}) == []
    same = compare(busy, base, RegressionSettings(), concurrency={"now_2": 4, "base_1": 4})
    assert [r.metric for r in same] == ["p95_latency_ms"]
    assert comparable_concurrency(8, 10) and not comparable_concurrency(8, 16)


def test_a_message_states_the_value_once_and_the_bound_it_crossed() -> None:
    faulty = build_run(run_id="now_2", control=3, faults={4: WRONG_OWNER})
    [regression] = [r for r in compare(faulty, BASE, RegressionSettings()) if r.metric == "assignment_accuracy"]
    shown = percent(regression.current)
    assert regression.message == (
        f"primary assignment accuracy {shown} is below the allowed floor 100.0% (baseline base_1: 100.0%,"
        " allowed drop 0.0%)"
    )
    assert regression.message.count(shown) == 1


def test_any_accuracy_drop_is_flagged_by_default_and_tolerated_when_configured() -> None:
    faulty = build_run(run_id="now_2", control=3, faults={4: WRONG_OWNER, 7: MISSING, 9: MANGLED})
    flagged = compare(faulty, BASE, RegressionSettings())
    assert {(r.metric, r.phase) for r in flagged} >= {
        ("creation_rate", "primary"),
        ("assignment_accuracy", "primary"),
        ("mapping_accuracy", "primary"),
    }
    creation = next(r for r in flagged if r.metric == "creation_rate")
    assert (creation.baseline, creation.allowed) == (1.0, 1.0)
    assert creation.current == _metric(faulty).creation_rate
    assert all(r.phase == "primary" for r in flagged), "the control phase did not change"
    assert [r for r in compare(faulty, BASE, RegressionSettings(accuracy_drop=0.2)) if "rate" in r.metric] == []


def test_invalid_record_handling_drop_is_flagged() -> None:
    worse = _with_metrics(BASE, invalid_handled=1)
    [regression] = compare(worse, BASE, RegressionSettings())
    assert (regression.metric, regression.baseline, regression.current) == ("invalid_handling_rate", 1.0, 0.5)


def test_a_better_run_and_missing_data_are_not_regressions() -> None:
    worse_base = build_run(run_id="base_bad", faults=FAULTY, control=3)
    better = build_run(run_id="now_2", control=3)
    assert compare(better, worse_base, RegressionSettings()) == []
    no_timing = _with_metrics(BASE, processing_time=LatencySummary(), delivery_latency=LatencySummary())
    assert compare(no_timing, BASE, RegressionSettings()) == []
    assert compare(BASE, no_timing, RegressionSettings()) == []


def test_phases_are_compared_like_for_like() -> None:
    only_primary = dataclasses.replace(BASE, phases=BASE.phases[:1])
    worse_control = _with_metrics(BASE, "control", delivery_rate=0.5)
    assert compare(worse_control, only_primary, RegressionSettings()) == []
    [regression] = compare(worse_control, BASE, RegressionSettings())
    assert (regression.phase, regression.metric) == ("control", "delivery_rate")


def test_tiny_absolute_time_changes_are_noise() -> None:
    m = _metric(BASE)
    base = _with_metrics(BASE, delivery_latency=dataclasses.replace(m.delivery_latency, p95_ms=2.0))
    doubled = _with_metrics(BASE, delivery_latency=dataclasses.replace(m.delivery_latency, p95_ms=4.0))
    assert compare(doubled, base, RegressionSettings()) == []
    far = _with_metrics(BASE, delivery_latency=dataclasses.replace(m.delivery_latency, p95_ms=40.0))
    assert [r.metric for r in compare(far, base, RegressionSettings())] == ["p95_latency_ms"]
