"""Hook types: for each lead source, how its body is read (:mod:`~bonzo_bulk.sandbox.bodies`), whose lead it is
(:mod:`~bonzo_bulk.sandbox.owners`) and how its fields map to a prospect.

This module stands in for Bonzo's parsers, so it is written from the reference pages
(``docs/bonzo-api.md`` §5 and §7, ``integrations.md`` §1) and never reads bonzo-bulk's integration
manifests: a mistake in a manifest must show up as a failed check, not be mirrored here.

| hook type | body | owner |
| --- | --- | --- |
| ``monitorbase`` | JSON, flat | ``lo_email`` |
| ``general`` | JSON, flat | ``user_id`` (integer) |
| ``zillow`` | JSON, nested (``sender``/``recipient``/``details``), ``type`` one of 4 | ``recipient.emailAddress`` |
| ``mortech`` | XML ``<result><row>…</row></result>`` | ``ProspectLoanOfficerEmail`` |
| ``lendingtree`` | JSON, ``lead.consumer.contact.*`` | the hook's routing |
| ``hubspot`` | JSON, ``properties.<name>.value`` | ``hubspot_owner_id`` (else ``dealer_id``) = a user's external id |
| ``unbounce`` | form, ``data_json`` = JSON object of one-element arrays | the hook's routing |
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bonzo_bulk.sandbox.bodies import parse_form_json, parse_json_object, parse_xml_row
from bonzo_bulk.sandbox.owners import known_or_policy, owner_by_email, owner_by_routing
from bonzo_bulk.sandbox.prospects import FieldErrors, as_id, clean_email, clean_tags, e164, label, scalar, text
from bonzo_bulk.sandbox.rows import HookRow, UserRow
from bonzo_bulk.sandbox.state import SandboxState

Mapper = Callable[[SandboxState, HookRow, Mapping[str, Any]], tuple[UserRow, dict[str, Any]]]

MONITORBASE_CUSTOM = ("custom_1", "custom_2", "custom_3", "custom_4", "custom_5")
"""Monitorbase ``custom_N`` keys, stored under the same names in ``custom_fields``."""
MONITORBASE_ALERT_FIELDS = {
    "type": "alert_type",
    "alert_intel": "alert_intel",
    "alert_intel_category": "alert_intel_category",
    "alert_id": "alert_id",
    "alert_date": "alert_date",
    "loan_id": "loan_id",
}
"""Monitorbase alert keys -> ``custom_fields`` keys (``loan_number`` fills ``loan_id`` when it is absent)."""
MONITORBASE_PHONES = (("cell_phone", "mobile"), ("home_phone", "home"), ("work_phone", "work"), ("phone", "mobile"))
"""Where the prospect's phone comes from, first non-empty wins, with the ``phone_type`` it gets."""


def _contact(
    errors: dict[str, list[str]], email_raw: str | None, phone_raw: str | None
) -> tuple[str | None, str | None]:
    """Normalised (email, phone); a field error when neither was sent, or neither survives normalisation."""
    email, phone = clean_email(email_raw), e164(phone_raw)
    if not email_raw and not phone_raw:
        errors.setdefault("email", []).append("The email field is required when phone is not present.")
        errors.setdefault("phone", []).append("The phone field is required when email is not present.")
    elif not email and not phone:
        if email_raw:
            errors.setdefault("email", []).append("The email must be a valid email address.")
        if phone_raw:
            errors.setdefault("phone", []).append("The phone format is invalid.")
    return email, phone


