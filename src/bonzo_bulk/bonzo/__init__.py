"""Bonzo's API, as the rest of bonzo-bulk sees it: one async client and its page type."""

from __future__ import annotations

from bonzo_bulk.bonzo.client import BonzoClient, OnBehalfOf, ProspectPage

__all__ = ["BonzoClient", "OnBehalfOf", "ProspectPage"]
