"""The root ``bonzo-bulk`` app: global options, ``--version``, every command in help order, and ``main()``.

Each command lives in the module of its group and imports what it runs only when it runs, so
``bonzo-bulk --help`` loads typer, rich and these flag declarations and nothing of the engine.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from bonzo_bulk.cli import (
    cleanup,
    contract,
    export,
    load,
    monitor,
    problems,
    prune,
    report,
    run,
    sandbox,
    scaffold,
    serve,
    store,
    webhook,
)
from bonzo_bulk.cli.exits import quiet_when_stdout_closes
from bonzo_bulk.report.terminal import PIPE_WIDTH, out, stream_is_terminal

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="bonzo-bulk",
    help="Prove, in bulk and end to end, that a webhook -> Bonzo integration works.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMANDS: dict[str, Callable[..., Any]] = {
    "run": run.run_command,
    "report": report.report_command,
    "history": report.history_command,
    "sandbox": sandbox.sandbox_command,
    "init": scaffold.init_command,
    "integrations": scaffold.integrations_command,
    "generate": run.generate_command,
    "health": run.health_command,
    "validate-webhook": webhook.validate_webhook_command,
    "cleanup": cleanup.cleanup_command,
    "prospects": cleanup.prospects_command,
    "records": run.records_command,
    "contract": contract.contract_command,
    "calibrate": contract.calibrate_command,
    "prune": prune.prune_command,
    "export": export.export_command,
    "load": load.load_command,
    "stress": load.stress_command,
    "load-worker": load.load_worker_command,
    "serve": serve.serve_command,
}
"""Every top-level command, in the order ``--help`` lists them."""

GROUPS: dict[str, typer.Typer] = {
    "baseline": report.baseline_app,
    "store": store.store_app,
    "monitor": monitor.monitor_app,
    "problems": problems.problems_app,
}
"""Every command group (``bonzo-bulk GROUP COMMAND``), listed after the commands."""


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


def _resolved(command: F) -> F:
    """``command`` with its annotations evaluated, once. Every module here writes them as text (``from __future__
    import annotations``), and typer evaluates that text several times per parameter while it builds the
    commands: about a third of the time ``--help`` spends building them."""
    hints = typing.get_type_hints(command, include_extras=True)
    signature = inspect.signature(command)
    command.__annotations__ = {name: hints.get(name, value) for name, value in command.__annotations__.items()}
    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()]
    )
    return command


for _name, _command in COMMANDS.items():
    app.command(_name)(_resolved(quiet_when_stdout_closes(_command)))
for _name, _group in GROUPS.items():
    for _info in _group.registered_commands:
        _info.callback = _resolved(quiet_when_stdout_closes(_info.callback)) if _info.callback else None
    app.add_typer(_group, name=_name)


def plain_help_when_piped(stream: typing.TextIO) -> None:
    """Help as plain text, every line whole, when ``stream`` is not a terminal: typer's rich help draws boxes at 80
    columns in a pipe and cuts flags and values (``--allow-literal-secre…``). Click's plain help, as wide as the
    text, reads the same in ``| cat``, ``| grep`` and CI logs."""
    if stream_is_terminal(stream):
        return
    app.rich_markup_mode = None
    app.info.context_settings = {"terminal_width": PIPE_WIDTH, "max_content_width": PIPE_WIDTH}


def main() -> None:
    """Console-script entry point: whatever escapes a command is one line, a log path and exit 3."""
    import sys

    from bonzo_bulk.cli.exits import report_unexpected

    plain_help_when_piped(sys.stdout)
    try:
        app()
    except Exception as exc:
        sys.exit(report_unexpected(exc))


def script(name: str) -> None:
    """Run one command as a standalone program (``scripts/*.py``), with its own ``--help``."""
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command(name)(quiet_when_stdout_closes(COMMANDS[name]))
    single()