def map_monitorbase(state: SandboxState, hook: HookRow, payload: Mapping[str, Any]) -> tuple[UserRow, dict[str, Any]]:
    """Monitorbase alert -> (owner by lo_email, prospect fields); raises FieldErrors or DropLead."""
    errors: dict[str, list[str]] = {}
    fields: dict[str, Any] = {"source": hook.source}
    for name in ("first_name", "last_name", "address", "city", "state", "zip"):
        fields[name] = text(payload.get(name), name, errors)
    email_raw = text(payload.get("email"), "email", errors)
    phone_raw, phone_type = None, None
    for key, kind in MONITORBASE_PHONES:
        phone_raw = text(payload.get(key), key, errors)
        if phone_raw:
            phone_type = kind
            break
    fields["email"], fields["phone"] = _contact(errors, email_raw, phone_raw)
    fields["phone_type"] = phone_type if fields["phone"] else None
    custom: dict[str, Any] = {}
    for key in MONITORBASE_CUSTOM:
        value = scalar(payload.get(key))
        if value is not None:
            custom[key] = value
    for key, target in MONITORBASE_ALERT_FIELDS.items():
        value = scalar(payload.get(key))
        if value is None and key == "loan_id":
            value = scalar(payload.get("loan_number"))
        if value is not None:
            custom[target] = value
    fields["custom_fields"] = custom
    fields["tags"] = clean_tags(payload.get("tags"), errors)
    if not fields["first_name"] and "first_name" not in errors:
        errors["first_name"] = ["The first name field is required."]
    owner = owner_by_email(state, payload.get("lo_email"), "lo_email", errors) if not errors else None
    if errors or owner is None:
        raise FieldErrors(errors)
    return owner, fields


def map_general(state: SandboxState, hook: HookRow, payload: Mapping[str, Any]) -> tuple[UserRow, dict[str, Any]]:
    """Bonzo general hook -> (owner by user_id, prospect fields); ``custom_<Name>`` -> ``custom_fields[Name]``."""
    errors: dict[str, list[str]] = {}
    fields: dict[str, Any] = {"source": hook.source}
    for name in ("first_name", "last_name", "address", "unit_number", "city", "marital_status", "external_id"):
        fields[name] = text(payload.get(name), name, errors)
    fields["state"] = text(payload.get("state", payload.get("prospect_state")), "state", errors)
    fields["zip"] = text(payload.get("zip", payload.get("prospect_zip")), "zip", errors)
    birthday = text(payload.get("birthday"), "birthday", errors)
    fields["birthday"] = birthday if birthday and re.fullmatch(r"\d{4}-\d{2}-\d{2}", birthday) else None
    email_raw = text(payload.get("email"), "email", errors)
    phone_raw = text(payload.get("phone"), "phone", errors)
    fields["email"], fields["phone"] = _contact(errors, email_raw, phone_raw)
    notes = payload.get("notes")
    fields["notes_count"] = len([n for n in notes if n]) if isinstance(notes, list) else int(bool(scalar(notes)))
    fields["tags"] = clean_tags(payload.get("tags"), errors)
    fields["custom_fields"] = {
        key[7:]: scalar(value)
        for key, value in payload.items()
        if key.startswith("custom_") and len(key) > 7 and scalar(value) is not None
    }
    if not fields["first_name"] and "first_name" not in errors:
        errors["first_name"] = ["The first name field is required."]
    raw_id = payload.get("user_id")
    owner: UserRow | None = None
    if raw_id is None or raw_id == "":
        errors.setdefault("user_id", []).append("The user id field is required.")
    else:
        user_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None
        if isinstance(raw_id, str):
            user_id = as_id(raw_id.strip())
        owner = state.users.get(user_id) if user_id is not None else None
        if owner is None or owner.is_superuser:
            errors.setdefault("user_id", []).append("The selected user id is invalid.")
    if errors or owner is None:
        raise FieldErrors(errors)
    return owner, fields


# -- shared pieces ----------------------------------------------------------------------------------


def _dig(node: Any, *steps: str | int) -> Any:
    """A nested value, None as soon as a step is missing."""
    for step in steps:
        if isinstance(step, int):
            node = node[step] if isinstance(node, list) and len(node) > step else None
        else:
            node = node.get(step) if isinstance(node, Mapping) else None
        if node is None:
            return None
    return node


def _object(payload: Mapping[str, Any], where: str, errors: dict[str, list[str]], *, required: bool = True) -> Any:
    """The object at a dotted path, or {} with a field error (when required or present but not an object)."""
    value = _dig(payload, *where.split("."))
    if isinstance(value, Mapping):
        return value
    if value is not None or required:
        errors.setdefault(where, []).append(f"The {label(where)} must be an object.")
    return {}


