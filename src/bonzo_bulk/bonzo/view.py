"""A typed, tolerant reading of one prospect resource, so nobody else parses Bonzo's JSON.

Where ``docs/bonzo-api.md`` lists more than one shape (or none) for a field, every known shape
is accepted instead of one being assumed:

| fact | shapes read | reference |
| --- | --- | --- |
| owner id | ``assigned_to`` (int), ``assigned_user.id`` | §2.4 D,B |
| owner email | ``assigned_user.email`` (absent: unknown, never a mismatch of its own) | §2.4 B |
| team id | ``business_entity_id``, ``business.id`` | §2.4 D,B |
| tags | list of names, or of ``{id, name, sequence_start}`` objects; compared lower-cased | §2.4 O,P |
| custom fields | ``custom_fields``/``custom``: flat object or ``[{key, value}]`` list; or top-level | §2.4 P,? |
| created_at | ISO 8601, fractions or not; naive stays naive (zone learned); whole seconds: 1 s resolution | §2.4 D |

Example::

    view = ProspectView({"id": 7, "assigned_to": 42, "business": {"id": 3}, "tags": [{"name": "Vip"}]})
    view.owner_id, view.team_id, view.tag_names     # (42, 3, ['vip'])
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeGuard

from bonzo_bulk._paths import get_path
from bonzo_bulk.bonzo.normalize import tag_names

CUSTOM_CONTAINERS = ("custom_fields", "custom")
"""Keys under which integrators have read custom fields."""


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _custom_items(container: Any) -> Iterator[tuple[str, Any]]:
    """(key, value) pairs of a custom-field container in either known shape."""
    if isinstance(container, Mapping):
        yield from ((str(k), v) for k, v in container.items())
    elif isinstance(container, list):
        for item in container:
            if isinstance(item, Mapping) and ("key" in item or "name" in item):
                yield str(item.get("key", item.get("name"))), item.get("value")


def _label_key(name: str) -> str:
    """A custom field's label normalised as one integrator writes top-level keys (``Run Id`` -> ``run_id``)."""
    return "_".join(name.strip().lower().replace("-", " ").split())


@dataclass(frozen=True, slots=True)
class Stamp:
    """One ``created_at`` as written: the instant it names (as if UTC when it carries no offset), whether it
    carries none, and its resolution in seconds.

    A whole-second stamp may have been cut down (truncated) or rounded from the true time, so the true time
    lies in ``[earliest, latest]`` around what it says.
    """

    instant: datetime
    naive: bool
    resolution: float

    @property
    def epoch(self) -> float:
        return self.instant.timestamp()

    @property
    def earliest(self) -> float:
        """The earliest true time (epoch, the stamp's own zone) the stamp can stand for (rounded up to it)."""
        return self.epoch - (self.resolution / 2 if self.resolution >= 1 else self.resolution)

    @property
    def latest(self) -> float:
        """The latest true time it can stand for (truncated down to it)."""
        return self.epoch + self.resolution

    @property
    def style(self) -> str:
        """How the stamp is written, in words: ``naive, whole seconds`` or ``with offset +00:00, microseconds``."""
        offset = self.instant.strftime("%z")
        zone = "naive (no offset)" if self.naive else f"with offset {offset[:3]}:{offset[3:]}"
        return f"{zone}, {'whole seconds' if self.resolution >= 1 else 'fractions of a second'}"


