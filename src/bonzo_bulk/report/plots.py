"""Plotly figures for the dashboard, as plain JSON-ready dicts built from a RunResult (aggregated in Python)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bonzo_bulk.judge.tally import NO_OWNER, NOT_CREATED, NOT_DELIVERED, UNVERIFIED
from bonzo_bulk.models import LatencySummary, PhaseResult, RunResult, Stage
from bonzo_bulk.store import RunSummary

Figure = dict[str, Any]

GREEN = "#2e7d32"
RED = "#c62828"
AMBER = "#ef8f00"
GREY = "#8a8f98"
PHASE_COLOURS = {"primary": "#3867a8", "control": "#8a6bb1"}
FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif", "size": 12}
MAX_BINS = 40
MATRIX_LIMIT = 40
"""Owners (or teams) an assignment matrix draws at most. Beyond that a heatmap can be neither read nor carried
(10,000 owners made a 2.4 GB page of two dense grids), so the dashboard lists the largest misroutes instead,
beside the searchable per-user table."""
MISROUTES_SHOWN = 50


def _layout(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "font": FONT,
        "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "legend": {"orientation": "h", "y": -0.28, "x": 0},
        "height": 340,
    }
    base.update(extra)
    return base


def funnel(phase: PhaseResult) -> Figure:
    """Generated -> delivered -> created -> correctly assigned -> correctly mapped, for one phase.

    It starts from the valid records: records broken on purpose are judged on their own, not as losses.
    """
    m = phase.metrics
    data = [
        {
            "type": "funnel",
            "name": phase.kind,
            "y": ["generated", "delivered", "created", "correctly assigned", "correctly mapped"],
            "x": [m.valid, m.delivered, m.created, m.assigned_correctly, m.mapped_correctly],
            "textinfo": "value+percent initial",
            "textfont": {"size": 13},
            "marker": {"color": PHASE_COLOURS.get(phase.kind, GREY)},
            "connector": {"fillcolor": "#e3e8f0"},
        }
    ]
    return {"data": data, "layout": _layout(height=280, margin={"l": 140, "r": 20, "t": 10, "b": 20}, showlegend=False)}


def histogram(values: Sequence[float]) -> tuple[list[float], list[int], bool]:
    """Bin edges and counts (at most MAX_BINS bins); geometric bins, flagged True, for long-tailed data."""
    if not values:
        return [], [], False
    ordered = sorted(values)
    low, top, median = ordered[0], ordered[-1], ordered[len(ordered) // 2]
    bins = max(1, min(MAX_BINS, math.ceil(math.sqrt(len(ordered)))))
    logarithmic = low > 0 and median > 0 and top / median > 20
    if logarithmic:
        ratio = (top / low) ** (1 / bins)
        edges = [low * ratio**i for i in range(bins + 1)]
        edges[-1] = top
    else:
        low = min(0.0, low)
        width = max(top - low, 1e-9) / bins
        edges = [low + i * width for i in range(bins + 1)]
    counts = [0] * bins
    position = 0
    for value in ordered:
        while position < bins - 1 and value >= edges[position + 1]:
            position += 1
        counts[position] += 1
    return edges, counts, logarithmic


def distribution(title: str, kind: str, values: Sequence[float], summary: LatencySummary) -> Figure:
    """A histogram (filled steps) and its CDF for one phase, with the run's p50/p95/p99 marked."""
    edges, counts, logarithmic = histogram(values)
    data = _histogram_traces(edges, counts, kind) if counts else []
    shapes, annotations = _percentile_marks(summary, logarithmic) if counts else ([], [])
    xaxis: dict[str, Any] = {"title": {"text": f"{title} (ms{', log scale' if logarithmic else ''})"}}
    xaxis.update({"type": "log"} if logarithmic else {"rangemode": "tozero"})
    layout = _layout(
        xaxis=xaxis,
        yaxis={"title": {"text": "records"}, "rangemode": "tozero"},
        yaxis2={
            "overlaying": "y",
            "side": "right",
            "range": [0, 1.02],
            "tickformat": ".0%",
            "dtick": 0.25,
            "showgrid": False,
        },
        shapes=shapes,
        annotations=annotations,
        margin={"l": 60, "r": 50, "t": 20, "b": 80},
        height=330,
    )
    return {"data": data, "layout": layout}


