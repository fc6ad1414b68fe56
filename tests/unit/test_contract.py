"""The contract: documented fields by default, declared and learned ones only when given; unknowns never asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bonzo_bulk.config.contract import ContractField, ContractSettings
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.plan.contract import (
    PhaseContract,
    PhaseDeclaration,
    build_contract,
    load_contract_file,
    write_contract_file,
)
from bonzo_bulk.plan.integration import load_integration

MONITORBASE = load_integration("monitorbase")
GENERAL = load_integration("bonzo")


def fields(contract: PhaseContract) -> dict[str, str]:
    return {f.field: f.by for f in contract.fields}


def test_documented_contract_asserts_no_unknown() -> None:
    primary = fields(build_contract(MONITORBASE, "primary", ContractSettings()))
    assert {"first_name", "email", "phone", "city", "tags"} <= set(primary)
    assert "source" not in primary
    assert not any(f.startswith("custom_fields.") for f in primary)
    control = fields(build_contract(GENERAL, "control", ContractSettings()))
    assert "source" not in control and set(control.values()) == {"documented"}


def test_unchecked_mapping_lines_are_named() -> None:
    contract = build_contract(MONITORBASE, "primary", ContractSettings())
    assert "custom_1 -> custom_fields.custom_1" in contract.unchecked


def test_declared_fields_are_checked_per_phase() -> None:
    settings = ContractSettings.model_validate(
        {
            "primary": [{"from": "custom_1", "to": "custom_fields.custom_1"}, {"to": "source", "value": "monitorbase"}],
            "control": [{"to": "source", "value": "webhook"}],
        }
    )
    primary = build_contract(MONITORBASE, "primary", settings)
    control = build_contract(GENERAL, "control", settings)
    assert fields(primary)["custom_fields.custom_1"] == "declared"
    assert primary.expected_for({"custom_1": "r-1", "first_name": "A"})["source"] == "monitorbase"
    assert control.expected_for({"first_name": "A"})["source"] == "webhook"
    assert "custom_1 -> custom_fields.custom_1" not in primary.unchecked


def test_learned_contract_replaces_documented_but_not_declared(tmp_path: Path) -> None:
    learned_fields = [ContractField(field="first_name", source="first_name", by="learned")]
    path = tmp_path / "c.yaml"
    write_contract_file(
        path,
        integration="monitorbase",
        run_id="r1",
        target="sandbox",
        records_per_hook=3,
        phases={"primary": PhaseDeclaration(fields=learned_fields, never_arrived=["city"])},
    )
    learned = load_contract_file(path)
    settings = ContractSettings.model_validate({"primary": [{"to": "source", "value": "monitorbase"}]})
    contract = build_contract(MONITORBASE, "primary", settings, learned=learned)
    assert fields(contract) == {"source": "declared", "first_name": "learned"}
    assert learned.primary.never_arrived == ["city"]


def test_a_field_needs_exactly_one_expectation() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ContractField.model_validate({"to": "source"})


def test_a_broken_contract_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("integration: x\nprimary: {fields: [{to: a}]}\n")
    with pytest.raises(ConfigError, match="contract file") as caught:
        load_contract_file(path)
    assert caught.value.exit_code == 2
