"""``bonzo-bulk problems [ack | mute | unmute | resolve | show]``: failures tracked across runs (the logic is
:mod:`bonzo_bulk.problems.manage`)."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bonzo_bulk.cli.exits import handle_errors
from bonzo_bulk.cli.options import ReportsDir, StoreUrl, store_for
from bonzo_bulk.report.terminal import out
from bonzo_bulk.secrets import redact

if TYPE_CHECKING:
    from rich.table import Table

    from bonzo_bulk.problems.manage import Listed, Shown
    from bonzo_bulk.store.rows import ProblemRow

problems_app = typer.Typer(
    help="Failures tracked across runs: list them, show one, acknowledge, mute, unmute or resolve it.",
    invoke_without_command=True,
)

Id = Annotated[str, typer.Argument(metavar="ID", help="a problem id from `bonzo-bulk problems` (or 4+ of its digits)")]
Config = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="read the run store this config names (unless --store-url or --reports-dir)"),
]
By = Annotated[str | None, typer.Option("--by", help="who does it (default: your login name)")]


def _store(config: Path | None, store: str | None, reports_dir: str | None) -> str | Path:
    """``--store-url``, else ``--reports-dir``'s, else ``--config``'s store (its file, then the environment)."""
    if config is None or store or reports_dir:
        return store_for(store, reports_dir)
    from bonzo_bulk.config.loader import load_config
    from bonzo_bulk.target.endpoints import store_location_for

    return store_location_for(load_config(config))


def _now() -> datetime:
    return datetime.now(UTC)


def _by(by: str | None) -> str:
    return by or getpass.getuser()


@problems_app.callback()
def list_command(
    ctx: typer.Context,
    include_all: Annotated[bool, typer.Option("--all", help="resolved ones too")] = False,
    integration: Annotated[str | None, typer.Option("--integration", help="only this integration's")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    config: Config = None,
    store: StoreUrl = None,
    reports_dir: ReportsDir = None,
) -> None:
    """List the open problems (acknowledged and muted ones too; --all: resolved ones as well), latest first.

    Examples:

      bonzo-bulk problems

      bonzo-bulk problems --all --integration monitorbase --json
    """
    if ctx.invoked_subcommand is not None:
        return
    from bonzo_bulk.problems.manage import list_problems

    with handle_errors():
        listed = list_problems(
            _store(config, store, reports_dir), include_all=include_all, integration=integration, now=_now()
        )
    if json_output:
        out.print_json(redact(json.dumps([_row_json(item.problem, item.state) for item in listed])))
    elif not listed:
        out.print("no open problems" + ("" if include_all else " (--all lists resolved ones too)"))
    else:
        out.print(_table(listed))


@problems_app.command("show")
def show_command(problem_id: Id, config: Config = None, store: StoreUrl = None, reports_dir: ReportsDir = None) -> None:
    """Show one problem: its state, the runs it appeared in with sample records, its history.

    Example:

      bonzo-bulk problems show ID   # ID: one from `bonzo-bulk problems`
    """
    from bonzo_bulk.problems.manage import show

    with handle_errors():
        shown = show(_store(config, store, reports_dir), problem_id, now=_now())
    for line in _shown_lines(shown):
        out.print(redact(line), markup=False, highlight=False)


@problems_app.command("ack")
def ack_command(
    problem_id: Id,
    note: Annotated[str, typer.Option("--note", help="what is known, e.g. 'Bonzo support ticket 4711'")],
    until: Annotated[str | None, typer.Option("--until", help="a span (7d) or a date; default: until resolved")] = None,
    by: By = None,
    config: Config = None,
    store: StoreUrl = None,
    reports_dir: ReportsDir = None,
) -> None:
    """Acknowledge a problem: it stops paging (until --until, or until it is resolved) and reports say so.

    Example:

      bonzo-bulk problems ack ID --note "Bonzo support is on it" --until 7d
    """
    from bonzo_bulk.problems.manage import ack

    with handle_errors():
        problem = ack(_store(config, store, reports_dir), problem_id, by=_by(by), note=note, until=until, now=_now())
    lapse = f" until {problem.ack_until:%Y-%m-%d %H:%M} UTC" if problem.ack_until else " until it is resolved"
    out.print(redact(f"acknowledged {problem.problem_id}{lapse}: {problem.title}"), markup=False, highlight=False)


@problems_app.command("mute")
def mute_command(
    problem_id: Id,
    span: Annotated[str, typer.Option("--for", help="how long: 30m, 24h, 7d, 2w")],
    by: By = None,
    config: Config = None,
    store: StoreUrl = None,
    reports_dir: ReportsDir = None,
) -> None:
    """Mute a problem for a while: nothing about it is sent until then.

    Example:

      bonzo-bulk problems mute ID --for 24h
    """
    from bonzo_bulk.problems.manage import mute

    with handle_errors():
        problem = mute(_store(config, store, reports_dir), problem_id, span=span, by=_by(by), now=_now())
    assert problem.muted_until is not None
    text = f"muted {problem.problem_id} until {problem.muted_until:%Y-%m-%d %H:%M} UTC: {problem.title}"
    out.print(redact(text), markup=False, highlight=False)


@problems_app.command("unmute")
def unmute_command(
    problem_id: Id, by: By = None, config: Config = None, store: StoreUrl = None, reports_dir: ReportsDir = None
) -> None:
    """Lift a problem's mute now.

    Example:

      bonzo-bulk problems unmute ID
    """
    from bonzo_bulk.problems.manage import unmute

    with handle_errors():
        problem = unmute(_store(config, store, reports_dir), problem_id, by=_by(by), now=_now())
    out.print(redact(f"unmuted {problem.problem_id}: {problem.title}"), markup=False, highlight=False)


@problems_app.command("resolve")
def resolve_command(
    problem_id: Id, by: By = None, config: Config = None, store: StoreUrl = None, reports_dir: ReportsDir = None
) -> None:
    """Mark a problem fixed, on your word; a run that shows it again reopens it.

    Example:

      bonzo-bulk problems resolve ID
    """
    from bonzo_bulk.problems.manage import resolve

    with handle_errors():
        problem = resolve(_store(config, store, reports_dir), problem_id, by=_by(by), now=_now())
    out.print(redact(f"resolved {problem.problem_id}: {problem.title}"), markup=False, highlight=False)


def _row_json(problem: ProblemRow, state: str) -> dict[str, object]:
    return {
        "id": problem.problem_id,
        "title": problem.title,
        "state": state,
        "integration": problem.integration,
        "target": problem.target,
        "phase": problem.phase,
        "check": problem.check,
        "cause": problem.cause,
        "first_seen_at": problem.first_seen_at.isoformat(),
        "last_seen_at": problem.last_seen_at.isoformat(),
        "first_run_id": problem.first_run_id,
        "last_run_id": problem.last_run_id,
        "runs": problem.runs,
        "records_affected": problem.records_affected,
        "last_failed": problem.last_failed,
        "last_judged": problem.last_judged,
        "acknowledged_by": problem.ack_by,
        "note": problem.ack_note,
        "acknowledged_until": problem.ack_until.isoformat() if problem.ack_until else None,
        "muted_until": problem.muted_until.isoformat() if problem.muted_until else None,
        "resolved_by": problem.resolved_by,
        "fix": problem.fix,
    }


def _table(listed: list[Listed]) -> Table:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from bonzo_bulk.models import percent

    table = Table(title="bonzo-bulk problems (latest first)", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("id", "state", "problem", "last seen", "runs", "records", "last run"):
        table.add_column(column, overflow="fold", justify="right" if column in ("runs", "records") else "left")
    for item in listed:
        p = item.problem
        table.add_row(
            p.problem_id,
            item.state,
            escape(redact(p.title)),
            f"{p.last_seen_at:%m-%d %H:%M}",
            str(p.runs),
            str(p.records_affected),
            f"{p.last_failed}/{p.last_judged} ({percent(p.last_share)})",
        )
    return table


def _shown_lines(shown: Shown) -> list[str]:
    p = shown.problem
    lines = [
        f"problem {p.problem_id}: {p.title}",
        f"  state: {shown.state}" + (f" (resolved by {p.resolved_by})" if p.resolved_by else ""),
        f"  signature: {p.integration} / {p.target} / {p.phase} / {p.check} / {p.cause}",
        f"  cause: {p.detail}",
        f"  first seen {p.first_seen_at:%Y-%m-%d %H:%M:%S} UTC in run {p.first_run_id}; last seen "
        f"{p.last_seen_at:%Y-%m-%d %H:%M:%S} UTC in run {p.last_run_id}",
        f"  in {p.runs} run(s), {p.records_affected} records in all; peak share {100 * p.peak_share:.1f}%",
    ]
    if p.ack_by:
        until = f" until {p.ack_until:%Y-%m-%d %H:%M} UTC" if p.ack_until else ""
        lines.append(f"  acknowledged by {p.ack_by}: {p.ack_note}{until}")
    if p.muted_until:
        lines.append(f"  muted until {p.muted_until:%Y-%m-%d %H:%M} UTC")
    if p.fix:
        lines.append(f"  fix: {p.fix}")
    lines.append("  runs (newest first):")
    lines += [
        f"    {s.seen_at:%Y-%m-%d %H:%M:%S} UTC  {s.run_id}  {s.failed}/{s.judged} records  e.g. {', '.join(s.samples)}"
        for s in shown.seen
    ]
    lines.append("  history (newest first):")
    lines += [f"    {e.at:%Y-%m-%d %H:%M:%S} UTC  {e.event} by {e.actor}  {e.detail}".rstrip() for e in shown.events]
    return lines
