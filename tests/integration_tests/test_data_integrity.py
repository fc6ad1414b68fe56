"""Data integrity: each validation rule of the config, required and custom fields, Bonzo's
transformations, the payloads themselves (checked even with ``--dry-run``) and the prospect shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bonzo_bulk.bonzo.view import ProspectView
from bonzo_bulk.config.schema import ValidationRule
from bonzo_bulk.judge.rules import stage_of
from bonzo_bulk.judge.verify import check_name, verify_payloads
from bonzo_bulk.models import CheckResult, PhaseKind, PhaseResult, PlannedRecord, Stage
from bonzo_bulk.plan.planner import RunPlan
from bonzo_bulk.pytest_plugin import BulkChecks

pytestmark = [pytest.mark.integration, pytest.mark.data_integrity]

EXPECTED_RESPONSES = Path(__file__).parents[1] / "fixtures" / "expected_responses.json"
STAGE_VERDICTS = {Stage.ASSIGNMENT: "assignment_accuracy", Stage.MAPPING: "mapping_accuracy"}


def test_validation_rule(validation_rule: ValidationRule, primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """One config rule (``validation_rules``), judged against its stage's threshold."""
    stage = Stage(validation_rule.stage) if validation_rule.stage else stage_of(validation_rule.field)
    bulk_checks.expect(
        primary_phase,
        f"Rule {validation_rule.field}",
        checks=[check_name(validation_rule)],
        verdict=STAGE_VERDICTS.get(stage, ()),
    )


def test_required_fields(bulk_plan: RunPlan, primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """The borrower's name, email and phone (and every ``required: true`` rule) are populated as sent."""
    phase_plan = bulk_plan.phase("primary")
    assert phase_plan is not None
    config = bulk_plan.loaded.config
    required = {"first_name", "last_name", "email", "phone"} | {r.field for r in config.validation_rules if r.required}
    bulk_checks.expect(primary_phase, "Required fields", checks=sorted(required), verdict="mapping_accuracy")


def test_custom_fields(primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """Custom fields the contract declares (or calibration learned) arrive as sent."""
    if not any(key.startswith("custom_fields.") for r in primary_phase.records for key in r.expected):
        pytest.skip(
            "the contract holds no custom field: Bonzo stores one only where the webhook's Mapping tab maps it; "
            "declare it under contract.primary or run `bonzo-bulk calibrate`"
        )
    bulk_checks.expect(primary_phase, "Custom fields", prefix="custom_fields.", verdict="mapping_accuracy")


def test_transformations(bulk_plan: RunPlan, primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """Fields Bonzo transforms (email lower-cased, phone normalised, tags), as the contract states them."""
    phase_plan = bulk_plan.phase("primary")
    assert phase_plan is not None
    transformed = {field for field, transform in phase_plan.contract.transforms.items() if transform != "none"}
    bulk_checks.expect(primary_phase, "Transformations", checks=sorted(transformed), verdict="mapping_accuracy")


def _payload_checks(records: list[PlannedRecord], plan: RunPlan, kind: PhaseKind) -> list[CheckResult]:
    phase_plan = plan.phase(kind)
    assert phase_plan is not None
    config = plan.loaded.config
    return verify_payloads(
        records,
        phase_plan.integration.manifest,
        kind=kind,
        integration_type=config.integration_type,
        settings=config.test_data_settings,
    )


def test_payload_schema(bulk_plan: RunPlan, bulk_checks: BulkChecks) -> None:
    """Each planned primary payload has the borrower fields, the owner (``lo_email``) set, and the spec's
    name and email patterns (runs with ``--dry-run`` too: nothing needs to be sent)."""
    phase_plan = bulk_plan.phase("primary")
    assert phase_plan is not None
    valid = [r for r in phase_plan.records if r.is_valid]
    bulk_checks.expect_all("Payload schema [primary]", _payload_checks(valid, bulk_plan, "primary"))


@pytest.mark.superuser
def test_control_payload_schema(bulk_plan: RunPlan, bulk_checks: BulkChecks) -> None:
    """Each control payload carries first_name, last_name, phone, email and the owner's ``user_id``."""
    phase_plan = bulk_plan.phase("control")
    if phase_plan is None:
        pytest.skip("no control phase: control: false, or SUPERUSER_WEBHOOK_URL is not set")
    bulk_checks.expect_all("Payload schema [control]", _payload_checks(list(phase_plan.records), bulk_plan, "control"))


def _shape_problems(expected: Any, actual: Any, path: str, open_objects: set[str]) -> list[str]:
    if expected is None:
        return []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: an object, got {type(actual).__name__}"]
        if path in open_objects:
            return []
        problems = []
        for key, value in expected.items():
            where = f"{path}.{key}" if path else key
            if key not in actual:
                problems.append(f"{where}: missing")
            else:
                problems.extend(_shape_problems(value, actual[key], where, open_objects))
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: a list, got {type(actual).__name__}"]
        if expected and actual:
            return _shape_problems(expected[0], actual[0], f"{path}[0]", open_objects)
        return []
    if actual is not None and type(actual) is not type(expected):
        return [f"{path}: a {type(expected).__name__}, got {type(actual).__name__}"]
    return []


DOCUMENTED_FIELDS = ("id", "first_name", "last_name", "email", "phone", "created_at")
"""Prospect fields whose presence and type Bonzo documents (reference §2.4, status D); the rest vary."""


@pytest.mark.api
def test_prospect_shape_matches_expected_responses(primary_phase: PhaseResult, bulk_checks: BulkChecks) -> None:
    """Each found prospect has the documented fields with the types of ``tests/fixtures/expected_responses.json``
    (captured from a run), and names its owner and team in one of the shapes Bonzo is known to use."""
    fixture = json.loads(EXPECTED_RESPONSES.read_text(encoding="utf-8"))
    documented = {key: fixture["prospect"][key] for key in DOCUMENTED_FIELDS}
    results = []
    for observation in (o.observation for o in primary_phase.outcomes if o.observation is not None):
        for prospect in observation.prospects:
            problems = _shape_problems(documented, prospect, "", set())
            view = ProspectView(prospect)
            if view.owner_id is None:
                problems.append("owner: neither assigned_to nor assigned_user.id")
            if view.team_id is None:
                problems.append("team: neither business_entity_id nor business.id")
            results.append(
                CheckResult(
                    observation.record_name,
                    "prospect shape",
                    Stage.VERIFICATION,
                    not problems,
                    "the documented shape",
                    "; ".join(problems) or "matches",
                )
            )
    bulk_checks.expect_all("Prospect shape", results)