def read_stamp(value: Any) -> Stamp | None:
    """An ISO 8601 stamp read as written (a naive one stays naive), or None when it is not one.

    >>> read_stamp("2023-06-26T10:43:40").naive
    True
    >>> read_stamp("2023-06-26T10:43:40.250000Z").resolution
    1e-06
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        instant = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        return None
    naive = instant.tzinfo is None
    if naive:
        instant = instant.replace(tzinfo=UTC)
    clock = text.replace(" ", "T").split("T", 1)[-1]
    fraction = clock.split(".", 1)[1] if "." in clock else ""
    digits = "".join(itertools.takewhile(str.isdigit, fraction))
    has_fraction = bool(digits) and set(digits) != {"0"}
    return Stamp(instant, naive, 1e-6 if has_fraction else 1.0)


def parse_timestamp(value: Any) -> tuple[datetime, float] | None:
    """``(instant, resolution in seconds)`` of an ISO 8601 stamp (a naive one read as UTC), or None.

    >>> parse_timestamp("2023-06-26T10:43:40.000000Z")[1]
    1.0
    >>> parse_timestamp("2023-06-26T10:43:40.250000Z")[1]
    1e-06
    """
    stamp = read_stamp(value)
    return (stamp.instant, stamp.resolution) if stamp is not None else None


def _is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    """A JSON object (a dict, checked first: the ABC check costs more, and every owner read asks it)."""
    return type(value) is dict or isinstance(value, Mapping)


@dataclass(frozen=True, slots=True)
class ProspectView:
    """One prospect as Bonzo's API returned it (``raw``), read through every shape the reference knows."""

    raw: Mapping[str, Any]

    @property
    def owner_id(self) -> int | None:
        """The owner's user id from ``assigned_to`` or ``assigned_user.id`` (the first that is present)."""
        direct = _as_int(self.raw.get("assigned_to"))
        if direct is not None:
            return direct
        user = self.raw.get("assigned_user")
        return _as_int(user.get("id")) if _is_mapping(user) else None

    @property
    def owner_ids(self) -> set[int]:
        """Every owner id the prospect states (two that differ are an inconsistency in itself)."""
        ids = {_as_int(self.raw.get("assigned_to"))}
        user = self.raw.get("assigned_user")
        if _is_mapping(user):
            ids.add(_as_int(user.get("id")))
        return {i for i in ids if i is not None}

    @property
    def owner_email(self) -> str | None:
        user = self.raw.get("assigned_user")
        email = user.get("email") if _is_mapping(user) else None
        return str(email) if email else None

    @property
    def team_id(self) -> int | None:
        direct = _as_int(self.raw.get("business_entity_id"))
        if direct is not None:
            return direct
        business = self.raw.get("business")
        return _as_int(business.get("id")) if _is_mapping(business) else None

    @property
    def tag_names(self) -> list[str]:
        return tag_names(self.raw.get("tags"))

    @property
    def created(self) -> tuple[datetime, float] | None:
        """When Bonzo says it created the prospect (its own clock, a naive stamp read as UTC) and the stamp's
        resolution in seconds."""
        return parse_timestamp(self.raw.get("created_at"))

    @property
    def created_stamp(self) -> Stamp | None:
        """``created_at`` as written, naive or not (what :mod:`bonzo_bulk.judge.stamps` learns the zone of)."""
        return read_stamp(self.raw.get("created_at"))

    def custom_fields(self) -> dict[str, Any]:
        """Every custom field found, by key, from whichever container shape the prospect uses."""
        found: dict[str, Any] = {}
        for container in CUSTOM_CONTAINERS:
            for key, value in _custom_items(self.raw.get(container)):
                found.setdefault(key, value)
        return found

    def custom_field(self, name: str) -> Any:
        """One custom field by name: in a container (either shape), else a top-level key of its label."""
        fields = self.custom_fields()
        if name in fields:
            return fields[name]
        wanted = _label_key(name)
        for key, value in fields.items():
            if _label_key(key) == wanted:
                return value
        for key in (name, wanted, f"custom_{wanted}"):
            if key in self.raw and key not in CUSTOM_CONTAINERS:
                return self.raw[key]
        return None

    def value(self, path: str) -> Any:
        """The value at a contract path, read tolerantly for the fields whose shape is not settled.

        ``custom_fields.<name>`` / ``custom.<name>`` look in every custom-field shape; ``tags`` gives
        lower-cased names; ``assigned_to`` and ``business_entity_id`` fall back to ``assigned_user.id``
        and ``business.id``. Any other path is a plain JMESPath read.
        """
        head, _, rest = path.partition(".")
        if head in CUSTOM_CONTAINERS and rest:
            return self.custom_field(rest)
        if path == "tags":
            return self.tag_names
        if path == "assigned_to":
            return self.owner_id
        if path == "business_entity_id":
            return self.team_id
        return get_path(self.raw, path)

    def flatten(self) -> dict[str, Any]:
        """Every scalar the prospect holds, by dotted path; custom fields under ``custom_fields.<key>``
        whatever their shape (what calibration compares a payload against)."""
        flat: dict[str, Any] = {}

        def walk(node: Any, prefix: str) -> None:
            if isinstance(node, Mapping):
                for key, value in node.items():
                    walk(value, f"{prefix}.{key}" if prefix else str(key))
            elif not isinstance(node, list):
                flat[prefix] = node

        for key, value in self.raw.items():
            if key in CUSTOM_CONTAINERS or key == "tags":
                continue
            walk(value, str(key))
        for key, value in self.custom_fields().items():
            flat[f"custom_fields.{key}"] = value
        flat["tags"] = self.tag_names
        return flat
