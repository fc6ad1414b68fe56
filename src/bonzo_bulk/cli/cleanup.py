"""``bonzo-bulk cleanup`` (remove exactly the test prospects selected) and ``prospects`` (look before removing)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from bonzo_bulk.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, handle_errors
from bonzo_bulk.cli.options import config_options, json_option, log_level_option
from bonzo_bulk.report.terminal import console, out
from bonzo_bulk.secrets import redact

if TYPE_CHECKING:
    from bonzo_bulk.cleanup.report import CleanupReport
    from bonzo_bulk.config.loader import LoadedConfig

_ROWS = 20


@config_options
def cleanup_command(
    *,
    run_id: str | None = typer.Option(None, "--run", help="remove exactly what this run created ('latest' works)"),
    pattern: str | None = typer.Option(None, "--pattern", help="first-name glob, e.g. 'TestRecord_MonitorBase_*'"),
    all_test_data: bool = typer.Option(False, "--all-test-data", help="every test record named like this config's"),
    pending: bool = typer.Option(
        False, "--pending", help="every run's records an earlier cleanup left pending (delivered, not found yet)"
    ),
    include_running: bool = typer.Option(
        False, "--include-running", help="with --pattern/--all-test-data: also delete runs still in progress"
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="really delete (without it: a dry run listing what would go)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="only list what would be deleted (the default)"),
    wait: float | None = typer.Option(
        None,
        "--wait",
        min=0.0,
        max=86_400.0,
        help="with --run/--pending: scan again for up to SECONDS while records are missing (default: 0 with --run, "
        "cleanup.straggler_wait with --pending)",
    ),
    json_output: bool = json_option(),
    log_level: str = log_level_option(),
    loaded: LoadedConfig,
) -> None:
    """Remove test prospects: by run, by first-name pattern, or all test data. Dry run unless --yes.

    Only prospects that match the selection AND carry the test markers (an email on the test domain,
    and the run id in custom_1/tags/email or the bonzo-bulk tag) can be deleted; each deletion is
    checked with a GET. Where the API refuses deletes, the list to remove by hand is written under
    <reports>/cleanup/. What it deletes is recorded in the run store, so running it again says "nothing
    left". --pattern and --all-test-data keep the records of runs still in progress on the same store
    (a run whose process died is not in progress) unless --include-running. Records a cleanup could not find
    yet (delivered, still on their way into Bonzo) are recorded as pending; --pending removes every run's.

    Examples:

      bonzo-bulk cleanup --pattern "TestRecord_MonitorBase_*"

      bonzo-bulk cleanup --run RUN_ID --yes   # RUN_ID: one from `bonzo-bulk history`

      bonzo-bulk cleanup --all-test-data --yes --json

      bonzo-bulk cleanup --pending --yes   # what automatic cleanups left pending
    """
    from bonzo_bulk._http import run_async
    from bonzo_bulk.cleanup.clean import cleanup
    from bonzo_bulk.cleanup.report import report_document
    from bonzo_bulk.cli.terminal import command_progress, print_target, setup_logging

    setup_logging(log_level)
    if yes and dry_run:
        console.print("[bold red]error:[/] --yes and --dry-run contradict each other; pick one")
        raise typer.Exit(EXIT_USAGE)
    with handle_errors(), command_progress(json_output=json_output) as progress:
        if run_id is not None and run_id != "latest":
            from bonzo_bulk.store.interface import replay_journal
            from bonzo_bulk.target.endpoints import store_location_for

            replay_journal(store_location_for(loaded), loaded.config.reports_dir, run_id)
        report = run_async(
            cleanup(
                loaded,
                run_id=run_id,
                pattern=pattern,
                all_test_data=all_test_data,
                pending=pending,
                include_running=include_running,
                dry_run=not yes,
                wait=wait if wait is not None else loaded.config.cleanup.straggler_wait if pending else 0.0,
                progress=progress,
                on_endpoints=lambda endpoints: print_target(endpoints.target, endpoints.where),
            )
        )
    if json_output:
        out.print_json(redact(json.dumps(report_document(report))))
    else:
        _print_cleanup(report)
    raise typer.Exit(EXIT_OK if report.passed else EXIT_FAILED)


def _print_cleanup(report: CleanupReport) -> None:
    """The cleanup's table and totals: what was selected, deleted, kept, left by hand or still missing."""
    from rich.table import Table

    title = {
        "run": f"run {report.run_id}",
        "pattern": f"pattern {report.pattern!r}",
        "all": "all test data",
        "pending": "every run's pending records",
    }
    table = Table(title=f"Cleanup of {title[report.mode]} ({report.target})", title_justify="left")
    for column in ("prospect", "first name", "run", "decision"):
        table.add_column(column, overflow="fold")
    deleted = {str(c.prospect_id) for c in report.deleted}
    failed = {str(c.prospect_id): e for c, e in report.failed}
    manual = {str(c.prospect_id) for c in report.manual}
    shown = sorted(report.candidates, key=lambda c: (c.deletable, c.first_name))
    for c in shown[:_ROWS]:
        key = str(c.prospect_id)
        if key in deleted:
            decision = "[green]deleted[/] (GET: 404)"
        elif key in failed:
            decision = f"[bold red]failed[/]: {redact(failed[key])}"
        elif key in manual:
            decision = "[yellow]remove by hand[/]"
        elif c.deletable:
            decision = "would delete" if report.dry_run else "selected"
        else:
            decision = f"[cyan]{c.reason}[/] ({c.email})"
        table.add_row(key, c.first_name, c.run_id or "-", decision)
    if len(shown) > _ROWS:
        table.caption = f"… and {len(shown) - _ROWS} more (--json lists all)"
    out.print(table)
    out.print(
        f"scanned {report.scanned} prospects: {len(report.deletable)} test record(s) selected, "
        f"{len(report.kept)} lookalike(s) kept; {report.api_requests} API requests in {report.seconds:.1f} s"
    )
    if report.dry_run:
        out.print("[yellow]dry run[/]: nothing deleted; add --yes to delete the selected records")
    else:
        out.print(
            f"deleted {len(report.deleted)}, failed {len(report.failed)}, left for removal by hand {len(report.manual)}"
        )
    if report.headline is not None:
        out.print(f"[green]{report.headline}[/]")
    if report.missing:
        names = ", ".join(report.missing[:5]) + (", …" if len(report.missing) > 5 else "")
        unanswered = (
            f"; {report.unanswered} of them have no answer recorded: the run stopped before recording it, so it may "
            "have sent them"
            if report.unanswered
            else ""
        )
        out.print(
            f"[bold red]{len(report.missing)} record(s) may still appear[/] (delivered, not found yet: {names}"
            f"{unanswered}): "
            + (
                "run cleanup again later, or --wait SECONDS"
                if report.dry_run
                else "recorded as pending: run `bonzo-bulk cleanup --pending --yes` later, or --wait SECONDS"
            )
        )
    if report.presumed_unsent:
        out.print(
            f"{len(report.presumed_unsent)} record(s) with no answer recorded were not found although the run stopped "
            "longer ago than its settle deadline and cleanup.straggler_wait: taken as never sent"
        )
    for unlisted in report.unlisted:
        out.print(f"[bold red]listing incomplete[/]: {redact(unlisted)}; run cleanup again to scan the rest")
    if report.refused:
        out.print(f"[bold red]{redact(report.refused)}[/]")
        for path in report.manual_files:
            out.print(f"remove these by hand in Bonzo: {path}")


