"""Reports of a run: the JSON summary and the offline HTML health dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bonzo_bulk._lazy import lazy_getattr

if TYPE_CHECKING:
    from bonzo_bulk.report.dashboard import render_dashboard
    from bonzo_bulk.report.summary import write_json_summary

# Imported on first use: `bonzo-bulk --help` and `prune` reach report.retention without loading jinja2 and plotly.
_LAZY = {"render_dashboard": "bonzo_bulk.report.dashboard", "write_json_summary": "bonzo_bulk.report.summary"}

__all__ = ["render_dashboard", "write_json_summary"]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
