"""The load-run dashboard: one offline HTML page of plots over time (Plotly) and the per-stage table.

Drawn from what the store holds (:class:`~bonzo_bulk.load.results.StoredLoad`), not from the live run,
so the page shows exactly what was kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from plotly.offline import get_plotlyjs

from bonzo_bulk.errors import BonzoBulkError, ConfigError
from bonzo_bulk.load.results import LoadStore, StoredLoad
from bonzo_bulk.load.stats import SeriesPoint
from bonzo_bulk.report.stored import load_report_path, open_existing
from bonzo_bulk.secrets import redact

_PLOTLY_SLOT = "/*bonzo-bulk:plotly.js*/"
Figure = dict[str, Any]
BLUE, GREY, RED, GREEN, AMBER, PURPLE = "#3867a8", "#8a8f98", "#c62828", "#2e7d32", "#ef8f00", "#8a6bb1"
FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif", "size": 12}


def _layout(title_y: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "font": FONT,
        "margin": {"l": 64, "r": 20, "t": 16, "b": 46},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "height": 300,
        "legend": {"orientation": "h", "y": -0.25, "x": 0},
        "xaxis": {"title": {"text": "seconds since the first arrival"}, "gridcolor": "#eceef1", "zeroline": False},
        "yaxis": {"title": {"text": title_y}, "gridcolor": "#eceef1", "rangemode": "tozero"},
        "hovermode": "x unified",
    }
    layout.update(extra)
    return layout


def _stage_shapes(load: StoredLoad) -> list[dict[str, Any]]:
    """Faint vertical lines where stages (or stress steps) change."""
    return [
        {
            "type": "line",
            "xref": "x",
            "yref": "paper",
            "x0": s.start_s,
            "x1": s.start_s,
            "y0": 0,
            "y1": 1,
            "line": {"color": "#c7cbd1", "width": 1, "dash": "dot"},
        }
        for s in load.stages[1:]
    ]


def _xs(series: Sequence[SeriesPoint]) -> list[float]:
    """Each one-second point drawn at the middle of its second."""
    return [round(p.t + 0.5, 3) for p in series]


def figures(load: StoredLoad) -> dict[str, Figure]:
    """The page's plots as Plotly JSON: rate, hook latency, end-to-end lag, backlog (and stress steps)."""
    series = load.series
    xs = _xs(series)
    shapes = _stage_shapes(load)
    result = {
        "rate": _rate(series, xs, shapes),
        "hook": {
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": "hook p95 (from intended send)",
                    "x": xs,
                    "y": [p.hook_p95_ms for p in series],
                    "line": {"color": PURPLE},
                    "marker": {"size": 4},
                    "connectgaps": False,
                },
            ],
            "layout": _layout("milliseconds", shapes=shapes),
        },
        "lag": {
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": "end-to-end lag p95 (by send second)",
                    "x": xs,
                    "y": [p.e2e_lag_p95_s for p in series],
                    "line": {"color": GREEN},
                    "marker": {"size": 4},
                },
            ],
            "layout": _layout("seconds (created_at − sent)", shapes=shapes),
        },
        "backlog": {
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": "accepted, not yet in Bonzo",
                    "x": xs,
                    "y": [p.backlog for p in series],
                    "fill": "tozeroy",
                    "line": {"color": AMBER},
                },
            ],
            "layout": _layout("leads", shapes=shapes),
        },
    }
    steps = load.summary.get("steps") or []
    if steps:
        result["steps"] = _steps(steps)
    return result


def _rate(series: Sequence[SeriesPoint], xs: list[float], shapes: list[dict[str, Any]]) -> Figure:
    """Target and achieved rate per second, with dropped arrivals and errors as stacked bars."""
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": "target rate",
                "x": xs,
                "y": [p.target_rate for p in series],
                "line": {"color": GREY, "dash": "dash"},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "achieved (sent/s)",
                "x": xs,
                "y": [p.achieved_rate for p in series],
                "line": {"color": BLUE},
            },
            {
                "type": "bar",
                "name": "dropped arrivals",
                "x": xs,
                "y": [p.dropped for p in series],
                "marker": {"color": AMBER},
            },
            {"type": "bar", "name": "errors", "x": xs, "y": [p.errors for p in series], "marker": {"color": RED}},
        ],
        "layout": _layout("leads per second", shapes=shapes, barmode="stack"),
    }


def _steps(steps: Sequence[dict[str, Any]]) -> Figure:
    """The lag each stress step gained, red where the step broke."""
    colours = [RED if s["broken"] else GREEN for s in steps]
    return {
        "data": [
            {
                "type": "bar",
                "name": "lag gained within the step (s)",
                "x": [s["rate"] for s in steps],
                "y": [s["lag_increase_s"] for s in steps],
                "marker": {"color": colours},
                "text": ["broken: " + "; ".join(s["reasons"]) if s["broken"] else "sustained" for s in steps],
                "textposition": "none",
                "hovertemplate": "%{x} leads/s: %{y} s<br>%{text}<extra></extra>",
            },
        ],
        "layout": _layout(
            "seconds gained",
            xaxis={"title": {"text": "step rate (leads/s)"}, "type": "category", "gridcolor": "#eceef1"},
            shapes=[],
        ),
    }


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bonzo_bulk.load", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def render_load_dashboard(load: StoredLoad, *, out: Path) -> Path:
    """Write the load run's dashboard to ``out`` (one offline HTML file) and return its path."""
    env = _environment()
    env.filters["num"] = _number
    summary = load.summary
    context = {
        "load": load,
        "summary": summary,
        "passed": bool(summary.get("passed")),
        "figures": figures(load),
        "failed_thresholds": [t for t in summary.get("thresholds", []) if not t["passed"]],
        "generated_at": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
        "started_at": datetime.fromtimestamp(load.t0).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
        "plotly_slot": _PLOTLY_SLOT,
    }
    page = redact(env.get_template("load.html.j2").render(context))
    page = page.replace(_PLOTLY_SLOT, get_plotlyjs(), 1)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise BonzoBulkError(f"cannot write the load dashboard to {out}: {exc}; pass another --out path") from exc
    return out


def render_stored_load(store_at: str | Path, run_id: str, *, out: Path | None = None) -> Path:
    """``bonzo-bulk report --run ID`` of a load or stress run: its load dashboard, drawn again from the store
    (``out``, else where the run wrote it: ``<reports>/load/<run id>/dashboard.html``)."""
    with open_existing(store_at) as store:
        stored = LoadStore(store).load(run_id)
        target = out or load_report_path(store, run_id)
        if stored is None:
            kind = store.run_kind(run_id)
            raise ConfigError(
                f"--run {run_id!r} is a {kind} run that never finished (interrupted?), so it has no load figures to "
                f"report; its records are in the run store: `bonzo-bulk cleanup --run {run_id} --yes` removes them",
                key="--run",
            )
    return render_load_dashboard(stored, out=target)
