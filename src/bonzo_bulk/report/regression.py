"""Name every figure of a run that fell behind: against the baseline run, and statistically against history.

Two ways, both returning :class:`Regression` rows:

* :func:`compare` — one threshold per figure against the integration's baseline run (``baseline set``);
* :func:`detect` — the run against the last comparable runs (same integration, target and size class):
  a one-sided t prediction interval on log values, AND a minimum effect of max(10 %, the measurement
  resolution); plus a change-point pass (E-divisive with a Welch t-test, as Apache Otava / Hunter
  run it) that names the run where a figure got worse.

Example::

    compare(result, baseline, RegressionSettings())
    # -> [Regression(metric='p95_processing_ms', phase='primary', baseline=900.0, current=2100.0, ...)]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bonzo_bulk.config.schema import RegressionSettings
from bonzo_bulk.models import PhaseMetrics, RunResult, percent
from bonzo_bulk.store import RunSummary

_EPSILON = 1e-9
MIN_TIME_INCREASE_MS = 25.0
"""A p95 time must also grow by at least this much: 2 ms -> 4 ms is +100 % but only noise."""


@dataclass(frozen=True, slots=True)
class Regression:
    """One figure of one phase that is worse than the baseline by more than the tolerance."""

    metric: str
    phase: str
    baseline: float
    current: float
    allowed: float
    """The worst value still tolerated (a ceiling for times and counts, a floor for rates)."""
    message: str
    basis: Literal["baseline", "history", "change_point"] = "baseline"
    """What the run was compared with: the baseline run, the comparable history, or a change point in it."""


def regression_line(regression: Regression, baseline_run_id: str | None) -> str:
    """One plain line naming what a regression was measured against, for terminals, logs and pytest."""
    against = {
        "baseline": f"baseline {baseline_run_id}",
        "history": "recent comparable runs",
        "change_point": "a change point in history",
    }[regression.basis]
    return f"regression vs {against}: {regression.message}"


def _invalid_handling(metrics: PhaseMetrics) -> float | None:
    return metrics.invalid_handled / metrics.invalid_total if metrics.invalid_total else None


_RATES: tuple[tuple[str, str, Callable[[PhaseMetrics], float | None]], ...] = (
    ("delivery_rate", "delivery rate", lambda m: m.delivery_rate),
    ("creation_rate", "creation rate", lambda m: m.creation_rate),
    ("assignment_accuracy", "assignment accuracy", lambda m: m.assignment_accuracy),
    ("mapping_accuracy", "mapping accuracy", lambda m: m.mapping_accuracy),
    ("invalid_handling_rate", "invalid-record handling rate", _invalid_handling),
)

_CEILINGS: tuple[tuple[str, str, str, Callable[[PhaseMetrics], float | None]], ...] = (
    (
        "p95_processing_ms",
        "p95 processing time",
        "p95_processing_increase",
        lambda m: m.processing_time.p95_ms if m.processing_time.count else None,
    ),
    (
        "p95_latency_ms",
        "p95 delivery latency",
        "p95_latency_increase",
        lambda m: m.delivery_latency.p95_ms if m.delivery_latency.count else None,
    ),
    (
        "api_requests_per_record",
        "API requests per record",
        "api_requests_increase",
        lambda m: m.api_requests_per_record if m.api_requests else None,
    ),
)


def _fmt(metric: str, value: float) -> str:
    if metric.endswith("_ms"):
        return f"{value:,.0f} ms"
    if metric == "api_requests_per_record":
        return f"{value:.2f}"
    return percent(value)


def compare(result: RunResult, baseline: RunResult, tolerances: RegressionSettings) -> list[Regression]:
    """Every rate that dropped and every time or cost that grew beyond ``tolerances``, per phase."""
    found: list[Regression] = []
    for phase in result.phases:
        before = next((p for p in baseline.phases if p.kind == phase.kind), None)
        if before is None:
            continue
        for metric, label, read in _RATES:
            now, then = read(phase.metrics), read(before.metrics)
            if now is None or then is None:
                continue
            floor = then - tolerances.accuracy_drop
            if now < floor - _EPSILON:
                found.append(
                    Regression(
                        metric=metric,
                        phase=phase.kind,
                        baseline=then,
                        current=now,
                        allowed=floor,
                        message=(
                            f"{phase.kind} {label} fell to {_fmt(metric, now)} from {_fmt(metric, then)} in "
                            f"baseline {baseline.run_id} (allowed drop {percent(tolerances.accuracy_drop)})"
                        ),
                    )
                )
        for metric, label, setting, read in _CEILINGS:
            now, then = read(phase.metrics), read(before.metrics)
            if now is None or then is None or then <= 0:
                continue
            increase: float = getattr(tolerances, setting)
            ceiling = then * (1 + increase)
            noise = MIN_TIME_INCREASE_MS if metric.endswith("_ms") else 0.0
            if now > ceiling + _EPSILON and now - then > noise:
                found.append(
                    Regression(
                        metric=metric,
                        phase=phase.kind,
                        baseline=then,
                        current=now,
                        allowed=ceiling,
                        message=(
                            f"{phase.kind} {label} rose to {_fmt(metric, now)} from {_fmt(metric, then)} in "
                            f"baseline {baseline.run_id} (allowed up to {_fmt(metric, ceiling)}, +{increase:.0%})"
                        ),
                    )
                )
    return found


# --- statistics over the comparable history ------------------------------------------------------


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
MIN_SEGMENT = 3
"""Runs on each side of a change point (a single spike is not a change; Otava #150)."""
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
    history: Sequence[RunSummary],
    measure: Measure,
    settings: RegressionSettings,
    poll_interval_ms: float,
) -> Regression | None:
    """The run alone against the history, then the mean of the last few runs (with it) against the runs before."""
    now = _value(current, measure)
    values = [v for v in (_value(r, measure) for r in history) if v is not None]
    if now is None or len(values) < settings.min_history:
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
    span = f"the {len(before)} comparable runs before"
    what = f"{measure.label} {_fmt(measure.name, now)}" if runs == 1 else f"{measure.label} over the last {runs} runs"
    if measure.worse == "up":
        logs = [math.log(v) for v in before]
        typical = math.exp(sum(logs) / len(logs))
        bound = math.exp(upper_mean_bound(logs, settings.confidence, runs=runs))
        level = math.exp(sum(math.log(v) for v in recent) / runs)
        floor = max(typical * (1 + settings.min_effect), typical + resolution)
        if level <= bound or level <= floor or now <= floor:
            return None
        shown = "" if runs == 1 else f" ({_fmt(measure.name, level)} on average, this run {_fmt(measure.name, now)})"
        message = (
            f"{what}{shown} is above the {percent(settings.confidence)} prediction bound {_fmt(measure.name, bound)}"
            f" of {span} (typical {_fmt(measure.name, typical)}, +{level / typical - 1:.0%})"
        )
        return Regression(measure.name, "primary", typical, now, max(bound, floor), message, "history")
    shortfalls = [1 - v for v in before]
    typical_rate = 1 - sum(shortfalls) / len(shortfalls)
    floor_rate = 1 - upper_mean_bound(shortfalls, settings.confidence, runs=runs)
    level = sum(recent) / runs
    if level >= floor_rate or typical_rate - level < resolution or typical_rate - now < resolution:
        return None
    message = (
        f"{what} {percent(level)} is below the {percent(settings.confidence)} prediction bound {percent(floor_rate)}"
        f" of {span} (typical {percent(typical_rate)})"
    )
    allowed = min(floor_rate, typical_rate - resolution)
    return Regression(measure.name, "primary", typical_rate, now, allowed, message, "history")


