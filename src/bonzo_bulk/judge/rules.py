"""The rules a found prospect is judged by: built-in ownership checks, the contract's fields, the config's rules.

A rule names a prospect field (a JMESPath path), the stage it belongs to, how values are normalised,
and what it expects: a literal, or a symbol resolved per record (the expected owner's id, team or
email, the integration type, a payload value, a contract field's expected value). A config rule on a
field replaces the built-in or contract rule on it; one that restates a built-in ownership fact is
judged once, by the built-in check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bonzo_bulk._paths import get_path
from bonzo_bulk.config.schema import ValidationRule
from bonzo_bulk.models import PlannedRecord, Stage

_ASSIGNMENT_FIELDS = ("assigned_user", "assigned_to", "business_entity_id", "business", "owner", "owner_email", "team")


@dataclass(frozen=True, slots=True)
class Rule:
    """A resolved check on a found prospect: a field path, how to get the expected value, a stage."""

    field: str
    stage: Stage
    normalize: str
    expected: Any = None
    symbol: str | None = None
    required_only: bool = False


def stage_of(field: str) -> Stage:
    """Owner and team fields are assignment checks; everything else is mapping."""
    return Stage.ASSIGNMENT if field.split(".")[0] in _ASSIGNMENT_FIELDS else Stage.MAPPING


def builtin_rules() -> list[Rule]:
    """The ownership checks every run makes, read through every owner/team shape Bonzo is known to use."""
    return [
        Rule("owner", Stage.ASSIGNMENT, "none", symbol="user_id_from_lo_email"),
        Rule("owner_email", Stage.ASSIGNMENT, "lower", symbol="lo_email"),
        Rule("team", Stage.ASSIGNMENT, "none", symbol="team_id_from_user"),
    ]


def config_rules(rules: Sequence[ValidationRule]) -> list[Rule]:
    """The config's validation rules as resolved rules."""
    resolved = []
    for rule in rules:
        stage = Stage(rule.stage) if rule.stage else stage_of(rule.field)
        if rule.matches_lo_email:
            resolved.append(Rule(rule.field, stage, "lower", symbol="lo_email"))
        elif rule.expected is not None:
            symbol = rule.expected if isinstance(rule.expected, str) and _is_symbol(rule.expected) else None
            normalize = rule.normalize if rule.normalize != "none" or symbol != "lo_email" else "lower"
            resolved.append(Rule(rule.field, stage, normalize, expected=rule.expected, symbol=symbol))
        else:
            resolved.append(Rule(rule.field, stage, rule.normalize, required_only=True))
    return resolved


_SYMBOLS = {
    "user_id_from_lo_email",
    "user_id",
    "team_id_from_user",
    "team_id",
    "lo_email",
    "user_email",
    "integration_type",
}


def _is_symbol(value: str) -> bool:
    return value in _SYMBOLS or value.startswith("payload:") or value.startswith("expected:")


SAME_AS_BUILTIN: dict[tuple[str, str | None], str] = {
    ("assigned_user.id", "user_id_from_lo_email"): "owner",
    ("assigned_user.id", "user_id"): "owner",
    ("assigned_to", "user_id_from_lo_email"): "owner",
    ("assigned_to", "user_id"): "owner",
    ("assigned_user.email", "lo_email"): "owner_email",
    ("assigned_user.email", "user_email"): "owner_email",
    ("business_entity_id", "team_id_from_user"): "team",
    ("business_entity_id", "team_id"): "team",
    ("business.id", "team_id_from_user"): "team",
    ("business.id", "team_id"): "team",
}
"""Config rules that state a built-in ownership fact; they are judged once, by the built-in check."""


def record_rules(record: PlannedRecord, base: Sequence[Rule], transforms: Mapping[str, str]) -> list[Rule]:
    """Every rule for one record: built-ins, then its contract's fields, then the config's (which win)."""
    by_field: dict[str, Rule] = {r.field: r for r in builtin_rules()}
    for field in record.expected:
        by_field[field] = Rule(field, stage_of(field), transforms.get(field, "none"), symbol=f"expected:{field}")
    for rule in base:
        if (rule.field, rule.symbol) not in SAME_AS_BUILTIN:
            by_field[rule.field] = rule
    return list(by_field.values())


def resolve_expected(rule: Rule, record: PlannedRecord, integration_type: str) -> Any:
    """The value a rule expects for this record (symbols resolved against the record's owner)."""
    user = record.expected_user
    symbol = rule.symbol
    if symbol is None:
        return rule.expected
    if symbol in ("user_id_from_lo_email", "user_id"):
        return user.user_id
    if symbol in ("team_id_from_user", "team_id"):
        return user.team_id
    if symbol in ("lo_email", "user_email"):
        return user.email
    if symbol == "integration_type":
        return integration_type
    if symbol.startswith("payload:"):
        return get_path(record.payload, symbol.removeprefix("payload:"))
    return record.expected.get(symbol.removeprefix("expected:"))
