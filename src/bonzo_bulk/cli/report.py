"""``bonzo-bulk report | history | baseline``: read stored runs (the logic is :mod:`bonzo_bulk.report.stored`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bonzo_bulk.cli.exits import handle_errors
from bonzo_bulk.cli.options import SELF_CONTAINED_HELP, ReportsDir, StoreUrl, store_for
from bonzo_bulk.report.terminal import out

if TYPE_CHECKING:
    from rich.table import Table

    from bonzo_bulk.models import RunKind
    from bonzo_bulk.store import RunSummary


def report_command(
    run_id: Annotated[str | None, typer.Option("--run", help="run id to report (default: the latest run)")] = None,
    last: Annotated[int, typer.Option("--last", help="show the integration's last N runs as history")] = 20,
    store_url: StoreUrl = None,
    reports_dir: ReportsDir = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="HTML file (default: next to the store, integration_health_reports/)")
    ] = None,
    self_contained: Annotated[bool, typer.Option("--self-contained", help=SELF_CONTAINED_HELP)] = False,
) -> None:
    """Render a stored run's dashboard (one offline HTML file) and print its path: a bulk run's health
    dashboard, or a load or stress run's load dashboard.

    Examples:

      bonzo-bulk report

      bonzo-bulk report --run RUN_ID --last 10 --out health.html   # RUN_ID: one from `bonzo-bulk history`
    """
    store = store_for(store_url, reports_dir)
    from bonzo_bulk.models import LOAD_KINDS
    from bonzo_bulk.report.stored import check_last, report, run_kind

    with handle_errors():
        check_last(last)
        if run_id is not None:
            _replay_journal(store, reports_dir, run_id)
        chosen, kind = run_kind(store, run_id)
        if kind in LOAD_KINDS:
            from bonzo_bulk.load.dashboard import render_stored_load

            path = render_stored_load(store, chosen, out=out_file)
        else:
            path = report(store, run_id=chosen, last=last, out=out_file, self_contained=self_contained)
    out.print(f"{kind} run {chosen}: {path}" if kind in LOAD_KINDS else str(path))


def _replay_journal(store: str | Path, reports_dir: str | None, run_id: str) -> None:
    """What run ``run_id`` left in its journal (its store failed mid-run) goes into the store before it is read."""
    import os

    from bonzo_bulk.config.store_location import REPORTS_DIR_ENV
    from bonzo_bulk.store.interface import replay_journal

    replay_journal(store, reports_dir or os.environ.get(REPORTS_DIR_ENV) or "reports", run_id)


def history_command(
    store_url: StoreUrl = None,
    reports_dir: ReportsDir = None,
    integration: Annotated[str | None, typer.Option("--integration", help="only runs of this integration")] = None,
    limit: Annotated[int, typer.Option("--limit", help="how many recent runs to list")] = 20,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", help="only runs of this kind: bulk, load, stress, calibrate or monitor (repeatable)"),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """List recent runs, newest first, one table per kind: bulk-style runs with their verdict, rates, p95 times
    and API cost; load and stress runs with their load verdict, leads sent, rates and knee."""
    store = store_for(store_url, reports_dir)
    from bonzo_bulk.models import to_jsonable
    from bonzo_bulk.report.stored import history

    with handle_errors():
        kinds = _kinds(kind)
        runs = history(store, integration=integration, limit=limit, kinds=kinds)
        headlines = _load_headlines(store, runs)
    if json_output:
        out.print_json(json.dumps(to_jsonable(runs)))
        return
    if not runs:
        out.print("no runs" + (f" of kind {', '.join(kinds)}" if kinds else "") + " in the run store")
    for table in history_tables(runs, headlines):
        out.print(table)


def _kinds(given: list[str] | None) -> tuple[RunKind, ...] | None:
    from bonzo_bulk.errors import ConfigError
    from bonzo_bulk.models import RUN_KINDS

    if not given:
        return None
    chosen: list[RunKind] = []
    for name in given:
        match = next((k for k in RUN_KINDS if k == name.strip().lower()), None)
        if match is None:
            raise ConfigError(f"--kind {name!r}: not a kind of run; use one of {', '.join(RUN_KINDS)}", key="--kind")
        chosen.append(match)
    return tuple(chosen)


def _load_headlines(store: str | Path, runs: list[RunSummary]) -> dict[str, dict[str, Any]]:
    """The load summaries of the load and stress runs listed (read from the store's load tables)."""
    from bonzo_bulk.models import LOAD_KINDS

    wanted = [r.run_id for r in runs if r.kind in LOAD_KINDS]
    if not wanted:
        return {}
    from bonzo_bulk.load.results import LoadStore
    from bonzo_bulk.report.stored import open_existing

    with open_existing(store) as opened:
        return LoadStore(opened).headlines(wanted)


def history_tables(runs: list[RunSummary], headlines: dict[str, dict[str, Any]]) -> list[Table]:
    """One table per kind of run, in the order kinds are listed (bulk first); runs keep their order within."""
    from bonzo_bulk.models import LOAD_KINDS, RUN_KINDS

    tables = []
    for kind in RUN_KINDS:
        mine = [r for r in runs if r.kind == kind]
        if mine:
            tables.append(load_table(kind, mine, headlines) if kind in LOAD_KINDS else history_table(mine, kind=kind))
    return tables


baseline_app = typer.Typer(help="Mark a run as its integration's baseline, or show the baseline.", no_args_is_help=True)


@baseline_app.command("set")
def baseline_set_command(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="the run to compare later runs with")],
    store_url: StoreUrl = None,
    reports_dir: ReportsDir = None,
) -> None:
    """Make RUN_ID its integration's baseline; later runs are compared with it."""
    store = store_for(store_url, reports_dir)
    from bonzo_bulk.report.stored import set_baseline

    with handle_errors():
        summary = set_baseline(store, run_id)
    out.print(f"baseline for {summary.integration}: {summary.run_id}")


