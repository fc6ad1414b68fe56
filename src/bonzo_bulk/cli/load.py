"""``bonzo-bulk load``, ``stress`` and ``load-worker``: flags and output over :func:`bonzo_bulk.load.runner.run_load`.

Nothing here imports Locust: the senders run in child processes (:mod:`bonzo_bulk.load.child`).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from bonzo_bulk.cli.exits import EXIT_USAGE, handle_errors
from bonzo_bulk.cli.options import config_options, json_option, log_level_option
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.report.terminal import console, out

if TYPE_CHECKING:
    from bonzo_bulk.config.loader import LoadedConfig
    from bonzo_bulk.load.budget import Budget
    from bonzo_bulk.load.child import Distribution
    from bonzo_bulk.load.outcome import Kind
    from bonzo_bulk.load.scenario import LoadScenario, StressScenario

ScenarioFlag = typer.Option(None, "--scenario", "-s", help="scenario YAML (stages, thresholds, senders)")
ProcessesFlag = typer.Option(
    None, "--processes", help="Locust processes on this machine, or auto (default): as many as the peak rate needs"
)
MaxLeadsFlag = typer.Option(
    None,
    "--max-leads",
    help="send at most this many leads in all (default 10000; a stress run keeps the steps that fit)",
)
MaxMinutesFlag = typer.Option(
    None, "--max-minutes", help="take at most this many minutes in all, settling included (default 5)"
)
MasterFlag = typer.Option(False, "--master", help="run a Locust master and wait for `bonzo-bulk load-worker`s")
ExpectFlag = typer.Option(1, "--expect-workers", min=1, help="with --master: how many worker processes to wait for")
BindFlag = typer.Option("127.0.0.1", "--master-bind-host", help="with --master: interface workers connect to")
PortFlag = typer.Option(0, "--master-port", min=0, max=65535, help="with --master: the port workers connect to")
OutFlag = typer.Option(None, "--out", help="dashboard HTML file (default <reports>/load/<run id>/dashboard.html)")
JSON_HELP = "print the load summary as JSON on stdout"


@dataclass(frozen=True)
class Senders:
    """Where the senders run and what the run may spend, as the flags say."""

    master: bool
    expect_workers: int
    host: str
    port: int
    max_leads: int | None
    max_minutes: float | None

    def budget(self, scenario: LoadScenario | StressScenario, loaded: LoadedConfig) -> tuple[Budget, Distribution]:
        """The run's budget within its cap, and the Locust processes or workers that send it."""
        from bonzo_bulk.load.budget import Cap, plan_budget
        from bonzo_bulk.load.child import Distribution

        if self.master and self.port == 0:
            raise ConfigError("--master needs a fixed --master-port that the workers can be told", key="--master-port")
        cap = Cap.of(self.max_leads, self.max_minutes)
        budget = plan_budget(scenario, loaded.config, cap, workers=self.expect_workers if self.master else None)
        distribution = Distribution(
            processes=budget.processes,
            master=self.master,
            expect_workers=self.expect_workers,
            bind_host=self.host,
            bind_port=self.port,
        )
        return budget, distribution


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False)


def _run(
    loaded: LoadedConfig,
    kind: Kind,
    scenario: LoadScenario | StressScenario,
    senders: Senders,
    json_output: bool,
    out_file: Path | None,
) -> None:
    from bonzo_bulk.engine.interrupts import cleanup_command
    from bonzo_bulk.load.runner import run_load

    with handle_errors():
        budget, distribution = senders.budget(scenario, loaded)
    with handle_errors():
        finished = run_load(
            loaded, kind=kind, scenario=scenario, budget=budget, distribution=distribution, say=_say, out=out_file
        )
    outcome, dashboard = finished.outcome, finished.dashboard
    if json_output:
        out.print_json(json.dumps({**finished.summary, "dashboard": str(dashboard)}))
    else:
        print_outcome(finished.summary)
        out.print(f"Dashboard: {dashboard}")
    console.print(
        f"Remove the leads of run {outcome.run_id} with: {cleanup_command(loaded, outcome.run_id)}", markup=False
    )
    raise typer.Exit(outcome.exit_code)


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}" if isinstance(value, float) else str(value)


