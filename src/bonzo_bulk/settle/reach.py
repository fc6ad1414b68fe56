"""How far each user's list was read, and when: the last poll that could have seen a record.

A record first found on page ``p`` of a user's list was not there (or not yet visible) when an earlier
walk of that list read at least ``p`` pages and did not find it — new prospects only push older ones
further down, never up. So the lower end of a first-seen interval is the start of the latest such
walk, not the last poll of anything: a walk that stopped at page 1 proves nothing about page 3, and a
poll of another user proves nothing about this one. A list is one user's under one ``search`` term: a
walk with the run's marker as search proves nothing about a prospect the search does not match.
"""

from __future__ import annotations

import math

ListKey = tuple[int, str | None]
"""One list: the user it is read On-Behalf-Of, and the search term it is narrowed by."""
Walk = tuple[float, float]
"""A finished walk of one user's list: when it started (epoch seconds) and how many pages it read (inf: all)."""


class ListReach:
    """Per list, the finished walks of its list that no later, deeper walk makes redundant."""

    def __init__(self) -> None:
        self._walks: dict[ListKey, list[Walk]] = {}

    def finished(self, key: ListKey, started: float, pages: int, *, complete: bool) -> None:
        """Record a walk that read ``pages`` pages (``complete``: up to the list's end)."""
        depth = math.inf if complete else float(pages)
        kept = [w for w in self._walks.get(key, []) if w[1] > depth]
        kept.append((started, depth))
        self._walks[key] = kept

    def not_there_since(self, key: ListKey, page: int) -> float | None:
        """When the latest walk of the list that read page ``page`` started (None: none did)."""
        starts = [started for started, depth in self._walks.get(key, []) if depth >= page]
        return max(starts) if starts else None
