"""The ``bonzo-bulk`` command line: one typer app, each subcommand a thin call into the stages."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="bonzo-bulk",
    help="Prove, in bulk and end to end, that a webhook -> Bonzo integration works.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    """Console-script entry point."""
    app()
