"""Regressions against history: the prediction interval, the minimum effect, comparability, change points."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import begin_run_of, build_run

from bonzo_bulk.config.schema import RegressionSettings
from bonzo_bulk.report.change_points import change_points
from bonzo_bulk.report.history_regression import (
    comparable_runs,
    detect_summary,
    size_class,
    upper_prediction_bound,
)
from bonzo_bulk.report.publish import publish
from bonzo_bulk.report.regression import Regression
from bonzo_bulk.store import RunStore, RunSummary

T0 = datetime(2026, 2, 1, tzinfo=UTC)
SETTINGS = RegressionSettings()


def row(i: int, p95_ms: float, **changes: Any) -> RunSummary:
    values: dict[str, Any] = {
        "run_id": f"run_{i:03d}",
        "test_name": "t",
        "integration": "monitorbase",
        "target": "sandbox",
        "started_at": T0 + timedelta(hours=i),
        "finished_at": T0 + timedelta(hours=i, minutes=1),
        "passed": True,
        "records": 21,
        "delivery_rate": 1.0,
        "creation_rate": 1.0,
        "assignment_accuracy": 1.0,
        "mapping_accuracy": 1.0,
        "p95_processing_ms": p95_ms,
        "p95_latency_ms": 20.0,
        "api_requests_per_record": 0.5,
        "is_baseline": False,
    }
    values.update(changes)
    return RunSummary(**values)


def stable(count: int, level: float = 20_000.0, seed: int = 3) -> list[RunSummary]:
    rng = random.Random(seed)
    return [row(i, level * rng.lognormvariate(0, 0.05)) for i in range(count)]


def metrics(found: Sequence[Regression]) -> list[str]:
    return [r.metric for r in found]


def test_a_clear_step_is_flagged_with_its_bound_and_typical_value() -> None:
    history = stable(20)
    [found] = detect_summary(row(20, 30_000.0), history, SETTINGS, poll_interval_ms=1000)
    assert (found.metric, found.basis) == ("p95_processing_ms", "history")
    assert 19_000 < found.baseline < 21_000 and found.allowed < 30_000
    bound = found.message.split("is above the prediction bound ")[1].split(" ")[0]
    assert found.message.startswith("p95 processing time 30,000 ms is above the prediction bound ")
    assert 20_000 < float(bound.replace(",", "")) < 30_000
    assert "one-sided 99.9%, from the 20 comparable runs before" in found.message


def test_noise_within_the_interval_is_not_flagged() -> None:
    history = stable(20)
    typical = history[-1].p95_processing_ms or 0
    assert detect_summary(row(20, typical * 1.03), history, SETTINGS, poll_interval_ms=1000) == []


def test_the_minimum_effect_is_the_larger_of_ten_percent_and_the_resolution() -> None:
    flat = [row(i, 2_000.0 + (i % 2)) for i in range(10)]  # a tiny spread: any rise leaves the interval
    assert metrics(detect_summary(row(10, 2_300.0), flat, SETTINGS, poll_interval_ms=100)) == ["p95_processing_ms"]
    assert detect_summary(row(10, 2_150.0), flat, SETTINGS, poll_interval_ms=100) == [], "+7.5 % < 10 %"
    assert detect_summary(row(10, 2_300.0), flat, SETTINGS, poll_interval_ms=1000) == [], "+300 ms < one poll"


def test_three_runs_a_little_worse_are_flagged_together() -> None:
    history = stable(20, seed=5)
    level = sum(r.p95_processing_ms or 0 for r in history) / 20
    step = [row(20 + k, level * 1.14) for k in range(3)]
    first = detect_summary(step[0], history, SETTINGS, poll_interval_ms=1000)
    assert first == [], "one run at +14 % is inside the interval"
    third = detect_summary(step[2], [*history, *step[:2]], SETTINGS, poll_interval_ms=1000)
    assert metrics(third) == ["p95_processing_ms"] and "over the last 3 runs" in third[0].message


def test_too_little_history_or_incomparable_runs_give_no_verdict() -> None:
    history = stable(4)
    assert detect_summary(row(20, 90_000.0), history, SETTINGS, poll_interval_ms=1000) == []
    others = [
        *(row(i, 1_000.0, target="live") for i in range(10)),
        *(row(10 + i, 1_000.0, records=5_000) for i in range(10)),
        *(row(20 + i, 1_000.0, integration="zillow") for i in range(10)),
        *(row(30 + i, 1_000.0, passed=False) for i in range(10)),
    ]
    assert comparable_runs(row(50, 5_000.0), others, limit=30) == []
    assert detect_summary(row(50, 5_000.0), others, SETTINGS, poll_interval_ms=1000) == []


def test_a_rate_that_drops_is_flagged() -> None:
    history = stable(10)
    found = detect_summary(row(10, 20_000.0, assignment_accuracy=0.80), history, SETTINGS, poll_interval_ms=1000)
    assert metrics(found) == ["assignment_accuracy"]
    assert found[0].message.startswith("assignment accuracy 80.0% is below the prediction bound 100.0% (")


def test_a_message_states_the_value_once_and_the_bound_it_crossed() -> None:
    """Issue 24.4: "creation rate 95.2% 95.2% is below the 99.9% prediction bound 100.0%"."""
    history = [row(i, 20_000.0, creation_rate=1.0 if i % 4 else 20 / 21) for i in range(20)]
    [found] = detect_summary(row(20, 20_000.0, creation_rate=0.80), history, SETTINGS, poll_interval_ms=1000)
    assert found.message.count("80.0%") == 1
    bound = found.message.split("is below the prediction bound ")[1].split(" ")[0]
    assert found.message.startswith("creation rate 80.0% is below the prediction bound ")
    assert 80.0 < float(bound.rstrip("%")) < 100.0, "the bound is a figure between the value and the typical rate"
    assert "99.9%" in found.message.split("(")[1], "the confidence is said once, as the interval's level"


def test_api_cost_needs_a_minimum_sample_and_is_compared_at_this_size() -> None:
    """Issue 24.4: fixed costs spread over few records are not a per-record regression."""
    tiny = [row(i, 20_000.0, records=10, api_requests_per_record=0.6 + 0.01 * (i % 3)) for i in range(10)]
    small = row(10, 20_000.0, records=3, api_requests_per_record=2.33)
    assert detect_summary(small, tiny, SETTINGS, poll_interval_ms=1000) == []
    big = [row(i, 20_000.0, records=900, api_requests_per_record=0.02 + 0.001 * (i % 3)) for i in range(10)]
    smaller = row(10, 20_000.0, records=150, api_requests_per_record=0.12)
    assert detect_summary(smaller, big, SETTINGS, poll_interval_ms=1000) == [], "900-record costs spread over 150"
    costly = row(10, 20_000.0, records=900, api_requests_per_record=0.05)
    assert metrics(detect_summary(costly, big, SETTINGS, poll_interval_ms=1000)) == ["api_requests_per_record"]


def test_hook_latency_is_compared_only_at_a_comparable_concurrency() -> None:
    """Issue 24.4: 31 ms against 2 ms was flagged on a ``--concurrency 32`` run."""
    history = [row(i, 20_000.0, p95_latency_ms=2.0 + 0.1 * (i % 3)) for i in range(10)]
    busy = row(10, 20_000.0, p95_latency_ms=31.0)
    at_8 = {r.run_id: 8 for r in history}
    assert detect_summary(busy, history, SETTINGS, poll_interval_ms=1000, concurrency=at_8 | {busy.run_id: 32}) == []
    same = detect_summary(busy, history, SETTINGS, poll_interval_ms=1000, concurrency=at_8 | {busy.run_id: 8})
    assert metrics(same) == ["p95_latency_ms"]


def test_a_change_point_names_the_run_where_it_got_worse() -> None:
    values = [10.0, 11, 10, 9, 10, 10, 10.5, 9.5, 20, 21, 19, 20]
    [point] = change_points(values)
    assert point.index == 8 and point.after / point.before == pytest.approx(2.0, rel=0.05)
    assert change_points([10.0, 11, 9, 10, 30, 10, 11, 9, 10, 10]) == [], "a single spike is not a change"
    history = [row(i, v * 1000) for i, v in enumerate(values[:-1])]
    found = detect_summary(row(11, 20_000.0), history, SETTINGS, poll_interval_ms=1000)
    assert [(r.basis, "starting with run run_008" in r.message) for r in found] == [("change_point", True)]


def test_size_classes_and_the_bound() -> None:
    assert [size_class(n) for n in (1, 9, 10, 11, 100, 101, 100_000)] == [
        "1-10", "1-10", "1-10", "11-100", "11-100", "101-1000", "10001-100000",
    ]  # fmt: skip
    assert upper_prediction_bound([5.0, 5.0, 5.0], 0.99) == 5.0


def test_publish_reports_a_run_worse_than_its_stored_history(tmp_path: Path, make_config: Any) -> None:
    loaded = make_config(tmp_path)
    store_path = tmp_path / "reports" / "runs.sqlite3"
    with RunStore(store_path) as store:
        for i in range(8):
            past = build_run(run_id=f"past_{i}", started_at=T0 + timedelta(hours=i), seed=i, invalid=0)
            begin_run_of(store, past)
            store.finish_run(past)
    slow = build_run(run_id="slow_now", started_at=T0 + timedelta(hours=9), processing_ms=9_000.0, invalid=0)
    with RunStore(store_path) as store:
        begin_run_of(store, slow)
        store.finish_run(slow)
    published = publish(slow, loaded, store_path=store_path)
    found = [(r.metric, r.basis) for r in published.regressions]
    assert ("p95_processing_ms", "history") in found
    summary = json.loads(published.summary_json.read_text())
    assert summary["regressed"] is True and any(r["basis"] == "history" for r in summary["regressions"])
