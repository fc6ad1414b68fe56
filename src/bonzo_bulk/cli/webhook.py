"""``bonzo-bulk validate-webhook``: probe the hooks without creating data, optionally send a few records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer

from bonzo_bulk.cli.exits import EXIT_FAILED, EXIT_OK, handle_errors
from bonzo_bulk.cli.options import config_options, json_option, log_level_option
from bonzo_bulk.report.terminal import out

if TYPE_CHECKING:
    from rich.table import Table

    from bonzo_bulk.config.loader import LoadedConfig
    from bonzo_bulk.deliver.probe import MethodProbe, ProbeResult


@config_options
def validate_webhook_command(
    *,
    url: str | None = typer.Option(None, "--url", help="probe this URL instead of the config's webhook(s)"),
    attempts: int = typer.Option(3, "--attempts", min=1, max=50, help="probes per method (HEAD, GET, OPTIONS)"),
    send: int = typer.Option(0, "--send", min=0, max=100_000, help="then deliver N test records (creates data)"),
    json_output: bool = json_option(),
    log_level: str = log_level_option(),
    loaded: LoadedConfig,
) -> None:
    """Probe a webhook without creating data (reachability, TLS, methods, latency); --send N also delivers N records.

    Records sent with --send are real test records, recorded in the run store (clean them with
    `bonzo-bulk cleanup --run ID --yes`).

    Examples:

      bonzo-bulk validate-webhook

      bonzo-bulk validate-webhook --send 50 --json
    """
    from bonzo_bulk._http import run_async
    from bonzo_bulk.cli.terminal import command_progress, delivery_table, print_target, setup_logging
    from bonzo_bulk.engine.deliver_only import check_webhooks
    from bonzo_bulk.models import to_jsonable
    from bonzo_bulk.secrets import redact

    setup_logging(log_level)
    with handle_errors(), command_progress(json_output=json_output) as progress:
        checked = run_async(
            check_webhooks(loaded, url=url, attempts=attempts, send=send, progress=progress, on_target=print_target)
        )
    probes, sent, failed = checked.probes, checked.sent, checked.failed
    if json_output:
        document: dict[str, Any] = {"probes": {n: to_jsonable(p) for n, p in probes}, "passed": not failed}
        if sent:
            document.update(run_id=sent.run_id, target=sent.target, delivery=sent.rows)
        out.print_json(redact(json.dumps(document)))
    else:
        out.print(_probe_table(probes))
        if sent:
            out.print(delivery_table(sent.rows, f"Sent {send} record(s) per hook, run {sent.run_id}"))
            out.print(f"remove them with: bonzo-bulk cleanup --run {sent.run_id} --yes")
        out.print("webhook: [bold red]FAILED[/]" if failed else "webhook: [bold green]OK[/]")
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _probe_table(probes: Sequence[tuple[str, ProbeResult]]) -> Table:
    from rich.table import Table

    from bonzo_bulk.secrets import redact

    table = Table(title="Webhook probe (HEAD, GET, OPTIONS: no data created)", title_justify="left")
    for column in ("hook", "reachable", "TLS", "HEAD/GET/OPTIONS", "allow", "p50/max ms"):
        table.add_column(column, overflow="fold")
    for name, found in probes:

        def cell(method: MethodProbe) -> str:
            seen = ",".join(sorted({str(s) for s in method.statuses})) or "-"
            return seen + (f" ({method.failures} failed)" if method.failures else "")

        allow = next((m.allow for m in found.methods if m.allow), None) or "-"
        latency = (
            f"{found.latency_p50_ms:.1f} / {found.latency_max_ms:.1f}"
            if found.latency_p50_ms is not None and found.latency_max_ms is not None
            else "-"
        )
        table.add_row(
            name,
            "[green]yes[/]" if found.reachable else f"[bold red]no[/] {redact(found.error or '')}",
            {None: "n/a (http)", True: "[green]ok[/]", False: "[bold red]failed[/]"}[found.tls_ok],
            " / ".join(cell(m) for m in found.methods),
            allow,
            latency,
        )
    table.caption = "; ".join(f"{name}: {found.url}" for name, found in probes)
    return table
