"""``bonzo-bulk store migrate | copy``: run-store upkeep (the logic is :mod:`bonzo_bulk.store.transfer`)."""

from __future__ import annotations

from typing import Annotated

import typer

from bonzo_bulk.cli.exits import handle_errors
from bonzo_bulk.cli.options import ReportsDir, StoreUrl, store_for
from bonzo_bulk.report.terminal import out

store_app = typer.Typer(
    help="Run-store upkeep: apply schema migrations, copy history between SQLite and PostgreSQL.",
    no_args_is_help=True,
)


@store_app.command("migrate")
def migrate_command(store: StoreUrl = None, reports_dir: ReportsDir = None) -> None:
    """Apply pending schema migrations to a store (runs do this on first use too); print its version.

    Example:

      PGPASSWORD=... bonzo-bulk store migrate --store postgresql://ci@db.internal:5432/bonzo
    """
    from bonzo_bulk.store.transfer import migrate_store

    with handle_errors():
        done = migrate_store(store_for(store, reports_dir))
    if done.applied:
        steps = "; ".join(f"{m.version}: {m.summary}" for m in done.applied)
        out.print(f"run store {done.label}: migrated to schema version {done.version} ({steps})")
    else:
        out.print(f"run store {done.label}: schema version {done.version}, up to date")


@store_app.command("copy")
def copy_command(
    source: Annotated[str, typer.Option("--from", help="store to copy from (SQLite path or URL)")],
    target: Annotated[str, typer.Option("--to", help="store to copy into (created/migrated if needed)")],
) -> None:
    """Copy every run from one store into another (runs already there are skipped), e.g. local history to the team's.

    Example:

      PGPASSWORD=... bonzo-bulk store copy --from sqlite:///reports/runs.sqlite3 --to postgresql://ci@db:5432/bonzo
    """
    from bonzo_bulk.cli.terminal import command_progress, setup_logging
    from bonzo_bulk.store.transfer import copy_store

    setup_logging()
    with handle_errors(), command_progress() as progress:
        progress.stage("runs", None)
        progress.stage("rows", None)
        report = copy_store(
            source,
            target,
            on_run=lambda _run_id: progress.advance("runs"),
            on_rows=lambda rows: progress.advance("rows", rows),
        )
    rows = sum(report.rows.values())
    out.print(f"copied {len(report.copied)} run(s), {rows:,} rows, from {report.source} to {report.target}")
    if report.skipped:
        out.print(f"skipped {len(report.skipped)} run(s) already in {report.target}: {', '.join(report.skipped)}")