def _histogram_traces(edges: Sequence[float], counts: Sequence[int], kind: str) -> list[dict[str, Any]]:
    """The records per bin as filled steps, and the share done by each bin's upper edge (on the right axis)."""
    total = sum(counts)
    cumulative = [round(sum(counts[: i + 1]) / total, 4) for i in range(len(counts))]
    rounded = [round(e, 3) for e in edges]
    return [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "records per bin",
            "x": rounded,
            "y": [*counts, counts[-1]],
            "line": {"color": PHASE_COLOURS.get(kind, GREY), "shape": "hv", "width": 1},
            "fill": "tozeroy",
            "fillcolor": "rgba(56,103,168,0.35)" if kind == "primary" else "rgba(138,107,177,0.35)",
            "hovertemplate": "from %{x:,.0f} ms: %{y} records<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "share done (CDF)",
            "x": rounded[1:],
            "y": cumulative,
            "yaxis": "y2",
            "line": {"color": "#1f2328", "width": 1.5},
            "hovertemplate": "≤ %{x:,.0f} ms: %{y:.1%}<extra></extra>",
        },
    ]


def _percentile_marks(summary: LatencySummary, logarithmic: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A dashed line and a label for each of p50, p95 and p99 (labels take log10 positions on a log axis)."""
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    marks = (("p50", summary.p50_ms, GREY), ("p95", summary.p95_ms, AMBER), ("p99", summary.p99_ms, RED))
    for row, (label, value, colour) in enumerate(marks):
        shapes.append(_vertical_line(value, colour, "dash", 1.5))
        annotations.append(
            {
                "x": math.log10(value) if logarithmic and value > 0 else value,
                "y": 1.0 - 0.09 * row,
                "xref": "x",
                "yref": "paper",
                "text": f"{label} {value:,.0f} ms",
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "top",
                "bgcolor": "rgba(255,255,255,0.85)",
                "font": {"size": 11, "color": colour},
            }
        )
    return shapes, annotations


def _vertical_line(at: float | str, colour: str, dash: str, width: float) -> dict[str, Any]:
    """A line across the plot's whole height at ``at`` on the x axis."""
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": at,
        "x1": at,
        "y0": 0,
        "y1": 1,
        "line": {"color": colour, "dash": dash, "width": width},
    }


def assignment_cells(phase: PhaseResult, *, by_team: bool) -> tuple[list[str], list[str], dict[tuple[str, str], int]]:
    """Expected × actual owner (or team) counts over valid records: one count per prospect found."""
    m = phase.metrics
    users = {u.user_id: u for u in m.per_user}
    unique = len({u.name for u in users.values()}) == len(users)
    names = {uid: (u.name if unique and u.name else u.email) for uid, u in users.items()}

    def label(actual: str) -> str:
        if by_team:
            return f"team {actual}" if actual.isdigit() else actual
        return names.get(int(actual), f"user {actual}") if actual.isdigit() else actual

    cells: Counter[tuple[str, str]] = Counter()
    rows: dict[str, None] = {}
    for expected_id, actual, count in m.team_counts if by_team else m.owner_counts:
        expected = f"team {expected_id}" if by_team else names.get(expected_id, f"user {expected_id}")
        rows.setdefault(expected)
        cells[(expected, label(actual))] += count
    tail = [NO_OWNER, NOT_CREATED, UNVERIFIED, NOT_DELIVERED]
    actuals = {a for _, a in cells}
    extra = sorted(actuals - rows.keys() - set(tail))
    columns = [*rows, *extra, *(t for t in tail if t in actuals)]
    return list(rows), columns, dict(cells)


def misroutes(phase: PhaseResult, *, by_team: bool) -> tuple[list[tuple[str, str, int]], int]:
    """The wrong cells of the assignment matrix (expected, actual, records), most records first, at most
    :data:`MISROUTES_SHOWN` of them, and how many wrong cells there are in all."""
    _, _, cells = assignment_cells(phase, by_team=by_team)
    wrong = sorted(((e, a, n) for (e, a), n in cells.items() if e != a), key=lambda cell: (-cell[2], cell[0], cell[1]))
    return wrong[:MISROUTES_SHOWN], len(wrong)


