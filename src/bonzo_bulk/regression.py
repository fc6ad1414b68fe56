"""Compare a run with its integration's baseline run and name every figure that fell behind.

Example::

    compare(result, baseline, RegressionSettings())
    # -> [Regression(metric='p95_processing_ms', phase='primary', baseline=900.0, current=2100.0, ...)]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bonzo_bulk.models import PhaseMetrics, RunResult
from bonzo_bulk.settings import RegressionSettings

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
    return f"{value:.1%}"


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
                            f"baseline {baseline.run_id} (allowed drop {tolerances.accuracy_drop:.1%})"
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
