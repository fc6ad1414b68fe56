"""``bonzo-bulk monitor run | install | status``: scheduled monitoring (the logic is :mod:`bonzo_bulk.monitor`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bonzo_bulk.cli.exits import handle_errors
from bonzo_bulk.cli.options import ReportsDir, StoreUrl, config_options, log_level_option
from bonzo_bulk.config.options import DEFAULT_CONFIG
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.report.terminal import console, out
from bonzo_bulk.secrets import redact

if TYPE_CHECKING:
    from bonzo_bulk.config.loader import LoadedConfig
    from bonzo_bulk.monitor.install import Backend
    from bonzo_bulk.problems.track import RunProblems

monitor_app = typer.Typer(
    help="Scheduled monitoring: one bounded run per tick of cron / systemd / GitHub / Kubernetes, alerts via apprise.",
    no_args_is_help=True,
)


@monitor_app.command("run")
@config_options
def run_command(
    *,
    fail_on_regression: bool = typer.Option(
        False, "--fail-on-regression", help="exit 1 when the run regressed (else a regression is 'degraded', exit 0)"
    ),
    json_output: bool = typer.Option(False, "--json", help="print the monitor run as JSON"),
    log_level: str = log_level_option(),
    loaded: LoadedConfig,
) -> None:
    """One monitor run: the bulk test within monitor.max_duration, the alert policy, notifications, pings.

    Exit 0 healthy or degraded, 1 failed, 2 bad usage or config, 3 the run could not finish, 75 skipped
    because the previous run still holds the lock. Notification URLs come from $BONZO_BULK_NOTIFY_URLS
    (apprise URLs), the dead-man's-switch URL from $BONZO_BULK_PING_URL. A monitor never tests the sandbox
    by accident: without TEST_HOOK_URL and SUPERUSER_API_KEY it exits 2 unless --target sandbox says so.

    Examples:

      bonzo-bulk monitor run --config tests/configs/monitorbase_test_config.yaml --target live

      bonzo-bulk monitor run --target sandbox --test-records 5 --faults tests/configs/faults/broken_integration.yaml
    """
    from bonzo_bulk.cli.terminal import setup_logging
    from bonzo_bulk.models import to_jsonable
    from bonzo_bulk.monitor.message import status_line
    from bonzo_bulk.monitor.runner import monitor_run
    from bonzo_bulk.report.rows import by_check, failure_rows, fixes
    from bonzo_bulk.report.terminal import print_result

    setup_logging(log_level)
    with handle_errors():
        report = monitor_run(loaded, fail_on_regression=fail_on_regression)
    outcome = report.outcome
    if json_output:
        document = {
            "monitor": outcome.name,
            "run_id": outcome.run_id,
            "status": outcome.status,
            "exit_code": report.exit_code,
            "reason": report.decision.reason,
            "notices": list(report.notices),
            "problems": _problems_json(outcome.problems),
            "deliveries": to_jsonable(list(report.deliveries)),
            "regressions": [r.message for r in outcome.regressions],
            "near_limits": list(outcome.near_limits),
            "error": outcome.error,
            "dashboard": str(outcome.dashboard) if outcome.dashboard else None,
        }
        out.print_json(redact(json.dumps(document)))
        raise typer.Exit(report.exit_code)
    if outcome.result is not None and not outcome.result.passed:
        print_result(outcome.result, problems=outcome.problems)
    lines = [status_line(outcome, report.decision.reason)]
    if outcome.error:
        lines.append(f"  could not finish: {outcome.error}")
    if outcome.result is not None:
        rows, _ = failure_rows(outcome.result, limit=None, problems=outcome.problems)
        lines += [f"  diagnosis: {d.line()}" for d in by_check(rows)[:5]]
        lines += [f"  fix: {fix}" for fix in fixes(rows)]
    lines += [f"  regression: {r.message}" for r in outcome.regressions]
    lines += [f"  near its limit: {n}" for n in outcome.near_limits]
    for d in report.deliveries:
        lines.append(f"  {d.kind} -> {d.channel}: {'ok' if d.ok else 'FAILED ' + d.detail}")
    if outcome.dashboard is not None:
        lines.append(f"  dashboard: {outcome.dashboard}")
    for line in lines:
        out.print(redact(line), markup=False, highlight=False)
    raise typer.Exit(report.exit_code)


@monitor_app.command("install")
def install_command(
    cron: Annotated[bool, typer.Option("--cron", help="a crontab line")] = False,
    systemd: Annotated[bool, typer.Option("--systemd", help="a systemd service + timer")] = False,
    github: Annotated[bool, typer.Option("--github", help="a scheduled GitHub Actions workflow")] = False,
    k8s: Annotated[bool, typer.Option("--k8s", help="a Kubernetes CronJob (needs --image)")] = False,
    every: Annotated[str, typer.Option("--every", help="interval: 5m, 15m, 1h, 1d ...")] = "15m",
    config: Annotated[Path, typer.Option("--config", "-c", help="the monitor's YAML config")] = DEFAULT_CONFIG,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="folder to write to (default deploy/<backend>, or .github/workflows)")
    ] = None,
    image: Annotated[str | None, typer.Option("--image", help="container image for --k8s")] = None,
    action: Annotated[
        str, typer.Option("--action", help="the composite action a --github workflow uses")
    ] = "./.github/actions/bonzo-bulk",
    force: Annotated[bool, typer.Option("--force", help="replace existing, different files")] = False,
    serve: Annotated[
        bool, typer.Option("--serve", help="also run `bonzo-bulk serve` over the store (--systemd or --k8s)")
    ] = False,
) -> None:
    """Write the schedule file(s) that run `bonzo-bulk monitor run --target live` every INTERVAL, and print how to
    activate them.

    Examples:

      bonzo-bulk monitor install --systemd --every 15m --config tests/configs/monitorbase_test_config.yaml

      bonzo-bulk monitor install --github --every 30m

      bonzo-bulk monitor install --k8s --every 1h --image registry.example/bonzo-bulk:1.0

      bonzo-bulk monitor install --systemd --every 15m --serve
    """
    from bonzo_bulk.monitor.install import BACKENDS, install

    chosen: list[Backend] = [b for b, on in zip(BACKENDS, (cron, systemd, github, k8s), strict=True) if on]
    with handle_errors():
        if len(chosen) != 1:
            raise ConfigError(
                "say which scheduler with exactly one of --cron, --systemd, --github, --k8s"
                + (f" (got {', '.join('--' + c for c in chosen)})" if chosen else ""),
                key="--cron",
            )
        done = install(
            chosen[0],
            every=every,
            config=config,
            out_dir=out_dir,
            image=image,
            action=action,
            force=force,
            serve=serve,
        )
    for path in done.paths:
        out.print(f"wrote {path}", markup=False, highlight=False)
    out.print(f"activate: {done.activate}", markup=False, highlight=False)
    out.print(
        "target: live (the scheduled run needs TEST_HOOK_URL and SUPERUSER_API_KEY where it runs; without them "
        "it exits 2 and sends nothing)",
        markup=False,
        highlight=False,
    )


@monitor_app.command("status")
def status_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="the monitor's YAML config")] = DEFAULT_CONFIG,
    limit: Annotated[int, typer.Option("--limit", min=1, help="how many recent monitor runs to list")] = 10,
    store_url: StoreUrl = None,
    reports_dir: ReportsDir = None,
) -> None:
    """Show a monitor's alert state and its latest runs with what each sent (channels as redacted labels).

    Example:

      bonzo-bulk monitor status --config tests/configs/monitorbase_test_config.yaml
    """
    from bonzo_bulk.config.loader import load_config
    from bonzo_bulk.monitor.runner import monitor_status

    with handle_errors():
        name, state, runs = monitor_status(
            load_config(config, overrides={"store_url": store_url, "reports_dir": reports_dir}), limit=limit
        )
    if not runs:
        console.print(f"monitor {name}: no runs yet; `bonzo-bulk monitor run --config {config}` starts one")
        return
    down = "DOWN (alerted)" if state.alerted else "failing" if state.consecutive_failures else "up"
    out.print(
        f"monitor {name}: {down}; {state.consecutive_failures} failed run(s) in a row; "
        f"reminders sent {state.reminders_sent}; flapping {'yes' if state.flapping_notified else 'no'}",
        markup=False,
        highlight=False,
    )
    for run, sent in runs:
        line = (
            f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC  run {run.run_id or '-'}  {run.status}  exit {run.exit_code}"
            f"  {', '.join(run.notices) or 'no notice'}  ({redact(run.reason)})"
        )
        out.print(line, markup=False, highlight=False)
        for d in sent:
            result = "ok" if d.ok else f"failed: {redact(d.detail)}"
            out.print(f"    {d.kind} -> {d.channel}: {result}", markup=False, highlight=False)


def _problems_json(found: RunProblems | None) -> list[dict[str, object]] | None:
    """The run's problems as the monitor's JSON says them: id, title, what the run did to it, its state."""
    if found is None:
        return None
    return [
        {"id": t.problem.problem_id, "title": t.problem.title, "change": t.change, "state": t.state}
        for t in found.problems
    ]
