"""``--help`` in a pipe or CI log is written whole (issue 24.8): typer's rich help drew boxes at 80 columns and cut
flags and values (``--allow-literal-secre…``, ``postgresql://user@hos…``, ``<even|weighted|custo m>``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from bonzo_bulk.cli import app

ROOT = Path(__file__).resolve().parents[2]
SEPARATOR = "=" * 20 + " next screen " + "=" * 20


def _paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _paths(sub, (*path, name))


SCREENS = list(_paths(typer.main.get_command(app)))


def _every_help_piped() -> dict[tuple[str, ...], str]:
    """Every command's ``--help`` through the real entry point, stdout a pipe, COLUMNS=80 as in a narrow CI log."""
    script = (
        "import sys\n"
        "from bonzo_bulk.cli import main\n"
        f"for path in {SCREENS!r}:\n"
        "    sys.argv = ['bonzo-bulk', *path, '--help']\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"    print({SEPARATOR!r}, flush=True)\n"
    )
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("FORCE_COLOR", None)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    screens = done.stdout.split(SEPARATOR + "\n")
    assert len(screens) == len(SCREENS) + 1, done.stdout[-2000:]
    return dict(zip(SCREENS, screens, strict=False))


def test_every_help_screen_in_a_pipe_is_written_whole() -> None:
    screens = _every_help_piped()
    assert len(screens) >= 29
    for path, text in screens.items():
        name = " ".join(("bonzo-bulk", *path))
        assert text.startswith("Usage: "), f"{name}: {text[:200]}"
        assert not set(text) & set("╭╮╰╯│─…"), f"{name} --help is boxed or cut in a pipe:\n{text}"
    run = screens[("run",)]
    for whole in (
        "--allow-literal-secrets",
        "<even|weighted|custom>",
        "postgresql://user@host:port/db with the password in PGPASSWORD",
        "[default: (tests/configs/monitorbase_test_config.yaml)]",
        "bonzo-bulk run --test-records 500 --concurrency 32 --faults tests/configs/faults/wrong_owner.yaml",
    ):
        assert whole in run, f"{whole!r} is not whole in `bonzo-bulk run --help | cat`:\n{run}"
    option_lines = [line for line in run.splitlines() if line.lstrip().startswith("--store-url")]
    assert len(option_lines) == 1 and option_lines[0].rstrip().endswith("PGPASSWORD"), "one line per option"
