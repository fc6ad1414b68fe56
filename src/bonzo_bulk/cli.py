"""The ``bonzo-bulk`` command line: one typer app, each subcommand a thin call into the stages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from bonzo_bulk.console import (
    RichProgress,
    config_options,
    console,
    handle_errors,
    is_interactive,
    loaded_summary,
    out,
    print_published,
    print_result,
    print_verdict,
    setup_logging,
)
from bonzo_bulk.prune_command import register as _register_prune
from bonzo_bulk.store_cli import DEFAULT_STORE, store_app, store_option

if TYPE_CHECKING:
    from bonzo_bulk.config import LoadedConfig

SELF_CONTAINED_HELP = "embed plotly.js in the dashboard: one file to share (else it loads assets/ beside it)"

app = typer.Typer(
    name="bonzo-bulk",
    help="Prove, in bulk and end to end, that a webhook -> Bonzo integration works.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"bonzo-bulk {version('bonzo-bulk')}")
        raise typer.Exit(0)


@app.callback()
def _main_options(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Prove, in bulk and end to end, that a webhook -> Bonzo integration works."""


@app.command("run")
@config_options
def run_command(
    *,
    json_output: bool = typer.Option(False, "--json", help="print the run's JSON summary on stdout"),
    log_level: str = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING or ERROR"),
    fail_on_regression: bool = typer.Option(
        False, "--fail-on-regression", help="exit 1 when the run regressed against the baseline run"
    ),
    self_contained: bool = typer.Option(False, "--self-contained", help=SELF_CONTAINED_HELP),
    loaded: LoadedConfig,
) -> None:
    """Run one bulk test end to end: generate, deliver, settle, verify, report.

    Examples:

      bonzo-bulk run --config tests/configs/monitorbase_test_config.yaml

      bonzo-bulk run --test-records 500 --concurrency 32 --faults tests/configs/faults/wrong_owner.yaml

    Exit 0 passed, 1 failed (a threshold, or a regression with --fail-on-regression), 2 bad usage or config;
    the last line names the verdict, e.g. "FAILED (regression)".
    """
    from bonzo_bulk.publishing import Publisher
    from bonzo_bulk.run import run_bulk

    setup_logging(log_level)
    console.print(loaded_summary(loaded))
    publisher = Publisher(loaded, fail_on_regression=fail_on_regression, self_contained=self_contained)
    with handle_errors(), RichProgress(show=is_interactive() and not json_output) as progress:
        result = run_bulk(loaded, progress=progress, subscribers=[publisher])
    outcome = publisher.result()
    published = outcome.published
    regressions = published.regressions if published else ()
    if json_output:
        from bonzo_bulk.report.summary import summary_document, summary_text

        document = summary_document(result, regressions=regressions, store=published.store if published else None)
        out.print_json(summary_text(document, indent=None))
    else:
        print_result(result)
        if published:
            print_published(published)
        print_verdict(result, outcome.verdict)
    if outcome.report_error is not None:
        console.print(f"[bold red]error:[/] {escape(str(outcome.report_error))}")
    raise typer.Exit(outcome.exit_code)


@app.command("report")
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
    from bonzo_bulk.report.commands import report

    with handle_errors():
        path = report(store, run_id=run_id, last=last, out=out_file, self_contained=self_contained)
    out.print(str(path))


@app.command("history")
def history_command(
    store: Annotated[str, store_option()] = DEFAULT_STORE,
    integration: Annotated[str | None, typer.Option("--integration", help="only runs of this integration")] = None,
    limit: Annotated[int, typer.Option("--limit", help="how many recent runs to list")] = 20,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """List recent runs, newest first: verdict, rates, p95 times, API cost, baseline."""
    from bonzo_bulk.models import to_jsonable
    from bonzo_bulk.report.commands import history, history_table

    with handle_errors():
        runs = history(store, integration=integration, limit=limit)
    if json_output:
        out.print_json(json.dumps(to_jsonable(runs)))
    else:
        out.print(history_table(runs))


baseline_app = typer.Typer(help="Mark a run as its integration's baseline, or show the baseline.", no_args_is_help=True)
app.add_typer(baseline_app, name="baseline")


@baseline_app.command("set")
def baseline_set_command(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="the run to compare later runs with")],
    store: Annotated[str, store_option()] = DEFAULT_STORE,
) -> None:
    """Make RUN_ID its integration's baseline; later runs are compared with it."""
    from bonzo_bulk.report.commands import set_baseline

    with handle_errors():
        summary = set_baseline(store, run_id)
    out.print(f"baseline for {summary.integration}: {summary.run_id}")