def assignment_matrix(phase: PhaseResult, *, by_team: bool) -> Figure | None:
    """A heatmap of expected × actual: correct cells green, misrouted or missing cells red; None when there are
    more than :data:`MATRIX_LIMIT` owners (or teams) on either side (see :func:`misroutes`)."""
    rows, columns, cells = assignment_cells(phase, by_team=by_team)
    if len(rows) > MATRIX_LIMIT or len(columns) > MATRIX_LIMIT + 3:
        return None

    def grid(keep: bool) -> list[list[int | None]]:
        return [[cells.get((r, c)) if (r == c) is keep and cells.get((r, c)) else None for c in columns] for r in rows]

    def trace(name: str, keep: bool, scale: list[list[Any]]) -> dict[str, Any]:
        return {
            "type": "heatmap",
            "name": name,
            "x": columns,
            "y": rows,
            "z": grid(keep),
            "colorscale": scale,
            "showscale": False,
            "texttemplate": "%{z}",
            "xgap": 2,
            "ygap": 2,
            "hovertemplate": "expected %{y}<br>actual %{x}<br>%{z} records<extra>" + name + "</extra>",
        }

    data = [
        trace("correct", True, [[0, "#81c784"], [1, "#81c784"]]),
        trace("wrong", False, [[0, "#e57373"], [1, "#e57373"]]),
    ]
    height = max(220, 70 + 46 * len(rows))
    layout = _layout(
        height=height,
        margin={"l": 190, "r": 20, "t": 20, "b": 90},
        xaxis={
            "title": {"text": "actual team" if by_team else "actual owner"},
            "type": "category",
            "tickangle": 0 if len(columns) <= 4 else -20,
            "automargin": True,
        },
        yaxis={"title": {"text": "expected"}, "type": "category", "autorange": "reversed"},
    )
    return {"data": data, "layout": layout}


def field_accuracy(result: RunResult) -> Figure:
    """Share of created prospects whose field matched, per field and phase (axis zoomed to the spread)."""
    data = []
    lowest = 100.0
    for phase in result.phases:
        fields = list(phase.metrics.field_accuracy)
        values = [round(phase.metrics.field_accuracy[f] * 100, 2) for f in fields]
        lowest = min([lowest, *values])
        data.append(
            {
                "type": "bar",
                "name": phase.kind,
                "x": fields,
                "y": values,
                "text": [f"{v:.1f}%" if v < 100 else "" for v in values],
                "textposition": "outside",
                "textangle": 0,
                "cliponaxis": False,
                "marker": {"color": PHASE_COLOURS.get(phase.kind, GREY)},
            }
        )
    floor = max(0.0, math.floor((lowest - 10) / 10) * 10)
    return {
        "data": data,
        "layout": _layout(barmode="group", height=300, yaxis={"range": [floor, 104], "ticksuffix": "%"}),
    }


def counts_bar(result: RunResult, attribute: str, *, order: Sequence[str] = ()) -> Figure:
    """A grouped bar chart of a per-phase mapping of counts (stages, error categories, status codes)."""
    data = []
    for phase in result.phases:
        counts: Mapping[str, int] = getattr(phase.metrics, attribute)
        keys = list(order) if order else sorted(counts)
        data.append(
            {
                "type": "bar",
                "name": phase.kind,
                "x": keys,
                "y": [counts.get(k, 0) for k in keys],
                "text": [str(counts.get(k, 0)) for k in keys],
                "textposition": "auto",
                "textangle": 0,
                "marker": _bar_marker(phase.kind, keys, by_status=attribute == "status_codes"),
            }
        )
    return {"data": data, "layout": _layout(barmode="group", xaxis={"type": "category"}, height=300)}


def _bar_marker(kind: str, keys: Sequence[str], *, by_status: bool) -> dict[str, Any]:
    if not by_status:
        return {"color": PHASE_COLOURS.get(kind, GREY)}
    pattern = {"shape": "/" if kind == "control" else "", "fgcolor": "#ffffff", "solidity": 0.3}
    return {"color": [_status_colour(k) for k in keys], "pattern": pattern}


