"""A phase's figures from its outcomes: rates, accuracies, HdrHistogram percentiles, failures by stage, verdicts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

from bonzo_bulk.config.schema import Thresholds
from bonzo_bulk.judge.timing import timing_widths
from bonzo_bulk.models import (
    CheckResult,
    LatencySummary,
    PhaseKind,
    PhaseMetrics,
    RecordOutcome,
    Stage,
    ThresholdVerdict,
    User,
    UserAccuracy,
    Verdict,
    percent,
)

_MAX_MICROS = 24 * 3600 * 1_000_000
NO_OWNER = "(no owner)"
NOT_CREATED = "(not created)"
NOT_DELIVERED = "(not delivered)"
UNVERIFIED = "(unverified)"
_COUNTS = frozenset({Verdict.UNVERIFIED, Verdict.UNEXPECTED_PROSPECTS, Verdict.DUPLICATE_PROSPECTS})
"""Verdicts on a number of records or prospects, shown as whole numbers."""


class Percentiles:
    """Durations in milliseconds, recorded one at a time at microsecond resolution (3 significant digits)."""

    def __init__(self) -> None:
        self._histogram = HdrHistogram(1, _MAX_MICROS, 3)
        self.count = 0
        self._total_micros = 0

    def add(self, value_ms: float) -> None:
        micros = min(_MAX_MICROS, max(1, round(value_ms * 1000)))
        self._histogram.record_value(micros)
        self.count += 1
        self._total_micros += micros

    def summary(self) -> LatencySummary:
        if not self.count:
            return LatencySummary()
        histogram = self._histogram

        def at(percentile: float) -> float:
            return round(float(histogram.get_value_at_percentile(percentile)) / 1000, 3)

        return LatencySummary(
            count=self.count,
            min_ms=round(histogram.get_min_value() / 1000, 3),
            # The exact mean of what was recorded: hdrh's get_mean_value walks every bucket in Python (seconds at 10k).
            mean_ms=round(self._total_micros / self.count / 1000, 3),
            p50_ms=at(50),
            p90_ms=at(90),
            p95_ms=at(95),
            p99_ms=at(99),
            max_ms=round(histogram.get_max_value() / 1000, 3),
        )


def latency_summary(values_ms: Iterable[float]) -> LatencySummary:
    """Percentiles of durations in milliseconds.

    >>> latency_summary([1.0, 2.0, 3.0]).p50_ms
    2.0
    """
    percentiles = Percentiles()
    for value in values_ms:
        percentiles.add(value)
    return percentiles.summary()


COUNT_VERDICTS = frozenset({Verdict.UNEXPECTED_PROSPECTS, Verdict.DUPLICATE_PROSPECTS})
"""Verdicts on a number of prospects: they read as whole counts (``1 <= 0``), never ``1.00``."""


def verdict_text(verdict: ThresholdVerdict) -> tuple[str, str]:
    """How a verdict reads: (measured, required), e.g. ``("93.3%", ">= 95.0%")`` or ``("2.04 s", "<= 60 s")``.

    >>> verdict_text(ThresholdVerdict(Verdict.PROCESSING_P95, 60, 2.04, True, "<="))
    ('2.04 s', '<= 60 s')
    >>> verdict_text(ThresholdVerdict(Verdict.DUPLICATE_PROSPECTS, 0, 1, False, "<="))
    ('1', '<= 0')
    >>> verdict_text(ThresholdVerdict(Verdict.UNVERIFIED, 0, 14, False, "<="))
    ('14', '<= 0')
    """
    if verdict.name in COUNT_VERDICTS:
        return f"{verdict.actual:,.0f}", f"{verdict.comparison} {verdict.threshold:,.0f}"
    if verdict.comparison == ">=" and verdict.threshold <= 1:
        return percent(verdict.actual), f">= {percent(verdict.threshold)}"
    if verdict.name in _COUNTS:
        return f"{verdict.actual:g}", f"{verdict.comparison} {verdict.threshold:g}"
    unit = " s" if verdict.name.endswith("seconds") else ""
    return f"{verdict.actual:.2f}{unit}", f"{verdict.comparison} {verdict.threshold:g}{unit}"


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


class PhaseTally:
    """A phase's figures, added up one :class:`RecordOutcome` at a time (nothing per record is kept).

    Every rate, accuracy and verdict of a phase is computed here, from outcomes, and nowhere else.
    """

    def __init__(self, kind: PhaseKind) -> None:
        self.kind = kind
        self.generated = self.valid = self.sent = self.delivered = 0
        self.found = self.created = self.duplicates = self.missing = 0
        self.assigned = self.mapped = 0
        self.invalid_total = self.invalid_handled = 0
        self.unexpected = 0
        self.unverified = self.unverified_valid = 0
        self.failed_records = 0
        self.status_codes: Counter[str] = Counter()
        self.error_categories: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.field_totals: Counter[str] = Counter()
        self.field_passed: Counter[str] = Counter()
        self.per_user: dict[int, list[int]] = {}
        self.users: dict[int, User] = {}
        self.owners: Counter[tuple[int, str]] = Counter()
        self.teams: Counter[tuple[int, str]] = Counter()
        self.latency = Percentiles()
        self.processing = Percentiles()
        self.visible = Percentiles()
        self.widths: dict[str, Percentiles] = {}

    def add(self, outcome: RecordOutcome) -> None:
        """Count one judged record."""
        record, delivery = outcome.record, outcome.delivery
        self.generated += 1
        failed = False
        for check in outcome.checks:
            if not check.passed:
                self.failures[check.stage.value] += 1
                failed = True
        self.failed_records += failed
        self.unverified += outcome.unverified is not None
        if not record.is_valid:
            self.invalid_total += 1
            self.invalid_handled += outcome.passed
            return
        self.valid += 1
        user = record.expected_user
        row = self.per_user.setdefault(user.user_id, [0, 0, 0])
        self.users.setdefault(user.user_id, user)
        row[0] += 1
        if delivery is not None:
            self.sent += 1
            self.status_codes[
                str(delivery.status) if delivery.status is not None else (delivery.error_category or "error")
            ] += 1
            if delivery.error_category:
                self.error_categories[delivery.error_category] += 1
            if delivery.status is not None:
                self.latency.add(delivery.latency_ms)
        self.delivered += outcome.delivered
        for check in outcome.checks:
            if check.stage is Stage.MAPPING:
                self.field_totals[check.check] += 1
                self.field_passed[check.check] += check.passed
        if outcome.unverified is not None:
            self.unverified_valid += 1
            self.owners[(user.user_id, UNVERIFIED)] += 1
            self.teams[(user.team_id, UNVERIFIED)] += 1
            return
        if not outcome.found:
            self.missing += outcome.delivered
            where = NOT_CREATED if outcome.delivered else NOT_DELIVERED
            self.owners[(user.user_id, where)] += 1
            self.teams[(user.team_id, where)] += 1
            return
        for placement in outcome.placements:
            owner = placement.owner_id if placement.owner_id is not None else placement.owner_email
            self.owners[(user.user_id, str(owner) if owner is not None else NO_OWNER)] += 1
            self.teams[(user.team_id, str(placement.team_id) if placement.team_id is not None else NO_OWNER)] += 1
        self.found += 1
        row[1] += 1
        self.created += outcome.created
        self.duplicates += outcome.duplicates > 0
        assigned = outcome.stage_ok(Stage.ASSIGNMENT)
        self.assigned += assigned
        row[2] += assigned
        self.mapped += outcome.stage_ok(Stage.MAPPING)
        timing = outcome.processing
        if timing is not None:
            self.processing.add(timing.seconds * 1000)
            widths = self.widths.get(timing.source)
            if widths is None:  # not setdefault: that would build (and drop) a 400 kB histogram per record
                widths = self.widths[timing.source] = Percentiles()
            widths.add(timing.width * 1000)
            if timing.visible_after is not None:
                self.visible.add(max(0.0, timing.visible_after * 1000))

    def add_stray(self, checks: Iterable[CheckResult]) -> None:
        """Count the checks on prospects no record explains."""
        for check in checks:
            if not check.passed:
                self.failures[check.stage.value] += 1
            self.unexpected += check.check == "unexpected"

    @property
    def delivery_rate(self) -> float:
        """Delivered of the valid records."""
        return _rate(self.delivered, self.valid)

    @property
    def checked(self) -> int:
        """Delivered valid records whose creation could be checked (every list read to its end, or found)."""
        return self.delivered - self.unverified_valid

    @property
    def creation_rate(self) -> float:
        """Created of the delivered records that could be checked (unverified ones are neither)."""
        return _rate(self.created, self.checked)

    @property
    def assignment_accuracy(self) -> float:
        """Correctly assigned of the records found."""
        return _rate(self.assigned, self.found)

    @property
    def mapping_accuracy(self) -> float:
        """Correctly mapped of the records found."""
        return _rate(self.mapped, self.found)

    def metrics(self, *, thresholds: Thresholds, api_requests: int) -> PhaseMetrics:
        """The phase's figures and threshold verdicts."""
        latency = self.latency.summary()
        processing = self.processing.summary()
        verdicts = self._verdicts(thresholds, latency, processing)
        return PhaseMetrics(
            generated=self.generated,
            valid=self.valid,
            sent=self.sent,
            delivered=self.delivered,
            delivery_rate=self.delivery_rate,
            status_codes=dict(sorted(self.status_codes.items())),
            delivery_latency=latency,
            created=self.created,
            creation_rate=self.creation_rate,
            duplicates=self.duplicates,
            missing=self.missing,
            unexpected=self.unexpected,
            assigned_correctly=self.assigned,
            assignment_accuracy=self.assignment_accuracy,
            per_user=self._per_user(),
            mapped_correctly=self.mapped,
            mapping_accuracy=self.mapping_accuracy,
            field_accuracy={f: self.field_passed[f] / self.field_totals[f] for f in sorted(self.field_totals)},
            processing_time=processing,
            visible_lag=self.visible.summary(),
            failures_by_stage=dict(sorted(self.failures.items())),
            error_categories=dict(sorted(self.error_categories.items())),
            invalid_handled=self.invalid_handled,
            invalid_total=self.invalid_total,
            api_requests=api_requests,
            api_requests_per_record=_rate(api_requests, self.found) if self.found else float(api_requests),
            thresholds=tuple(verdicts),
            owner_counts=tuple((e, a, n) for (e, a), n in self.owners.items()),
            team_counts=tuple((e, a, n) for (e, a), n in self.teams.items()),
            unverified=self.unverified,
            timing_widths=timing_widths({source: p.summary() for source, p in self.widths.items()}),
        )

    def _verdicts(
        self, thresholds: Thresholds, latency: LatencySummary, processing: LatencySummary
    ) -> list[ThresholdVerdict]:
        """Every threshold's verdict (unverified records always: 0 says every list was read to its end); invalid
        handling, unexpected and duplicate prospects only when there are any."""
        delivery_rate, creation_rate = self.delivery_rate, self.creation_rate
        assignment_accuracy, mapping_accuracy = self.assignment_accuracy, self.mapping_accuracy
        wanted_assignment = (
            thresholds.assignment_accuracy if self.kind == "primary" else thresholds.control_assignment_accuracy
        )
        p95_s = processing.p95_ms / 1000
        verdicts = [
            ThresholdVerdict(
                Verdict.DELIVERY_RATE,
                thresholds.delivery_rate,
                delivery_rate,
                delivery_rate >= thresholds.delivery_rate,
            ),
            ThresholdVerdict(
                Verdict.CREATION_RATE,
                thresholds.creation_rate,
                creation_rate,
                creation_rate >= thresholds.creation_rate,
            ),
            ThresholdVerdict(
                Verdict.ASSIGNMENT_ACCURACY,
                wanted_assignment,
                assignment_accuracy,
                self.found > 0 and assignment_accuracy >= wanted_assignment,
            ),
            ThresholdVerdict(
                Verdict.MAPPING_ACCURACY,
                thresholds.mapping_accuracy,
                mapping_accuracy,
                self.found > 0 and mapping_accuracy >= thresholds.mapping_accuracy,
            ),
            ThresholdVerdict(
                Verdict.PROCESSING_P95,
                thresholds.max_processing_seconds,
                p95_s,
                p95_s <= thresholds.max_processing_seconds,
                "<=",
            ),
            ThresholdVerdict(
                Verdict.AVG_RESPONSE,
                thresholds.max_avg_response_seconds,
                latency.mean_ms / 1000,
                latency.mean_ms / 1000 <= thresholds.max_avg_response_seconds,
                "<=",
            ),
            ThresholdVerdict(
                Verdict.MAX_RESPONSE,
                thresholds.max_response_seconds,
                latency.max_ms / 1000,
                latency.max_ms / 1000 <= thresholds.max_response_seconds,
                "<=",
            ),
        ]
        if self.invalid_total:
            rate = _rate(self.invalid_handled, self.invalid_total)
            verdicts.append(ThresholdVerdict(Verdict.INVALID_HANDLING, 1.0, rate, rate >= 1.0))
        if self.unexpected:
            verdicts.append(ThresholdVerdict(Verdict.UNEXPECTED_PROSPECTS, 0, self.unexpected, False, "<="))
        if self.duplicates:
            verdicts.append(ThresholdVerdict(Verdict.DUPLICATE_PROSPECTS, 0, self.duplicates, False, "<="))
        verdicts.append(ThresholdVerdict(Verdict.UNVERIFIED, 0, self.unverified, not self.unverified, "<="))
        if self.unverified_valid:
            # A rate of nothing checked would read "not created" or "assigned wrongly": only the unverified verdict.
            unknown = {Verdict.CREATION_RATE} if not self.checked else set()
            unknown |= {Verdict.ASSIGNMENT_ACCURACY, Verdict.MAPPING_ACCURACY} if not self.found else set()
            verdicts = [v for v in verdicts if v.name not in unknown]
        return verdicts

    def _per_user(self) -> tuple[UserAccuracy, ...]:
        """Each test user's records: expected, found, and correctly assigned."""
        return tuple(
            UserAccuracy(
                email=self.users[uid].email,
                user_id=uid,
                expected=row[0],
                found=row[1],
                correct=row[2],
                name=self.users[uid].name,
                team_id=self.users[uid].team_id,
            )
            for uid, row in self.per_user.items()
        )


def phase_metrics(
    kind: PhaseKind,
    outcomes: Iterable[RecordOutcome],
    stray_checks: Iterable[CheckResult] = (),
    *,
    thresholds: Thresholds,
    api_requests: int,
) -> PhaseMetrics:
    """A phase's metrics and verdicts from outcomes held in memory (the engine tallies as it streams)."""
    tally = PhaseTally(kind)
    for outcome in outcomes:
        tally.add(outcome)
    tally.add_stray(stray_checks)
    return tally.metrics(thresholds=thresholds, api_requests=api_requests)