@baseline_app.command("show")
def baseline_show_command(
    integration: Annotated[str | None, typer.Option("--integration", help="only this integration's baseline")] = None,
    store: Annotated[str, store_option()] = DEFAULT_STORE,
) -> None:
    """Print the baseline run of each integration (or of one)."""
    from bonzo_bulk.report.commands import baselines, history_table

    with handle_errors():
        runs = baselines(store, integration=integration)
    if not runs:
        where = f" for {integration}" if integration else ""
        out.print(f"no baseline set{where}; `bonzo-bulk baseline set RUN_ID` sets one")
        return
    out.print(history_table(runs))


@app.command("sandbox")
def sandbox_command(
    host: Annotated[str, typer.Option("--host", help="interface to listen on (keep it loopback)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="port; 0 picks a free one")] = 8765,
    db: Annotated[Path | None, typer.Option("--db", help="SQLite state file (default reports/sandbox.sqlite3)")] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", "--users", help="a bonzo-bulk config: seeds its users and hooks, applies its sandbox:"
        ),
    ] = None,
    faults: Annotated[Path | None, typer.Option("--faults", help="fault profile YAML to inject")] = None,
    capacity: Annotated[
        float | None, typer.Option("--capacity", help="leads/s the sandbox processes at most (a queue beyond)")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="keep only what the Bonzo reference promises (docs/sandbox.md)")
    ] = False,
) -> None:
    """Serve the local Bonzo stand-in (hook URLs, /api/v3, /__sandbox) until Ctrl-C.

    With --config it is the sandbox a run of that config starts: same users, hooks and settings.

    Example:

      bonzo-bulk sandbox --port 8765 --config tests/configs/monitorbase_test_config.yaml --strict
    """
    from bonzo_bulk.sandbox.command import serve

    with handle_errors():
        serve(
            host=host,
            port=port,
            db=db,
            config_file=config,
            faults=faults,
            strict=strict,
            capacity=capacity,
            echo=typer.echo,
        )


@app.command("init")
def init_command(
    integration: Annotated[str, typer.Option("--integration", help="name of the new integration (folder name)")],
    origin: Annotated[str, typer.Option("--from", help="integration to copy (built-in or local)")] = "monitorbase",
    directory: Annotated[Path, typer.Option("--dir", help="where integrations/<name>/ and the config go")] = Path(),
) -> None:
    """Scaffold integrations/NAME/ (manifest, template(s), MAPPING.md) and NAME_test_config.yaml.

    Example:

      bonzo-bulk init --integration acme --from zillow && bonzo-bulk run --config acme_test_config.yaml
    """
    from bonzo_bulk.scaffold import scaffold

    with handle_errors():
        made = scaffold(integration, base=directory, origin=origin)
    for path in made.files:
        out.print(f"created {path}")
    for note in made.notes:
        out.print(f"note: {note}")
    out.print(f"next: edit {made.folder}/ to match the payload, then `bonzo-bulk run --config {made.config}`")


@app.command("integrations")
def integrations_command(
    directory: Annotated[Path, typer.Option("--dir", help="also look in DIR/integrations/")] = Path(),
    json_output: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """List installed integrations: ./integrations/ folders (they win over a built-in) and the built-ins."""
    from dataclasses import asdict

    from rich.table import Table

    from bonzo_bulk.scaffold import integration_rows

    with handle_errors():
        rows = integration_rows(directory)
    if json_output:
        out.print_json(json.dumps([asdict(r) for r in rows]))
        return
    table = Table("name", "origin", "encoding", "owner", "variants", "hook type", "note")
    for r in rows:
        table.add_row(r.name, r.origin, r.encoding, r.owner, r.variants, r.hook_type, r.note)
    out.print(table)


app.add_typer(store_app, name="store")

from bonzo_bulk.commands import register as _register_tool_commands  # noqa: E402 - after the app exists
from bonzo_bulk.contract_commands import register as _register_contract_commands  # noqa: E402
from bonzo_bulk.export import register as _register_export  # noqa: E402

_register_tool_commands(app)
_register_contract_commands(app)
_register_prune(app)
_register_export(app)

from bonzo_bulk.monitor.commands import app as _monitor_app  # noqa: E402 - after the app exists

app.add_typer(_monitor_app, name="monitor")

from bonzo_bulk.load.command import register as _register_load_commands  # noqa: E402 - after the app exists

_register_load_commands(app)


def main() -> None:
    """Console-script entry point: whatever escapes a command is one line, a log path and exit 3."""
    import sys

    from bonzo_bulk.console import report_unexpected

    try:
        app()
    except Exception as exc:
        sys.exit(report_unexpected(exc))
