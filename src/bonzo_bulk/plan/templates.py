"""Payload templates rendered on the parsed tree, never by text replacement.

A template is a JSON document whose string values may hold ``{placeholder}`` references, the style
the users' existing ``tests/fixtures/*_payload_template.json`` files use::

    {"lo_email": "{user.email}", "user_id": "{user.user_id}", "first_name": "{first_name}"}

A string that is exactly one placeholder takes the value's own type (``"{user.user_id}"`` renders as
the integer ``65013``); a placeholder inside longer text is formatted into it. ``{{`` and ``}}`` are
literal braces. An unknown placeholder is a :class:`TemplateError` naming it and where it stands,
and so is anything brace-shaped that is not a placeholder (``{first name}``, ``{user.email``, ``{}``):
parsed strictly, such text is refused before a byte is sent instead of going out literally.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bonzo_bulk.errors import TemplateError

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")
_BRACES = re.compile(r"\{\{|\}\}|\{[^{}]*\}?|\}")
"""Every brace-shaped piece of text: an escape, something meant as a placeholder, or a stray brace."""

Renderer = Callable[[Mapping[str, Any]], Any]


def load_template(path: str | Path) -> Any:
    """Parse a payload template file (JSON, or XML for ``.xml``) into a tree; errors are :class:`TemplateError`.

    An XML template becomes the tree of its root element's children (see :func:`encodings.xml_to_tree`).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(
            f"payload template {str(file)!r} cannot be read ({exc.strerror}); check the path in the config",
            key="payload_template",
        ) from exc
    except UnicodeDecodeError as exc:
        raise TemplateError(
            f"payload template {str(file)!r} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
            f"{exc.start}); save it as UTF-8",
            key="payload_template",
        ) from exc
    if file.suffix.lower() == ".xml":
        from bonzo_bulk.plan.encodings import xml_to_tree

        tree = xml_to_tree(text, source=f"payload template {str(file)!r}")[1]
    else:
        try:
            tree = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TemplateError(
                f"payload template {str(file)!r} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                key="payload_template",
            ) from exc
    check_braces(tree, name=f"payload template {str(file)!r}")
    return tree


def check_braces(template: Any, *, name: str = "template") -> None:
    """Refuse brace-shaped text that is not a placeholder or an escape, naming it, where it is and the fix.

    >>> check_braces({"a": "{first name}"}, name="t.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bonzo_bulk.errors.TemplateError: t.json: '{first name}' at $.a is not a placeholder; write {name} ...
    """

    def walk(node: Any, where: str) -> None:
        if isinstance(node, str):
            _check_string(node, where, name)
        elif isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(template, "$")


def _check_string(text: str, where: str, name: str) -> None:
    for match in _BRACES.finditer(text):
        piece = match.group(0)
        if piece in ("{{", "}}") or _PLACEHOLDER.fullmatch(piece):
            continue
        raise TemplateError(
            f"{name}: {piece!r} at {where} is not a placeholder; write {{name}} with a known name such as "
            "{first_name} or {user.email}, or {{ and }} for a literal brace",
            key=where,
        )


def placeholders(template: Any) -> set[str]:
    """Every placeholder name used anywhere in a parsed template."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, str):
            found.update(m.group(1) for m in _PLACEHOLDER.finditer(node) if m.group(1))
        elif isinstance(node, Mapping):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(template)
    return found


def compile_template(template: Any, *, name: str = "template") -> Renderer:
    """Compile a parsed template into a fast renderer ``context -> payload``.

    The tree is walked once here; rendering a record then only substitutes values, which matters
    when a run renders tens of thousands of payloads.

    >>> render = compile_template({"id": "{user.id}", "note": "run {run_id}", "tags": ["x"]})
    >>> render({"user": {"id": 7}, "run_id": "r1"})
    {'id': 7, 'note': 'run r1', 'tags': ['x']}
    """

    def build(node: Any, where: str) -> Renderer:
        if isinstance(node, str):
            return _compile_string(node, where, name)
        if isinstance(node, Mapping):
            parts = [(key, build(value, f"{where}.{key}")) for key, value in node.items()]
            if all(getattr(fn, "constant", False) for _, fn in parts):
                return _constant(dict(node))
            return lambda ctx: {key: fn(ctx) for key, fn in parts}
        if isinstance(node, list):
            items = [build(value, f"{where}[{i}]") for i, value in enumerate(node)]
            if all(getattr(fn, "constant", False) for fn in items):
                return _constant(list(node))
            return lambda ctx: [fn(ctx) for fn in items]
        return _constant(node)

    return build(template, "$")


def render(template: Any, context: Mapping[str, Any], *, name: str = "template") -> Any:
    """Render a parsed template once (compile + render)."""
    return compile_template(template, name=name)(context)


def _constant(value: Any) -> Renderer:
    def fn(_ctx: Mapping[str, Any]) -> Any:
        return json.loads(json.dumps(value)) if isinstance(value, dict | list) else value

    fn.constant = True  # type: ignore[attr-defined]
    return fn


def _lookup(context: Mapping[str, Any], dotted: str, where: str, name: str) -> Any:
    node: Any = context
    for part in dotted.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            known = ", ".join(sorted(_known_names(context)))
            raise TemplateError(
                f"{name}: placeholder '{{{dotted}}}' at {where} is unknown; known placeholders: {known}",
                key=where,
            )
    return node


def _known_names(context: Mapping[str, Any], prefix: str = "") -> list[str]:
    names: list[str] = []
    for key, value in context.items():
        if isinstance(value, Mapping):
            names.extend(_known_names(value, f"{prefix}{key}."))
        else:
            names.append(f"{prefix}{key}")
    return names


def _compile_string(text: str, where: str, name: str) -> Renderer:
    _check_string(text, where, name)
    matches = list(_PLACEHOLDER.finditer(text))
    if not matches:
        return _constant(text)
    only = matches[0]
    if len(matches) == 1 and only.group(1) and only.start() == 0 and only.end() == len(text):
        dotted = only.group(1)
        return lambda ctx: _lookup(ctx, dotted, where, name)

    pieces: list[str | tuple[str]] = []
    last = 0
    for match in matches:
        pieces.append(text[last : match.start()])
        piece = match.group(0)
        if piece == "{{":
            pieces.append("{")
        elif piece == "}}":
            pieces.append("}")
        else:
            pieces.append((match.group(1),))
        last = match.end()
    pieces.append(text[last:])

    def fn(ctx: Mapping[str, Any]) -> str:
        out: list[str] = []
        for piece in pieces:
            if isinstance(piece, tuple):
                value = _lookup(ctx, piece[0], where, name)
                out.append(value if isinstance(value, str) else json.dumps(value) if value is None else str(value))
            else:
                out.append(piece)
        return "".join(out)

    return fn
