"""The figures of a phase: rates, accuracies, HdrHistogram percentiles, failures by stage, verdicts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from hdrh.histogram import HdrHistogram

from bonzo_bulk.bonzo.clock import ClockOffset
from bonzo_bulk.models import (
    CheckResult,
    DeliveryResult,
    LatencySummary,
    Observation,
    PhaseKind,
    PhaseMetrics,
    PlannedRecord,
    Stage,
    ThresholdVerdict,
    UserAccuracy,
    Verdict,
)
from bonzo_bulk.settings import Thresholds
from bonzo_bulk.timing import processing_time

_MAX_MICROS = 24 * 3600 * 1_000_000


def latency_summary(values_ms: Iterable[float]) -> LatencySummary:
    """Percentiles of durations in milliseconds, at microsecond resolution (3 significant digits).

    >>> latency_summary([1.0, 2.0, 3.0]).p50_ms
    2.0
    """
    histogram = HdrHistogram(1, _MAX_MICROS, 3)
    count = total_micros = 0
    for value in values_ms:
        micros = min(_MAX_MICROS, max(1, round(value * 1000)))
        histogram.record_value(micros)
        count += 1
        total_micros += micros
    if not count:
        return LatencySummary()

    def at(percentile: float) -> float:
        return round(float(histogram.get_value_at_percentile(percentile)) / 1000, 3)

    return LatencySummary(
        count=count,
        min_ms=round(histogram.get_min_value() / 1000, 3),
        # The exact mean of what was recorded: hdrh's get_mean_value walks every bucket in Python (seconds at 10k).
        mean_ms=round(total_micros / count / 1000, 3),
        p50_ms=at(50),
        p90_ms=at(90),
        p95_ms=at(95),
        p99_ms=at(99),
        max_ms=round(histogram.get_max_value() / 1000, 3),
    )


def verdict_text(verdict: ThresholdVerdict) -> tuple[str, str]:
    """How a verdict reads: (measured, required), e.g. ``("93.3%", ">= 95.0%")`` or ``("2.04 s", "<= 60 s")``.

    >>> verdict_text(ThresholdVerdict(Verdict.PROCESSING_P95, 60, 2.04, True, "<="))
    ('2.04 s', '<= 60 s')
    """
    if verdict.comparison == ">=" and verdict.threshold <= 1:
        return f"{100 * verdict.actual:.1f}%", f">= {100 * verdict.threshold:.1f}%"
    unit = " s" if verdict.name.endswith("seconds") else ""
    return f"{verdict.actual:.2f}{unit}", f"{verdict.comparison} {verdict.threshold:g}{unit}"


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def phase_metrics(
    kind: PhaseKind,
    records: Sequence[PlannedRecord],
    deliveries: Mapping[str, DeliveryResult],
    observations: Mapping[str, Observation],
    checks: Sequence[CheckResult],
    *,
    thresholds: Thresholds,
    api_requests: int,
    clock: ClockOffset | None = None,
) -> PhaseMetrics:
    """Compute a phase's metrics and threshold verdicts from its records, deliveries and checks."""
    valid = [r for r in records if r.is_valid]
    valid_names = {r.name for r in valid}
    sent = [deliveries[r.name] for r in valid if r.name in deliveries]
    delivered = [d for d in sent if d.accepted]
    by_record: dict[str, list[CheckResult]] = {}
    for check in checks:
        by_record.setdefault(check.record_name, []).append(check)

    found = [r for r in valid if observations.get(r.name) is not None and observations[r.name].found]
    found_names = {r.name for r in found}
    delivered_names = {d.record_name for d in delivered}
    created = [r for r in found if r.name in delivered_names]
    duplicates = sum(1 for r in found if len(observations[r.name].prospects) > 1)
    missing = sum(1 for r in valid if r.name in delivered_names and r.name not in found_names)

    def stage_ok(name: str, stage: Stage) -> bool:
        return all(c.passed for c in by_record.get(name, ()) if c.stage is stage)

    assigned = [r for r in found if stage_ok(r.name, Stage.ASSIGNMENT)]
    mapped = [r for r in found if stage_ok(r.name, Stage.MAPPING)]

    per_user: dict[int, list[int]] = {}
    for record in valid:
        row = per_user.setdefault(record.expected_user.user_id, [0, 0, 0])
        row[0] += 1
        if record.name in found_names:
            row[1] += 1
            if stage_ok(record.name, Stage.ASSIGNMENT):
                row[2] += 1
    users = {r.expected_user.user_id: r.expected_user for r in valid}
    per_user_rows = tuple(
        UserAccuracy(email=users[uid].email, user_id=uid, expected=row[0], found=row[1], correct=row[2])
        for uid, row in per_user.items()
    )

    field_totals: Counter[str] = Counter()
    field_passed: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for check in checks:
        if check.stage is Stage.MAPPING and check.record_name in valid_names:
            field_totals[check.check] += 1
            field_passed[check.check] += check.passed
        if not check.passed:
            failures[check.stage.value] += 1

    processing_ms: list[float] = []
    visible_ms: list[float] = []
    for record in found:
        timing = processing_time(deliveries.get(record.name), observations[record.name], clock or ClockOffset())
        if timing is not None:
            processing_ms.append(timing.seconds * 1000)
            if timing.visible_after is not None:
                visible_ms.append(max(0.0, timing.visible_after * 1000))

    invalid = [r for r in records if not r.is_valid]
    invalid_handled = sum(1 for r in invalid if all(c.passed for c in by_record.get(r.name, ())))
    unexpected = sum(1 for c in checks if c.check == "unexpected")
    latency = latency_summary(d.latency_ms for d in sent if d.status is not None)
    processing = latency_summary(processing_ms)
    status_codes = Counter(str(d.status) if d.status is not None else (d.error_category or "error") for d in sent)
    metrics_found = len(found)

    delivery_rate = _rate(len(delivered), len(valid))
    creation_rate = _rate(len(created), len(delivered))
    assignment_accuracy = _rate(len(assigned), metrics_found)
    mapping_accuracy = _rate(len(mapped), metrics_found)
    verdicts = [
        ThresholdVerdict(
            Verdict.DELIVERY_RATE, thresholds.delivery_rate, delivery_rate, delivery_rate >= thresholds.delivery_rate
        ),
        ThresholdVerdict(
            Verdict.CREATION_RATE, thresholds.creation_rate, creation_rate, creation_rate >= thresholds.creation_rate
        ),
    ]
    wanted_assignment = thresholds.assignment_accuracy if kind == "primary" else thresholds.control_assignment_accuracy
    verdicts.append(
        ThresholdVerdict(
            Verdict.ASSIGNMENT_ACCURACY,
            wanted_assignment,
            assignment_accuracy,
            metrics_found > 0 and assignment_accuracy >= wanted_assignment,
        )
    )
    verdicts.append(
        ThresholdVerdict(
            Verdict.MAPPING_ACCURACY,
            thresholds.mapping_accuracy,
            mapping_accuracy,
            metrics_found > 0 and mapping_accuracy >= thresholds.mapping_accuracy,
        )
    )
    p95_s = processing.p95_ms / 1000
    verdicts.append(
        ThresholdVerdict(
            Verdict.PROCESSING_P95,
            thresholds.max_processing_seconds,
            p95_s,
            p95_s <= thresholds.max_processing_seconds,
            "<=",
        )
    )
    verdicts.append(
        ThresholdVerdict(
            Verdict.AVG_RESPONSE,
            thresholds.max_avg_response_seconds,
            latency.mean_ms / 1000,
            latency.mean_ms / 1000 <= thresholds.max_avg_response_seconds,
            "<=",
        )
    )
    verdicts.append(
        ThresholdVerdict(
            Verdict.MAX_RESPONSE,
            thresholds.max_response_seconds,
            latency.max_ms / 1000,
            latency.max_ms / 1000 <= thresholds.max_response_seconds,
            "<=",
        )
    )
    if invalid:
        rate = _rate(invalid_handled, len(invalid))
        verdicts.append(ThresholdVerdict(Verdict.INVALID_HANDLING, 1.0, rate, rate >= 1.0))
    if unexpected:
        verdicts.append(ThresholdVerdict(Verdict.UNEXPECTED_PROSPECTS, 0, unexpected, False, "<="))
    if duplicates:
        verdicts.append(ThresholdVerdict(Verdict.DUPLICATE_PROSPECTS, 0, duplicates, False, "<="))

    return PhaseMetrics(
        generated=len(records),
        valid=len(valid),
        sent=len(sent),
        delivered=len(delivered),
        delivery_rate=delivery_rate,
        status_codes=dict(sorted(status_codes.items())),
        delivery_latency=latency,
        created=len(created),
        creation_rate=creation_rate,
        duplicates=duplicates,
        missing=missing,
        unexpected=unexpected,
        assigned_correctly=len(assigned),
        assignment_accuracy=assignment_accuracy,
        per_user=per_user_rows,
        mapped_correctly=len(mapped),
        mapping_accuracy=mapping_accuracy,
        field_accuracy={f: field_passed[f] / field_totals[f] for f in sorted(field_totals)},
        processing_time=processing,
        visible_lag=latency_summary(visible_ms),
        failures_by_stage=dict(sorted(failures.items())),
        error_categories=dict(sorted(Counter(d.error_category for d in sent if d.error_category).items())),
        invalid_handled=invalid_handled,
        invalid_total=len(invalid),
        api_requests=api_requests,
        api_requests_per_record=_rate(api_requests, metrics_found) if metrics_found else float(api_requests),
        thresholds=tuple(verdicts),
    )