@dataclass(frozen=True, slots=True)
class ChangePoint:
    """Where a series shifted: the first run of the new level, the levels either side, how sure."""

    index: int
    before: float
    after: float
    p_value: float


def change_points(
    values: Sequence[float], *, max_pvalue: float = 0.001, min_magnitude: float = 0.1, min_size: int = MIN_SEGMENT
) -> list[ChangePoint]:
    """Change points of a positive series by E-divisive, as Apache Otava (Hunter) runs it.

    Each segment is split where the E-divisive energy statistic (Matteson & James) peaks, on log values;
    the split is kept when Welch's t-test gives p < ``max_pvalue`` (Otava's deterministic replacement for
    the permutation test), the levels differ by ``min_magnitude`` and each side has ``min_size`` runs;
    then both sides are searched again. Levels are geometric means.

    >>> [(c.index, round(c.after / c.before, 1)) for c in change_points([10, 11, 10, 9, 10, 10, 20, 21, 19, 20])]
    [(6, 2.0)]
    """
    import numpy as np

    logs = np.log(np.asarray(values, dtype=float))
    found: list[ChangePoint] = []
    pending = [(0, len(logs))]
    while pending:
        start, end = pending.pop()
        segment = logs[start:end]
        split = _energy_split(segment, min_size)
        if split is None:
            continue
        left, right = segment[:split], segment[split:]
        p_value = _welch_p(left, right)
        before, after = math.exp(float(left.mean())), math.exp(float(right.mean()))
        if p_value < max_pvalue and max(after / before, before / after) - 1 >= min_magnitude:
            found.append(ChangePoint(start + split, before, after, p_value))
            pending += [(start, start + split), (start + split, end)]
    return sorted(found, key=lambda c: c.index)


