"""The served pages' templates (Jinja2, autoescaped), rendered and redacted in one pass like every report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

import jinja2

from bonzo_bulk.report.dashboard import page_environment
from bonzo_bulk.secrets import redact


def age_text(seconds: float) -> str:
    """``42 s``, ``5 min``, ``3.2 h``, ``2.0 d``: how long ago, in one short word.

    >>> age_text(42), age_text(300), age_text(11520), age_text(172800)
    ('42 s', '5 min', '3.2 h', '2.0 d')
    """
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _stamp(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if moment else "—"


@cache
def _environment() -> jinja2.Environment:
    env = page_environment("bonzo_bulk.serve")
    env.filters["age"] = age_text
    env.filters["when"] = _stamp
    return env


def page(template: str, context: Mapping[str, Any]) -> str:
    """A served page, every registered secret masked."""
    return redact(_environment().get_template(template).render(context))


def verdict_dots(verdicts: Sequence[bool | None], width: int = 160, height: int = 32) -> str:
    """An inline SVG row of one dot per run, oldest first: green passed, red failed, grey unfinished."""
    step = width / max(len(verdicts), 1)
    dots = "".join(
        f'<circle class="{"unfinished" if v is None else "passed" if v else "failed"}" '
        f'cx="{step * (i + 0.5):.1f}" cy="{height / 2:.0f}" r="{min(5.0, step / 2.2):.1f}"/>'
        for i, v in enumerate(verdicts)
    )
    return f'<svg class="spark verdicts" viewBox="0 0 {width} {height}" role="img" aria-label="verdicts">{dots}</svg>'


def sparkline(values: Sequence[float | None], width: int = 160, height: int = 32) -> str:
    """An inline SVG line of the values (gaps skipped), scaled to the box; empty when there are none."""
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    if not known:
        return '<span class="muted">—</span>'
    low, high = min(v for _, v in known), max(v for _, v in known)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    points = " ".join(f"{i * step:.1f},{height - 3 - (v - low) / span * (height - 6):.1f}" for i, v in known)
    box = f'viewBox="0 0 {width} {height}" role="img" aria-label="trend"'
    return f'<svg class="spark p95" {box}><polyline points="{points}"/></svg>'
