"""``bonzo-bulk report | history | baseline``: read stored runs (the logic is :mod:`bonzo_bulk.report.stored`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bonzo_bulk.cli.exits import handle_errors
from bonzo_bulk.cli.options import DEFAULT_STORE, SELF_CONTAINED_HELP, store_option
from bonzo_bulk.report.terminal import out

if TYPE_CHECKING:
    from rich.table import Table

    from bonzo_bulk.store import RunSummary


def report_command(
    run_id: Annotated[str | None, typer.Option("--run", help="run id to report (default: the latest run)")] = None,
    last: Annotated[int, typer.Option("--last", help="show the integration's last N runs as history")] = 20,
    store: Annotated[str, store_option()] = DEFAULT_STORE,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="HTML file (default: next to the store, integration_health_reports/)")
    ] = None,
    self_contained: Annotated[bool, typer.Option("--self-contained", help=SELF_CONTAINED_HELP)] = False,
) -> None:
    """Render a stored run's health dashboard (one offline HTML file) and print its path.

    Examples:

      bonzo-bulk report

      bonzo-bulk report --run RUN_ID --last 10 --out health.html   # RUN_ID: one from `bonzo-bulk history`
    """
    from bonzo_bulk.report.stored import report

    with handle_errors():
        path = report(store, run_id=run_id, last=last, out=out_file, self_contained=self_contained)
    out.print(str(path))


def history_command(
    store: Annotated[str, store_option()] = DEFAULT_STORE,
    integration: Annotated[str | None, typer.Option("--integration", help="only runs of this integration")] = None,
    limit: Annotated[int, typer.Option("--limit", help="how many recent runs to list")] = 20,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """List recent runs, newest first: verdict, rates, p95 times, API cost, baseline."""
    from bonzo_bulk.models import to_jsonable
    from bonzo_bulk.report.stored import history

    with handle_errors():
        runs = history(store, integration=integration, limit=limit)
    if json_output:
        out.print_json(json.dumps(to_jsonable(runs)))
    else:
        out.print(history_table(runs))


baseline_app = typer.Typer(help="Mark a run as its integration's baseline, or show the baseline.", no_args_is_help=True)


@baseline_app.command("set")
def baseline_set_command(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="the run to compare later runs with")],
    store: Annotated[str, store_option()] = DEFAULT_STORE,
) -> None:
    """Make RUN_ID its integration's baseline; later runs are compared with it."""
    from bonzo_bulk.report.stored import set_baseline

    with handle_errors():
        summary = set_baseline(store, run_id)
    out.print(f"baseline for {summary.integration}: {summary.run_id}")


@baseline_app.command("show")
def baseline_show_command(
    integration: Annotated[str | None, typer.Option("--integration", help="only this integration's baseline")] = None,
    store: Annotated[str, store_option()] = DEFAULT_STORE,
) -> None:
    """Print the baseline run of each integration (or of one)."""
    from bonzo_bulk.report.stored import baselines

    with handle_errors():
        runs = baselines(store, integration=integration)
    if not runs:
        where = f" for {integration}" if integration else ""
        out.print(f"no baseline set{where}; `bonzo-bulk baseline set RUN_ID` sets one")
        return
    out.print(history_table(runs))


def _rate(value: float | None) -> str:
    from bonzo_bulk.models import percent

    return "—" if value is None else percent(value)


def history_table(runs: list[RunSummary]) -> Table:
    """A compact rich table of run summaries (newest first as given); ★ marks a baseline."""
    from rich import box
    from rich.table import Table

    integrations = sorted({r.integration for r in runs})
    targets = sorted({r.target for r in runs})
    title = f"bonzo-bulk runs of {', '.join(integrations)} on {', '.join(targets)} (★ baseline, — unfinished)"
    table = Table(
        title=title, box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, padding=(0, 1), collapse_padding=True
    )
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
        verdict = "[yellow]—[/]" if run.passed is None else ("[green]PASS[/]" if run.passed else "[red]FAIL[/]")
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
