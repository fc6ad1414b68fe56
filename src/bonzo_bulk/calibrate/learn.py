"""Calibration: learn what a webhook really stores, field by field, from a handful of real records.

``bonzo-bulk calibrate`` sends a few records per hook (default 3) through the normal engine
(preflight, deliver, settle), reads back what Bonzo stored and, for every payload field, says
whether it arrived unchanged, arrived transformed (and how: case, E.164, trimmed, tags), was found
under another key (custom fields as a ``[{key, value}]`` list or a flat object, a renamed field),
or never arrived; and what ``created_at`` looks like (format, zone, clock offset, resolution), which the
contract can pin (``contract: {created_at: {zone: ...}}``). The result is a contract file the user
reviews once; later runs that name it (``contract: {file: ...}``) hold every record to it. This is
approval testing for an integration. Calibration cleans up its own records.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bonzo_bulk.bonzo.normalize import phone_e164, tag_names
from bonzo_bulk.bonzo.view import ProspectView
from bonzo_bulk.config.contract import ContractField
from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.judge.stamps import NOTE as STAMP_NOTE
from bonzo_bulk.models import PhaseKind, PhaseResult, PlannedRecord, RunResult
from bonzo_bulk.plan.contract import PhaseDeclaration

if TYPE_CHECKING:
    from bonzo_bulk.plan.planner import RunPlan

ROUTING_FIELDS = ("assigned_to", "assigned_user", "business_entity_id", "business", "user_id")
"""Prospect fields the ownership checks judge; never learned as mapped fields."""
IGNORED_TARGETS = ("id", "created_at", "updated_at", "full_name")
"""Prospect fields a payload value can coincide with by accident."""

ARRIVED = {
    "none": "arrived unchanged",
    "lower": "arrived transformed (lower case)",
    "strip": "arrived transformed (trimmed)",
    "phone": "arrived transformed (E.164)",
    "tags": "arrived as tags (split, lower case)",
}


@dataclass(frozen=True, slots=True)
class FieldFinding:
    """What calibration saw of one payload field across the records of one hook."""

    phase: PhaseKind
    payload_path: str
    verdict: str
    """``unchanged`` / ``transformed`` / ``another key`` / ``never arrived`` / ``inconsistent`` / ``routing``."""
    prospect_field: str | None
    transform: str | None
    example: Any
    records: int

    @property
    def description(self) -> str:
        if self.verdict == "never arrived":
            return "never arrived"
        if self.verdict == "inconsistent":
            return "inconsistent across records (not learned)"
        if self.verdict == "routing":
            return f"used for routing (judged by the owner/team checks) -> {self.prospect_field}"
        how = ARRIVED.get(self.transform or "none", "arrived")
        where = f" under another key: {self.prospect_field}" if self.verdict == "another key" else ""
        return f"{how}{where}"


def payload_leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every scalar of a payload; a list of scalars is one leaf (tags)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from payload_leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list):
        if all(not isinstance(item, Mapping | list) for item in node):
            yield prefix, node
    elif node not in (None, ""):
        yield prefix, node


def _matches(sent: Any, stored: Any) -> str | None:
    """How a stored value relates to a sent one (a transform name), or None when it is not the same value."""
    if isinstance(sent, list):
        names = tag_names(sent)
        return "tags" if names and set(names) <= set(tag_names(stored)) else None
    if stored is None or isinstance(stored, Mapping | list) or isinstance(sent, bool):
        return None
    text, kept = str(sent), str(stored)
    if kept == text:
        return "none"
    if kept == text.strip():
        return "strip"
    if kept == text.strip().lower() and text.strip() != kept:
        return "lower"
    phone = phone_e164(text) if any(c.isdigit() for c in text) else None
    if phone is not None and kept == phone and len(text) >= 7:
        return "phone"
    return None


def _last(path: str) -> str:
    return path.replace("custom_fields.", "").split(".")[-1].lower()


def _candidates(path: str, sent: Any, flat: Mapping[str, Any], *, distinctive: bool) -> list[tuple[str, str]]:
    """Prospect fields holding the sent value, the same-named one first; non-distinctive values
    (the same in every record) count only under a field of the same name."""
    found = []
    for field, stored in flat.items():
        if field.split(".")[0] in IGNORED_TARGETS:
            continue
        how = _matches(sent, stored)
        if how is None:
            continue
        if not distinctive and _last(field) != _last(path):
            continue
        found.append((field, how))
    found.sort(key=lambda item: (_last(item[0]) != _last(path), item[0]))
    return found


def learn_phase(phase: PhaseResult) -> list[FieldFinding]:
    """Per payload field of one hook, what the found prospects show of it."""
    found = [(o.record, o.observation) for o in phase.outcomes if o.found and o.observation is not None]
    valid: list[tuple[PlannedRecord, dict[str, Any]]] = [
        (record, ProspectView(observation.prospects[0]).flatten()) for record, observation in found if record.is_valid
    ]
    if not valid:
        return []
    values: dict[str, list[Any]] = {}
    for record, _flat in valid:
        for path, value in payload_leaves(record.payload):
            values.setdefault(path, []).append(value)
    findings = []
    for path, sent_values in values.items():
        distinctive = len({repr(v) for v in sent_values}) > 1
        outcomes: Counter[tuple[str, str] | None] = Counter()
        example: Any = None
        for record, flat in valid:
            sent = _value_at(record.payload, path)
            if sent is None:
                continue
            candidates = _candidates(path, sent, flat, distinctive=distinctive)
            outcomes[candidates[0] if candidates else None] += 1
            if candidates and example is None:
                example = flat.get(candidates[0][0])
        findings.append(_finding(phase.kind, path, outcomes, example, len(valid)))
    return findings


def _value_at(payload: Mapping[str, Any], path: str) -> Any:
    return next((v for p, v in payload_leaves(payload) if p == path), None)


def _finding(
    kind: PhaseKind, path: str, outcomes: Counter[tuple[str, str] | None], example: Any, records: int
) -> FieldFinding:
    if len(outcomes) != 1:
        return FieldFinding(kind, path, "inconsistent", None, None, example, records)
    (outcome,) = outcomes
    if outcome is None:
        return FieldFinding(kind, path, "never arrived", None, None, None, records)
    field, how = outcome
    if field.split(".")[0] in ROUTING_FIELDS:
        return FieldFinding(kind, path, "routing", field, how, example, records)
    verdict = "another key" if _last(field) != _last(path) else ("unchanged" if how == "none" else "transformed")
    return FieldFinding(kind, path, verdict, field, how, example, records)


def fixed_values(phase: PhaseResult) -> dict[str, Any]:
    """Prospect fields the hook sets to one value on every record whatever was sent (``source``)."""
    stored = [
        ProspectView(o.observation.prospects[0]).raw.get("source") for o in phase.outcomes if o.observation and o.found
    ]
    if stored and stored[0] not in (None, "") and all(s == stored[0] for s in stored):
        return {"source": stored[0]}
    return {}


def declaration(
    findings: Sequence[FieldFinding], fixed: Mapping[str, Any], preferred: Mapping[str, str | None] | None = None
) -> PhaseDeclaration:
    """The learned contract of one hook: every field that arrived consistently, plus fixed values.

    Where several payload fields carry the value one prospect field holds (three phones sent alike),
    the one ``preferred`` names for that field (the manifest's mapping) is learned.
    """
    fields: dict[str, ContractField] = {}
    wanted = preferred or {}
    ordered = sorted(findings, key=lambda f: wanted.get(f.prospect_field or "") != f.payload_path)
    for finding in ordered:
        if finding.verdict in ("unchanged", "transformed", "another key") and finding.prospect_field:
            fields.setdefault(
                finding.prospect_field,
                ContractField(
                    field=finding.prospect_field,
                    source=finding.payload_path,
                    transform=finding.transform or "none",
                    by="learned",
                ),
            )
    for field, value in fixed.items():
        if field not in fields:
            fields[field] = ContractField(field=field, value=value, by="learned")
    never = [f.payload_path for f in findings if f.verdict == "never arrived"]
    return PhaseDeclaration(fields=list(fields.values()), never_arrived=never)


def loaded_for_calibration(loaded: LoadedConfig, records: int) -> LoadedConfig:
    """The config for a calibration run: ``records`` valid records per hook spread evenly, no invalid
    ones, the run's records always cleaned up afterwards."""
    config = loaded.config
    cleanup = config.cleanup.model_copy(update={"after_run": "always"})
    update = {"test_records": records, "invalid_records": [], "cleanup": cleanup, "distribution": "even"}
    return dataclasses.replace(loaded, config=config.model_copy(update=update))


@dataclass(frozen=True)
class Calibration:
    """What a calibration run learned: per phase the field findings, the hook's fixed values and its declaration."""

    run_id: str
    target: str
    records_per_hook: int
    findings: dict[PhaseKind, list[FieldFinding]]
    fixed: dict[PhaseKind, dict[str, Any]]
    declarations: dict[PhaseKind, PhaseDeclaration]
    missing: list[PhaseKind]
    """Phases of which no record arrived: nothing to learn there."""
    created_at: tuple[str, ...] = ()
    """What the run learned about ``created_at``: format, zone, offset, resolution (:mod:`bonzo_bulk.judge.stamps`)."""


@dataclass(frozen=True)
class ContractOutcome:
    """Where the learned contract went: ``written`` (new or ``--accept``), ``unchanged``, or ``received``
    (it differs from the reviewed file, so it was written beside it as ``<name>.received.yaml``)."""

    state: Literal["written", "unchanged", "received"]
    path: Path
    written: Path | None


def learn(loaded: LoadedConfig, records: int) -> Calibration:
    """Send ``records`` records per hook through the normal engine and learn, per phase, what Bonzo stored."""
    from bonzo_bulk._http import run_async
    from bonzo_bulk.plan.planner import plan_run

    plan = plan_run(loaded_for_calibration(loaded, records))
    result = run_async(_calibration_run(plan))
    findings = {phase.kind: learn_phase(phase) for phase in result.phases}
    fixed = {phase.kind: fixed_values(phase) for phase in result.phases}
    documented = {p.kind: {f.field: f.source for f in p.contract.fields} for p in plan.phases}
    return Calibration(
        run_id=result.run_id,
        target=result.target,
        records_per_hook=records,
        findings=findings,
        fixed=fixed,
        declarations={kind: declaration(findings[kind], fixed[kind], documented[kind]) for kind in findings},
        missing=[p.kind for p in result.phases if not any(o.found for o in p.outcomes)],
        created_at=tuple(note for note in result.notes if note.startswith(STAMP_NOTE)),
    )


async def _calibration_run(plan: RunPlan) -> RunResult:
    """The run, its records cleaned up afterwards (:func:`loaded_for_calibration` sets ``after_run: always``)."""
    from bonzo_bulk.cleanup.policy import CleanupPolicy
    from bonzo_bulk.engine.context import open_run
    from bonzo_bulk.engine.run import execute

    async with open_run(plan, kind="calibrate") as run:
        run.subscribe(CleanupPolicy(run))
        return await execute(run)


def contract_path(loaded: LoadedConfig, out: Path | None) -> Path:
    """The contract file: ``out``, else the config's ``contract.file``, else ``<integration>.contract.yaml`` by it."""
    config = loaded.config
    if out is not None:
        return out
    if config.contract.file:
        return loaded.resolve_path(config.contract.file)
    return loaded.base_dir / f"{config.integration_type}.contract.yaml"


def keep_contract(loaded: LoadedConfig, calibration: Calibration, *, out: Path | None, accept: bool) -> ContractOutcome:
    """Write the learned contract, unless the reviewed file already says the same; a differing one is
    written beside it (``.received.yaml``) for review unless ``accept`` replaces it."""
    from bonzo_bulk.plan.contract import load_contract_file, write_contract_file

    path = contract_path(loaded, out)
    received = path.exists() and not accept
    if received:
        current = load_contract_file(path)
        declarations = calibration.declarations
        if all(getattr(current, kind).fields == declarations[kind].fields for kind in declarations):
            return ContractOutcome("unchanged", path, None)
    written = path.with_name(path.stem + ".received.yaml") if received else path
    write_contract_file(
        written,
        integration=loaded.config.integration_type,
        run_id=calibration.run_id,
        target=calibration.target,
        records_per_hook=calibration.records_per_hook,
        phases=calibration.declarations,
    )
    return ContractOutcome("received" if received else "written", path, written)
