"""The integration health dashboard: one offline HTML file per run.

plotly.js (4.8 MB) is written once per reports folder, as ``assets/plotly-<version>.min.js`` beside
the pages that load it by a relative path; ``self_contained=True`` embeds it instead, for one file
to share.

Example::

    render_dashboard(result, history=store.list_runs(), out=Path("health.html"))
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import plotly
from plotly.offline import get_plotlyjs

from bonzo_bulk.errors import BonzoBulkError
from bonzo_bulk.judge.diagnosis import hook_diagnosis
from bonzo_bulk.judge.tally import verdict_text
from bonzo_bulk.judge.verdict import RunVerdict
from bonzo_bulk.models import PhaseKind, PhaseResult, RunResult, ThresholdVerdict, Verdict, percent
from bonzo_bulk.problems.track import RunProblems
from bonzo_bulk.report import plots
from bonzo_bulk.report.files import write_whole
from bonzo_bulk.report.regression import Regression
from bonzo_bulk.report.rows import failure_rows, failures_html, sporadic, systemic, systemic_html
from bonzo_bulk.secrets import redact
from bonzo_bulk.store import RunStore, RunSummary

MAX_FAILURE_ROWS = 1000
"""Failing checks listed in the table; the rest are counted (the store and JSON summary hold all)."""
_PLOTLY_SLOT = "/*bonzo-bulk:plotly.js*/"
ASSETS_DIR = "assets"


@dataclass(frozen=True, slots=True)
class Tile:
    """One headline figure: label, value, a detail line and whether it met its threshold."""

    label: str
    value: str
    detail: str
    state: str  # "ok", "bad" or "info"


def _ms(value: float) -> str:
    return f"{value / 1000:,.2f} s" if value >= 10_000 else f"{value:,.0f} ms"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if moment else "—"


def plotly_asset_name() -> str:
    """The file name of the shared plotly.js, versioned so a newer plotly never loads an older script."""
    return f"plotly-{plotly.__version__}.min.js"


def write_plotly_asset(folder: Path) -> Path:
    """Write ``<folder>/assets/plotly-<version>.min.js`` unless it is already there; return its path."""
    asset = folder / ASSETS_DIR / plotly_asset_name()
    if not asset.is_file():
        asset.parent.mkdir(parents=True, exist_ok=True)
        write_whole(asset, get_plotlyjs())
    return asset


def _threshold_state(verdicts: Sequence[ThresholdVerdict], *names: Verdict) -> str:
    """``ok`` / ``bad`` by the named verdicts (bad when any failed), ``info`` when none of them was set."""
    found = [t for t in verdicts if t.name in names]
    if not found:
        return "info"
    return "ok" if all(t.passed for t in found) else "bad"


def _tiles(phase: PhaseResult) -> list[Tile]:
    m = phase.metrics
    verdicts = m.thresholds
    tiles = [
        Tile(
            "Delivered",
            percent(m.delivery_rate),
            f"{m.delivered} of {m.valid} valid records accepted by the hook",
            _threshold_state(verdicts, Verdict.DELIVERY_RATE),
        ),
        Tile(
            "Created",
            percent(m.creation_rate),
            f"{m.created} created · {m.missing} missing · {m.duplicates} duplicated"
            + (f" · {m.unverified} unverified" if m.unverified else ""),
            _threshold_state(verdicts, Verdict.CREATION_RATE),
        ),
        Tile(
            "Assigned correctly",
            percent(m.assignment_accuracy),
            f"{m.assigned_correctly} with the right owner and team",
            _threshold_state(verdicts, Verdict.ASSIGNMENT_ACCURACY),
        ),
        Tile(
            "Mapped correctly",
            percent(m.mapping_accuracy),
            f"{m.mapped_correctly} with every checked field right",
            _threshold_state(verdicts, Verdict.MAPPING_ACCURACY),
        ),
        Tile(
            "p95 processing",
            _ms(m.processing_time.p95_ms),
            f"p50 {_ms(m.processing_time.p50_ms)} · p99 {_ms(m.processing_time.p99_ms)} (upper ends; "
            + ("; ".join(w.text for w in m.timing_widths) or "no interval")
            + ")",
            _threshold_state(verdicts, Verdict.PROCESSING_P95),
        ),
        Tile(
            "p95 delivery latency",
            _ms(m.delivery_latency.p95_ms),
            f"p50 {_ms(m.delivery_latency.p50_ms)} · p99 {_ms(m.delivery_latency.p99_ms)}",
            _threshold_state(verdicts, Verdict.AVG_RESPONSE, Verdict.MAX_RESPONSE),
        ),
        Tile(
            "API requests / record",
            f"{m.api_requests_per_record:.2f}",
            f"{m.api_requests:,} requests in all",
            _threshold_state(verdicts),  # no threshold: API cost is reported, not judged,
        ),
    ]
    if m.unverified:
        tiles.append(
            Tile(
                "Unverified",
                f"{m.unverified}",
                "records missing from the lists while a listing never reached its end: see the notes",
                _threshold_state(verdicts, Verdict.UNVERIFIED),
            )
        )
    if m.invalid_total:
        ok = m.invalid_handled == m.invalid_total
        tiles.append(
            Tile(
                "Invalid records handled",
                f"{m.invalid_handled} / {m.invalid_total}",
                "rejected or dropped as configured",
                "ok" if ok else "bad",
            )
        )
    return tiles


@dataclass(frozen=True)
class Distribution:
    """One phase's per-record series for the histograms: delivery latency and processing time, in ms."""

    latency_ms: Sequence[float]
    processing_ms: Sequence[float]

    @classmethod
    def of(cls, phase: PhaseResult) -> Distribution:
        """From the outcomes a phase keeps (all of a small phase; a big one's come from the store)."""
        return cls(
            [o.delivery.latency_ms for o in phase.outcomes if o.delivery is not None and o.delivery.status is not None],
            [o.processing.seconds * 1000 for o in phase.outcomes if o.processing is not None],
        )

    @classmethod
    def from_store(cls, store: RunStore, run_id: str, phase: PhaseKind) -> Distribution:
        """Every record's figures, read from the run store's ledger."""
        return cls(
            store.delivery_latencies(run_id, phase),
            [seconds * 1000 for seconds in store.processing_seconds(run_id, phase).values()],
        )


