"""A figure of a run that fell behind, as a :class:`Regression` row; and :func:`compare`, against the baseline run.

Two ways find regressions, both returning :class:`Regression` rows:

* :func:`compare` (here) — one threshold per figure against the integration's baseline run (``baseline set``);
* :func:`bonzo_bulk.report.history_regression.detect` — the run against the last comparable runs.

Example::

    compare(result, baseline, RegressionSettings())
    # -> [Regression(metric='p95_processing_ms', phase='primary', baseline=900.0, current=2100.0, ...)]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from bonzo_bulk.config.schema import RegressionSettings
from bonzo_bulk.models import PhaseMetrics, PhaseResult, RunResult, percent
from bonzo_bulk.store import RunSummary

_EPSILON = 1e-9
MIN_TIME_INCREASE_MS = 25.0
"""A p95 time must also grow by at least this much: 2 ms -> 4 ms is +100 % but only noise."""
MIN_COST_RECORDS = 100
"""Fewer records than this: API requests per record are mostly the run's fixed costs (the preflight, one listing
per user and poll, which grow with time, not records), so no per-record cost regression is claimed."""
CONCURRENCY_RATIO = 1.25
"""Hook latency is compared only between runs whose webhook concurrency is within this factor of each other."""

Concurrency = Mapping[str, int | None]
"""Run id -> the webhook concurrency it ran at (``webhook_settings.concurrent_requests``); None when unknown."""
UNKNOWN_CONCURRENCY: Concurrency = MappingProxyType({})
"""No run's concurrency known: all count as comparable (what callers without a run store pass)."""


def cost_at_size(per_record: float, records: int, at_records: int) -> float:
    """A run's API requests per record as the most they may be for a run of ``at_records`` records.

    A run's requests are a fixed part plus a part per record, so a run of ``records`` that made ``R`` requests
    makes at most ``R × max(1, at_records / records)`` at another size whatever the split: per record, at most
    ``per_record × max(1, records / at_records)``. Comparing with this bound never takes fixed costs spread over
    fewer records for a regression.

    >>> round(cost_at_size(0.29, 21, 3), 2), cost_at_size(0.5, 100, 1000)
    (2.03, 0.5)
    """
    return per_record * max(1.0, records / max(1, at_records))


def cost_comparable(records: int) -> bool:
    """Whether a run's API requests per record say anything: it has at least :data:`MIN_COST_RECORDS` records
    (all phases, as :attr:`bonzo_bulk.store.RunSummary.records` counts them)."""
    return records >= MIN_COST_RECORDS


def comparable_concurrency(current: int | None, other: int | None) -> bool:
    """Whether two runs' hook latencies may be compared: the same concurrency (both unknown counts as the
    same), or both known and within :data:`CONCURRENCY_RATIO` of each other.

    >>> comparable_concurrency(8, 8), comparable_concurrency(32, 8), comparable_concurrency(None, 8)
    (True, False, False)
    """
    if current == other:
        return True
    if current is None or other is None or min(current, other) <= 0:
        return False
    return max(current, other) / min(current, other) <= CONCURRENCY_RATIO


def crossed(label: str, metric: str, value: float, bound: float, *, bound_name: str, why: str) -> str:
    """The one wording of a regression: the value once, the bound it crossed, then where that bound comes from.

    >>> crossed("creation rate", "creation_rate", 0.952, 0.999, bound_name="prediction bound", why="20 runs")
    'creation rate 95.2% is below the prediction bound 99.9% (20 runs)'
    """
    shown, limit = apart(metric, value, bound)
    side = "above" if value > bound else "below"
    return f"{label} {shown} is {side} the {bound_name} {limit} ({why})"


def apart(metric: str, value: float, bound: float) -> tuple[str, str]:
    """Two figures as text, with as many more decimals of a rate as it takes for them to read differently.

    >>> apart("creation_rate", 0.98951, 0.98999)
    ('98.95%', '99.00%')
    """
    shown, limit = text_of(metric, value), text_of(metric, bound)
    if metric.endswith("_ms") or metric == "api_requests_per_record":
        return shown, limit
    for decimals in (2, 3):
        if shown != limit:
            break
        shown, limit = f"{100 * value:.{decimals}f}%", f"{100 * bound:.{decimals}f}%"
    return shown, limit


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


