"""Walking a listing the way the API's answer says, never by our arithmetic.

Each page names the next one, and the walk follows what it names, in this order:

1. ``links.next``: a URL, absolute or relative, with any query parameters (opaque cursors included). It is
   sent to our own API host only; a ``next`` naming another host, or a path outside the API, is an error.
   Parameters the URL does not carry (``search``, ``per_page``, ``order``) are kept from the first request,
   as Laravel's paginator leaves them out of its links unless told otherwise. ``next: null`` ends the list.
2. ``meta.next_cursor``: the cursor is sent as ``cursor``; ``null`` ends the list.
3. page numbers, when that is all there is: ``page`` + 1, until a page comes back empty, or the API answers
   a page number lower than the one asked for (it has no such page).

``total``, ``last_page`` and ``per_page`` are hints, shown but never taken as proof that nothing follows:
a server capping pages at 50 while we ask for 100 still says ``per_page: 100`` on some stacks. A page that
repeats one already read in this walk (same ids), or a ``next`` already followed, is an error, never a quiet
end. The deadline is checked before every page, and the client's request budget before every request, so
a hostile listing (``last_page: 1000000``, new ids on every page) cannot keep a run polling past its end.

Example::

    async for page in walk_pages(fetch, root=URL("https://app.getbonzo.com/api/v3"), path="prospects",
                                 params={"search": "r2026", "per_page": 100}, deadline=time.monotonic() + 30):
        print(page.number, len(page.data), page.hints.last_page)
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from yarl import URL

from bonzo_bulk.errors import BonzoAPIError, ListingIncomplete
from bonzo_bulk.models import Prospect
from bonzo_bulk.secrets import redact_url

__all__ = ["ListedPage", "PageHints", "PageRequest", "page_of", "walk_pages"]

Params: TypeAlias = dict[str, str]
Fetch: TypeAlias = Callable[[str, Mapping[str, str]], Awaitable[Any]]
"""Send ``GET <root>/<path>?<params>`` and return the decoded JSON body (the client's own request)."""
NextBy = Literal["links", "cursor", "page", "end"]

_KEPT_PARAMS = ("search", "per_page", "order")
"""The first request's parameters a ``next`` link inherits when it does not carry them."""


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One page to ask for: a path under the API root and its query."""

    path: str
    params: Params

    @property
    def key(self) -> str:
        """The request as one string, to notice a ``next`` already followed."""
        return self.path + "?" + "&".join(f"{k}={v}" for k, v in sorted(self.params.items()))


@dataclass(frozen=True, slots=True)
class PageHints:
    """What the API says about the whole list: hints, never proof that a record is absent."""

    current_page: int | None = None
    last_page: int | None = None
    per_page: int | None = None
    total: int | None = None


@dataclass(frozen=True, slots=True)
class ListedPage:
    """One page of a walk: its prospects, its place in the walk, the hints, and how the next page is named."""

    data: tuple[Prospect, ...]
    number: int
    """1-based: the n-th page this walk read."""
    hints: PageHints
    next_by: NextBy
    """``links``, ``cursor`` or ``page``: how the next page was named; ``end``: the API says there is none."""


def _int(meta: Mapping[str, Any], key: str) -> int | None:
    value = meta.get(key)
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def page_of(payload: Any, path: str) -> tuple[tuple[Prospect, ...], PageHints, Mapping[str, Any], Mapping[str, Any]]:
    """A listing answer's prospects, hints, ``links`` and ``meta`` (empty when absent); not a list is an error."""
    items: Any = payload.get("data") if isinstance(payload, Mapping) else payload
    if items is None:
        items = []
    if not isinstance(items, list):
        raise BonzoAPIError(
            f"listing returned {type(items).__name__} where a list of prospects was expected", method="GET", path=path
        )
    links = payload.get("links") if isinstance(payload, Mapping) else None
    meta = payload.get("meta") if isinstance(payload, Mapping) else None
    links = links if isinstance(links, Mapping) else {}
    meta = meta if isinstance(meta, Mapping) else {}
    hints = PageHints(_int(meta, "current_page"), _int(meta, "last_page"), _int(meta, "per_page"), _int(meta, "total"))
    return tuple(item for item in items if isinstance(item, Mapping)), hints, links, meta


def _same_origin(url: URL, root: URL) -> bool:
    """Our API host: same host, and the same port (or both the scheme's default, as when http stands for https)."""
    if (url.host or "").lower() != (root.host or "").lower():
        return False
    return url.port == root.port or (url.explicit_port is None and root.explicit_port is None)


def _follow_link(link: object, asked: PageRequest, root: URL, number: int, shown_path: str) -> PageRequest | None:
    """The request ``links.next`` names, on our own host; None when it says there is no next page."""
    if link is None or link == "":
        return None
    if not isinstance(link, str):
        raise ListingIncomplete(
            f"links.next is {type(link).__name__}, not a URL; the listing cannot go on",
            reason="bad_next",
            pages=number,
            method="GET",
            path=shown_path,
        )
    here = root.joinpath(asked.path).with_query(asked.params)
    url = here.join(URL(link))
    if not _same_origin(url, root):
        raise ListingIncomplete(
            f"links.next points at another host ({redact_url(str(url.origin()))}, not "
            f"{redact_url(str(root.origin()))}); not followed, so the listing is incomplete",
            reason="foreign_next",
            pages=number,
            method="GET",
            path=shown_path,
        )
    prefix = root.path.rstrip("/") + "/"
    if not url.path.startswith(prefix):
        raise ListingIncomplete(
            f"links.next points outside the API ({url.path!r} is not under {prefix!r}); not followed",
            reason="foreign_next",
            pages=number,
            method="GET",
            path=shown_path,
        )
    params: Params = dict(url.query.items())
    for key in _KEPT_PARAMS:
        if key in asked.params and key not in params:
            params[key] = asked.params[key]
    return PageRequest(url.path[len(prefix) :], params)


def next_request(
    payload_parts: tuple[Mapping[str, Any], Mapping[str, Any]],
    data: tuple[Prospect, ...],
    asked: PageRequest,
    *,
    root: URL,
    number: int,
    shown_path: str,
) -> tuple[PageRequest | None, NextBy]:
    """The next page the answer names (see the module's docstring for the order), or None at the end."""
    links, meta = payload_parts
    if "next" in links:
        following = _follow_link(links["next"], asked, root, number, shown_path)
        return following, ("links" if following is not None else "end")
    if "next_cursor" in meta:
        cursor = meta["next_cursor"]
        if cursor is None or cursor == "":
            return None, "end"
        kept = {k: v for k, v in asked.params.items() if k in _KEPT_PARAMS}
        return PageRequest(asked.path, {**kept, "cursor": str(cursor)}), "cursor"
    if not data:
        return None, "end"
    return PageRequest(asked.path, {**asked.params, "page": str(_asked_page(asked) + 1)}), "page"


def _asked_page(request: PageRequest) -> int:
    raw = request.params.get("page", "1")
    return int(raw) if raw.isdigit() else 1


def _answered_earlier(
    request: PageRequest, hints: PageHints, links: Mapping[str, Any], meta: Mapping[str, Any]
) -> bool:
    """Page numbers only: asked for page N, the API answered ``current_page`` below N (it clamps to its last)."""
    if "next" in links or "next_cursor" in meta or hints.current_page is None:
        return False
    return hints.current_page < _asked_page(request)


async def walk_pages(
    fetch: Fetch,
    *,
    root: URL,
    path: str,
    params: Mapping[str, str | int | None],
    deadline: float | None,
) -> AsyncGenerator[ListedPage, None]:
    """Every page of one listing, in order, until the API says there is no next page.

    Raises :class:`ListingIncomplete` when a page repeats, a ``next`` leaves our API or the ``deadline``
    (a ``time.monotonic()`` instant) passes before the next page; the caller's pages so far stand.
    """
    shown_path = "/" + path.strip("/")
    request: PageRequest | None = PageRequest(path, {k: str(v) for k, v in params.items() if v is not None})
    seen_pages: set[tuple[object, ...]] = set()
    followed: set[str] = set()
    number = 0
    while request is not None:
        if deadline is not None and time.monotonic() >= deadline:
            raise ListingIncomplete(
                f"the deadline passed after {number} page(s) of this listing, before the API said it had no next page",
                reason="deadline",
                pages=number,
                method="GET",
                path=shown_path,
            )
        followed.add(request.key)
        payload = await fetch(request.path, request.params)
        number += 1
        data, hints, links, meta = page_of(payload, shown_path)
        if _answered_earlier(request, hints, links, meta):
            return  # asked for page N, the API answered an earlier one: it has no page N
        ids = tuple(p.get("id") for p in data)
        if ids and ids in seen_pages:
            raise ListingIncomplete(
                f"page {number} repeats a page already read in this listing (the same {len(ids)} ids; the API claims "
                f"last_page {hints.last_page}); not followed further",
                reason="repeated_page",
                pages=number,
                method="GET",
                path=shown_path,
            )
        seen_pages.add(ids)
        stop: ListingIncomplete | None = None
        try:
            following, how = next_request((links, meta), data, request, root=root, number=number, shown_path=shown_path)
        except ListingIncomplete as exc:
            following, how, stop = None, "end", exc  # this page stands; the walk ends with the error after it
        if following is not None and following.key in followed:
            following, stop = (
                None,
                ListingIncomplete(
                    f"page {number} names as next a page this listing already asked for; not followed again",
                    reason="repeated_next",
                    pages=number,
                    method="GET",
                    path=shown_path,
                ),
            )
        yield ListedPage(data, number, hints, how)
        if stop is not None:
            raise stop
        request = following
