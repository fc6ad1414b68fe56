"""Regressions against history: the run against the last comparable runs, statistically.

Comparable runs share the integration, the target and the size class; hook latency is compared only with runs
at a comparable webhook concurrency, and API requests per record only in runs of at least
:data:`~bonzo_bulk.report.regression.MIN_COST_RECORDS` records, each past run's cost taken at this run's size
(:func:`~bonzo_bulk.report.regression.cost_at_size`). A figure regressed when it is beyond a one-sided t prediction
interval on log values AND beyond a minimum effect of max(10 %, the measurement resolution); a change-point pass
(:mod:`bonzo_bulk.report.change_points`) names the run where a figure got worse. Each finding is a
:class:`~bonzo_bulk.report.regression.Regression` row.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from bonzo_bulk.config.schema import RegressionSettings
from bonzo_bulk.models import RunResult, percent
from bonzo_bulk.report.change_points import ChangePoint, change_points
from bonzo_bulk.report.regression import (
    UNKNOWN_CONCURRENCY,
    Concurrency,
    Regression,
    comparable_concurrency,
    cost_at_size,
    cost_comparable,
    crossed,
    text_of,
)
from bonzo_bulk.store import RunSummary


@dataclass(frozen=True, slots=True)
class Measure:
    """A headline figure of a run (a :class:`RunSummary` field) and which way is worse."""

    name: str
    label: str
    worse: Literal["up", "down"]
    """``up`` for times and costs (compared on a log scale), ``down`` for rates (compared as shortfalls)."""


MEASURES: tuple[Measure, ...] = (
    Measure("p95_processing_ms", "p95 processing time", "up"),
    Measure("p95_latency_ms", "p95 hook latency", "up"),
    Measure("api_requests_per_record", "API requests per record", "up"),
    Measure("delivery_rate", "delivery rate", "down"),
    Measure("creation_rate", "creation rate", "down"),
    Measure("assignment_accuracy", "assignment accuracy", "down"),
    Measure("mapping_accuracy", "mapping accuracy", "down"),
)
CHANGE_POINT_RECENT_RUNS = 5
"""A change point is reported while the run is at most this many runs after it."""
RECENT_WINDOW = 3
"""The gate also compares the mean of this many latest runs (a step the first run after it hid in its noise)."""


def size_class(records: int) -> str:
    """The size bucket runs are compared within: ``1-10``, ``11-100``, ``101-1000`` ...

    >>> size_class(21), size_class(10), size_class(1000)
    ('11-100', '1-10', '101-1000')
    """
    upper = 10
    while records > upper:
        upper *= 10
    return f"{upper // 10 + 1 if upper > 10 else 1}-{upper}"


def comparable_runs(current: RunSummary, runs: Iterable[RunSummary], *, limit: int) -> list[RunSummary]:
    """The last ``limit`` passed runs like ``current`` (integration, target, size class), oldest first."""
    same = [
        r
        for r in runs
        if r.run_id != current.run_id
        and r.passed
        and r.finished_at is not None
        and r.integration == current.integration
        and r.target == current.target
        and size_class(r.records) == size_class(current.records)
        and r.started_at <= current.started_at
    ]
    same.sort(key=lambda r: r.started_at)
    return same[-limit:]


def upper_prediction_bound(values: Sequence[float], confidence: float) -> float:
    """The one-sided upper bound of a t prediction interval for the next value of ``values``.

    >>> round(upper_prediction_bound([1.0, 1.1, 0.9, 1.0, 1.05], 0.99), 3)
    1.314
    """
    return upper_mean_bound(values, confidence, runs=1)


def _value(run: RunSummary, measure: Measure) -> float | None:
    value: float | None = getattr(run, measure.name)
    if value is None or (measure.worse == "up" and value <= 0):
        return None
    return value


def _current_value(current: RunSummary, measure: Measure) -> float | None:
    """The run's own figure, or None when it tells nothing (API cost per record over too few records)."""
    if measure.name == "api_requests_per_record" and not cost_comparable(current.records):
        return None
    return _value(current, measure)


def _series(
    current: RunSummary, history: Sequence[RunSummary], measure: Measure, concurrency: Concurrency
) -> list[tuple[str, float]]:
    """The history's values of ``measure`` that may be compared with ``current``, oldest first: hook latency
    only at a comparable concurrency, API requests per record as each run's cost at the current run's size."""
    series: list[tuple[str, float]] = []
    here = concurrency.get(current.run_id)
    for run in history:
        value = _value(run, measure)
        if value is None:
            continue
        if measure.name == "p95_latency_ms" and not comparable_concurrency(here, concurrency.get(run.run_id)):
            continue
        if measure.name == "api_requests_per_record":
            value = cost_at_size(value, run.records, current.records)
        series.append((run.run_id, value))
    return series


def _resolution(measure: Measure, records: int, poll_interval_ms: float) -> float:
    """The smallest change the measurement can tell apart: one poll for processing, one record for rates."""
    if measure.name == "p95_processing_ms":
        return poll_interval_ms
    if measure.name == "p95_latency_ms":
        return 1.0
    if measure.worse == "down":
        return max(0.01, 1 / max(1, records))
    return 0.0


def upper_mean_bound(values: Sequence[float], confidence: float, *, runs: int) -> float:
    """The one-sided upper bound of a t prediction interval for the mean of the next ``runs`` values."""
    from scipy.special import stdtrit  # Student's t quantile (scipy.special imports far lighter than scipy.stats)

    count = len(values)
    mean = sum(values) / count
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (count - 1))
    return mean + float(stdtrit(count - 1, confidence)) * spread * math.sqrt(1 / runs + 1 / count)


