"""Fault injection: the sandbox applies a profile's faults to the leads it takes in and the prospects it makes.

The profile's schema and how records are picked live with the config (:mod:`bonzo_bulk.config.faults`);
here a lead's faults are planned when it is accepted and applied when it is processed, and every fault
that took effect is written to the ground truth.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bonzo_bulk.config.faults import INTAKE_KINDS, FaultProfile
from bonzo_bulk.sandbox.db import SUPERUSER_ID
from bonzo_bulk.sandbox.rows import IntakeRow, TruthEntry, UserRow


def plan_record_faults(profile: FaultProfile, record: str, email: str, hook_type: str) -> list[dict[str, Any]]:
    """The processing faults (not intake ones) that will hit this accepted record, frozen into its queue row."""
    planned = []
    for index, fault in profile.record_faults():
        if fault.kind in INTAKE_KINDS or not fault.selects(profile.seed, record, email, hook_type):
            continue
        entry = fault.model_dump(mode="json", exclude={"records", "rate", "hooks"}, exclude_none=True)
        entry["index"] = index
        planned.append(entry)
    return planned


def mangle(field: str, value: Any) -> str:
    """A visibly different value for a field: email prefixed, phone's last digit bumped, text suffixed."""
    if value is None or value == "":
        return "mangled"
    text = str(value)
    if field == "email":
        return "mangled." + text
    if field == "phone" and text[-1:].isdigit():
        return text[:-1] + str((int(text[-1]) + 1) % 10)
    return text + "-mangled"


@dataclass
class ProcessingOutcome:
    """What the worker creates for one lead after its faults: owner, team, zero or more docs, the truth."""

    user_id: int
    team_id: int
    docs: list[dict[str, Any]] = field(default_factory=list)
    truth: list[TruthEntry] = field(default_factory=list)


def _next_user(owner_id: int, users: Mapping[int, UserRow]) -> UserRow | None:
    """The seeded user after the owner (by id, wrapping round); None when there is no other user."""
    candidates = sorted(uid for uid, u in users.items() if not u.is_superuser)
    if len(candidates) < 2 or owner_id not in candidates:
        others = [uid for uid in candidates if uid != owner_id]
        return users[others[0]] if others else None
    return users[candidates[(candidates.index(owner_id) + 1) % len(candidates)]]


def _next_team(team_id: int, teams: Mapping[int, str]) -> int:
    """The team after this one (by id, wrapping round); the superuser's team when there is no other."""
    candidates = sorted(t for t in teams if t != SUPERUSER_ID)
    if team_id in candidates and len(candidates) > 1:
        return candidates[(candidates.index(team_id) + 1) % len(candidates)]
    others = [t for t in candidates if t != team_id]
    return others[0] if others else SUPERUSER_ID


def _set_field(doc: dict[str, Any], name: str, value: Any) -> Any:
    """Set a doc field (or ``custom_fields.<key>``; None removes it) and return the old value."""
    if name.startswith("custom_fields."):
        key = name[len("custom_fields.") :]
        old = doc["custom_fields"].get(key)
        if value is None:
            doc["custom_fields"].pop(key, None)
        else:
            doc["custom_fields"][key] = value
        return old
    old = doc.get(name)
    doc[name] = value
    return old


def _get_field(doc: dict[str, Any], name: str) -> Any:
    """A doc field, or ``custom_fields.<key>``."""
    if name.startswith("custom_fields."):
        return doc["custom_fields"].get(name[len("custom_fields.") :])
    return doc.get(name)


def apply_processing_faults(
    row: IntakeRow, doc: dict[str, Any], users: Mapping[int, UserRow], teams: Mapping[int, str], at: str
) -> ProcessingOutcome:
    """Apply a lead's planned faults to its prospect doc; every fault that took effect gets a truth entry."""
    owner = users.get(row.user_id)
    outcome = ProcessingOutcome(row.user_id, owner.team_id if owner else 0)

    def truth(entry: Mapping[str, Any], detail: dict[str, Any]) -> None:
        dedupe = f"{entry['index']}|{row.record}|{row.email}|{row.hook_type}"
        outcome.truth.append(TruthEntry(entry["kind"], row.record, row.email, row.hook_type, detail, at, dedupe))

    planned = row.faults
    drop = next((p for p in planned if p["kind"] == "drop"), None)
    if drop is not None:
        truth(drop, {})
        return outcome
    copies = 1
    for entry in planned:
        kind = entry["kind"]
        if kind == "wrong_owner":
            other = _next_user(outcome.user_id, users)
            if other is not None:
                truth(entry, {"expected_user_id": outcome.user_id, "actual_user_id": other.id})
                outcome.user_id, outcome.team_id = other.id, other.team_id
        elif kind == "wrong_team":
            team = _next_team(outcome.team_id, teams)
            truth(entry, {"expected_team_id": outcome.team_id, "actual_team_id": team})
            outcome.team_id = team
        elif kind == "mangle_field":
            name = entry["field"]
            value = mangle(name, _get_field(doc, name))
            truth(entry, {"field": name, "original": _set_field(doc, name, value), "value": value})
        elif kind == "missing_field":
            name = entry["field"]
            truth(entry, {"field": name, "original": _set_field(doc, name, None)})
        elif kind == "wrong_source":
            truth(entry, {"expected": doc.get("source"), "value": entry["value"]})
            doc["source"] = entry["value"]
        elif kind == "duplicate":
            copies = 2
            truth(entry, {"copies": 2})
    first, last = doc.get("first_name"), doc.get("last_name")
    doc["full_name"] = " ".join(p for p in (first, last) if p) or None
    if not doc.get("phone"):
        doc["phone_type"] = None
    outcome.docs = [doc] + [copy.deepcopy(doc) for _ in range(copies - 1)]
    return outcome
