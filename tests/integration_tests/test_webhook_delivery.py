"""Generic webhook delivery: the hook answers under bulk load, accepts the payloads, fast enough, and
every delivery failure is named by record and category."""

from __future__ import annotations

from collections import Counter

import pytest

from bonzo_bulk.models import CheckResult, PhaseResult, Stage
from bonzo_bulk.pytest_plugin import BulkChecks

pytestmark = [pytest.mark.integration, pytest.mark.webhook]


def _valid_deliveries(phase: PhaseResult) -> list[CheckResult]:
    return [c for c in phase.checks() if c.check == "delivered"]


def test_endpoint_answers_every_request(primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """Under the configured concurrency each POST got an HTTP answer (no connect error, timeout, reset)."""
    answered = [
        CheckResult(d.record_name, "answered", Stage.DELIVERY, d.status is not None, "an HTTP status", d.error_category)
        for d in (o.delivery for o in primary_phase.outcomes)
        if d is not None
    ]
    bulk_checks.expect_all("Webhook answers", answered, phase=primary_phase, verdict="delivery_rate")


def test_bulk_payload_acceptance(primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """No valid record was rejected with a 4xx: a rejected valid payload is a schema problem, never noise."""
    rejected = [
        CheckResult(c.record_name, "not rejected", Stage.DELIVERY, not _is_4xx(c.actual), "not a 4xx", c.actual)
        for c in _valid_deliveries(primary_phase)
    ]
    bulk_checks.expect_all("Bulk payload acceptance", rejected)


def _is_4xx(status: object) -> bool:
    return isinstance(status, int) and 400 <= status < 500


def test_delivery_success_rate(primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """The share of records accepted meets ``thresholds.delivery_rate``."""
    bulk_checks.expect(primary_phase, "Delivery success rate", checks=["delivered"], verdict="delivery_rate")


def test_response_times(primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """Mean and maximum webhook response times within ``max_avg_response_seconds`` / ``max_response_seconds``."""
    bulk_checks.expect_verdicts(
        primary_phase, "Webhook response times", "avg_response_seconds", "max_response_seconds", stage=Stage.DELIVERY
    )


def test_delivery_failures_by_category(primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """Failed deliveries, record by record, with their category (timeout, http_5xx, reset, ...)."""
    failed = [o.delivery for o in primary_phase.outcomes if o.delivery is not None and not o.delivered]
    categories = Counter(d.error_category or "unknown" for d in failed)
    summary = ", ".join(f"{category} {count}" for category, count in sorted(categories.items())) or "none"
    bulk_checks.expect(
        primary_phase, f"Delivery failures by category ({summary})", checks=["delivered"], verdict="delivery_rate"
    )
