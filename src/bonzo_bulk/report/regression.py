"""A figure of a run that fell behind, as a :class:`Regression` row; and :func:`compare`, against the baseline run.

Two ways find regressions, both returning :class:`Regression` rows:

* :func:`compare` (here) — one threshold per figure against the integration's baseline run (``baseline set``);
* :func:`bonzo_bulk.report.history_regression.detect` — the run against the last comparable runs.

Example::

    compare(result, baseline, RegressionSettings())
    # -> [Regression(metric='p95_processing_ms', phase='primary', baseline=900.0, current=2100.0, ...)]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bonzo_bulk.config.schema import RegressionSettings
from bonzo_bulk.models import PhaseMetrics, RunResult, percent

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


def text_of(metric: str, value: float) -> str:
    """A figure as it reads in a message: ``1,234 ms``, ``1.50`` requests per record, or a rate ``93.3%``."""
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
                            f"{phase.kind} {label} fell to {text_of(metric, now)} from {text_of(metric, then)} in "
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
                            f"{phase.kind} {label} rose to {text_of(metric, now)} from {text_of(metric, then)} in "
                            f"baseline {baseline.run_id} (allowed up to {text_of(metric, ceiling)}, +{increase:.0%})"
                        ),
                    )
                )
    return found
