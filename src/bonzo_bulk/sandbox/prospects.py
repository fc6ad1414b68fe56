"""The prospect resource: Bonzo's field normalisation (E.164 phones, lower-case tags) and its JSON shape."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from bonzo_bulk.config.sandbox_clock import SandboxClock
from bonzo_bulk.sandbox.clock import shown_stamp
from bonzo_bulk.sandbox.db import Database
from bonzo_bulk.sandbox.rows import StoredProspect, UserRow

DOC_FIELDS = (
    "first_name",
    "last_name",
    "full_name",
    "email",
    "email_type",
    "phone",
    "phone_type",
    "status",
    "source",
    "address",
    "unit_number",
    "city",
    "state",
    "zip",
    "birthday",
    "marital_status",
    "external_id",
    "tags",
    "custom_fields",
    "mortgage",
    "notes_count",
    "do_not_call",
)
"""The stored resource fields, in the order the API returns them."""

TEXT_FIELDS = (
    "first_name",
    "last_name",
    "email_type",
    "phone_type",
    "address",
    "unit_number",
    "city",
    "state",
    "zip",
    "marital_status",
    "external_id",
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BIRTHDAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class FieldErrors(Exception):
    """Laravel-style validation errors: field -> messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


def _refuse_constant(name: str) -> Any:
    """``json.loads`` hook: NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes) -> Any:
    """Strict JSON: like json.loads, but NaN / Infinity (which JSON has not) are refused with ValueError."""
    return json.loads(raw, parse_constant=_refuse_constant)


def as_id(value: str) -> int | None:
    """An ASCII-digit id that fits SQLite's INTEGER, else None."""
    return int(value) if re.fullmatch(r"[0-9]{1,18}", value) else None


def scalar(value: Any) -> str | None:
    """A non-empty stripped string of a scalar payload value (objects and lists give None)."""
    if value is None or isinstance(value, dict | list):
        return None
    cleaned = str(value).strip()
    return cleaned or None


def label(field: str) -> str:
    """Laravel's attribute name in messages: ``first_name`` -> ``first name``."""
    return field.replace("_", " ")


def text(value: Any, field: str, errors: dict[str, list[str]]) -> str | None:
    """A stripped string (numbers become strings), None for empty; anything else is a field error."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        errors.setdefault(field, []).append(f"The {label(field)} must be a string.")
        return None
    cleaned = str(value).strip()
    return cleaned or None


def e164(value: str | None) -> str | None:
    """``+1XXXXXXXXXX`` for a 10-digit (or 1 + 10-digit) NANP number, None for anything else.

    Only ASCII digits count, as in the OpenAPI pattern of ``phone`` (a JSON Schema ``\\d`` is ASCII; Python's
    is every Unicode digit, which once let a valid-by-schema phone with a Mro digit in it be refused).
    """
    if not value:
        return None
    digits = re.sub(r"[^0-9]", "", value)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        return None
    return "+1" + digits


def clean_email(value: str | None) -> str | None:
    """A lower-cased email address, or None when it is not one."""
    if not value:
        return None
    lowered = value.strip().lower()
    return lowered if _EMAIL.match(lowered) else None


def clean_tags(value: Any, errors: dict[str, list[str]]) -> list[str]:
    """Tag names, lower-cased, stripped, de-duplicated (a single string counts as one tag)."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(t, str | int | float) for t in items):
        errors.setdefault("tags", []).append("The tags must be a list of strings.")
        return []
    names = [str(t).strip().lower() for t in items]
    return list(dict.fromkeys(n for n in names if n))


def full_name(first: str | None, last: str | None) -> str | None:
    """``first last`` as Bonzo shows it, None when both are missing."""
    joined = " ".join(p for p in (first, last) if p)
    return joined or None


def search_text(doc: Mapping[str, Any]) -> str:
    """The lower-case text ``search`` matches against: names, email and phone."""
    parts = (doc.get(k) for k in ("first_name", "last_name", "full_name", "email", "phone"))
    return "\n".join(str(p).lower() for p in parts if p)


