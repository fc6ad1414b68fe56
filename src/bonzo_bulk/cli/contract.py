"""``bonzo-bulk contract`` (what each phase is held to, and on whose word) and ``bonzo-bulk calibrate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bonzo_bulk.cli.exits import EXIT_FAILED, EXIT_OK, handle_errors
from bonzo_bulk.cli.options import config_options, log_level_option
from bonzo_bulk.report.terminal import out
from bonzo_bulk.secrets import redact_cut

if TYPE_CHECKING:
    from rich.table import Table

    from bonzo_bulk.calibrate.learn import Calibration
    from bonzo_bulk.config.loader import LoadedConfig

ContractOut = typer.Option(
    None,
    "--out",
    help="contract file to write (default: the config's contract.file, else <integration>.contract.yaml beside it)",
)


@config_options
def contract_command(*, loaded: LoadedConfig) -> None:
    """Show the verdict contract: every prospect field each phase is held to, and its source of truth.

    documented = what Bonzo documents for the hook type (checked by default); declared = your config's
    contract / validation_rules; learned = a contract file written by `bonzo-bulk calibrate`;
    unchecked = known to be mappable but neither documented nor declared.

    Examples:

      bonzo-bulk contract --config tests/configs/monitorbase_test_config.yaml
    """
    from rich.markup import escape
    from rich.table import Table

    from bonzo_bulk.judge.verify import check_name
    from bonzo_bulk.plan.contract import contract_rows
    from bonzo_bulk.plan.planner import phase_contracts

    with handle_errors():
        contracts = [contract for _, contract in phase_contracts(loaded).values()]
    table = Table(title=f"Contract of {loaded.config.integration_type}", title_justify="left")
    for column in ("phase", "prospect field", "expected", "transform", "source of truth"):
        table.add_column(column)
    for row in contract_rows(contracts):
        table.add_row(*(escape(cell) for cell in row))
    for rule in loaded.config.validation_rules:
        expected = "matches lo_email" if rule.matches_lo_email else repr(rule.expected) if rule.expected else "a value"
        judged_by = check_name(rule)
        source = "declared (validation_rules)" + (f", judged as `{judged_by}`" if judged_by != rule.field else "")
        table.add_row(rule.phase, escape(rule.field), escape(expected), rule.normalize, escape(source))
    table.caption = "owner, owner email and team are checked on every record (built in, any known shape)"
    out.print(table)


@config_options
def calibrate_command(
    *,
    records: int = typer.Option(3, "--records", min=1, max=50, help="records sent per hook"),
    out_path: Path | None = ContractOut,
    accept: bool = typer.Option(False, "--accept", help="overwrite an existing contract file that differs"),
    log_level: str = log_level_option(),
    loaded: LoadedConfig,
) -> None:
    """Learn what the webhook stores: send a few records per hook, compare each payload field with
    what Bonzo kept, write a contract file to review; the records are cleaned up afterwards.

    Examples:

      bonzo-bulk calibrate --config tests/configs/monitorbase_test_config.yaml

      bonzo-bulk calibrate --records 5 --out contracts/monitorbase.yaml --accept
    """
    from rich.markup import escape

    from bonzo_bulk.calibrate.learn import keep_contract, learn
    from bonzo_bulk.cli.terminal import setup_logging

    setup_logging(log_level)
    config = loaded.config
    with handle_errors():
        calibration = learn(loaded, records)
        out.print(_findings_table(calibration, config.integration_type))
        for line in calibration.created_at:
            out.print(escape(line))
        if calibration.missing:
            missing = ", ".join(calibration.missing)
            out.print(f"[bold red]no record of {missing} arrived[/]: nothing to learn; check the hook first")
            raise typer.Exit(EXIT_FAILED)
        kept = keep_contract(loaded, calibration, out=out_path, accept=accept)
    if kept.state == "unchanged":
        out.print(f"The contract in {kept.path} still holds: nothing changed.")
        raise typer.Exit(EXIT_OK)
    if kept.state == "received":
        out.print(
            f"[bold yellow]The webhook now stores something else than {kept.path} says.[/] The new contract is in "
            f"{kept.written}: compare the two, then rerun with --accept to replace it."
        )
        raise typer.Exit(EXIT_FAILED)
    out.print(f"Contract written: {kept.path} — review it; every later run that names it is held to it.")
    if config.contract.file is None:
        out.print(f"Add to your config:\n  contract:\n    file: {kept.path}")
    raise typer.Exit(EXIT_OK)


def _findings_table(calibration: Calibration, integration: str) -> Table:
    """Per phase: each payload field and what Bonzo stored of it, then the values the hook sets itself."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Calibration of {integration} (run {calibration.run_id})", title_justify="left")
    for column in ("phase", "payload field", "what Bonzo stored", "example"):
        table.add_column(column)
    for kind, rows in calibration.findings.items():
        for finding in rows:
            example = "" if finding.example is None else escape(redact_cut(str(finding.example), 40))
            table.add_row(kind, escape(finding.payload_path), escape(finding.description), example)
        for field, value in calibration.fixed[kind].items():
            table.add_row(kind, "—", escape(f"{field} is set by the hook to {value!r} on every record"), "")
    return table