def _fields(hook: HookRow, errors: dict[str, list[str]], found: Mapping[str, tuple[str, Any]]) -> dict[str, Any]:
    """Prospect fields from ``prospect field -> (payload name, raw value)``; email and phone normalised."""
    raw = {name: text(value, where, errors) for name, (where, value) in found.items()}
    fields: dict[str, Any] = {"source": hook.source, "custom_fields": {}, "tags": []}
    for name in ("first_name", "last_name", "address", "city", "state", "zip", "external_id"):
        fields[name] = raw.get(name)
    fields["email"], fields["phone"] = _contact(errors, raw.get("email"), raw.get("phone"))
    fields["phone_type"] = "mobile" if fields["phone"] else None
    return fields


def _custom(fields: dict[str, Any], values: Mapping[str, Any]) -> None:
    """Add scalar values to ``custom_fields`` (objects, lists and blanks are skipped)."""
    for key, value in values.items():
        cleaned = scalar(value)
        if cleaned is not None:
            fields["custom_fields"][key] = cleaned


def _finish(
    fields: dict[str, Any], errors: dict[str, list[str]], first_name_key: str, owner: Callable[[], UserRow | None]
) -> tuple[UserRow, dict[str, Any]]:
    """Require a first name, then (only for a valid lead) resolve the owner; raise FieldErrors on any error."""
    if not fields["first_name"] and first_name_key not in errors:
        errors[first_name_key] = [f"The {label(first_name_key)} field is required."]
    found = owner() if not errors else None
    if errors or found is None:
        raise FieldErrors(errors)
    return found, fields


# -- lead sources -----------------------------------------------------------------------------------

ZILLOW_TYPES = ("simple", "quote", "longForm", "propertyPreapproval")


def map_zillow(state: SandboxState, hook: HookRow, payload: Mapping[str, Any]) -> tuple[UserRow, dict[str, Any]]:
    """Zillow: borrower in ``sender``, owner by ``recipient.emailAddress``, loan data in ``details``."""
    errors: dict[str, list[str]] = {}
    kind = scalar(payload.get("type"))
    if kind not in ZILLOW_TYPES:
        errors["type"] = [f"The selected type is invalid (one of {', '.join(ZILLOW_TYPES)})."]
    sender = _object(payload, "sender", errors)
    recipient = _object(payload, "recipient", errors)
    details = _object(payload, "details", errors, required=False)
    fields = _fields(
        hook,
        errors,
        {
            "first_name": ("sender.firstName", sender.get("firstName")),
            "last_name": ("sender.lastName", sender.get("lastName")),
            "email": ("sender.emailAddress", sender.get("emailAddress")),
            "phone": ("sender.phoneNumber", sender.get("phoneNumber")),
            "address": ("details.propertyAddress", details.get("propertyAddress")),
            "city": ("details.city", details.get("city")),
            "state": ("details.stateAbbreviation", details.get("stateAbbreviation")),
            "zip": ("details.zipCode", details.get("zipCode")),
        },
    )
    _custom(fields, {"zillow_type": kind, "loan_amount": details.get("loanAmount")})
    return _finish(
        fields,
        errors,
        "sender.firstName",
        lambda: owner_by_email(state, recipient.get("emailAddress"), "recipient.emailAddress", errors),
    )


MORTECH_PHONES = (("ProspectMobilePhone", "mobile"), ("ProspectWorkPhone", "work"), ("ProspectHomePhone", "home"))
"""Mortech's phone fields, first non-empty wins, with the ``phone_type`` it gets."""


