"""The tool commands: ``generate``, ``health``, ``validate-webhook``, ``cleanup`` (+ ``prospects``, ``records``).

Each is a thin typer command over the stages; :func:`register` adds them to the ``bonzo-bulk`` app and
:func:`script` runs one as a standalone program (the spec's ``scripts/*.py`` entries).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from bonzo_bulk.console import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    RichProgress,
    config_options,
    console,
    handle_errors,
    is_interactive,
    loaded_summary,
    out,
    print_published,
    print_result,
    print_verdict,
    setup_logging,
)
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.events import Event, RecordDelivered, RunStarted
from bonzo_bulk.models import DeliveryResult, PhaseKind, to_jsonable
from bonzo_bulk.secrets import redact

if TYPE_CHECKING:
    from bonzo_bulk.config import LoadedConfig
    from bonzo_bulk.delivery import MethodProbe, ProbeResult
    from bonzo_bulk.plan import RunPlan
    from bonzo_bulk.target import Endpoints, Progress

LogLevel = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING or ERROR")
OutDir = typer.Option(None, "--out", help="folder for the dry-run files (default <reports>/generated)")
JsonFlag = typer.Option(False, "--json", help="print JSON on stdout instead of tables")


def _target_line(target: str, where: str) -> str:
    if target == "sandbox":
        return (
            f"[bold yellow]Target: the local SANDBOX at {where}[/] — no live credentials "
            "(TEST_HOOK_URL / SUPERUSER_API_KEY), so nothing reaches Bonzo"
        )
    return f"[bold magenta]Target: LIVE[/] — API {where}"


def _shrunk(loaded: LoadedConfig, records: int) -> LoadedConfig:
    """The same config sending ``records`` valid records and no invalid ones."""
    update: dict[str, Any] = {"test_records": records, "invalid_records": []}
    if loaded.config.distribution == "custom":
        update["distribution"] = "even"
    return dataclasses.replace(loaded, config=loaded.config.model_copy(update=update))


@dataclass
class Sent:
    """What a delivery-only run sent, per phase (a subscriber to the engine's delivery events)."""

    run_id: str = ""
    target: str = ""
    deliveries: dict[PhaseKind, list[tuple[bool, DeliveryResult]]] = field(default_factory=dict)
    announce: bool = True

    def __call__(self, event: Event) -> None:
        if isinstance(event, RecordDelivered):
            self.deliveries.setdefault(event.phase, []).append((event.record.is_valid, event.delivery))
        elif isinstance(event, RunStarted):
            self.run_id, self.target = event.plan.run_id, event.target
            if self.announce:
                console.print(_target_line(event.target, event.where))


async def _send(plan: RunPlan, progress: Progress, endpoints: Endpoints | None = None) -> Sent:
    """Deliver the plan (to the config's endpoints, live or a started sandbox, unless given), recorded in the
    run store so cleanup can find it."""
    from bonzo_bulk.run import deliver_only

    sent = Sent(announce=endpoints is None)
    await deliver_only(plan, progress=progress, subscribers=[sent], endpoints=endpoints)
    return sent


def _delivery_rows(plan: RunPlan, sent: Sent) -> list[dict[str, Any]]:
    from bonzo_bulk.metrics import latency_summary

    rows = []
    for phase in plan.phases:
        results = sent.deliveries.get(phase.kind, [])
        valid = [d for is_valid, d in results if is_valid]
        latency = latency_summary(d.latency_ms for _, d in results if d.status is not None)
        accepted = sum(1 for d in valid if d.accepted)
        rows.append(
            {
                "phase": phase.kind,
                "sent": len(results),
                "valid": len(valid),
                "accepted": accepted,
                "acceptance_rate": accepted / len(valid) if valid else 0.0,
                "invalid_rejected": sum(1 for is_valid, d in results if not is_valid and not d.accepted),
                "errors": dict(Counter(d.error_category for d in valid if d.error_category)),
                "latency_ms": to_jsonable(latency),
            }
        )
    return rows


def _delivery_table(rows: Sequence[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("phase", "accepted", "rate", "latency p50/p95/p99/max ms", "errors", "invalid refused"):
        table.add_column(column, justify="left" if column in ("phase", "errors") else "right")
    for row in rows:
        lat = row["latency_ms"]
        errors = ", ".join(f"{k} {v}" for k, v in row["errors"].items()) or "-"
        table.add_row(
            str(row["phase"]),
            f"{row['accepted']}/{row['valid']}",
            f"{100 * row['acceptance_rate']:.1f}%",
            " / ".join(f"{lat[k]:.0f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
            errors,
            str(row["invalid_rejected"]) if row["sent"] > row["valid"] else "-",
        )
    return table


def generate_command(
    *,
    dry_run: bool = typer.Option(False, "--dry-run", help="send nothing: write the payloads (JSONL) and distribution"),
    out_dir: Path | None = OutDir,
    json_output: bool = JsonFlag,
    log_level: str = LogLevel,
    loaded: LoadedConfig,
) -> None:
    """Build a run's records and payloads; deliver them (recorded in the run store), or with --dry-run only write them.

    Examples:

      bonzo-bulk generate --dry-run --config tests/configs/monitorbase_test_config.yaml

      bonzo-bulk generate --test-records 50 --seed 7 --dry-run --out /tmp/plan

      bonzo-bulk generate --config tests/configs/monitorbase_test_config.yaml   # sends (sandbox without credentials)
    """
    from bonzo_bulk._http import run_async
    from bonzo_bulk.generate import distribution, write_plan
    from bonzo_bulk.plan import plan_run

    setup_logging(log_level)
    console.print(loaded_summary(loaded))
    with handle_errors():
        plan = plan_run(loaded)
        if dry_run:
            files = write_plan(plan, out_dir or Path(loaded.config.reports_dir) / "generated")
            spread = distribution(plan)
            if json_output:
                out.print_json(
                    json.dumps(
                        {"payloads": str(files.payloads), "distribution_file": str(files.distribution), **spread}
                    )
                )
            else:
                out.print(_distribution_table(spread))
                out.print(f"dry run: nothing sent. {files.records} payloads: {files.payloads}")
                out.print(f"distribution: {files.distribution}")
            raise typer.Exit(EXIT_OK)
        with RichProgress(show=is_interactive() and not json_output) as progress:
            sent = run_async(_send(plan, progress))
    rows = _delivery_rows(plan, sent)
    wanted = loaded.config.thresholds.delivery_rate
    failed = any(r["acceptance_rate"] < wanted for r in rows if r["valid"])
    if json_output:
        out.print_json(json.dumps({"run_id": sent.run_id, "target": sent.target, "phases": rows}))
    else:
        out.print(_delivery_table(rows, f"Delivery of run {sent.run_id} ({sent.target})"))
        verdict = "[bold red]below[/]" if failed else "[green]meets[/]"
        out.print(f"acceptance {verdict} the delivery threshold ({100 * wanted:.0f}%)")
        out.print(f"recorded in the run store; remove with: bonzo-bulk cleanup --run {sent.run_id} --yes")
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _distribution_table(spread: dict[str, Any]) -> Table:
    table = Table(title=f"Planned run {spread['run_id']} ({spread['distribution']})", title_justify="left")
    for column in ("phase", "user_id", "email", "team_id", "records"):
        table.add_column(column, justify="right" if column in ("user_id", "team_id", "records") else "left")
    for kind, phase in spread["phases"].items():
        for user in phase["per_user"]:
            table.add_row(kind, str(user["user_id"]), user["email"], str(user["team_id"]), str(user["records"]))
        if phase["invalid_records"]:
            table.add_row(kind, "", "[dim]invalid on purpose[/]", "", str(phase["invalid_records"]))
    return table


def _integration_config(arguments: dict[str, Any]) -> Path | None:
    """``health --integration NAME`` without ``--config``: ``tests/configs/NAME_test_config.yaml``."""
    integration = arguments.get("integration")
    if integration is None:
        return None
    path = Path("tests/configs") / f"{integration}_test_config.yaml"
    if not path.is_file():
        known = sorted(p.name.removesuffix("_test_config.yaml") for p in path.parent.glob("*_test_config.yaml"))
        raise ConfigError(
            f"--integration {integration}: no config {path}; known: {', '.join(known) or 'none'} "
            "(or pass --config FILE)",
            key="--integration",
        )
    return path


def health_command(
    *,
    integration: str | None = typer.Option(
        None, "--integration", help="integration to check; selects tests/configs/<name>_test_config.yaml"
    ),
    json_output: bool = JsonFlag,
    log_level: str = LogLevel,
    loaded: LoadedConfig,
) -> None:
    """Standalone health check for cron or CI: the whole run, a JSON health report and a one-screen verdict.

    Exit 0 healthy, 1 a threshold failed (or an enforced regression), 2 bad usage or config.

    Examples:

      bonzo-bulk health --integration monitorbase

      bonzo-bulk health --integration monitorbase --config tests/configs/monitorbase_test_config.yaml --json
    """
    from bonzo_bulk.publishing import Publisher
    from bonzo_bulk.report.summary import summary_document, summary_text
    from bonzo_bulk.run import run_bulk

    setup_logging(log_level)
    with handle_errors():
        if integration is not None and loaded.config.integration_type != integration:
            raise ConfigError(
                f"--integration {integration} but the config says integration_type "
                f"{loaded.config.integration_type!r}; drop one, or pass the {integration} config",
                key="--integration",
            )
        console.print(loaded_summary(loaded))
        publisher = Publisher(loaded)
        with RichProgress(show=is_interactive() and not json_output) as progress:
            result = run_bulk(loaded, progress=progress, subscribers=[publisher])
    outcome = publisher.result()
    published = outcome.published
    regressions = published.regressions if published else ()
    if json_output:
        document = summary_document(result, regressions=regressions, store=published.store if published else None)
        if published:
            document["health_report"] = str(published.summary_json)
            document["dashboard"] = str(published.dashboard)
        out.print_json(summary_text(document, indent=None))
    else:
        print_result(result, limit=20)
        if published:
            print_published(published)
        healthy = "[bold green]HEALTHY[/]" if not outcome.verdict.failed else "[bold red]UNHEALTHY[/]"
        print_verdict(result, outcome.verdict, subject=f"{result.integration} {healthy} — run")
    if outcome.report_error is not None:
        console.print(f"[bold red]error:[/] {escape(str(outcome.report_error))}")
    raise typer.Exit(outcome.exit_code)


def validate_webhook_command(
    *,
    url: str | None = typer.Option(None, "--url", help="probe this URL instead of the config's webhook(s)"),
    attempts: int = typer.Option(3, "--attempts", min=1, max=50, help="probes per method (HEAD, GET, OPTIONS)"),
    send: int = typer.Option(0, "--send", min=0, max=100_000, help="then deliver N test records (creates data)"),
    json_output: bool = JsonFlag,
    log_level: str = LogLevel,
    loaded: LoadedConfig,
) -> None:
    """Probe a webhook without creating data (reachability, TLS, methods, latency); --send N also delivers N records.

    Records sent with --send are real test records, recorded in the run store (clean them with
    `bonzo-bulk cleanup --run ID --yes`).

    Examples:

      bonzo-bulk validate-webhook

      bonzo-bulk validate-webhook --send 50 --json
    """
    from bonzo_bulk._http import make_session, run_async
    from bonzo_bulk.delivery import probe
    from bonzo_bulk.plan import plan_run
    from bonzo_bulk.target import Endpoints, open_endpoints

    setup_logging(log_level)
    sized = _shrunk(loaded, max(1, send))

    async def work(progress: Progress) -> tuple[list[tuple[str, ProbeResult]], RunPlan, Sent | None]:
        plan = plan_run(sized, phases=("primary",) if url else ("primary", "control"))
        timeout = loaded.config.webhook_settings.timeout
        async with make_session(limit=4, timeout=timeout) as session, contextlib.AsyncExitStack() as stack:
            if url is not None:
                endpoints = Endpoints(
                    target=loaded.target, hook_url=url, control_hook_url=None, api_base_url="", api_key=""
                )
            else:
                endpoints = await stack.enter_async_context(open_endpoints(plan, session))
                console.print(_target_line(endpoints.target, endpoints.where))
            hooks = [("primary" if url is None else "webhook", endpoints.hook_url)]
            if endpoints.control_hook_url and plan.phase("control"):
                hooks.append(("control", endpoints.control_hook_url))
            probes = [(n, await probe(u, attempts=attempts, timeout=timeout, session=session)) for n, u in hooks]
            sent = await _send(plan, progress, endpoints) if send else None
        return probes, plan, sent

    with handle_errors(), RichProgress(show=is_interactive() and not json_output) as progress:
        probes, plan, sent = run_async(work(progress))
    rows = _delivery_rows(plan, sent) if sent else []
    unhealthy = [n for n, p in probes if not p.reachable or p.tls_ok is False]
    wanted = loaded.config.thresholds.delivery_rate
    failed = bool(unhealthy) or any(r["acceptance_rate"] < wanted for r in rows if r["valid"])
    if json_output:
        document: dict[str, Any] = {"probes": {n: to_jsonable(p) for n, p in probes}, "passed": not failed}
        if sent:
            document.update(run_id=sent.run_id, target=sent.target, delivery=rows)
        out.print_json(redact(json.dumps(document)))
    else:
        out.print(_probe_table(probes))
        if sent:
            out.print(_delivery_table(rows, f"Sent {send} record(s) per hook, run {sent.run_id}"))
            out.print(f"remove them with: bonzo-bulk cleanup --run {sent.run_id} --yes")
        out.print("webhook: [bold red]FAILED[/]" if failed else "webhook: [bold green]OK[/]")
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _probe_table(probes: Sequence[tuple[str, ProbeResult]]) -> Table:
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


def cleanup_command(
    *,
    run_id: str | None = typer.Option(None, "--run", help="remove exactly what this run created ('latest' works)"),
    pattern: str | None = typer.Option(None, "--pattern", help="first-name glob, e.g. 'TestRecord_MonitorBase_*'"),
    all_test_data: bool = typer.Option(False, "--all-test-data", help="every test record named like this config's"),
    yes: bool = typer.Option(False, "--yes", "-y", help="really delete (without it: a dry run listing what would go)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="only list what would be deleted (the default)"),
    wait: float = typer.Option(
        0.0, "--wait", min=0.0, max=86_400.0, help="with --run: scan again for up to SECONDS while records are missing"
    ),
    json_output: bool = JsonFlag,
    log_level: str = LogLevel,
    loaded: LoadedConfig,
) -> None:
    """Remove test prospects: by run, by first-name pattern, or all test data. Dry run unless --yes.

    Only prospects that match the selection AND carry the test markers (an email on the test domain,
    and the run id in custom_1/tags/email or the bonzo-bulk tag) can be deleted; each deletion is
    checked with a GET. Where the API refuses deletes, the list to remove by hand is written under
    <reports>/cleanup/.

    Examples:

      bonzo-bulk cleanup --pattern "TestRecord_MonitorBase_*"

      bonzo-bulk cleanup --run RUN_ID --yes   # RUN_ID: one from `bonzo-bulk history`

      bonzo-bulk cleanup --all-test-data --yes --json
    """
    from bonzo_bulk._http import run_async
    from bonzo_bulk.cleanup import cleanup, report_document
    from bonzo_bulk.cleanup_view import print_cleanup

    setup_logging(log_level)
    if yes and dry_run:
        console.print("[bold red]error:[/] --yes and --dry-run contradict each other; pick one")
        raise typer.Exit(EXIT_USAGE)
    with handle_errors(), RichProgress(show=is_interactive() and not json_output) as progress:
        report = run_async(
            cleanup(
                loaded,
                run_id=run_id,
                pattern=pattern,
                all_test_data=all_test_data,
                dry_run=not yes,
                wait=wait,
                progress=progress,
                on_endpoints=lambda e: console.print(_target_line(e.target, e.where)),
            )
        )
    if json_output:
        out.print_json(redact(json.dumps(report_document(report))))
    else:
        print_cleanup(report)
    raise typer.Exit(EXIT_OK if report.passed else EXIT_FAILED)


def prospects_command(
    *,
    user: str | None = typer.Option(None, "--user", help="user id or email to act as (default: every test user)"),
    search: str | None = typer.Option(None, "--search", help="Bonzo's search (default: this config's name prefix)"),
    everything: bool = typer.Option(False, "--everything", help="no search: list the users' whole prospect lists"),
    limit: int = typer.Option(100, "--limit", min=1, help="list at most this many per user"),
    json_output: bool = JsonFlag,
    loaded: LoadedConfig,
) -> None:
    """List test users' prospects On-Behalf-Of through the Bonzo API, marking which are bonzo-bulk test records.

    Examples:

      bonzo-bulk prospects --user 65013

      bonzo-bulk prospects --search RUN_ID --json   # RUN_ID: one from `bonzo-bulk history`
    """
    from bonzo_bulk._http import make_session, run_async
    from bonzo_bulk.bonzo import BonzoClient
    from bonzo_bulk.cleanup import judge, selector_for_all
    from bonzo_bulk.plan import plan_run
    from bonzo_bulk.target import open_endpoints

    config = loaded.config
    selector = selector_for_all(config.test_data_settings)
    term = None if everything else (search or selector.search)
    acting: list[int | str] = [user] if user else [u.user_id for u in loaded.users]

    async def work() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        async with (
            make_session(limit=4, timeout=config.api_settings.timeout) as session,
            open_endpoints(plan_run(loaded, phases=()), session) as endpoints,
        ):
            console.print(_target_line(endpoints.target, endpoints.where))
            async with BonzoClient(
                    base_url=endpoints.api_base_url, api_key=endpoints.api_key, settings=config.api_settings,
                    session=session,
                ) as client:  # fmt: skip
                for who in acting:
                    count = 0
                    async for p in client.iter_prospects(on_behalf_of=who, search=term):
                        verdict = judge(p, who, selector)
                        found.append(
                            {
                                "id": p.get("id"),
                                "acting_as": who,
                                "first_name": p.get("first_name"),
                                "last_name": p.get("last_name"),
                                "email": p.get("email"),
                                "source": p.get("source"),
                                "test_record": bool(verdict and verdict.deletable),
                                "why": verdict.reason if verdict else "not named like a test record",
                            }
                        )
                        count += 1
                        if count >= limit:
                            break
        return found

    with handle_errors():
        rows = run_async(work())
    if json_output:
        out.print_json(redact(json.dumps(rows)))
        return
    table = Table(title=f"Prospects (search {term!r})", title_justify="left")
    for column in ("id", "as", "first name", "last name", "email", "source", "test record"):
        table.add_column(column, overflow="fold")
    for row in rows:
        mark = "[green]yes[/]" if row["test_record"] else f"[dim]no: {row['why']}[/]"
        table.add_row(
            *(str(row[k] or "") for k in ("id", "acting_as", "first_name", "last_name", "email", "source")), mark
        )
    out.print(table)
    out.print(f"{len(rows)} prospect(s), {sum(r['test_record'] for r in rows)} test record(s)")


def records_command(*, json_output: bool = JsonFlag, loaded: LoadedConfig) -> None:
    """Print the test records a run would send (names, emails, owners), without sending or writing anything.

    Examples:

      bonzo-bulk records --test-records 6 --seed 1

      bonzo-bulk records --json > records.jsonl
    """
    from bonzo_bulk.plan import plan_run

    with handle_errors():
        plan = plan_run(loaded)
    if json_output:
        for r in plan.records:
            line = {"phase": r.phase, "name": r.name, "expected_user_id": r.expected_user.user_id, "payload": r.payload}
            out.print(redact(json.dumps(line)), soft_wrap=True, highlight=False, markup=False)
        return
    table = Table(title=f"Records of a planned run {plan.run_id}", title_justify="left")
    for column in ("name", "email", "phone", "owner", "user_id", "team_id", "invalid case"):
        table.add_column(column, overflow="fold")
    for r in plan.records:
        user = r.expected_user
        table.add_row(r.name, r.email, r.phone, user.email, str(user.user_id), str(user.team_id), r.invalid_case or "")
    out.print(table)


COMMANDS: dict[str, Callable[..., None]] = {
    "generate": config_options(generate_command),
    "health": config_options(health_command, choose_config=_integration_config),
    "validate-webhook": config_options(validate_webhook_command),
    "cleanup": config_options(cleanup_command),
    "prospects": config_options(prospects_command),
    "records": config_options(records_command),
}


def register(app: typer.Typer) -> None:
    """Add the tool commands to the ``bonzo-bulk`` app."""
    for name, command in COMMANDS.items():
        app.command(name)(command)


def script(name: str) -> None:
    """Run one command as a standalone program (``scripts/*.py``), with its own ``--help``."""
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command(name)(COMMANDS[name])
    single()
