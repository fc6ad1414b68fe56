"""Per (user, search, fields searched), the ids of the user's prospects that match, kept up to date between
list requests."""

from __future__ import annotations

import bisect
import sqlite3
from array import array
from collections import OrderedDict
from typing import Literal

NAMES_TEXT = (
    "lower(coalesce(json_extract(doc, '$.first_name'), '') || char(10)"
    " || coalesce(json_extract(doc, '$.last_name'), '') || char(10)"
    " || coalesce(json_extract(doc, '$.full_name'), ''))"
)
"""The text a names-only ``search`` matches (``sandbox.search: names``): first, last and full name."""

LISTINGS_KEPT = 32
"""How many (user, search) listings :class:`Listings` keeps (least recently used dropped first)."""


class Listings:
    """Per (user, search): the ids of the user's prospects that match, ascending, kept up to date by reading only
    the prospects added since (ids only grow), so a page of a list costs a page, not a scan of every prospect
    the user has (at 100k + 100k records a COUNT and an OFFSET over 67,000 rows per page, 70 ms, made listing one
    user 48 s). A deleted prospect leaves them; all are dropped when a prospect changes or another connection
    writes the file."""

    def __init__(self) -> None:
        self._ids: OrderedDict[tuple[int, str | None, str], tuple[array[int], int]] = OrderedDict()
        self._data_version: int | None = None

    def clear(self) -> None:
        """Forget every listing (a prospect's search text may have changed, or every prospect went)."""
        self._ids.clear()

    def forget(self, prospect_id: int) -> None:
        """Take a deleted prospect out of the listings that hold it."""
        for ids, _ in self._ids.values():
            at = bisect.bisect_left(ids, prospect_id)
            if at < len(ids) and ids[at] == prospect_id:
                del ids[at]

    def matching(
        self,
        conn: sqlite3.Connection,
        user_id: int,
        search: str | None,
        fields: Literal["all", "names"] = "all",
    ) -> array[int]:
        """The ids of the user's prospects whose search text holds ``search`` (all of them for None), ascending;
        ``fields="names"`` matches the names alone (first, last, full), not email or phone."""
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:  # another connection wrote to the file: nothing known holds
            self._ids.clear()
            self._data_version = version
        key = (user_id, search, fields)
        known = self._ids.pop(key, None)
        ids, scanned = known if known is not None else (array("q"), 0)
        newest = conn.execute("SELECT MAX(id) FROM prospects").fetchone()[0] or 0
        if newest > scanned:
            where, params = "user_id = ? AND id > ? AND id <= ?", [user_id, scanned, newest]
            if search:
                where += f" AND instr({NAMES_TEXT if fields == 'names' else 'search'}, ?) > 0"
                params.append(search)
            ids.extend(row[0] for row in conn.execute(f"SELECT id FROM prospects WHERE {where} ORDER BY id", params))  # noqa: S608
        self._ids[key] = (ids, max(newest, scanned))
        while len(self._ids) > LISTINGS_KEPT:
            self._ids.popitem(last=False)
        return ids
