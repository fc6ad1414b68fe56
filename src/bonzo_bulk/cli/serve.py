"""``bonzo-bulk serve``: the integration health pages, runs in flight and metrics over the run store (the logic is
:mod:`bonzo_bulk.serve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bonzo_bulk.cli.exits import handle_errors
from bonzo_bulk.cli.options import ReportsDir, StoreUrl, store_for
from bonzo_bulk.report.terminal import console


def serve_command(
    host: Annotated[
        str, typer.Option("--host", help="interface to listen on; beyond loopback it needs BONZO_BULK_SERVE_TOKEN")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="port to listen on")] = 8080,
    store: StoreUrl = None,
    reports_dir: ReportsDir = None,
) -> None:
    """Serve the run store to a browser and to Prometheus until Ctrl-C: / (every integration's health), /runs/ID,
    /live (runs in flight), /metrics, /api/..., /healthz.

    It binds 127.0.0.1. On any other interface it refuses to start unless BONZO_BULK_SERVE_TOKEN is set (in the
    environment or .env): then every page needs the token (bearer, or a login form's session cookie).

    Examples:

      bonzo-bulk serve

      BONZO_BULK_SERVE_TOKEN=... bonzo-bulk serve --host 0.0.0.0 --port 8080 --store-url postgresql://ro@db/bonzo
    """
    from bonzo_bulk.config.environment import environment
    from bonzo_bulk.serve.access import TOKEN_ENV
    from bonzo_bulk.serve.server import prepare, serve_forever

    token = environment(Path.cwd()).get(TOKEN_ENV, "").strip() or None
    with handle_errors():
        location, access = prepare(host, str(store_for(store, reports_dir)), token)
        shown = f"[{host}]" if ":" in host else host
        guard = "token required (bearer or login)" if access.guarded else "open to this machine only"
        try:  # from here on, Ctrl-C (whenever it comes) is how a server is asked to stop
            console.print(
                f"bonzo-bulk serve: http://{shown}:{port}  store {location.label}  ({guard}); Ctrl-C stops it"
            )
            serve_forever(host, port, location, access)
        except KeyboardInterrupt:  # uvicorn shuts down on Ctrl-C, then raises it again
            console.print("bonzo-bulk serve: stopped")
