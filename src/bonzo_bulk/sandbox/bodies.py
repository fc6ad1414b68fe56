"""How the sandbox reads a hook's body: a JSON object, Mortech's XML row, or Unbounce's form with a JSON field."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qs

from bonzo_bulk.sandbox.prospects import parse_json


class BodyError(Exception):
    """A body the hook type cannot read: answered 422 ``{"errors": {field: [message]}}``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A strict JSON object body."""
    try:
        payload = parse_json(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError("body", "The payload must be valid JSON.") from exc
    if not isinstance(payload, dict):
        raise BodyError("body", "The payload must be a JSON object.")
    return payload


_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def parse_xml_row(body: bytes) -> dict[str, Any]:
    """Mortech's ``<result><row>…</row></result>``: the first row's children as name -> text.

    Bodies with a DTD are refused before parsing, so no entity is ever declared or expanded.
    """
    if _DTD.search(body):
        raise BodyError("body", "The payload may not contain a DOCTYPE or ENTITY declaration.")
    try:
        root = ET.fromstring(body)  # noqa: S314 - DTDs refused above
    except ET.ParseError as exc:
        raise BodyError("body", "The payload must be valid XML.") from exc
    if root.tag != "result":
        raise BodyError("body", f"The payload's root element must be <result>, not <{root.tag}>.")
    row = root.find("row")
    if row is None:
        raise BodyError("body", "The payload must hold a <row> element.")
    return {child.tag: (child.text or "") for child in row}


def parse_form_json(body: bytes) -> dict[str, Any]:
    """Unbounce's form post: the ``data_json`` (or ``data.json``) field parsed as a JSON object."""
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, max_num_fields=1000)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError("body", "The payload must be form-encoded (application/x-www-form-urlencoded).") from exc
    raw = form.get("data_json") or form.get("data.json")
    if not raw:
        raise BodyError("data_json", "The data json field is required.")
    try:
        data = parse_json(raw[0].encode())
    except ValueError as exc:
        raise BodyError("data_json", "The data json must be a JSON string.") from exc
    if not isinstance(data, dict):
        raise BodyError("data_json", "The data json must hold a JSON object.")
    return {**{key: values[0] for key, values in form.items()}, "data_json": data}
