"""``bonzo-bulk sandbox``: serve the local Bonzo stand-in (the logic is :mod:`bonzo_bulk.sandbox.standalone`),
seeded for a config as a run of it seeds its sandbox (:mod:`bonzo_bulk.plan.seeding`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from bonzo_bulk.cli.exits import handle_errors


def sandbox_command(
    host: Annotated[str, typer.Option("--host", help="interface to listen on (keep it loopback)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="port; 0 picks a free one")] = 8765,
    db: Annotated[Path | None, typer.Option("--db", help="SQLite state file (default reports/sandbox.sqlite3)")] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", "--users", help="a bonzo-bulk config: seeds its users and hooks, applies its sandbox:"
        ),
    ] = None,
    faults: Annotated[Path | None, typer.Option("--faults", help="fault profile YAML to inject")] = None,
    capacity: Annotated[
        float | None, typer.Option("--capacity", help="leads/s the sandbox processes at most (a queue beyond)")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="keep only what the Bonzo reference promises (docs/sandbox.md)")
    ] = False,
) -> None:
    """Serve the local Bonzo stand-in (hook URLs, /api/v3, /__sandbox) until Ctrl-C.

    With --config it is the sandbox a run of that config starts: same users, hooks and settings.

    Example:

      bonzo-bulk sandbox --port 8765 --config tests/configs/monitorbase_test_config.yaml --strict
    """
    with handle_errors():
        serve_sandbox(
            host=host,
            port=port,
            db=db,
            config_file=config,
            faults=faults,
            strict=strict,
            capacity=capacity,
            echo=typer.echo,
        )


def serve_sandbox(
    *,
    host: str,
    port: int,
    db: Path | None,
    config_file: Path | None,
    faults: Path | None,
    echo: Callable[[str], Any],
    strict: bool = False,
    capacity: float | None = None,
    until: Callable[[], bool] | None = None,
) -> None:
    """Serve the sandbox until Ctrl-C (or until ``until()`` says stop); with a config, the one a run of that
    config starts (same users, hooks and settings), else one with no users and a monitorbase and a general hook."""
    from bonzo_bulk.plan.seeding import config_seed
    from bonzo_bulk.sandbox.standalone import load_for_sandbox, serve

    if config_file is None:
        serve(host=host, port=port, db=db, faults=faults, echo=echo, strict=strict, capacity=capacity, until=until)
        return
    loaded = load_for_sandbox(config_file, strict=strict)
    seed = config_seed(loaded).body()
    serve(
        host=host, port=port, db=db, faults=faults, echo=echo, loaded=loaded, seed=seed, capacity=capacity, until=until
    )
