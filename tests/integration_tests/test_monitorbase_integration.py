"""Monitorbase end to end: does ``lo_email`` resolve to the right Bonzo user, and does the prospect land
with that user and team? The control hook (``superuser``) sends the same kind of records with an
explicit ``user_id``: control passing while primary fails puts the fault in the lo_email resolution.

Every test reads the session's one bulk run (plugin fixtures), so any ``-k`` / ``-m`` subset works in
any order, and thresholds come from the config.
"""

from __future__ import annotations

import pytest

from bonzo_bulk.models import PhaseResult, Stage
from bonzo_bulk.pytest_plugin import BulkChecks, HookAvailability

pytestmark = pytest.mark.integration


@pytest.mark.webhook
def test_webhook_endpoint_availability(hook_availability: HookAvailability, bulk_checks: BulkChecks) -> None:
    """The hook answers: live, a probe that creates no lead; sandbox, every POST of the run."""
    bulk_checks.expect_all(f"Webhook endpoint availability ({hook_availability.how})", hook_availability.checks)


@pytest.mark.webhook
def test_bulk_webhook_delivery(primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """Each record was accepted (2xx) by the webhook: ``Webhook delivery: 21/21 successful``."""
    bulk_checks.expect(primary_phase, "Webhook delivery", stage=Stage.DELIVERY, verdict="delivery_rate")


@pytest.mark.api
def test_prospect_creation_validation(primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """Each accepted record became a prospect in Bonzo by the deadline; a record missing while a listing never
    reached its end is unverified (its own verdict), never "not created"."""
    bulk_checks.expect(
        primary_phase,
        "Prospect creation",
        checks=["created", "verified"],
        verdict=["creation_rate", "unverified_records"],
    )


@pytest.mark.api
def test_one_prospect_per_record(primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """No record was created twice, and no prospect of this run is unexplained."""
    bulk_checks.expect(
        primary_phase, "One prospect per record", checks=["duplicate", "duplicate_after_retry", "unexpected"]
    )


@pytest.mark.api
def test_user_assignment_accuracy(primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """``lo_email`` resolved to the right user: owner id and email, team and visibility all match."""
    bulk_checks.expect(primary_phase, "User assignment", stage=Stage.ASSIGNMENT, verdict="assignment_accuracy")


@pytest.mark.api
def test_team_routing(primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """The team (``business_entity_id`` / ``business.id``) is the expected owner's team."""
    bulk_checks.expect(primary_phase, "Team routing", checks=["team"], verdict="assignment_accuracy")


@pytest.mark.api
def test_on_behalf_of_visibility(primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """Through the superuser key with ``On-Behalf-Of: <user_id>``, each record is in its owner's list
    and in no other test user's."""
    bulk_checks.expect(primary_phase, "On-Behalf-Of visibility", checks=["visibility"], verdict="assignment_accuracy")


@pytest.mark.api
def test_prospect_ownership(primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """The prospect is owned (``assigned_to`` / ``assigned_user.id``) by the user ``lo_email`` names."""
    bulk_checks.expect(
        primary_phase, "Prospect ownership", checks=["owner", "owner_email"], verdict="assignment_accuracy"
    )


@pytest.mark.data_integrity
def test_data_mapping_integrity(primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """Every mapped field (and ``source == "monitorbase"``) matches what was sent."""
    bulk_checks.expect(primary_phase, "Data mapping", stage=Stage.MAPPING, verdict="mapping_accuracy")


@pytest.mark.slow
def test_processing_performance(primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """Records appear in Bonzo within ``thresholds.max_processing_seconds`` (p95) of being accepted."""
    bulk_checks.expect(primary_phase, "Processing time", checks=["processing_time"], verdict="processing_p95_seconds")


@pytest.mark.api
def test_invalid_record_handling(primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """Records sent broken on purpose (``invalid_records``) were handled as the config expects."""
    if primary_phase.metrics.invalid_total == 0:
        pytest.skip("the config lists no invalid_records")
    bulk_checks.expect(primary_phase, "Invalid records", checks=["invalid_handling"], verdict="invalid_handling")


@pytest.mark.superuser
@pytest.mark.webhook
def test_control_webhook_delivery(control_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """The control hook accepted each record."""
    bulk_checks.expect(control_phase, "Control webhook delivery", stage=Stage.DELIVERY, verdict="delivery_rate")


@pytest.mark.superuser
@pytest.mark.api
def test_control_prospect_creation(control_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """Each control record became a prospect."""
    bulk_checks.expect(control_phase, "Control prospect creation", checks=["created"], verdict="creation_rate")


@pytest.mark.superuser
@pytest.mark.api
def test_control_assignment_accuracy(control_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """With ``user_id`` explicit, every prospect has the right owner and team
    (``thresholds.control_assignment_accuracy``)."""
    bulk_checks.expect(control_phase, "Control user assignment", stage=Stage.ASSIGNMENT, verdict="assignment_accuracy")


@pytest.mark.superuser
@pytest.mark.api
def test_control_on_behalf_of_visibility(control_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """Each control record is in its owner's On-Behalf-Of list and in no other."""
    bulk_checks.expect(
        control_phase, "Control On-Behalf-Of visibility", checks=["visibility"], verdict="assignment_accuracy"
    )


@pytest.mark.superuser
@pytest.mark.data_integrity
def test_control_data_mapping(control_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """The control hook's mapped fields match what was sent."""
    bulk_checks.expect(control_phase, "Control data mapping", stage=Stage.MAPPING, verdict="mapping_accuracy")