def new_doc(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A full stored resource from normalised fields (absent fields are null; tags still names)."""
    doc: dict[str, Any] = dict.fromkeys(DOC_FIELDS)
    doc.update({k: v for k, v in fields.items() if k in doc})
    doc["status"] = doc["status"] or "active"
    doc["tags"] = list(doc["tags"] or [])
    doc["custom_fields"] = dict(doc["custom_fields"] or {})
    doc["mortgage"] = dict(doc["mortgage"] or {})
    doc["notes_count"] = int(doc["notes_count"] or 0)
    doc["do_not_call"] = bool(doc["do_not_call"])
    doc["full_name"] = full_name(doc["first_name"], doc["last_name"])
    if doc["phone"] and not doc["phone_type"]:
        doc["phone_type"] = "mobile"
    return doc


def attach_tag_ids(db: Database, doc: dict[str, Any]) -> dict[str, Any]:
    """Turn the doc's tag names into ``[{id, name}]`` (runs on the database thread, inside a transaction)."""
    attach_all_tag_ids(db, [doc])
    return doc


def attach_all_tag_ids(db: Database, docs: Sequence[dict[str, Any]]) -> None:
    """:func:`attach_tag_ids` for a batch of docs with one lookup for them all (the worker's batches)."""
    names = [[t if isinstance(t, str) else t["name"] for t in doc["tags"]] for doc in docs]
    ids = db.tag_ids(n for each in names for n in each)
    for doc, each in zip(docs, names, strict=True):
        doc["tags"] = [{"id": ids[n], "name": n} for n in each]


STRICT_UNPROMISED = ("notes_count", "external_id")
"""Resource fields the reference does not list on the read side (§2.4): strict mode leaves them out."""


def render(
    stored: StoredProspect,
    users: Mapping[int, UserRow],
    teams: Mapping[int, str],
    *,
    strict: bool = False,
    clock: SandboxClock | None = None,
) -> dict[str, Any]:
    """The API resource of a stored prospect, owner and business filled in from the current users/teams.

    ``strict`` gives the least the reference promises: custom fields as ``[{key, value}]``, tags as
    ``{id, name, sequence_start}``, whole-second timestamps, ``assigned_user`` as ``{id, email}``, and no
    field the reference does not list (:data:`STRICT_UNPROMISED`). ``clock`` writes the stamps as a variant of
    Bonzo may (:func:`bonzo_bulk.sandbox.clock.shown_stamp`).
    """
    owner = users.get(stored.user_id)
    resource: dict[str, Any] = {"id": stored.id}
    resource.update(stored.doc)
    resource["assigned_to"] = stored.user_id
    resource["assigned_user"] = (
        {"id": owner.id, "name": owner.name, "email": owner.email}
        if owner
        else {"id": stored.user_id, "name": None, "email": None}
    )
    resource["business_entity_id"] = stored.team_id
    resource["business"] = {"id": stored.team_id, "name": teams.get(stored.team_id)}
    clock = clock or SandboxClock()
    resource["created_at"] = shown_stamp(stored.created_at, clock, whole_seconds=strict)
    resource["updated_at"] = shown_stamp(stored.updated_at, clock, whole_seconds=strict)
    if strict:
        for name in STRICT_UNPROMISED:
            resource.pop(name, None)
        resource["custom_fields"] = [{"key": k, "value": v} for k, v in (stored.doc.get("custom_fields") or {}).items()]
        resource["tags"] = [{**tag, "sequence_start": None} for tag in resource.get("tags") or []]
        resource["assigned_user"].pop("name", None)
    return resource


def custom_fields_object(value: Any, errors: dict[str, list[str]]) -> dict[str, Any]:
    """Written custom fields as a flat object: an object as is, or the ``[{key, value}]`` list strict reads give."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list) and all(isinstance(i, dict) and isinstance(i.get("key"), str) for i in value):
        return {item["key"]: item.get("value") for item in value}
    errors.setdefault("custom_fields", []).append("The custom fields must be an object or a list of {key, value}.")
    return {}


def api_fields(body: Any) -> dict[str, Any]:
    """Validate a ``POST``/``PUT /prospects`` body into normalised fields, or raise :class:`FieldErrors`."""
    if not isinstance(body, dict):
        raise FieldErrors({"body": ["The request body must be a JSON object."]})
    errors: dict[str, list[str]] = {}
    fields: dict[str, Any] = {}
    aliases = {"state": "prospect_state", "zip": "prospect_zip"}
    for name in TEXT_FIELDS:
        raw = body.get(name)
        if raw is None and name in aliases:
            raw = body.get(aliases[name])
        fields[name] = text(raw, name, errors)
    email_raw = text(body.get("email"), "email", errors)
    fields["email"] = clean_email(email_raw)
    if email_raw and fields["email"] is None:
        errors.setdefault("email", []).append("The email must be a valid email address.")
    phone_raw = text(body.get("phone"), "phone", errors)
    fields["phone"] = e164(phone_raw)
    if phone_raw and fields["phone"] is None:
        errors.setdefault("phone", []).append("The phone format is invalid.")
    birthday = text(body.get("birthday"), "birthday", errors)
    if birthday and not _BIRTHDAY.match(birthday):
        errors.setdefault("birthday", []).append("The birthday does not match the format Y-m-d.")
    fields["birthday"] = birthday
    source = text(body.get("source"), "source", errors)
    fields["source"] = source.lower() if source else "api"
    fields["tags"] = clean_tags(body.get("tags"), errors)
    fields["custom_fields"] = custom_fields_object(body.get("custom_fields"), errors)
    mortgage = body.get("mortgage")
    if mortgage is not None and not isinstance(mortgage, dict):
        errors.setdefault("mortgage", []).append("The mortgage must be an object.")
    fields["mortgage"] = dict(mortgage) if isinstance(mortgage, dict) else {}
    if not fields["first_name"] and "first_name" not in errors:
        errors["first_name"] = ["The first name field is required."]
    if not email_raw and not phone_raw:
        errors.setdefault("email", []).append("The email field is required when phone is not present.")
        errors.setdefault("phone", []).append("The phone field is required when email is not present.")
    if errors:
        raise FieldErrors(errors)
    return fields
