"""How a cleanup report is shown in the terminal (the ``cleanup`` command's table and totals)."""

from __future__ import annotations

from rich.table import Table

from bonzo_bulk.cleanup import CleanupReport
from bonzo_bulk.console import out
from bonzo_bulk.secrets import redact

_ROWS = 20


def print_cleanup(report: CleanupReport) -> None:
    """The cleanup's table and totals: what was selected, deleted, kept, left by hand or still missing."""
    title = {"run": f"run {report.run_id}", "pattern": f"pattern {report.pattern!r}", "all": "all test data"}
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
    if report.missing:
        names = ", ".join(report.missing[:5]) + (", …" if len(report.missing) > 5 else "")
        out.print(
            f"[bold red]{len(report.missing)} record(s) may still appear[/] (delivered, not found yet: {names}): "
            f"run cleanup again later, or --wait SECONDS"
        )
    if report.refused:
        out.print(f"[bold red]{redact(report.refused)}[/]")
        for path in report.manual_files:
            out.print(f"remove these by hand in Bonzo: {path}")
