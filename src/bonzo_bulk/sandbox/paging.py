"""How the sandbox pages ``GET /prospects``: the envelope of each pagination style, cursors, and hostile listings.

Bonzo's reference confirms only ``meta.current_page`` / ``meta.last_page`` (on another list) and assumes the
rest of Laravel's envelope; the per-page maximum is unknown. Each style is one plausible answer, switched by
``sandbox.listing`` (docs/sandbox.md names the reference row behind each):

- ``laravel``: ``links`` (``next`` bare ``?page=N``, without the query, as Laravel writes it) and ``meta``;
- ``page_numbers``: ``meta.current_page`` / ``last_page`` / ``per_page`` / ``total`` only;
- ``links_cursor``: an opaque cursor in a relative ``links.next``, no page numbers;
- ``meta_cursor``: ``meta.next_cursor``, no links.

``hints: asked`` computes ``meta.per_page`` and ``last_page`` from the ``per_page`` asked, not the capped size
served. A hostile listing claims ``last_page: 1000000`` and never ends: ``repeat`` serves page 1 again,
``endless`` serves new made-up ids on every later page; ``foreign_next`` names another host as next.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any

from bonzo_bulk.config.schema import SandboxListing

HOSTILE_LAST_PAGE = 1_000_000
FOREIGN_HOST = "http://elsewhere.invalid"
PHANTOM_ID = 900_000_000
"""Made-up ids of an ``endless`` listing start here, far above any prospect the sandbox stores."""


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page starts: a page number, or (cursor styles) after a prospect id or at a made-up page."""

    page: int = 1
    after: int | None = None
    phantom: int | None = None


def encode_cursor(**fields: int) -> str:
    """An opaque cursor (base64url JSON, as Laravel's cursor paginator writes one)."""
    return base64.urlsafe_b64encode(json.dumps(fields, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; the first page for one this sandbox did not write (as Laravel reads it)."""
    try:
        fields = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        return Position()
    if not isinstance(fields, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in fields.values()):
        return Position()
    return Position(after=fields.get("after"), phantom=fields.get("phantom"))


def phantoms(number: int, size: int) -> list[dict[str, Any]]:
    """Page ``number`` of an endless listing: ``size`` prospects nobody stored, new ids every page."""
    first = PHANTOM_ID + number * size
    return [
        {"id": n, "first_name": "Phantom", "last_name": "Page", "email": f"phantom.{n}@elsewhere.invalid"}
        for n in range(first, first + size)
    ]


@dataclass(frozen=True, slots=True)
class Served:
    """One page as served: its position, the sizes asked and served, the list's total, what follows."""

    position: Position
    asked: int
    size: int
    total: int
    has_next: bool
    last_id: int | None


def envelope(listing: SandboxListing, path: str, data: list[dict[str, Any]], served: Served) -> dict[str, Any]:
    """The answer of one page in the listing's style (``path``: the list's absolute URL)."""
    hostile = listing.hostile in ("repeat", "endless")
    has_next = served.has_next or hostile
    hinted = served.asked if listing.hints == "asked" else served.size
    last_page = HOSTILE_LAST_PAGE if hostile else max(1, math.ceil(served.total / hinted))
    page_no = served.position.page
    body: dict[str, Any] = {"data": data}
    if listing.style in ("laravel", "page_numbers"):
        first_item = (page_no - 1) * served.size + 1 if data else None
        meta: dict[str, Any] = {"current_page": page_no, "last_page": last_page, "per_page": hinted}
        meta["total"] = served.total
        if listing.style == "laravel":
            meta |= {"from": first_item, "to": first_item + len(data) - 1 if first_item else None, "path": path}
            body["links"] = {
                "first": f"{path}?page=1",
                "last": f"{path}?page={last_page}",
                "prev": f"{path}?page={page_no - 1}" if page_no > 1 else None,
                "next": f"{path}?page={page_no + 1}" if has_next else None,
            }
        body["meta"] = meta
    else:
        cursor = _next_cursor(listing, served) if has_next else None
        if listing.style == "links_cursor":
            relative = "/" + path.split("://", 1)[-1].split("/", 1)[-1]
            following = f"{relative}?cursor={cursor}" if cursor else None
            body["links"] = {"first": None, "last": None, "prev": None, "next": following}
            body["meta"] = {"path": path, "per_page": hinted}
        else:
            body["meta"] = {"path": path, "per_page": hinted, "next_cursor": cursor, "prev_cursor": None}
    if listing.hostile == "foreign_next":
        body.setdefault("links", {})["next"] = f"{FOREIGN_HOST}/api/v3/prospects?page={page_no + 1}"
    return body


def _next_cursor(listing: SandboxListing, served: Served) -> str:
    """The cursor of the page after ``served``: after its last id, or (hostile) a page that repeats or is made up."""
    if listing.hostile == "repeat":
        return encode_cursor()  # names "from the start" every time: the same page again
    if listing.hostile == "endless":
        return encode_cursor(phantom=(served.position.phantom or 0) + 1)
    return encode_cursor(after=served.last_id or 0)