@baseline_app.command("show")
def baseline_show_command(
    integration: Annotated[str | None, typer.Option("--integration", help="only this integration's baseline")] = None,
    store_url: StoreUrl = None,
    reports_dir: ReportsDir = None,
) -> None:
    """Print the baseline run of each integration (or of one)."""
    store = store_for(store_url, reports_dir)
    from bonzo_bulk.report.stored import baselines

    with handle_errors():
        runs = baselines(store, integration=integration)
    if not runs:
        where = f" for {integration}" if integration else ""
        out.print(f"no baseline set{where}; `bonzo-bulk baseline set RUN_ID` sets one")
        return
    with handle_errors():
        headlines = _load_headlines(store, runs)
    for table in history_tables(runs, headlines):
        out.print(table)


def _rate(value: float | None) -> str:
    from bonzo_bulk.models import percent

    return "—" if value is None else percent(value)


def _table(title: str) -> Table:
    from rich import box
    from rich.table import Table

    return Table(
        title=title, box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, padding=(0, 1), collapse_padding=True
    )


def _verdict(run: RunSummary) -> str:
    return "[yellow]—[/]" if run.passed is None else ("[green]PASS[/]" if run.passed else "[red]FAIL[/]")


def load_table(kind: str, runs: list[RunSummary], headlines: dict[str, dict[str, Any]]) -> Table:
    """Load or stress runs: the load verdict, leads sent of planned, the peak rate achieved, hook p95, lag p95
    and, for stress, the knee (— for a run interrupted before its figures were stored)."""
    integrations = sorted({r.integration for r in runs})
    targets = sorted({r.target for r in runs})
    table = _table(f"{kind} runs of {', '.join(integrations)} on {', '.join(targets)} (— unfinished)")
    table.add_column("run", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("pass", no_wrap=True)
    for column in ("sent", "planned", "peak/s", "hook p95", "lag p95", *(("knee/s",) if kind == "stress" else ())):
        table.add_column(column, justify="right", no_wrap=True)
    for run in runs:
        summary = headlines.get(run.run_id)
        cells = [run.run_id, run.started_at.strftime("%m-%d %H:%M"), _verdict(run)]
        if summary is None:
            cells += ["—"] * (len(table.columns) - len(cells))
        else:
            accounting = summary.get("accounting", {})
            stages = summary.get("stages", [])
            peak = max((s.get("achieved_rate") or 0.0 for s in stages), default=0.0)
            overall = summary.get("overall", {})
            hook, lag = overall.get("hook_p95_ms"), overall.get("e2e_lag_p95_s")
            cells += [
                f"{accounting.get('sent', 0):,}",
                f"{accounting.get('planned', 0):,}",
                f"{peak:,.1f}",
                "—" if hook is None else f"{hook:,.0f} ms",
                "—" if lag is None else f"{lag:,.2f} s",
            ]
            if kind == "stress":
                cells.append(_knee_cell(summary))
        table.add_row(*cells)
    return table


def _knee_cell(summary: dict[str, Any]) -> str:
    """The knee (``120+``: no step broke up to 120 leads/s; ``<20``: the first step, 20 leads/s, broke)."""
    knee, sustained = summary.get("knee_rate"), summary.get("sustained_up_to")
    if knee is not None:
        return f"{knee:g}"
    if summary.get("knee_reached"):
        steps = summary.get("steps") or [{}]
        return f"<{steps[0].get('rate', 0):g}"
    return "—" if sustained is None else f"{sustained:g}+"


def history_table(runs: list[RunSummary], *, kind: str = "bulk") -> Table:
    """A compact rich table of run summaries of one kind (newest first as given); ★ marks a baseline."""
    integrations = sorted({r.integration for r in runs})
    targets = sorted({r.target for r in runs})
    title = f"{kind} runs of {', '.join(integrations)} on {', '.join(targets)} (★ baseline, — unfinished)"
    table = _table(title)
    run_width = max((len(r.run_id) + (2 if r.is_baseline else 0) for r in runs), default=3)
    table.add_column("run", no_wrap=True, min_width=run_width)
    table.add_column("started", no_wrap=True)
    mixed = len(integrations) > 1 or len(targets) > 1
    if mixed:
        table.add_column("integration / target", overflow="fold")
    table.add_column("pass", no_wrap=True)
    for column in ("recs", "deliv", "creat", "assign", "map", "p95", "API/rec"):
        table.add_column(column, justify="right", no_wrap=True)
    for run in runs:
        verdict = _verdict(run)
        cells = [run.run_id + (" ★" if run.is_baseline else ""), run.started_at.strftime("%m-%d %H:%M")]
        if mixed:
            cells.append(f"{run.integration} / {run.target}")
        cells += [
            verdict,
            str(run.records),
            _rate(run.delivery_rate),
            _rate(run.creation_rate),
            _rate(run.assignment_accuracy),
            _rate(run.mapping_accuracy),
            "—" if run.p95_processing_ms is None else f"{run.p95_processing_ms / 1000:,.1f}s",
            "—" if run.api_requests_per_record is None else f"{run.api_requests_per_record:.2f}",
        ]
        table.add_row(*cells)
    return table
