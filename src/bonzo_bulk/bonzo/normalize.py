"""The normalisations Bonzo applies to incoming values, so sent and stored values compare fairly."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_DIGITS = re.compile(r"\D+")


def phone_e164(value: Any) -> str | None:
    """A North American number as E.164 (``+15551234567``), or None when it is not one.

    >>> phone_e164("555-123-4567")
    '+15551234567'
    """
    digits = _DIGITS.sub("", str(value))
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return f"+1{digits}" if len(digits) == 10 else None


def tag_names(value: Any) -> list[str]:
    """Tag names, lower-cased and sorted, from a list of names or of ``{name: …}`` objects."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    names = [str(item.get("name", "")) if isinstance(item, Mapping) else str(item) for item in items]
    return sorted({name.strip().lower() for name in names if name.strip()})


def normalize(value: Any, how: str) -> Any:
    """Apply one named normalisation (``none``, ``lower``, ``phone``, ``strip``, ``tags``)."""
    if how == "none" or value is None:
        return value
    if how == "lower":
        return str(value).strip().lower()
    if how == "strip":
        return str(value).strip()
    if how == "phone":
        return phone_e164(value)
    if how == "tags":
        return tag_names(value)
    raise ValueError(f"unknown normalisation {how!r}")


def values_match(expected: Any, actual: Any, how: str) -> bool:
    """Whether an actual prospect value satisfies the expected one under a normalisation.

    For tags, every expected tag must be present (Bonzo appends to existing tags).
    """
    if how == "tags":
        return set(tag_names(expected)) <= set(tag_names(actual))
    left, right = normalize(expected, how), normalize(actual, how)
    if (isinstance(left, int | float) and isinstance(right, str)) or (
        isinstance(right, int | float) and isinstance(left, str)
    ):
        return str(left) == str(right)
    return bool(left == right)
