"""Bonzo's API, as the rest of bonzo-bulk sees it: one async client, its page type, and the typed prospect.

The client (and aiohttp under it) loads on first use, so reading a stored prospect costs no HTTP stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bonzo_bulk._lazy import lazy_getattr

if TYPE_CHECKING:
    from bonzo_bulk.bonzo.client import BonzoClient, OnBehalfOf, ProspectPage, acting_user
    from bonzo_bulk.bonzo.view import ProspectView

__all__ = ["BonzoClient", "OnBehalfOf", "ProspectPage", "ProspectView", "acting_user"]

_LAZY = {
    "BonzoClient": "bonzo_bulk.bonzo.client",
    "OnBehalfOf": "bonzo_bulk.bonzo.client",
    "ProspectPage": "bonzo_bulk.bonzo.client",
    "ProspectView": "bonzo_bulk.bonzo.view",
    "acting_user": "bonzo_bulk.bonzo.client",
}
__getattr__ = lazy_getattr(__name__, _LAZY, globals())
