"""``bonzo-bulk init`` (scaffold an integration) and ``integrations`` (list them), over `plan.scaffold`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bonzo_bulk.cli.exits import handle_errors
from bonzo_bulk.report.terminal import out


def init_command(
    integration: Annotated[str, typer.Option("--integration", help="name of the new integration (folder name)")],
    origin: Annotated[str, typer.Option("--from", help="integration to copy (built-in or local)")] = "monitorbase",
    directory: Annotated[Path, typer.Option("--dir", help="where integrations/<name>/ and the config go")] = Path(),
) -> None:
    """Scaffold integrations/NAME/ (manifest, template(s), MAPPING.md) and NAME_test_config.yaml.

    Example:

      bonzo-bulk init --integration acme --from zillow && bonzo-bulk run --config acme_test_config.yaml
    """
    from bonzo_bulk.plan.scaffold import scaffold

    with handle_errors():
        made = scaffold(integration, base=directory, origin=origin)
    for path in made.files:
        out.print(f"created {path}")
    for note in made.notes:
        out.print(f"note: {note}")
    out.print(f"next: edit {made.folder}/ to match the payload, then `bonzo-bulk run --config {made.config}`")


def integrations_command(
    directory: Annotated[Path, typer.Option("--dir", help="also look in DIR/integrations/")] = Path(),
    json_output: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """List installed integrations: ./integrations/ folders (they win over a built-in) and the built-ins."""
    from dataclasses import asdict

    from rich.table import Table

    from bonzo_bulk.plan.scaffold import integration_rows

    with handle_errors():
        rows = integration_rows(directory)
    if json_output:
        out.print_json(json.dumps([asdict(r) for r in rows]))
        return
    table = Table("name", "origin", "encoding", "owner", "variants", "hook type", "note")
    for r in rows:
        table.add_row(r.name, r.origin, r.encoding, r.owner, r.variants, r.hook_type, r.note)
    out.print(table)
