"""Every example in a command's --help parses with that command's real options and names files that exist
(a run id is written RUN_ID, never a made-up id that no store holds)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from bonzo_bulk.cli import app

ROOT = Path(__file__).resolve().parents[2]
MADE_UP_RUN_ID = re.compile(r"\b\d{8}[_-]\d{6}[_-][0-9a-f]{4}\b")


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command of the app (typer's own click: groups are told by their ``commands``)."""
    yield path, command
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


ROOT_COMMAND = typer.main.get_command(app)
EXAMPLES = [
    (" ".join(path), line.strip())
    for path, command in _commands(ROOT_COMMAND)
    for line in (command.help or "").splitlines()
    if line.strip().startswith("bonzo-bulk ")
]


def _invocations(example: str) -> Iterator[list[str]]:
    """The ``bonzo-bulk`` argument lists of one example line (``a && b``, comments and redirections dropped)."""
    words = shlex.split(example, comments=True)
    command: list[str] = []
    redirect_target = False
    for word in [*words, "&&"]:
        if word == "&&":
            if command:
                yield command
            command = []
        elif redirect_target:
            redirect_target = False
        elif word.startswith(">"):
            redirect_target = word == ">"
        else:
            command.append(word)


def test_every_command_group_has_examples() -> None:
    documented = {path for path, _ in EXAMPLES}
    assert {"run", "report", "cleanup", "prune", "health", "generate"} <= documented


@pytest.mark.parametrize(("command", "example"), EXAMPLES, ids=[f"{c}: {e}" for c, e in EXAMPLES])
def test_help_example_parses_and_its_files_exist(command: str, example: str) -> None:
    assert not MADE_UP_RUN_ID.search(example), "write RUN_ID (from `bonzo-bulk history`), not a made-up run id"
    created: set[str] = set()
    for words in _invocations(example):
        assert words[0] == "bonzo-bulk", example
        args = words[1:]
        parent = ROOT_COMMAND.make_context("bonzo-bulk", [*args], resilient_parsing=True)
        target: Any = ROOT_COMMAND
        rest = list(args)
        while hasattr(target, "commands") and rest and rest[0] in target.commands:
            target = target.commands[rest.pop(0)]
        target.make_context(target.name or "", list(rest), parent=parent)  # raises on an unknown option or bad value
        if target.name == "init" and "--integration" in rest:
            created.add(f"{rest[rest.index('--integration') + 1]}_test_config.yaml")
        outputs = {rest[i + 1] for i, word in enumerate(rest[:-1]) if word == "--out"}
        for word in rest:
            if word.endswith((".yaml", ".yml")) and word not in created | outputs:
                assert (ROOT / word).is_file(), f"{example}: {word} does not exist"