def _energy_split(segment: Any, min_size: int) -> int | None:
    """Where the E-divisive statistic of a segment peaks (None when too short or flat)."""
    import numpy as np

    count = len(segment)
    if count < 2 * min_size or float(np.ptp(segment)) == 0.0:
        return None
    distance = np.abs(segment[:, None] - segment[None, :])
    best, best_at = -math.inf, None
    for tau in range(min_size, count - min_size + 1):
        left, right = tau, count - tau
        between = float(distance[:tau, tau:].mean())
        within_left = float(distance[:tau, :tau].sum()) / (left * (left - 1))
        within_right = float(distance[tau:, tau:].sum()) / (right * (right - 1))
        statistic = left * right / count * (2 * between - within_left - within_right)
        if statistic > best:
            best, best_at = statistic, tau
    return best_at


def _welch_p(left: Any, right: Any) -> float:
    """Two-sided p-value of Welch's t-test (0 when both sides are flat at different levels)."""
    from scipy.special import stdtr

    n1, n2 = len(left), len(right)
    v1, v2 = float(left.var(ddof=1)) / n1, float(right.var(ddof=1)) / n2
    gap = abs(float(left.mean()) - float(right.mean()))
    if v1 + v2 == 0:
        return 0.0 if gap > 0 else 1.0
    t = gap / math.sqrt(v1 + v2)
    freedom = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    return float(2 * stdtr(freedom, -t))


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
    result: RunResult, runs: Iterable[RunSummary], settings: RegressionSettings, *, poll_interval_ms: float
) -> list[Regression]:
    """Every figure of ``result`` that is worse than its comparable history, by the interval or a change point."""
    return detect_summary(RunSummary.from_result(result), runs, settings, poll_interval_ms=poll_interval_ms)


def detect_summary(
    current: RunSummary, runs: Iterable[RunSummary], settings: RegressionSettings, *, poll_interval_ms: float
) -> list[Regression]:
    """:func:`detect` on a run's summary row (what the history holds of every run)."""
    history = comparable_runs(current, runs, limit=settings.history_runs)
    found: list[Regression] = []
    for measure in MEASURES:
        gated = _gate(current, history, measure, settings, poll_interval_ms)
        now = _value(current, measure)
        series = [(r.run_id, v) for r in history if (v := _value(r, measure)) is not None]
        change = (
            _recent_change([*series, (current.run_id, now)], measure, settings)
            if now is not None and len(series) >= settings.min_history
            else None
        )
        if change is not None:
            run_id, point = change
            before, after = (point.before, point.after) if measure.worse == "up" else (None, None)
            shift = (
                f"from {_fmt(measure.name, before)} to {_fmt(measure.name, after)}"
                if before is not None and after is not None
                else "down"
            )
            note = f"{measure.label} moved {shift} starting with run {run_id} (p={point.p_value:.1g})"
            if gated is not None:
                gated = Regression(
                    gated.metric, gated.phase, gated.baseline, gated.current, gated.allowed,
                    f"{gated.message}; change point: {note}", "history",
                )  # fmt: skip
            elif now is not None:
                typical = point.before if measure.worse == "up" else 1 - (point.before - 0.01)
                found.append(Regression(measure.name, "primary", typical, now, typical, note, "change_point"))
        if gated is not None:
            found.append(gated)
    return found