@config_options
def prospects_command(
    *,
    user: str | None = typer.Option(None, "--user", help="user id or email to act as (default: every test user)"),
    search: str | None = typer.Option(None, "--search", help="Bonzo's search (default: this config's name prefix)"),
    everything: bool = typer.Option(False, "--everything", help="no search: list the users' whole prospect lists"),
    limit: int = typer.Option(100, "--limit", min=1, help="list at most this many per user"),
    json_output: bool = json_option(),
    loaded: LoadedConfig,
) -> None:
    """List test users' prospects On-Behalf-Of through the Bonzo API, marking which are bonzo-bulk test records.

    Examples:

      bonzo-bulk prospects --user 65013

      bonzo-bulk prospects --search RUN_ID --json   # RUN_ID: one from `bonzo-bulk history`
    """
    from rich.table import Table

    from bonzo_bulk._http import run_async
    from bonzo_bulk.cleanup.listing import list_prospects
    from bonzo_bulk.cli.terminal import print_target

    with handle_errors():
        listing = run_async(
            list_prospects(loaded, user=user, search=search, everything=everything, limit=limit, on_target=print_target)
        )
    rows = listing.rows
    if json_output:
        out.print_json(redact(json.dumps(rows)))
        return
    table = Table(title=f"Prospects (search {listing.search!r})", title_justify="left")
    for column in ("id", "as", "first name", "last name", "email", "source", "test record"):
        table.add_column(column, overflow="fold")
    for row in rows:
        mark = "[green]yes[/]" if row["test_record"] else f"[dim]no: {row['why']}[/]"
        table.add_row(
            *(str(row[k] or "") for k in ("id", "acting_as", "first_name", "last_name", "email", "source")), mark
        )
    out.print(table)
    out.print(f"{len(rows)} prospect(s), {sum(r['test_record'] for r in rows)} test record(s)")
