"""A check failing on (nearly) every record is one diagnosis; the rest stay per record."""

from __future__ import annotations

from bonzo_bulk.judge.diagnosis import diagnose
from bonzo_bulk.models import CheckResult, Stage


def checks(name: str, failing: int, total: int, actual: object = None) -> list[CheckResult]:
    return [
        CheckResult(f"R{i}", name, Stage.MAPPING, i >= failing, "sent", "sent" if i >= failing else actual)
        for i in range(total)
    ]


def test_a_field_missing_everywhere_is_systemic_with_the_fix() -> None:
    (found,) = diagnose(
        "primary",
        checks("custom_fields.custom_1", 40, 40),
        provenance={"custom_fields.custom_1": "declared"},
        sources={"custom_fields.custom_1": "custom_1"},
    )
    assert (found.failed, found.judged) == (40, 40)
    assert "never arrived" in found.cause and "declared" in found.cause
    assert "Mapping tab" in found.fix and "`custom_1`" in found.fix and "calibrate" in found.fix


def test_one_wrong_value_everywhere_names_it() -> None:
    (found,) = diagnose("control", checks("source", 10, 10, actual="webhook"))
    assert "'webhook' on every record" in found.cause and "contract.control" in found.fix


def test_some_records_failing_is_sporadic() -> None:
    assert diagnose("primary", checks("last_name", 2, 9, actual="x")) == ()


def test_too_few_records_are_never_systemic() -> None:
    assert diagnose("primary", checks("city", 2, 2)) == ()


def test_wrong_owner_everywhere_points_at_the_test_users() -> None:
    owner = [CheckResult(f"R{i}", "owner", Stage.ASSIGNMENT, False, 1, 2) for i in range(5)]
    (found,) = diagnose("primary", owner)
    assert "test_users" in found.fix