def _status_colour(code: str) -> str:
    if code.startswith("2"):
        return GREEN
    if code.startswith(("4", "5")):
        return RED if code.startswith("5") or code == "429" else AMBER
    return GREY


def failures_by_stage(result: RunResult) -> Figure:
    """Failed checks per pipeline stage and phase (every stage shown, zeros included)."""
    return counts_bar(result, "failures_by_stage", order=[s.value for s in Stage])


_RATE_TRENDS = (
    ("delivery rate", "delivery_rate", "#3867a8"),
    ("creation rate", "creation_rate", "#00897b"),
    ("assignment accuracy", "assignment_accuracy", "#8a6bb1"),
    ("mapping accuracy", "mapping_accuracy", "#ef8f00"),
)
"""The rates drawn over the history: label, :class:`RunSummary` field, colour."""


def trends(history: Sequence[RunSummary], baseline_id: str | None, current_id: str) -> list[tuple[str, Figure]]:
    """Rates, p95 times and API cost over the history (oldest first), with baseline and this run marked."""
    runs = sorted(history, key=lambda s: s.started_at)
    axis = _TrendAxis([s.started_at.isoformat() for s in runs], [s.run_id for s in runs], baseline_id, current_id)
    rates = [
        (label, [None if (v := getattr(s, name)) is None else round(v * 100, 2) for s in runs], colour)
        for label, name, colour in _RATE_TRENDS
    ]
    p95 = [s.p95_processing_ms for s in runs]
    api = [s.api_requests_per_record for s in runs]
    shapes = []
    if baseline_id in axis.ids:
        shapes.append(_vertical_line(axis.x[axis.ids.index(baseline_id)], "#000000", "dot", 1))
    layout = _layout(height=280, shapes=shapes, xaxis={"type": "date"})
    return [
        (
            "trend-rates",
            {
                "data": [axis.line(n, v, c) for n, v, c in rates] + axis.marks(rates[0][1]),
                "layout": {**layout, "yaxis": {"ticksuffix": "%", "title": {"text": "%"}}},
            },
        ),
        (
            "trend-p95",
            {
                "data": [
                    axis.line("p95 processing (ms)", p95, "#3867a8"),
                    axis.line("p95 delivery latency (ms)", [s.p95_latency_ms for s in runs], "#00897b"),
                    *axis.marks(p95),
                ],
                "layout": {**layout, "yaxis": {"title": {"text": "ms"}, "rangemode": "tozero"}},
            },
        ),
        (
            "trend-api",
            {
                "data": [axis.line("API requests per record", api, "#8a6bb1"), *axis.marks(api)],
                "layout": {**layout, "yaxis": {"title": {"text": "requests"}, "rangemode": "tozero"}},
            },
        ),
    ]


@dataclass(frozen=True, slots=True)
class _TrendAxis:
    """The runs along a trend's x axis (start times, ids) and the two runs it marks."""

    x: list[str]
    ids: list[str]
    baseline_id: str | None
    current_id: str

    def line(self, name: str, values: list[float | None], colour: str) -> dict[str, Any]:
        """One figure over the runs, each point naming its run."""
        return {
            "type": "scatter",
            "mode": "lines+markers",
            "name": name,
            "x": self.x,
            "y": values,
            "customdata": self.ids,
            "line": {"color": colour},
            "hovertemplate": "%{customdata}<br>" + name + ": %{y}<extra></extra>",
        }

    def marks(self, values: list[float | None]) -> list[dict[str, Any]]:
        """A star on the baseline and an open circle on this run, at their points of ``values``."""
        traces = []
        for run_id, label, symbol, colour in (
            (self.baseline_id, "baseline", "star", "#000000"),
            (self.current_id, "this run", "circle-open", RED),
        ):
            if run_id in self.ids:
                i = self.ids.index(run_id)
                traces.append(
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "name": label,
                        "x": [self.x[i]],
                        "y": [values[i]],
                        "marker": {"symbol": symbol, "size": 16, "color": colour, "line": {"width": 2}},
                        "hovertemplate": f"{label} {run_id}<extra></extra>",
                    }
                )
        return traces