def _figures(
    result: RunResult,
    history: Sequence[RunSummary],
    baseline_id: str | None,
    distributions: Mapping[PhaseKind, Distribution] | None,
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for phase in result.phases:
        figures[f"funnel-{phase.kind}"] = plots.funnel(phase)
        series = (distributions or {}).get(phase.kind) or Distribution.of(phase)
        figures[f"latency-{phase.kind}"] = plots.distribution(
            "delivery latency", phase.kind, series.latency_ms, phase.metrics.delivery_latency
        )
        figures[f"processing-{phase.kind}"] = plots.distribution(
            "processing time", phase.kind, series.processing_ms, phase.metrics.processing_time
        )
        for side, by_team in (("owner", False), ("team", True)):
            matrix = plots.assignment_matrix(phase, by_team=by_team)
            if matrix is not None:
                figures[f"{side}-{phase.kind}"] = matrix
    figures["fields"] = plots.field_accuracy(result)
    figures["stages"] = plots.failures_by_stage(result)
    figures["errors"] = plots.counts_bar(result, "error_categories")
    figures["status"] = plots.counts_bar(result, "status_codes")
    if len(history) > 1:
        figures.update(plots.trends(history, baseline_id, result.run_id))
    return figures


def page_environment(package: str) -> jinja2.Environment:
    """The Jinja environment every HTML page is drawn with: ``package``'s ``templates/``, escaped, strict
    about missing names, ``pct`` formatting a share (the dashboard's and ``serve``'s pages alike)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = percent
    return env


@cache
def _environment() -> jinja2.Environment:
    env = page_environment("bonzo_bulk.report")
    env.filters["ms"] = _ms
    env.filters["when"] = _when
    env.globals["verdict_text"] = verdict_text
    return env


def _with_current(result: RunResult, history: Sequence[RunSummary], baseline_id: str | None) -> list[RunSummary]:
    runs = [s for s in history if s.integration == result.integration and s.kind == result.kind]
    if all(s.run_id != result.run_id for s in runs):
        runs.append(RunSummary.from_result(result, is_baseline=result.run_id == baseline_id))
    return sorted(runs, key=lambda s: s.started_at)


def distributions_of(result: RunResult, store: RunStore) -> dict[PhaseKind, Distribution]:
    """Each phase's per-record series: from the outcomes a complete phase keeps, else from the store's ledger."""
    return {
        p.kind: Distribution.of(p) if p.complete else Distribution.from_store(store, result.run_id, p.kind)
        for p in result.phases
    }


def dashboard_html(
    result: RunResult,
    *,
    history: Sequence[RunSummary] = (),
    baseline: RunResult | None = None,
    regressions: Sequence[Regression] = (),
    verdict: RunVerdict | None = None,
    summary_href: str | None = None,
    plotly_src: str | None = None,
    distributions: Mapping[PhaseKind, Distribution] | None = None,
    problems: RunProblems | None = None,
) -> str:
    """The run's health dashboard as one HTML page, redacted: plotly.js loaded from ``plotly_src``, or embedded
    when it is None (``serve`` renders the same page from the store as :func:`render_dashboard` writes);
    ``problems`` (the run's) marks each failure new or known."""
    verdict = verdict or RunVerdict(result.passed, len(regressions), unverified=result.unverified)
    baseline_id = (
        baseline.run_id
        if baseline is not None
        else next((s.run_id for s in history if s.is_baseline and s.integration == result.integration), None)
    )
    runs = _with_current(result, history, baseline_id)
    rows, failure_omitted = failure_rows(result, limit=MAX_FAILURE_ROWS, problems=problems)
    listed = sporadic(rows)
    figures = _figures(result, runs, baseline_id, distributions)
    context = {
        "result": result,
        "passed": result.passed,
        "verdict": verdict,
        "summary_href": summary_href,
        "phases": [(p, _tiles(p)) for p in result.phases],
        "regressions": regressions,
        "systemic": systemic(rows),
        "hook_diagnosis": hook_diagnosis(result),
        "problems": problems.ordered if problems is not None else [],
        "problems_headline": problems.headline if problems is not None else "",
        "systemic_html": systemic_html(rows),
        "baseline_id": baseline_id,
        "figures": figures,
        "misroutes": {
            f"{side}-{phase.kind}": plots.misroutes(phase, by_team=side == "team")
            for phase in result.phases
            for side in ("owner", "team")
            if f"{side}-{phase.kind}" not in figures
        },
        "many_users": plots.MATRIX_LIMIT,
        "runs": list(reversed(runs)),
        "failures": listed,
        "failures_html": failures_html(rows, failure_omitted, element_id="failure"),
        "failure_total": len(listed) + failure_omitted,
        "stages": sorted({row.stage for row in listed}),
        "notes": [redact(n) for n in result.notes],
        "config_name": Path(result.config_path).name if result.config_path else "—",
        "generated_at": datetime.now().astimezone(),
        "plotly_slot": _PLOTLY_SLOT,
        "plotly_src": plotly_src,
    }
    # One redaction pass over the page (figures and all); plotly.js is added after it, as it holds no secret.
    page = redact(_environment().get_template("dashboard.html.j2").render(context))
    return page.replace(_PLOTLY_SLOT, get_plotlyjs(), 1) if plotly_src is None else page


def render_dashboard(
    result: RunResult,
    *,
    history: Sequence[RunSummary] = (),
    baseline: RunResult | None = None,
    regressions: Sequence[Regression] = (),
    verdict: RunVerdict | None = None,
    summary_json: Path | None = None,
    out: Path,
    self_contained: bool = False,
    distributions: Mapping[PhaseKind, Distribution] | None = None,
    problems: RunProblems | None = None,
) -> Path:
    """Write the run's health dashboard to ``out`` and return its path.

    plotly.js goes once into ``<out's folder>/assets/`` (loaded by a relative path), or into the page
    itself with ``self_contained=True``.

    ``verdict`` decides the badge (default: thresholds, regressions only warned); ``summary_json``, when
    given, is linked (relative to ``out``) from the header; ``problems`` (the run's) marks each failure new or known.
    """
    summary_href = os.path.relpath(summary_json, out.parent) if summary_json is not None else None
    page = dashboard_html(
        result,
        history=history,
        baseline=baseline,
        regressions=regressions,
        verdict=verdict,
        summary_href=Path(summary_href).as_posix() if summary_href else None,
        plotly_src=None if self_contained else f"{ASSETS_DIR}/{plotly_asset_name()}",
        distributions=distributions,
        problems=problems,
    )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if not self_contained:
            write_plotly_asset(out.parent)
        write_whole(out, page)
    except OSError as exc:
        raise BonzoBulkError(f"cannot write the dashboard to {out}: {exc}; pass another --out path") from exc
    return out