def _gate(
    current: RunSummary,
    now: float,
    values: Sequence[float],
    measure: Measure,
    settings: RegressionSettings,
    poll_interval_ms: float,
) -> Regression | None:
    """The run alone against the history, then the mean of the last few runs (with it) against the runs before."""
    if len(values) < settings.min_history:
        return None
    resolution = _resolution(measure, current.records, poll_interval_ms)
    for runs in (1, RECENT_WINDOW):
        before, recent = values[: len(values) - (runs - 1)], [*values[len(values) - (runs - 1) :], now]
        if len(before) < settings.min_history:
            break
        found = _beyond(measure, before, recent, now, settings, resolution)
        if found is not None:
            return found
    return None


def _beyond(
    measure: Measure,
    before: Sequence[float],
    recent: Sequence[float],
    now: float,
    settings: RegressionSettings,
    resolution: float,
) -> Regression | None:
    """A Regression when the mean of ``recent`` (and ``now`` itself) is beyond the bound and the minimum effect."""
    runs = len(recent)
    span = f"one-sided {percent(settings.confidence)}, from the {len(before)} comparable runs before"
    label = measure.label if runs == 1 else f"{measure.label} over the last {runs} runs"
    if measure.worse == "up":
        logs = [math.log(v) for v in before]
        typical = math.exp(sum(logs) / len(logs))
        bound = math.exp(upper_mean_bound(logs, settings.confidence, runs=runs))
        level = math.exp(sum(math.log(v) for v in recent) / runs)
        floor = max(typical * (1 + settings.min_effect), typical + resolution)
        if level <= bound or level <= floor or now <= floor:
            return None
        this_run = "" if runs == 1 else f"; this run {text_of(measure.name, now)}"
        effect = (
            f"beyond the minimum effect {text_of(measure.name, floor)}, +{floor / typical - 1:.0%} over their"
            f" typical {text_of(measure.name, typical)}"
        )
        why = f"{span}; {effect}{this_run}"
        message = crossed(label, measure.name, level, bound, bound_name="prediction bound", why=why)
        return Regression(measure.name, "primary", typical, now, max(bound, floor), message, "history")
    shortfalls = [1 - v for v in before]
    typical_rate = 1 - sum(shortfalls) / len(shortfalls)
    floor_rate = 1 - upper_mean_bound(shortfalls, settings.confidence, runs=runs)
    level = sum(recent) / runs
    if level >= floor_rate or typical_rate - level < resolution or typical_rate - now < resolution:
        return None
    this_run = "" if runs == 1 else f"; this run {percent(now)}"
    effect = (
        f"beyond the minimum effect {percent(typical_rate - resolution)}, {percent(resolution)} under their"
        f" typical {percent(typical_rate)}"
    )
    why = f"{span}; {effect}{this_run}"
    message = crossed(label, measure.name, level, floor_rate, bound_name="prediction bound", why=why)
    allowed = min(floor_rate, typical_rate - resolution)
    return Regression(measure.name, "primary", typical_rate, now, allowed, message, "history")


def _recent_change(
    series: Sequence[tuple[str, float]], measure: Measure, settings: RegressionSettings
) -> tuple[str, ChangePoint] | None:
    """The latest change point that made the figure worse, if the last run is within a few runs of it."""
    # Rates become shortfalls, kept positive for the log scale.
    values = [1 - v + 0.01 if measure.worse == "down" else v for _, v in series]
    points = change_points(values, min_magnitude=settings.min_effect)
    if not points:
        return None
    last = points[-1]
    recent = len(series) - last.index <= CHANGE_POINT_RECENT_RUNS
    return (series[last.index][0], last) if recent and last.after > last.before else None


def detect(
    result: RunResult,
    runs: Iterable[RunSummary],
    settings: RegressionSettings,
    *,
    poll_interval_ms: float,
    concurrency: Concurrency = UNKNOWN_CONCURRENCY,
) -> list[Regression]:
    """Every figure of ``result`` that is worse than its comparable history, by the interval or a change point."""
    current = RunSummary.from_result(result)
    return detect_summary(current, runs, settings, poll_interval_ms=poll_interval_ms, concurrency=concurrency)


def detect_summary(
    current: RunSummary,
    runs: Iterable[RunSummary],
    settings: RegressionSettings,
    *,
    poll_interval_ms: float,
    concurrency: Concurrency = UNKNOWN_CONCURRENCY,
) -> list[Regression]:
    """:func:`detect` on a run's summary row (what the history holds of every run); ``concurrency`` maps run ids
    to their webhook concurrency (hook latency is compared only between comparable ones)."""
    history = comparable_runs(current, runs, limit=settings.history_runs)
    found: list[Regression] = []
    for measure in MEASURES:
        now = _current_value(current, measure)
        if now is None:
            continue
        series = _series(current, history, measure, concurrency)
        gated = _gate(current, now, [v for _, v in series], measure, settings, poll_interval_ms)
        change = (
            _recent_change([*series, (current.run_id, now)], measure, settings)
            if len(series) >= settings.min_history
            else None
        )
        if change is not None:
            note = _change_note(measure, *change)
            if gated is not None:
                gated = dataclasses.replace(gated, message=f"{gated.message}; change point: {note}")
            else:
                point = change[1]
                typical = point.before if measure.worse == "up" else 1 - (point.before - 0.01)
                found.append(Regression(measure.name, "primary", typical, now, typical, note, "change_point"))
        if gated is not None:
            found.append(gated)
    return found


def _change_note(measure: Measure, run_id: str, point: ChangePoint) -> str:
    """Where a figure moved: from and to (times and costs), or down (rates), from which run on."""
    shift = (
        f"from {text_of(measure.name, point.before)} to {text_of(measure.name, point.after)}"
        if measure.worse == "up"
        else "down"
    )
    return f"{measure.label} moved {shift} starting with run {run_id} (p={point.p_value:.1g})"