def map_mortech(state: SandboxState, hook: HookRow, row: Mapping[str, Any]) -> tuple[UserRow, dict[str, Any]]:
    """Mortech (XML ``result/row``): ``Prospect*`` fields, owner by ``ProspectLoanOfficerEmail``."""
    errors: dict[str, list[str]] = {}
    phone_key, phone_type = next(((k, t) for k, t in MORTECH_PHONES if scalar(row.get(k))), (MORTECH_PHONES[0]))
    fields = _fields(
        hook,
        errors,
        {
            "first_name": ("ProspectFirstName", row.get("ProspectFirstName")),
            "last_name": ("ProspectLastName", row.get("ProspectLastName")),
            "email": ("ProspectEmail", row.get("ProspectEmail")),
            "phone": (phone_key, row.get(phone_key)),
            "address": ("ProspectAddress1", row.get("ProspectAddress1")),
            "city": ("ProspectCity", row.get("ProspectCity")),
            "state": ("ProspectState", row.get("ProspectState")),
            "zip": ("ProspectZip", row.get("ProspectZip")),
        },
    )
    fields["phone_type"] = phone_type if fields["phone"] else None
    _custom(fields, {"loan_purpose": row.get("ProspectLoanPurpose"), "loan_amount": row.get("ProspectLoanAmount")})
    return _finish(
        fields,
        errors,
        "ProspectFirstName",
        lambda: owner_by_email(state, row.get("ProspectLoanOfficerEmail"), "ProspectLoanOfficerEmail", errors),
    )


def map_lendingtree(state: SandboxState, hook: HookRow, payload: Mapping[str, Any]) -> tuple[UserRow, dict[str, Any]]:
    """LendingTree JSON: ``lead.consumer.contact.*``; no owner field, so the hook's routing decides."""
    errors: dict[str, list[str]] = {}
    lead = _object(payload, "lead", errors)
    contact = _object(payload, "lead.consumer.contact", errors)
    fields = _fields(
        hook,
        errors,
        {
            "first_name": ("lead.consumer.contact.firstName", contact.get("firstName")),
            "last_name": ("lead.consumer.contact.lastName", contact.get("lastName")),
            "email": ("lead.consumer.contact.emailAddress", contact.get("emailAddress")),
            "phone": ("lead.consumer.contact.primaryPhone", contact.get("primaryPhone")),
            "address": ("lead.consumer.contact.streetAddress", contact.get("streetAddress")),
            "city": ("lead.consumer.contact.city", contact.get("city")),
            "state": ("lead.consumer.contact.state", contact.get("state")),
            "zip": ("lead.consumer.contact.zip", contact.get("zip")),
            "external_id": ("lead.leadExternalId", lead.get("leadExternalId")),
        },
    )
    # The doc puts mortgagePurchase at the top level, its sample inside lead: read both, lead first.
    purchase = _dig(lead, "mortgagePurchase") or _dig(payload, "mortgagePurchase") or {}
    _custom(fields, {"vertical": lead.get("vertical"), "loan_amount": _dig(purchase, "loanAmount")})
    return _finish(fields, errors, "lead.consumer.contact.firstName", lambda: owner_by_routing(state, hook, errors))


HUBSPOT_NAMED = {
    "firstname": "first_name",
    "lastname": "last_name",
    "email": "email",
    "phone": "phone",
    "address": "address",
    "city": "city",
    "state": "state",
    "zip": "zip",
    "hs_object_id": "external_id",
}
"""HubSpot properties with a prospect field of their own; every other property becomes a note."""
HUBSPOT_OWNER = ("hubspot_owner_id", "dealer_id")
"""Owner properties, first non-empty wins: a Bonzo user's external id."""


def map_hubspot(state: SandboxState, hook: HookRow, payload: Mapping[str, Any]) -> tuple[UserRow, dict[str, Any]]:
    """HubSpot: every value wrapped as ``properties.<name>.value``; unnamed properties become notes."""
    errors: dict[str, list[str]] = {}
    properties = _object(payload, "properties", errors)
    values: dict[str, Any] = {}
    for name, wrapped in properties.items():
        if isinstance(wrapped, Mapping) and "value" in wrapped:
            values[name] = wrapped["value"]
        else:
            errors.setdefault(f"properties.{name}", []).append("The property must be an object with a value.")
    fields = _fields(
        hook, errors, {field: (f"properties.{name}", values.get(name)) for name, field in HUBSPOT_NAMED.items()}
    )
    notes = [n for n, v in values.items() if n not in HUBSPOT_NAMED and n not in HUBSPOT_OWNER and scalar(v)]
    fields["notes_count"] = len(notes)
    owner_key = next((scalar(values.get(n)) for n in HUBSPOT_OWNER if scalar(values.get(n))), None)
    return _finish(
        fields,
        errors,
        "properties.firstname",
        lambda: known_or_policy(
            state,
            state.users_by_external.get(owner_key) if owner_key else None,
            owner_key,
            "properties.hubspot_owner_id",
            errors,
        ),
    )