def print_outcome(summary: dict[str, Any]) -> None:
    """The terminal summary: one row per stage (or step), the accounting, the knee and the verdict."""
    from rich.table import Table

    table = Table(title=f"{summary['kind']} · {summary['scenario']} · run {summary['run_id']}", title_justify="left")
    for column in (
        "stage",
        "target/s",
        "achieved/s",
        "dropped",
        "errors",
        "hook p95 ms",
        "e2e p95 s",
        "lost",
        "misrouted",
    ):
        table.add_column(column, justify="right")
    for s in summary["stages"]:
        table.add_row(
            str(s["stage"]),
            _fmt(s["target_rate"]),
            _fmt(s["achieved_rate"]),
            str(s["dropped_arrivals"]),
            str(s["errors"]),
            _fmt(s["hook_p95_ms"], 0),
            _fmt(s["e2e_lag_p95_s"], 2),
            str(s["lost"]),
            str(s["misrouted"]),
        )
    out.print(table)
    a = summary["accounting"]
    out.print(
        f"planned {a['planned']} · sent {a['sent']} · dropped {a['dropped_arrivals']} · not sent {a['not_sent']} · "
        f"accepted {a['accepted']} · created {a['created']} · lost {a['lost']} · misrouted {a['misrouted']} · "
        f"duplicates {a['duplicates']}"
    )
    if summary["kind"] == "stress":
        for step in summary.get("steps", []):
            verdict = "[red]broken[/]: " + "; ".join(step["reasons"]) if step["broken"] else "[green]sustained[/]"
            out.print(f"  step {step['step']} at {step['rate']:g} leads/s: {verdict}")
        style = "bold red" if summary.get("knee_reached") and summary.get("knee_rate") is None else "bold"
        out.print(f"[{style}]{escape(summary['knee'])}[/]")
    sender_errors = summary["accounting"].get("sender_errors", 0)
    if sender_errors:
        out.print(
            f"[yellow]{sender_errors} sender error(s)[/]: our own sender's connections failed (not the system "
            "under load); they are not counted as its errors and never set the knee"
        )
    for verdict in summary["thresholds"]:
        if not verdict["passed"]:
            out.print(
                f"[bold red]threshold failed[/] {verdict['name']}: {verdict['actual']} "
                f"(wanted {verdict['comparison']} {verdict['threshold']})"
            )
    for note in summary["notes"]:
        out.print(f"[dim]{note}[/]")
    verdict_text = "[bold green]PASSED[/]" if summary["passed"] else "[bold red]FAILED[/]"
    out.print(f"{summary['kind'].capitalize()} run {summary['run_id']} ({summary['target']}): {verdict_text}")


@config_options
def load_command(
    *,
    scenario_file: Path | None = ScenarioFlag,
    processes: str | None = ProcessesFlag,
    max_leads: int | None = MaxLeadsFlag,
    max_minutes: float | None = MaxMinutesFlag,
    master: bool = MasterFlag,
    expect_workers: int = ExpectFlag,
    master_bind_host: str = BindFlag,
    master_port: int = PortFlag,
    json_output: bool = json_option(JSON_HELP),
    log_level: str = log_level_option(),
    out_file: Path | None = OutFlag,
    loaded: LoadedConfig,
) -> None:
    """Send leads at the scenario's arrival rates (Locust), watch them reach Bonzo, judge every one.

    Exit 0 when every threshold holds, 1 when one fails, 2 for a bad scenario (nothing sent).

    Examples:

      bonzo-bulk load --scenario tests/configs/load/smoke.yaml

      bonzo-bulk load --scenario tests/configs/load/smoke.yaml --processes 4 --json

      bonzo-bulk load --scenario tests/configs/load/smoke.yaml --master --expect-workers 2 --master-port 5557
    """
    from bonzo_bulk.cli.terminal import setup_logging
    from bonzo_bulk.load.scenario import load_scenario

    setup_logging(log_level)
    with handle_errors():
        if scenario_file is None:
            raise ConfigError("--scenario is required: a YAML file of stages (see docs/load.md)", key="--scenario")
        scenario = load_scenario(scenario_file, overrides={"processes": processes})
    senders = Senders(master, expect_workers, master_bind_host, master_port, max_leads, max_minutes)
    _run(loaded, "load", scenario, senders, json_output, out_file)