def text_of(metric: str, value: float) -> str:
    """A figure as it reads in a message: ``1,234 ms``, ``0.015`` requests per record (3 significant digits), or
    a rate ``93.3%``."""
    if metric.endswith("_ms"):
        return f"{value:,.0f} ms"
    if metric == "api_requests_per_record":
        return f"{value:.3g}"
    return percent(value)


def compare(
    result: RunResult,
    baseline: RunResult,
    tolerances: RegressionSettings,
    *,
    concurrency: Concurrency = UNKNOWN_CONCURRENCY,
) -> list[Regression]:
    """Every rate that dropped and every time or cost that grew beyond ``tolerances``, per phase.

    Hook latency is compared only at a comparable ``concurrency`` (run id -> webhook concurrency); API requests
    per record only with :data:`MIN_COST_RECORDS` records, against the baseline's cost at this run's size.
    """
    found: list[Regression] = []
    latency_comparable = comparable_concurrency(concurrency.get(result.run_id), concurrency.get(baseline.run_id))
    sizes = (RunSummary.from_result(baseline).records, RunSummary.from_result(result).records)
    for phase in result.phases:
        before = next((p for p in baseline.phases if p.kind == phase.kind), None)
        if before is None:
            continue
        found += _dropped_rates(phase, before, baseline.run_id, tolerances)
        found += _grown_ceilings(
            phase, before, baseline.run_id, tolerances, latency_comparable=latency_comparable, sizes=sizes
        )
    return found


def _dropped_rates(
    phase: PhaseResult, before: PhaseResult, baseline_id: str, tolerances: RegressionSettings
) -> list[Regression]:
    found: list[Regression] = []
    for metric, label, read in _RATES:
        now, then = read(phase.metrics), read(before.metrics)
        if now is None or then is None:
            continue
        floor = then - tolerances.accuracy_drop
        if now < floor - _EPSILON:
            why = f"baseline {baseline_id}: {text_of(metric, then)}, allowed drop {percent(tolerances.accuracy_drop)}"
            message = crossed(f"{phase.kind} {label}", metric, now, floor, bound_name="allowed floor", why=why)
            found.append(Regression(metric, phase.kind, then, now, floor, message))
    return found


def _grown_ceilings(
    phase: PhaseResult,
    before: PhaseResult,
    baseline_id: str,
    tolerances: RegressionSettings,
    *,
    latency_comparable: bool,
    sizes: tuple[int, int],
) -> list[Regression]:
    """Times and costs above their ceilings; ``sizes``: the baseline's and this run's records (all phases)."""
    found: list[Regression] = []
    then_records, now_records = sizes
    for metric, label, setting, read in _CEILINGS:
        now, then = read(phase.metrics), read(before.metrics)
        if now is None or then is None or then <= 0:
            continue
        if metric == "p95_latency_ms" and not latency_comparable:
            continue
        measured = f"baseline {baseline_id}: {text_of(metric, then)}"
        if metric == "api_requests_per_record":
            if not cost_comparable(now_records):
                continue
            sized = cost_at_size(then, then_records, now_records)
            if sized > then:
                measured += f" over {then_records} records, {text_of(metric, sized)} at this run's size"
            then = sized
        increase: float = getattr(tolerances, setting)
        ceiling = then * (1 + increase)
        noise = MIN_TIME_INCREASE_MS if metric.endswith("_ms") else 0.0
        if now > ceiling + _EPSILON and now - then > noise:
            why = f"{measured}, +{increase:.0%} allowed"
            message = crossed(f"{phase.kind} {label}", metric, now, ceiling, bound_name="allowed ceiling", why=why)
            found.append(Regression(metric, phase.kind, then, now, ceiling, message))
    return found
