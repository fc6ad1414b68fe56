"""Reports of a run: the JSON summary and the self-contained HTML health dashboard."""

from __future__ import annotations

from bonzo_bulk.report.dashboard import render_dashboard
from bonzo_bulk.report.summary import write_json_summary

__all__ = ["render_dashboard", "write_json_summary"]
