"""``bonzo-bulk contract`` (what each phase is held to, and on whose word) and ``bonzo-bulk calibrate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from bonzo_bulk.console import EXIT_FAILED, EXIT_OK, config_options, handle_errors, out, setup_logging

if TYPE_CHECKING:
    from bonzo_bulk.config import LoadedConfig

ContractOut = typer.Option(
    None,
    "--out",
    help="contract file to write (default: the config's contract.file, else <integration>.contract.yaml beside it)",
)


def contract_command(*, loaded: LoadedConfig) -> None:
    """Show the verdict contract: every prospect field each phase is held to, and its source of truth.

    documented = what Bonzo documents for the hook type (checked by default); declared = your config's
    contract / validation_rules; learned = a contract file written by `bonzo-bulk calibrate`;
    unchecked = known to be mappable but neither documented nor declared.

    Examples:

      bonzo-bulk contract --config tests/configs/monitorbase_test_config.yaml
    """
    from bonzo_bulk.contract import contract_rows
    from bonzo_bulk.judge import check_name
    from bonzo_bulk.plan import phase_contracts

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


def calibrate_command(
    *,
    records: int = typer.Option(3, "--records", min=1, max=50, help="records sent per hook"),
    out_path: Path | None = ContractOut,
    accept: bool = typer.Option(False, "--accept", help="overwrite an existing contract file that differs"),
    log_level: str = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING or ERROR"),
    loaded: LoadedConfig,
) -> None:
    """Learn what the webhook stores: send a few records per hook, compare each payload field with
    what Bonzo kept, write a contract file to review; the records are cleaned up afterwards.

    Examples:

      bonzo-bulk calibrate --config tests/configs/monitorbase_test_config.yaml

      bonzo-bulk calibrate --records 5 --out contracts/monitorbase.yaml --accept
    """
    from bonzo_bulk._http import run_async
    from bonzo_bulk.calibrate import declaration, fixed_values, learn_phase, loaded_for_calibration
    from bonzo_bulk.contract import load_contract_file, write_contract_file
    from bonzo_bulk.plan import plan_run
    from bonzo_bulk.run import execute

    setup_logging(log_level)
    config = loaded.config
    with handle_errors():
        plan = plan_run(loaded_for_calibration(loaded, records))
        result = run_async(execute(plan))
        findings = {phase.kind: learn_phase(phase) for phase in result.phases}
        documented = {p.kind: {f.field: f.source for f in p.contract.fields} for p in plan.phases}
        declarations = {
            phase.kind: declaration(findings[phase.kind], fixed_values(phase), documented[phase.kind])
            for phase in result.phases
        }
        table = Table(title=f"Calibration of {config.integration_type} (run {result.run_id})", title_justify="left")
        for column in ("phase", "payload field", "what Bonzo stored", "example"):
            table.add_column(column)
        for kind, rows in findings.items():
            for finding in rows:
                example = "" if finding.example is None else escape(str(finding.example))[:40]
                table.add_row(kind, escape(finding.payload_path), escape(finding.description), example)
            for field, value in fixed_values(next(p for p in result.phases if p.kind == kind)).items():
                table.add_row(kind, "—", escape(f"{field} is set by the hook to {value!r} on every record"), "")
        out.print(table)
        missing = [p.kind for p in result.phases if not any(o.found for o in p.outcomes)]
        if missing:
            out.print(f"[bold red]no record of {', '.join(missing)} arrived[/]: nothing to learn; check the hook first")
            raise typer.Exit(EXIT_FAILED)
        path = out_path or (
            loaded.resolve_path(config.contract.file)
            if config.contract.file
            else loaded.base_dir / f"{config.integration_type}.contract.yaml"
        )
        received = path.exists() and not accept
        if received:
            current = load_contract_file(path)
            if all(getattr(current, kind).fields == declarations[kind].fields for kind in declarations):
                out.print(f"The contract in {path} still holds: nothing changed.")
                raise typer.Exit(EXIT_OK)
        written = path.with_name(path.stem + ".received.yaml") if received else path
        write_contract_file(
            written,
            integration=config.integration_type,
            run_id=result.run_id,
            target=result.target,
            records_per_hook=records,
            phases=declarations,
        )
        if received:
            out.print(
                f"[bold yellow]The webhook now stores something else than {path} says.[/] The new contract is in "
                f"{written}: compare the two, then rerun with --accept to replace it."
            )
            raise typer.Exit(EXIT_FAILED)
    out.print(f"Contract written: {path} — review it; every later run that names it is held to it.")
    if config.contract.file is None:
        out.print(f"Add to your config:\n  contract:\n    file: {path}")
    raise typer.Exit(EXIT_OK)


COMMANDS = {
    "contract": config_options(contract_command),
    "calibrate": config_options(calibrate_command),
}


def register(app: typer.Typer) -> None:
    """Add ``contract`` and ``calibrate`` to the ``bonzo-bulk`` app."""
    for name, command in COMMANDS.items():
        app.command(name)(command)
