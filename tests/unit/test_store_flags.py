"""One way to name the run store (issue 25 item 9): every command that reads or writes the store takes
``--store-url`` and ``--reports-dir``, with the same help and the same meaning (``resolve_store``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.config.options import OPTIONS
from bonzo_bulk.config.store_location import DEFAULT_STORE_PATH, resolve_store, store_from_environment
from bonzo_bulk.sandbox import SandboxServer

runner = CliRunner(
    env={"COLUMNS": "200", "NO_COLOR": "1", "BONZO_BULK_STORE_URL": None, "BONZO_BULK_REPORTS_DIR": None}
)

STORE_COMMANDS = (
    "run",
    "health",
    "generate",
    "history",
    "report",
    "export",
    "baseline set",
    "baseline show",
    "prune",
    "cleanup",
    "problems",
    "problems show",
    "problems ack",
    "problems mute",
    "problems unmute",
    "problems resolve",
    "serve",
    "store migrate",
    "monitor run",
    "monitor status",
    "load",
    "stress",
    "calibrate",
)
"""Every command that reads or writes the run store (``store copy`` names two stores, with --from and --to)."""

HELP = {option.flag: option.help for option in OPTIONS if option.flag in ("--store-url", "--reports-dir")}


def _commands(group: TyperGroup, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every command and group of the app, by its full name (``baseline set``)."""
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        yield full, command
        if isinstance(command, TyperGroup):
            yield from _commands(command, f"{full} ")


def _root() -> TyperGroup:
    group = typer.main.get_group(app)
    assert isinstance(group, TyperGroup)
    return group


def _flags(command: Any) -> dict[str, TyperOption]:
    return {opt: p for p in command.params if isinstance(p, TyperOption) for opt in p.opts}


def test_every_store_command_takes_both_flags_with_the_same_help() -> None:
    commands = dict(_commands(_root()))
    assert set(STORE_COMMANDS) <= set(commands), set(STORE_COMMANDS) - set(commands)
    for name in STORE_COMMANDS:
        flags = _flags(commands[name])
        for flag, text in HELP.items():
            assert flag in flags, f"`bonzo-bulk {name}` lacks {flag}"
            assert flags[flag].help == text, f"`bonzo-bulk {name} {flag}`: {flags[flag].help!r}"


def test_no_command_takes_one_store_flag_without_the_other() -> None:
    for name, command in _commands(_root()):
        flags = _flags(command)
        named = {flag for flag in ("--store-url", "--store", "--reports-dir") if flag in flags}
        assert not named or {"--store-url", "--reports-dir"} <= named, f"`bonzo-bulk {name}` takes only {named}"
        if "--store" in flags:  # the older spelling stays an alias of --store-url
            assert flags["--store"] is flags["--store-url"], name


def test_the_rule() -> None:
    assert resolve_store("postgresql://ci@db/bonzo", "x", configured="c.sqlite3") == "postgresql://ci@db/bonzo"
    assert resolve_store(None, "x", configured="c.sqlite3") == Path("x/runs.sqlite3")
    assert resolve_store("", "", configured="c.sqlite3") == "c.sqlite3"
    assert resolve_store() == DEFAULT_STORE_PATH
    assert store_from_environment({}) is None
    assert store_from_environment({"BONZO_BULK_REPORTS_DIR": "r"}) == Path("r/runs.sqlite3")
    env = {"BONZO_BULK_REPORTS_DIR": "r", "BONZO_BULK_STORE_URL": "s.sqlite3"}
    assert store_from_environment(env) == "s.sqlite3"


def _config(tmp_path: Path, sandbox: SandboxServer, **overrides: Any) -> Path:
    data: dict[str, Any] = {
        "test_name": "store flags",
        "integration_type": "monitorbase",
        "test_records": 2,
        "control": False,
        "test_users": [{"name": "LO Flags", "email": "lo.flags@lender.test", "user_id": 97_101, "team_id": 97}],
        "reports_dir": str(tmp_path / "config-reports"),
        "sandbox": {"url": sandbox.url},
        **overrides,
    }
    path = tmp_path / "flags_config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _history(*flags: str) -> list[str]:
    listed = runner.invoke(app, ["history", "--json", *flags])
    assert listed.exit_code == 0, listed.output
    return [run["run_id"] for run in json.loads(listed.stdout)]


@pytest.mark.parametrize("file_store", [False, True], ids=["config-without-store", "config-names-another-store"])
def test_history_reports_dir_lists_the_run_that_run_reports_dir_made(
    file_store: bool, sandbox: SandboxServer, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "config-store.sqlite3"
    config = _config(tmp_path, sandbox, **({"store_url": str(elsewhere)} if file_store else {}))
    chosen = tmp_path / "chosen"
    ran = runner.invoke(app, ["run", "--config", str(config), "--reports-dir", str(chosen), "--cleanup", "keep"])
    assert ran.exit_code == 0, ran.output
    assert (chosen / "runs.sqlite3").is_file()
    assert not elsewhere.exists()  # --reports-dir named the store over the config's store_url
    ids = _history("--reports-dir", str(chosen))
    assert len(ids) == 1
    assert _history("--store-url", str(chosen / "runs.sqlite3")) == ids
    assert _history("--store", str(chosen / "runs.sqlite3")) == ids
    problems = runner.invoke(app, ["problems", "--json", "--reports-dir", str(chosen)])
    assert problems.exit_code == 0, problems.output


def test_store_url_wins_over_reports_dir(tmp_path: Path) -> None:
    named = tmp_path / "named.sqlite3"
    migrated = runner.invoke(app, ["store", "migrate", "--store-url", str(named), "--reports-dir", str(tmp_path / "r")])
    assert migrated.exit_code == 0, migrated.output
    assert named.is_file()
    assert not (tmp_path / "r").exists()


def test_prune_refuses_a_server_store_naming_the_flag(tmp_path: Path) -> None:
    refused = runner.invoke(app, ["prune", "--store-url", "postgresql://ci@127.0.0.1:1/bonzo"])
    assert refused.exit_code == 2, refused.output
    assert "--store-url" in refused.output
    assert "SQLite" in refused.output
