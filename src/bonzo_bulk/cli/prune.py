"""``bonzo-bulk prune``: delete old runs' report files (and, if asked, their store rows) to free the disk.

The logic is :func:`bonzo_bulk.report.retention.prune`; this module is only the flags and the output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bonzo_bulk.cli.exits import handle_errors
from bonzo_bulk.cli.options import ReportsDir, StoreUrl, store_for
from bonzo_bulk.report.terminal import out

if TYPE_CHECKING:
    from bonzo_bulk.report.retention import DiskUsage, PruneReport


def prune_command(
    keep: Annotated[
        int | None,
        typer.Option(
            "--keep", min=1, help="runs to keep, newest first (default: reports.keep_runs of the latest run, else 50)"
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only list what would be removed")] = False,
    from_store: Annotated[
        bool,
        typer.Option(
            "--from-store", help="also delete the pruned runs' rows from the run store (they leave history and trends)"
        ),
    ] = False,
    store_url: StoreUrl = None,
    reports_dir: ReportsDir = None,
    stats: Annotated[
        bool,
        typer.Option("--stats", help="only show where the space goes: the store's tables, reports, load, sandboxes"),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON instead of lines")] = False,
) -> None:
    """Free the disk older runs take: all but the newest runs lose their files (dashboards, JSON summaries, load
    folders, sandbox databases) and their per-record rows in the run store (history and trends stay); never a
    baseline's, nor an unfinished run's that may be under way.

    The files live next to the store. Runs also prune themselves after each run down to reports.keep_runs
    (config, default 50; 0 keeps all).

    Examples:

      bonzo-bulk prune --stats

      bonzo-bulk prune --dry-run

      bonzo-bulk prune --keep 10

      bonzo-bulk prune --keep 10 --from-store
    """
    from bonzo_bulk.report.retention import configured_keep, disk_usage, prune
    from bonzo_bulk.report.summary import HEALTH_DIR

    with handle_errors():
        store = _sqlite_store(store_for(store_url, reports_dir))
    health_dir = store.parent / HEALTH_DIR
    if stats:
        with handle_errors():
            usage = disk_usage(store, store.parent)
        _print_usage(usage, json_output)
        return
    with handle_errors():
        report = prune(store, health_dir, keep=keep or configured_keep(store), dry_run=dry_run, from_store=from_store)
    if json_output:
        out.print_json(
            json.dumps(
                {
                    "dry_run": report.dry_run,
                    "keep": report.keep,
                    "kept": list(report.kept),
                    "protected": list(report.protected),
                    "pruned": [
                        {
                            "run_id": r.run_id,
                            "integration": r.integration,
                            "files": [str(p) for p in r.files],
                            "bytes": r.file_bytes,
                            "store_rows": r.store_rows,
                            "trimmed": r.trimmed,
                        }
                        for r in report.pruned
                    ],
                    "freed_bytes": report.freed_bytes,
                    "store_bytes": report.store_bytes_freed,
                    "notes": list(report.notes),
                }
            )
        )
        return
    _print(report, health_dir)


def _print(report: PruneReport, health_dir: Path) -> None:
    from bonzo_bulk.store.space import human_bytes

    verb = "would remove" if report.dry_run else "removed"
    for run in report.pruned:
        rows = " and its store rows" if run.store_rows else " and its per-record rows" if run.trimmed else ""
        size = human_bytes(run.file_bytes)
        out.print(f"{verb} run {run.run_id} ({run.integration}): {len(run.files)} file(s){rows}, {size}")
        for path in run.files:
            out.print(f"  {path}")
    for run_id in report.protected:
        out.print(f"kept run {run_id}: a baseline or unfinished run is never pruned")
    for note in report.notes:
        out.print(f"[yellow]{note}[/]")
    about = "about " if report.dry_run else ""
    store = f" + {about}{human_bytes(report.store_bytes_freed)} of the run store" if report.store_bytes_freed else ""
    freed = "would be freed" if report.dry_run else "freed"
    total = (
        f"{verb} {len(report.pruned)} run(s): {human_bytes(report.file_bytes)} of files{store} {freed}; "
        f"kept the newest {len(report.kept)} run(s) in {health_dir.parent}"
    )
    out.print(total if report.pruned else f"nothing to prune: {len(report.kept)} run(s), keeping {report.keep}")


def _print_usage(usage: DiskUsage, json_output: bool) -> None:
    from rich.table import Table

    from bonzo_bulk.store.space import human_bytes

    if json_output:
        out.print_json(
            json.dumps(
                {
                    "folder": str(usage.folder),
                    "total_bytes": usage.total,
                    "places": [{"what": w, "bytes": b, "entries": n} for w, b, n in usage.places],
                    "tables": [{"table": t, "rows": r, "bytes": b} for t, r, b in usage.tables],
                    "runs_by_kind": dict(usage.runs_by_kind),
                    "unfinished_runs": usage.unfinished,
                }
            )
        )
        return
    places = Table(title=f"{usage.folder}: {human_bytes(usage.total)}", title_justify="left")
    for column in ("where", "size", "entries"):
        places.add_column(column, justify="left" if column == "where" else "right")
    for what, size, entries in sorted(usage.places, key=lambda p: p[1], reverse=True):
        places.add_row(what, human_bytes(size), f"{entries:,}")
    out.print(places)
    if usage.tables:
        tables = Table(title="run store tables", title_justify="left")
        for column in ("table", "rows", "size"):
            tables.add_column(column, justify="left" if column == "table" else "right")
        for table, count, table_bytes in usage.tables:
            tables.add_row(table, f"{count:,}", "—" if table_bytes is None else human_bytes(table_bytes))
        out.print(tables)
    kinds = ", ".join(f"{count} {kind}" for kind, count in usage.runs_by_kind) or "none"
    out.print(f"runs: {kinds}; {usage.unfinished} unfinished. `bonzo-bulk prune --dry-run` says what pruning frees.")


def _sqlite_store(named: str | Path) -> Path:
    """The SQLite file of the store named (prune measures and deletes the files next to it); ConfigError for a
    server database."""
    from bonzo_bulk.config.store_location import StoreLocation
    from bonzo_bulk.errors import ConfigError

    location = StoreLocation.parse(named, key="--store-url")
    if location.path is None:
        raise ConfigError(
            f"--store-url {location.label!r}: prune works on a SQLite store and the files beside it; give the "
            "SQLite file (--store-url PATH) or its folder (--reports-dir DIR)",
            key="--store-url",
        )
    return location.path
