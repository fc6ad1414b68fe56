"""What ``bonzo-bulk calibrate`` does with what it learned: write the contract, keep a reviewed one that still
holds, or put a differing one beside it for review unless ``--accept`` (no sending here: the learning is given)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bonzo_bulk.calibrate.learn import Calibration, contract_path, keep_contract
from bonzo_bulk.config.contract import ContractField
from bonzo_bulk.plan.contract import PhaseDeclaration, load_contract_file


def _learned(*fields: ContractField) -> Calibration:
    declaration = PhaseDeclaration(fields=list(fields))
    return Calibration(
        run_id="r20260101-000000-beef",
        target="sandbox",
        records_per_hook=3,
        findings={"primary": []},
        fixed={"primary": {}},
        declarations={"primary": declaration},
        missing=[],
    )


PHONE = ContractField(field="phone", source="phone", transform="phone", by="learned")
SOURCE = ContractField(field="source", value="monitorbase", by="learned")


def test_the_contract_goes_beside_the_config_unless_named(make_config: Any, tmp_path: Path) -> None:
    loaded = make_config(tmp_path)
    assert contract_path(loaded, None) == tmp_path / "monitorbase.contract.yaml"
    assert contract_path(loaded, tmp_path / "mine.yaml") == tmp_path / "mine.yaml"
    named = make_config(tmp_path, contract={"file": "contracts/mb.yaml"})
    assert contract_path(named, None) == tmp_path / "contracts" / "mb.yaml"


def test_written_then_unchanged_then_received_then_accepted(make_config: Any, tmp_path: Path) -> None:
    loaded = make_config(tmp_path)
    target = tmp_path / "learned.yaml"

    first = keep_contract(loaded, _learned(PHONE), out=target, accept=False)
    assert (first.state, first.path, first.written) == ("written", target, target)
    assert [f.field for f in load_contract_file(target).primary.fields] == ["phone"]

    again = keep_contract(loaded, _learned(PHONE), out=target, accept=False)
    assert (again.state, again.written) == ("unchanged", None)

    changed = keep_contract(loaded, _learned(PHONE, SOURCE), out=target, accept=False)
    received = tmp_path / "learned.received.yaml"
    assert (changed.state, changed.path, changed.written) == ("received", target, received)
    assert [f.field for f in load_contract_file(target).primary.fields] == ["phone"], "the reviewed file is kept"
    assert [f.field for f in load_contract_file(received).primary.fields] == ["phone", "source"]

    accepted = keep_contract(loaded, _learned(PHONE, SOURCE), out=target, accept=True)
    assert (accepted.state, accepted.written) == ("written", target)
    assert [f.field for f in load_contract_file(target).primary.fields] == ["phone", "source"]
