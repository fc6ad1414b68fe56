"""Regression detection against a baseline run: each rule, its tolerance, and what it leaves alone."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from builders import FAULTY, MANGLED, MISSING, WRONG_OWNER, build_run

from bonzo_bulk.config.schema import RegressionSettings
from bonzo_bulk.models import LatencySummary, PhaseMetrics, RunResult
from bonzo_bulk.report.regression import Regression, compare

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
    m = _metric(BASE)
    worse = _with_metrics(
        BASE,
        delivery_latency=dataclasses.replace(m.delivery_latency, p95_ms=m.delivery_latency.p95_ms * 2),
        api_requests_per_record=m.api_requests_per_record * 1.6,
    )
    assert {r.metric for r in compare(worse, BASE, RegressionSettings())} == {
        "p95_latency_ms",
        "api_requests_per_record",
    }
    lenient = RegressionSettings(p95_latency_increase=1.5, api_requests_increase=1.0)
    assert compare(worse, BASE, lenient) == []


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
