"""The verdict contract: which prospect fields each phase is held to, and on whose word.

Three sources, later ones overriding earlier ones field by field:

- **documented** — what Bonzo documents for the hook type (``docs/bonzo-api.md``): the manifest's
  mapping lines not marked ``documented: false``. Checked by default.
- **declared** — what the user says their webhook's Mapping tab does: ``contract.primary`` /
  ``contract.control`` in the config, or ``contract.yaml`` in the integration folder (custom fields,
  a static ``source``, tags, extra fields). Checked only when declared.
- **learned** — ``bonzo-bulk calibrate`` observes a few real records and writes a contract file
  (``contract.file``) that the user reviews; later runs are held to it.

A check whose expected value is a guess is not a check: ``source`` and custom fields, which the
reference lists as unknown, are never checked unless declared or learned.

Example::

    contract = build_contract(load_integration("monitorbase"), "primary", ContractSettings())
    [f.field for f in contract.fields]    # first_name, last_name, email, phone, address, ..., tags
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from bonzo_bulk._paths import get_path
from bonzo_bulk.bonzo.normalize import normalize
from bonzo_bulk.config.contract import ContractField, ContractSettings, Provenance
from bonzo_bulk.config.files import read_yaml
from bonzo_bulk.models import PhaseKind
from bonzo_bulk.plan.integration import Integration, count_notes

CONTRACT_FILE = "contract.yaml"
"""A declared contract inside an integration folder."""


class PhaseDeclaration(BaseModel):
    """What one phase's webhook is declared or learned to store."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: list[ContractField] = Field(default_factory=list)
    never_arrived: list[str] = Field(
        default_factory=list, description="payload paths calibration saw arrive nowhere (informational)"
    )


class ContractFile(BaseModel):
    """A learned contract as ``bonzo-bulk calibrate`` writes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    integration: str
    learned_at: str
    learned_from: str = Field(description="the calibration run id and target")
    records_per_hook: int
    primary: PhaseDeclaration = Field(default_factory=PhaseDeclaration)
    control: PhaseDeclaration = Field(default_factory=PhaseDeclaration)


@dataclass(frozen=True, slots=True)
class PhaseContract:
    """The fields one phase is held to, each with where the promise comes from."""

    kind: PhaseKind
    integration: str
    fields: tuple[ContractField, ...]
    unchecked: tuple[str, ...] = ()
    """Mapping lines known but not checked (undocumented and not declared), as ``from -> to``."""

    def expected_for(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Expected prospect values for one payload, by field (fields with nothing to check left out)."""
        expected: dict[str, Any] = {}
        for item in self.fields:
            value = expected_value(item, payload)
            if value is not None:
                expected[item.field] = value
        return expected

    @property
    def transforms(self) -> dict[str, str]:
        return {item.field: item.compare_as for item in self.fields}

    def provenance(self, field: str) -> Provenance | None:
        return next((item.by for item in self.fields if item.field == field), None)


def expected_value(item: ContractField, payload: Mapping[str, Any]) -> Any:
    """The normalised value ``item`` must hold for a record sent with ``payload`` (None: nothing to check)."""
    raw = item.value if item.source is None else get_path(payload, item.source)
    if raw is None or raw == "" or raw == []:
        return None
    if item.transform == "notes":
        return count_notes(raw)
    return normalize(raw, item.transform)


def _declared_in_folder(integration: Integration) -> list[ContractField]:
    """``contract.yaml`` in the integration folder: ``fields:`` its hook is declared to store."""
    path = integration.folder / CONTRACT_FILE
    if not path.is_file():
        return []
    document = read_yaml(path, what="integration contract", key="contract.file", shape="'fields'")
    declaration = document.validate(
        PhaseDeclaration, key="contract.file", fix="each field needs 'to:' and one of 'from:' or 'value:'"
    )
    return list(declaration.fields)


def load_contract_file(path: Path) -> ContractFile:
    """A learned contract file, validated (exit 2 with the key when it is malformed)."""
    document = read_yaml(path, what="contract file", key="contract.file", shape="'integration', 'primary', ...")
    return document.validate(
        ContractFile, key="contract.file", fix="run `bonzo-bulk calibrate` to write a fresh contract file"
    )


def build_contract(
    integration: Integration,
    kind: PhaseKind,
    settings: ContractSettings,
    *,
    learned: ContractFile | None = None,
) -> PhaseContract:
    """The phase's contract: documented mapping lines, then declared, then learned (later wins per field)."""
    by_field: dict[str, ContractField] = {}
    unchecked: list[str] = []
    for line in integration.manifest.mapping:
        if line.documented:
            by_field[line.to] = ContractField(field=line.to, source=line.source, transform=line.how, by="documented")
        else:
            unchecked.append(f"{line.source} -> {line.to}")
    declared = [*_declared_in_folder(integration), *(settings.primary if kind == "primary" else settings.control)]
    for item in declared:
        by_field[item.field] = item.model_copy(update={"by": "declared"})
    if learned is not None:
        phase = learned.primary if kind == "primary" else learned.control
        if phase.fields:
            by_field = {f.field: f for f in by_field.values() if f.by == "declared"}
            for item in phase.fields:
                by_field.setdefault(item.field, item.model_copy(update={"by": "learned"}))
    checked = {f.source for f in by_field.values() if f.source}
    return PhaseContract(
        kind=kind,
        integration=integration.name,
        fields=tuple(by_field.values()),
        unchecked=tuple(u for u in unchecked if u.split(" -> ")[0] not in checked),
    )


def write_contract_file(
    path: Path,
    *,
    integration: str,
    run_id: str,
    target: str,
    records_per_hook: int,
    phases: Mapping[PhaseKind, PhaseDeclaration],
) -> ContractFile:
    """Write a learned contract (YAML with a header saying what it is and how to use it)."""
    contract = ContractFile(
        integration=integration,
        learned_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        learned_from=f"run {run_id} against {target}",
        records_per_hook=records_per_hook,
        primary=phases.get("primary", PhaseDeclaration()),
        control=phases.get("control", PhaseDeclaration()),
    )
    body = yaml.safe_dump(contract.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=False)
    header = (
        f"# The learned contract of integration {integration!r}, written by `bonzo-bulk calibrate`.\n"
        "# Review it: every field below is checked on every record of later runs that name this file\n"
        "# under `contract: {file: ...}` in their config. Edit or delete lines you do not want held.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + body, encoding="utf-8")
    return contract


def contract_rows(contracts: Iterable[PhaseContract]) -> list[tuple[str, str, str, str, str]]:
    """(phase, prospect field, expected, transform, source of truth) rows for showing a contract."""
    rows: list[tuple[str, str, str, str, str]] = []
    for contract in contracts:
        for item in contract.fields:
            expected = f"payload {item.source}" if item.source is not None else repr(item.value)
            rows.append((contract.kind, item.field, expected, item.transform, item.by))
        rows.extend(
            (contract.kind, line.split(" -> ")[1], f"payload {line.split(' -> ')[0]}", "-", "unchecked")
            for line in contract.unchecked
        )
    return rows
