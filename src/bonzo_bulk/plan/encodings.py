"""Wire encodings of a rendered payload tree: JSON, XML (stdlib ElementTree) and HTML form fields.

A payload is always rendered as a tree first (:mod:`bonzo_bulk.plan.templates`); only then is it encoded,
so values are escaped by the encoder and never spliced into text. An XML tree maps element names
to children: a dict is an element with children, a list repeats the element, a scalar is its text
(``True`` -> ``true``, ``None`` -> empty). A form tree is a flat dict of field -> scalar (or a list
for a repeated field); with ``json_field`` set, that field's object or array is sent as a JSON string
(Unbounce's ``data_json``).

>>> encode_body({"row": {"Name": "Ann & Bo", "Count": 3}}, "xml", root="result")
b'<?xml version="1.0" encoding="utf-8"?>\\n<result><row><Name>Ann &amp; Bo</Name><Count>3</Count></row></result>'
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlencode

from bonzo_bulk.errors import TemplateError

Encoding = Literal["json", "xml", "form"]

CONTENT_TYPES: dict[str, str] = {
    "json": "application/json",
    "xml": "application/xml",
    "form": "application/x-www-form-urlencoded",
}

_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]*$")
_XML_INVALID_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def content_type(encoding: Encoding) -> str:
    """The ``Content-Type`` a body of this encoding is sent with."""
    return CONTENT_TYPES[encoding]


def encode_body(tree: Any, encoding: Encoding, *, root: str | None = None, json_field: str | None = None) -> bytes:
    """The exact bytes to POST for a rendered payload tree."""
    if encoding == "json":
        return json.dumps(tree, separators=(",", ":"), ensure_ascii=False).encode()
    if encoding == "xml":
        if root is None:
            raise TemplateError("an XML payload needs a root element name (manifest 'root:')", key="root")
        return tree_to_xml(tree, root)
    return form_body(tree, json_field=json_field)


def scalar_text(value: Any) -> str:
    """How a scalar goes on the wire as text: ``true``/``false`` for booleans, empty for None."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def tree_to_xml(tree: Any, root: str) -> bytes:
    """Serialise a tree under ``<root>`` with ElementTree (so every value is escaped by the encoder)."""
    element = ET.Element(_xml_name(root, root))
    _fill(element, tree, root)
    text = ET.tostring(element, encoding="unicode", short_empty_elements=False)
    # A raw carriage return in text would be read back as a newline; the character reference keeps it.
    text = text.replace("\r", "&#13;")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + text.encode()


def _fill(element: ET.Element, node: Any, where: str) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            name = _xml_name(str(key), f"{where}.{key}")
            for item in value if isinstance(value, list) else [value]:
                child = ET.SubElement(element, name)
                _fill(child, item, f"{where}.{key}")
    elif isinstance(node, list):
        raise TemplateError(f"XML payload: a list at {where} needs an element name; put it under a key", key=where)
    else:
        text = scalar_text(node)
        if _XML_INVALID_CHARS.search(text):
            raise TemplateError(
                f"XML payload: the value at {where} holds a control character XML 1.0 cannot carry: {text!r}",
                key=where,
            )
        element.text = text


def _xml_name(name: str, where: str) -> str:
    if not _XML_NAME.match(name) or name.lower().startswith("xml"):
        raise TemplateError(f"XML payload: {name!r} at {where} is not a usable XML element name", key=where)
    return name


def xml_to_tree(text: str, *, source: str = "template") -> tuple[str, Any]:
    """Parse an XML template into (root name, tree): children become keys, repeated children a list.

    Attributes are not part of the tree model, so a template that uses them is refused by name.
    Templates are our users' own files; expat (>= 2.4.1, bundled with Python 3.11) refuses entity
    expansion attacks and ElementTree never fetches external entities.
    """
    try:
        root = ET.fromstring(text)  # noqa: S314 - a local template file, see the docstring
    except ET.ParseError as exc:
        raise TemplateError(f"{source} is not valid XML: {exc}", key="payload_template") from exc
    return root.tag, _element_tree(root, root.tag, source)


def _element_tree(element: ET.Element, where: str, source: str) -> Any:
    if element.attrib:
        raise TemplateError(
            f"{source}: element {where} has attributes ({', '.join(element.attrib)}); "
            "XML templates map elements only — put the value in a child element",
            key=where,
        )
    children = list(element)
    if not children:
        return element.text or ""
    if (element.text or "").strip():
        raise TemplateError(f"{source}: element {where} mixes text and child elements", key=where)
    node: dict[str, Any] = {}
    for child in children:
        value = _element_tree(child, f"{where}.{child.tag}", source)
        if child.tag in node:
            existing = node[child.tag]
            node[child.tag] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            node[child.tag] = value
    return node


def form_body(tree: Any, *, json_field: str | None = None) -> bytes:
    """``application/x-www-form-urlencoded`` bytes; ``json_field``'s value goes as a JSON string."""
    if not isinstance(tree, Mapping):
        raise TemplateError("a form payload template must be an object of form fields", key="payload_template")
    pairs: list[tuple[str, str]] = []
    for key, value in tree.items():
        if key == json_field:
            pairs.append((key, json.dumps(value, separators=(",", ":"), ensure_ascii=False)))
        elif isinstance(value, list) and not any(isinstance(v, Mapping | list) for v in value):
            pairs.extend((key, scalar_text(v)) for v in value)
        elif isinstance(value, Mapping | list):
            raise TemplateError(
                f"form field {key!r} holds an object; name it in the manifest's 'json_field:' to send it as JSON",
                key=key,
            )
        else:
            pairs.append((key, scalar_text(value)))
    return urlencode(pairs).encode()
