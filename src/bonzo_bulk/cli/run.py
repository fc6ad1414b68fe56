"""``bonzo-bulk run | health`` (a whole run) and ``generate | records`` (plan it, write it or only deliver it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from bonzo_bulk.cli.exits import EXIT_FAILED, EXIT_OK, handle_errors
from bonzo_bulk.cli.options import SELF_CONTAINED_HELP, config_options, json_option, log_level_option, with_config
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.report.terminal import console, out

if TYPE_CHECKING:
    from rich.table import Table

    from bonzo_bulk.config.loader import LoadedConfig
    from bonzo_bulk.models import RunResult
    from bonzo_bulk.report.publish import Outcome, Publisher

OutDir = typer.Option(None, "--out", help="folder for the dry-run files (default <reports>/generated)")


@config_options
def run_command(
    *,
    json_output: bool = json_option("print the run's JSON summary on stdout"),
    log_level: str = log_level_option(),
    fail_on_regression: bool = typer.Option(
        False, "--fail-on-regression", help="exit 1 when the run regressed against the baseline run"
    ),
    fail_on_new_problems_only: bool = typer.Option(
        False,
        "--fail-on-new-problems-only",
        help="for CI: failed checks exit 1 only when they show a new (or reopened) problem, not known ones",
    ),
    self_contained: bool = typer.Option(False, "--self-contained", help=SELF_CONTAINED_HELP),
    loaded: LoadedConfig,
) -> None:
    """Run one bulk test end to end: generate, deliver, settle, verify, report.

    Examples:

      bonzo-bulk run --config tests/configs/monitorbase_test_config.yaml

      bonzo-bulk run --test-records 500 --concurrency 32 --faults tests/configs/faults/wrong_owner.yaml

    Exit 0 passed, 1 failed (a threshold, or a regression with --fail-on-regression), 2 bad usage or config;
    the last line names the verdict, e.g. "FAILED (regression)".
    """
    from rich.markup import escape

    from bonzo_bulk.cli.terminal import setup_logging
    from bonzo_bulk.library import tracker_for
    from bonzo_bulk.report.publish import Publisher
    from bonzo_bulk.report.terminal import loaded_summary, print_published, print_result, print_verdict

    setup_logging(log_level)
    console.print(loaded_summary(loaded))
    tracker = tracker_for(loaded)
    publisher = Publisher(
        loaded,
        fail_on_regression=fail_on_regression,
        self_contained=self_contained,
        problems=tracker,
        fail_on_new_problems_only=fail_on_new_problems_only,
    )
    with handle_errors():
        result, outcome = _run_published(loaded, publisher, json_output=json_output)
    published = outcome.published
    if json_output:
        from bonzo_bulk.report.summary import summary_document, summary_text

        document = published.summary if published else summary_document(result)
        out.print_json(summary_text(document, indent=None))
    else:
        print_result(result, problems=tracker.found)
        if published:
            print_published(published)
    if outcome.report_error is not None:
        console.print(f"[bold red]error:[/] {escape(str(outcome.report_error))}")
    if not json_output:
        print_verdict(result, outcome)
    raise typer.Exit(outcome.exit_code)


def _run_published(loaded: LoadedConfig, publisher: Publisher, *, json_output: bool) -> tuple[RunResult, Outcome]:
    """A whole run with publishing subscribed (after the cleanup policy), progress bars on a terminal: what
    `run` and `health` both do."""
    from bonzo_bulk.cli.terminal import command_progress
    from bonzo_bulk.library import run_bulk

    with command_progress(json_output=json_output) as progress:
        result = run_bulk(loaded, progress=progress, subscribers=[publisher], problems=publisher.problems)
    return result, publisher.result()


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


@with_config(choose_config=_integration_config)
def health_command(
    *,
    integration: str | None = typer.Option(
        None, "--integration", help="integration to check; selects tests/configs/<name>_test_config.yaml"
    ),
    json_output: bool = json_option(),
    log_level: str = log_level_option(),
    fail_on_new_problems_only: bool = typer.Option(
        False, "--fail-on-new-problems-only", help="unhealthy (exit 1) only for a new or reopened problem"
    ),
    loaded: LoadedConfig,
) -> None:
    """Standalone health check for cron or CI: the whole run, a JSON health report and a one-screen verdict,
    each failure named as a new or known problem.

    Exit 0 healthy, 1 a threshold failed (or an enforced regression), 2 bad usage or config.

    Examples:

      bonzo-bulk health --integration monitorbase

      bonzo-bulk health --integration monitorbase --config tests/configs/monitorbase_test_config.yaml --json
    """
    from rich.markup import escape

    from bonzo_bulk.cli.terminal import setup_logging
    from bonzo_bulk.library import tracker_for
    from bonzo_bulk.report.publish import Publisher
    from bonzo_bulk.report.summary import summary_document, summary_text
    from bonzo_bulk.report.terminal import loaded_summary, print_published, print_result, print_verdict

    setup_logging(log_level)
    with handle_errors():
        if integration is not None and loaded.config.integration_type != integration:
            raise ConfigError(
                f"--integration {integration} but the config says integration_type "
                f"{loaded.config.integration_type!r}; drop one, or pass the {integration} config",
                key="--integration",
            )
        console.print(loaded_summary(loaded))
        tracker = tracker_for(loaded)
        publisher = Publisher(loaded, problems=tracker, fail_on_new_problems_only=fail_on_new_problems_only)
        result, outcome = _run_published(loaded, publisher, json_output=json_output)
    published = outcome.published
    if json_output:
        document = (
            {**published.summary, "health_report": str(published.summary_json), "dashboard": str(published.dashboard)}
            if published
            else summary_document(result)
        )
        out.print_json(summary_text(document, indent=None))
    else:
        print_result(result, limit=20, problems=tracker.found)
        if published:
            print_published(published)
    if outcome.report_error is not None:
        console.print(f"[bold red]error:[/] {escape(str(outcome.report_error))}")
    if not json_output:
        healthy = "[bold green]HEALTHY[/]" if not outcome.verdict.failed else "[bold red]UNHEALTHY[/]"
        print_verdict(result, outcome, subject=f"{result.integration} {healthy} — run")
    raise typer.Exit(outcome.exit_code)


@config_options
def generate_command(
    *,
    dry_run: bool = typer.Option(False, "--dry-run", help="send nothing: write the payloads (JSONL) and distribution"),
    out_dir: Path | None = OutDir,
    json_output: bool = json_option(),
    log_level: str = log_level_option(),
    loaded: LoadedConfig,
) -> None:
    """Build a run's records and payloads; deliver them (recorded in the run store), or with --dry-run only write them.

    Examples:

      bonzo-bulk generate --dry-run --config tests/configs/monitorbase_test_config.yaml

      bonzo-bulk generate --test-records 50 --seed 7 --dry-run --out /tmp/plan

      bonzo-bulk generate --config tests/configs/monitorbase_test_config.yaml   # sends (sandbox without credentials)
    """
    from bonzo_bulk._http import run_async
    from bonzo_bulk.cli.terminal import command_progress, delivery_table, print_target, setup_logging
    from bonzo_bulk.config.loader import writable_folder
    from bonzo_bulk.engine.deliver_only import send_plan
    from bonzo_bulk.plan.files import distribution, write_plan
    from bonzo_bulk.plan.planner import plan_run
    from bonzo_bulk.report.terminal import loaded_summary

    setup_logging(log_level)
    console.print(loaded_summary(loaded))
    with handle_errors():
        if dry_run and out_dir is not None and not writable_folder(out_dir):
            raise ConfigError(
                f"--out {str(out_dir)!r} cannot be written (not a folder, or no write permission); "
                "pick a writable folder for the dry-run files",
                key="--out",
            )
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
        with command_progress(json_output=json_output) as progress:
            sent = run_async(send_plan(plan, progress, on_target=print_target))
    failed = sent.below_threshold
    if json_output:
        out.print_json(json.dumps({"run_id": sent.run_id, "target": sent.target, "phases": sent.rows}))
    else:
        out.print(delivery_table(sent.rows, f"Delivery of run {sent.run_id} ({sent.target})"))
        verdict = "[bold red]below[/]" if failed else "[green]meets[/]"
        out.print(f"acceptance {verdict} the delivery threshold ({100 * loaded.config.thresholds.delivery_rate:.0f}%)")
        out.print(f"recorded in the run store; remove with: bonzo-bulk cleanup --run {sent.run_id} --yes")
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _distribution_table(spread: dict[str, Any]) -> Table:
    from rich.table import Table

    table = Table(title=f"Planned run {spread['run_id']} ({spread['distribution']})", title_justify="left")
    for column in ("phase", "user_id", "email", "team_id", "records"):
        table.add_column(column, justify="right" if column in ("user_id", "team_id", "records") else "left")
    for kind, phase in spread["phases"].items():
        for user in phase["per_user"]:
            table.add_row(kind, str(user["user_id"]), user["email"], str(user["team_id"]), str(user["records"]))
        if phase["invalid_records"]:
            table.add_row(kind, "", "[dim]invalid on purpose[/]", "", str(phase["invalid_records"]))
    return table


@config_options
def records_command(*, json_output: bool = json_option(), loaded: LoadedConfig) -> None:
    """Print the test records a run would send (names, emails, owners), without sending or writing anything.

    Examples:

      bonzo-bulk records --test-records 6 --seed 1

      bonzo-bulk records --json > records.jsonl
    """
    from rich.table import Table

    from bonzo_bulk.plan.planner import plan_run
    from bonzo_bulk.secrets import redact

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
