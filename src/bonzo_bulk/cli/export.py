"""``bonzo-bulk export RUN_ID``: a run's full per-record ledger (the logic is :mod:`bonzo_bulk.report.export`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bonzo_bulk.cli.exits import handle_errors
from bonzo_bulk.cli.options import ReportsDir, StoreUrl, store_for
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.report.terminal import out


def export_command(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="the run to export (`bonzo-bulk history`)")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl (one JSON object per record) or csv")] = "jsonl",
    out_file: Annotated[Path | None, typer.Option("--out", help="file to write (default: stdout)")] = None,
    store: StoreUrl = None,
    reports_dir: ReportsDir = None,
) -> None:
    """Write a run's full per-record ledger (payload, delivery, prospects, every check), streamed from the store.

    Examples:

      bonzo-bulk export RUN_ID --format jsonl --out ledger.jsonl

      bonzo-bulk export RUN_ID --format csv --out ledger.csv
    """
    from bonzo_bulk.report.export import export_run

    with handle_errors():
        if fmt not in ("jsonl", "csv"):
            raise ConfigError(f"--format {fmt!r}: not a ledger format; use jsonl or csv", key="--format")
        rows = export_run(store_for(store, reports_dir), run_id, "csv" if fmt == "csv" else "jsonl", out_file)
    if out_file is not None:
        out.print(f"{rows} rows -> {out_file}")