@config_options
def stress_command(
    *,
    scenario_file: Path | None = ScenarioFlag,
    start_rate: float | None = typer.Option(None, "--start-rate", help="leads/s of the first step"),
    max_rate: float | None = typer.Option(None, "--max-rate", help="leads/s of the last step at most"),
    step_factor: float | None = typer.Option(None, "--step-factor", help="each step's rate over the last (e.g. 1.25)"),
    step_duration: str | None = typer.Option(None, "--step-duration", help="how long each step runs (e.g. 20s)"),
    processes: str | None = ProcessesFlag,
    max_leads: int | None = MaxLeadsFlag,
    max_minutes: float | None = MaxMinutesFlag,
    master: bool = MasterFlag,
    expect_workers: int = ExpectFlag,
    master_bind_host: str = BindFlag,
    master_port: int = PortFlag,
    json_output: bool = json_option(JSON_HELP),
    log_level: str = log_level_option(),
    out_file: Path | None = OutFlag,
    loaded: LoadedConfig,
) -> None:
    """Raise the arrival rate step by step until the system breaks; report the capacity knee with evidence.

    Exit 0 when a knee (or no break up to --max-rate) was measured with every sustained lead accounted
    for, 1 when a sustained step lost, misrouted or duplicated leads (or the knee is under min_knee_rate),
    2 for a bad scenario.

    Examples:

      bonzo-bulk stress --start-rate 20 --max-rate 400 --step-duration 20s

      bonzo-bulk stress --scenario tests/configs/load/stress.yaml --json
    """
    from bonzo_bulk.cli.terminal import setup_logging
    from bonzo_bulk.load.scenario import stress_scenario

    setup_logging(log_level)
    overrides = {
        "start_rate": start_rate,
        "max_rate": max_rate,
        "step_factor": step_factor,
        "step_duration": step_duration,
        "processes": processes,
    }
    with handle_errors():
        scenario = stress_scenario(scenario_file, overrides=overrides)
    senders = Senders(master, expect_workers, master_bind_host, master_port, max_leads, max_minutes)
    _run(loaded, "stress", scenario, senders, json_output, out_file)


def load_worker_command(
    master_host: str = typer.Option(..., "--master-host", help="the machine running `bonzo-bulk load --master`"),
    master_port: int = typer.Option(5557, "--master-port", min=1, max=65535, help="its --master-port"),
    processes: int = typer.Option(1, "--processes", min=1, help="worker processes on this machine"),
) -> None:
    """Serve as Locust worker(s) of a `bonzo-bulk load --master` on another machine (the plan comes from it).

    Example:

      bonzo-bulk load-worker --master-host 10.0.0.5 --master-port 5557 --processes 4
    """
    from bonzo_bulk.load.child import worker_command

    command = worker_command(master_host, master_port, processes)
    console.print(f"Locust worker(s) for the master at {master_host}:{master_port} ({processes} process(es))")
    try:
        os.execv(sys.executable, command)  # noqa: S606 - our own interpreter running Locust
    except OSError as exc:
        console.print(f"[bold red]error:[/] cannot start Locust: {exc.strerror}")
        raise typer.Exit(EXIT_USAGE) from exc
