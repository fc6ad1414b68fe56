"""``bonzo-bulk --help`` answers at once: the CLI loads typer, rich and its flag declarations, nothing of the engine.

Each check runs in a fresh interpreter and reads ``sys.modules`` (what this test process imported says nothing).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from bonzo_bulk.cli.options import DEFAULT_STORE
from bonzo_bulk.store import DEFAULT_STORE_PATH

NOT_AT_START = (
    "aiohttp",
    "apprise",
    "asyncio",
    "click",
    "faker",
    "fastapi",
    "gevent",
    "jinja2",
    "locust",
    "numpy",
    "plotly",
    "psycopg",
    "pydantic",
    "rich.progress",
    "scipy",
    "sqlite3",
    "uvicorn",
    "yaml",
    "bonzo_bulk.config.loader",
    "bonzo_bulk.models",
    "bonzo_bulk.plan.planner",
    "bonzo_bulk.report.publish",
    "bonzo_bulk.report.dashboard",
    "bonzo_bulk.report.summary",
    "bonzo_bulk.engine.run",
    "bonzo_bulk.sandbox",
    "bonzo_bulk.store",
)


class Seen(NamedTuple):
    """What a fresh interpreter printed on stdout, and which of :data:`NOT_AT_START` it loaded."""

    stdout: str
    loaded: list[str]


def _after(code: str) -> Seen:
    """Run ``code`` in a fresh interpreter: what it printed on stdout, and which of :data:`NOT_AT_START` it loaded."""
    probe = (
        f"import json, sys\n{code}\n"
        f"print(json.dumps([m for m in {NOT_AT_START!r} if m in sys.modules]), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return Seen(done.stdout, json.loads(done.stderr.strip().splitlines()[-1]))


def test_importing_the_cli_loads_no_engine_and_no_heavy_library() -> None:
    assert _after("import bonzo_bulk.cli").loaded == []


def test_the_apps_help_loads_no_engine_and_no_heavy_library() -> None:
    code = """
from bonzo_bulk.cli import main
sys.argv = ["bonzo-bulk", "--help"]
try:
    main()
except SystemExit as stop:
    assert stop.code == 0, stop.code
"""
    seen = _after(code)
    assert seen.loaded == []
    for command in ("run", "health", "cleanup", "export", "load-worker", "baseline", "store", "monitor"):
        assert f" {command} " in seen.stdout, command


def test_every_commands_help_loads_no_engine() -> None:
    """typer itself imports pydantic to coerce a subcommand's values (even for --help); nothing else may load."""
    code = """
import typer.main
from bonzo_bulk.cli import app
root = typer.main.get_command(app)
paths = []
for name, command in root.commands.items():
    paths.append([name])
    paths.extend([name, sub] for sub in getattr(command, "commands", {}))
for path in paths:
    try:
        root.main([*path, "--help"], prog_name="bonzo-bulk")
    except SystemExit as stop:
        assert stop.code == 0, (path, stop.code)
"""
    seen = _after(code)
    assert set(seen.loaded) <= {"pydantic"}
    assert seen.stdout.count("Usage: bonzo-bulk") >= 29, "every command's help was printed"


def test_running_a_command_still_loads_what_it_needs() -> None:
    """The laziness is real, not a broken import: a command that plans records loads the config and the planner."""
    code = """
from bonzo_bulk.cli import app
try:
    app(["records", "--test-records", "2", "--seed", "1", "--json"])
except SystemExit as stop:
    assert stop.code in (0, None), stop.code
"""
    seen = _after(code)
    assert {"bonzo_bulk.config.loader", "bonzo_bulk.plan.planner", "pydantic", "yaml"} <= set(seen.loaded)
    records = [json.loads(line) for line in seen.stdout.splitlines()]
    assert sum(r["phase"] == "primary" and r["name"].startswith("TestRecord_") for r in records) >= 2


def test_the_cli_default_store_is_the_store_default() -> None:
    """The CLI spells the default store as text so ``--help`` need not import the store package."""
    assert Path(DEFAULT_STORE) == DEFAULT_STORE_PATH