def _first(value: Any) -> Any:
    """Unbounce sends every field as an array; Bonzo reads its first element."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def map_unbounce(state: SandboxState, hook: HookRow, payload: Mapping[str, Any]) -> tuple[UserRow, dict[str, Any]]:
    """Unbounce: ``data_json`` holds arrays, the first element counts; ``custom_<Name>`` -> custom field."""
    errors: dict[str, list[str]] = {}
    data = payload["data_json"]
    names = ("first_name", "last_name", "email", "phone", "address", "city", "state")
    fields = _fields(hook, errors, {name: (f"data_json.{name}", _first(data.get(name))) for name in names})
    _custom(fields, {k[7:]: _first(v) for k, v in data.items() if k.startswith("custom_") and len(k) > 7})
    return _finish(fields, errors, "data_json.first_name", lambda: owner_by_routing(state, hook, errors))


# -- the registry -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HookType:
    """How one hook type reads a body, names the lead (for choosing faults) and maps it."""

    parse: Callable[[bytes], dict[str, Any]]
    identify: Callable[[Mapping[str, Any]], tuple[Any, Any]]
    map: Mapper


def _flat_identity(payload: Mapping[str, Any]) -> tuple[Any, Any]:
    return payload.get("first_name"), payload.get("email")


HOOK_KINDS: dict[str, HookType] = {
    "monitorbase": HookType(parse_json_object, _flat_identity, map_monitorbase),
    "general": HookType(parse_json_object, _flat_identity, map_general),
    "zillow": HookType(
        parse_json_object,
        lambda p: (_dig(p, "sender", "firstName"), _dig(p, "sender", "emailAddress")),
        map_zillow,
    ),
    "mortech": HookType(parse_xml_row, lambda p: (p.get("ProspectFirstName"), p.get("ProspectEmail")), map_mortech),
    "lendingtree": HookType(
        parse_json_object,
        lambda p: (
            _dig(p, "lead", "consumer", "contact", "firstName"),
            _dig(p, "lead", "consumer", "contact", "emailAddress"),
        ),
        map_lendingtree,
    ),
    "hubspot": HookType(
        parse_json_object,
        lambda p: (_dig(p, "properties", "firstname", "value"), _dig(p, "properties", "email", "value")),
        map_hubspot,
    ),
    "unbounce": HookType(
        parse_form_json,
        lambda p: (_first(_dig(p, "data_json", "first_name")), _first(_dig(p, "data_json", "email"))),
        map_unbounce,
    ),
}
HOOK_TYPES = tuple(HOOK_KINDS)
ROUTED_HOOK_TYPES = ("lendingtree", "unbounce")
"""Hook types whose payload names no owner: their hook needs a routing policy."""

STRICT_SOURCES = {"general": "webhook"}
"""Strict mode: the ``source`` a hook type's prospects get (the reference leaves it unknown, §5 and §9.7). The
general hook sets its own value, never the integration's name; every other type keeps the name it stands for."""


def map_lead(state: SandboxState, hook: HookRow, payload: Mapping[str, Any]) -> tuple[UserRow, dict[str, Any]]:
    """The hook type's mapping, then (strict mode) only what the reference promises: the hook type's own
    ``source`` and only the custom fields the hook's Mapping tab maps (``mapped_custom_fields``)."""
    owner, fields = HOOK_KINDS[hook.type].map(state, hook, payload)
    fields["source"] = stored_source(hook, strict=state.strict)
    if state.strict:
        mapped = set(state.mapped_custom_fields.get(hook.type, ()))
        fields["custom_fields"] = {k: v for k, v in (fields.get("custom_fields") or {}).items() if k in mapped}
    return owner, fields


def stored_source(hook: HookRow, *, strict: bool) -> str:
    """The ``source`` a hook's prospects get: its seeded label (lenient), or its type's own (strict)."""
    return STRICT_SOURCES.get(hook.type, hook.type) if strict else hook.source
