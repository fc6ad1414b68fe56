"""Redirects from Bonzo's API: followed only within the API's own origin, a few hops a call, and counted.

aiohttp follows redirects on its own by default, and would take a call — and trust its answer —
wherever a ``Location`` points. The client asks aiohttp not to (``allow_redirects=False``) and asks
:class:`Redirects` instead: a redirect to another origin (scheme, host, port) is refused with an error
naming both hosts (never the path or query, which may hold a secret), and a same-origin redirect is
followed at most :data:`MAX_REDIRECTS` times per call and told in the run's notes (:meth:`Redirects.describe`).

Example::

    redirects = Redirects(URL("https://app.getbonzo.com/api/v3"))
    hop = redirects.next_hop(307, "/api/v3/prospects?page=2", Hop.first(url, "GET"), method="GET", path="/prospects")
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Final

from yarl import URL

from bonzo_bulk._http import origin_of, redirect_target, same_origin
from bonzo_bulk.errors import RedirectRefused

__all__ = ["MAX_REDIRECTS", "Hop", "Redirects"]

MAX_REDIRECTS: Final = 3
"""Same-origin redirects followed per call; one more is an error. A redirect to another origin never is followed."""


@dataclass(frozen=True, slots=True)
class Hop:
    """Where one request of a call goes: the URL, the method, and whether the call's body still goes along."""

    url: URL
    method: str
    keeps_body: bool = True
    number: int = 0
    """0 for the call's own request, then 1, 2, … for each redirect followed."""

    @classmethod
    def first(cls, url: URL, method: str) -> Hop:
        return cls(url, method)


class Redirects:
    """Decides every redirect of one client's calls, and counts those it followed."""

    def __init__(self, root: URL) -> None:
        self._root = root
        self.followed: Counter[int] = Counter()
        """Same-origin redirects followed, per status."""

    @property
    def origin(self) -> str:
        """The API's origin as a message may show it."""
        return origin_of(self._root)

    def next_hop(self, status: int, location: str | None, hop: Hop, *, method: str, path: str) -> Hop:
        """The request a ``status`` redirect to ``location`` asks for, or :class:`RedirectRefused`.

        ``method`` and ``path`` are the call's own (for the error), never the ``Location``'s.
        """
        target = redirect_target(hop.url, location)
        here = self.origin
        if target is None:
            raise RedirectRefused(
                f"Bonzo's API at {here} answered a redirect without a usable http(s) Location; not followed: "
                "check api_settings.base_url / BONZO_API_URL",
                status=status,
                method=method,
                path=path,
            )
        if not same_origin(target, self._root):
            raise RedirectRefused(
                f"Bonzo's API at {here} redirected the call to another host, {origin_of(target)}; not followed, so "
                f"neither the API key nor the call left {here} and no answer of {origin_of(target)} was trusted: "
                "point BONZO_API_URL (api_settings.base_url) at the host that answers the API itself",
                status=status,
                method=method,
                path=path,
            )
        if hop.number >= MAX_REDIRECTS:
            raise RedirectRefused(
                f"Bonzo's API at {here} redirected the call more than {MAX_REDIRECTS} times (within its own host); "
                "not followed further: check api_settings.base_url / BONZO_API_URL",
                status=status,
                method=method,
                path=path,
            )
        self.followed[status] += 1
        becomes_get = (status == 303 and hop.method != "HEAD") or (status in (301, 302) and hop.method == "POST")
        return Hop(
            target,
            "GET" if becomes_get else hop.method,
            keeps_body=hop.keeps_body and not becomes_get,
            number=hop.number + 1,
        )

    def describe(self) -> str | None:
        """The run's note on redirects followed (None when there was none)."""
        if not self.followed:
            return None
        total = sum(self.followed.values())
        kinds = ", ".join(f"{status} ×{count}" for status, count in sorted(self.followed.items()))
        return (
            f"Bonzo's API redirected {total} request(s) within {self.origin} ({kinds}): followed, at most "
            f"{MAX_REDIRECTS} hops a call; a redirect to another host is never followed"
        )
