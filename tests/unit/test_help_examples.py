"""Every example in a command's --help, and every ``bonzo-bulk`` command in README.md and docs/*.md, parses with
that command's real options and names files that exist (a --help example writes RUN_ID, never a made-up id that
no store holds); the docs' commands that only read (integrations, contract, records) are run as written."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import typer
from typer.testing import CliRunner

from bonzo_bulk.cli import app

ROOT = Path(__file__).resolve().parents[2]
MADE_UP_RUN_ID = re.compile(r"\b\d{8}[_-]\d{6}[_-][0-9a-f]{4}\b")
ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
COMMAND_LINE = re.compile(r"(^|&& |\| )([A-Z_][A-Z0-9_]*=\S+ )*(uv run )?bonzo-bulk [a-z]")


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
    """The ``bonzo-bulk`` argument lists of one example line (``a && b``, comments, redirections, ``uv run`` and
    ``NAME=value`` environment prefixes dropped)."""
    words = shlex.split(example, comments=True)
    command: list[str] = []
    redirect_target = False
    for word in [*words, "&&"]:
        if word in ("&&", "|"):
            if command:
                yield command
            command = []
        elif redirect_target:
            redirect_target = False
        elif word.startswith(">"):
            redirect_target = word == ">"
        elif not command and (ENV_ASSIGNMENT.match(word) or word in ("uv", "run")):
            continue
        else:
            command.append(word)


def _parse(example: str, created: set[str]) -> list[list[str]]:
    """Parse each ``bonzo-bulk`` command of ``example`` with the real app (raises on an unknown command, option or
    bad value), check the YAML files it names exist, note the files it creates; the argument lists."""
    parsed: list[list[str]] = []
    for words in _invocations(example):
        if words[0] != "bonzo-bulk":
            continue
        args = words[1:]
        parent = ROOT_COMMAND.make_context("bonzo-bulk", [*args], resilient_parsing=True)
        target: Any = ROOT_COMMAND
        rest = list(args)
        while hasattr(target, "commands") and rest and rest[0] in target.commands:
            target = target.commands[rest.pop(0)]
        # A group that runs on its own (``problems --all``) takes options where a subcommand would stand.
        runs_alone = getattr(target, "invoke_without_command", False) and bool(rest) and rest[0].startswith("-")
        assert not hasattr(target, "commands") or not rest or runs_alone, f"{example}: {rest[0]!r} is not a command"
        target.make_context(target.name or "", list(rest), parent=parent)  # raises on an unknown option or bad value
        if target.name == "init" and "--integration" in rest:
            created.add(f"{rest[rest.index('--integration') + 1]}_test_config.yaml")
        outputs = {rest[i + 1] for i, word in enumerate(rest[:-1]) if word == "--out"}
        for word in rest:
            if word.endswith((".yaml", ".yml")) and word not in created | outputs:
                assert (ROOT / word).is_file(), f"{example}: {word} does not exist"
        parsed.append(args)
    return parsed


def test_every_command_group_has_examples() -> None:
    documented = {path for path, _ in EXAMPLES}
    assert {"run", "report", "cleanup", "prune", "health", "generate"} <= documented


@pytest.mark.parametrize(("command", "example"), EXAMPLES, ids=[f"{c}: {e}" for c, e in EXAMPLES])
def test_help_example_parses_and_its_files_exist(command: str, example: str) -> None:
    assert not MADE_UP_RUN_ID.search(example), "write RUN_ID (from `bonzo-bulk history`), not a made-up run id"
    assert _parse(example, set()), example


def _code_blocks(path: Path) -> Iterator[list[str]]:
    """The lines of each fenced code block of a Markdown file, stripped."""
    block: list[str] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("```"):
            if block is not None:
                yield block
            block = None if block is not None else []
        elif block is not None:
            block.append(line)


def _doc_commands(path: Path) -> Iterator[str]:
    """The ``bonzo-bulk`` command lines of a Markdown file's code blocks, in order: in a block with ``$ `` prompts
    only the prompted lines (the rest is output); ``\\`` continuations joined."""
    for block in _code_blocks(path):
        prompted = any(line.startswith("$ ") for line in block)
        pending = ""
        for line in block:
            if prompted and not pending and not line.startswith("$ "):
                continue
            line = pending + line.removeprefix("$ ")
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            if COMMAND_LINE.search(line):
                yield line


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOC_COMMANDS = [(path.relative_to(ROOT).as_posix(), line) for path in DOCS for line in _doc_commands(path)]
FAST = {"integrations", "contract", "records"}
"""Commands that only read and answer at once: the docs' examples of them are run as written."""


def test_the_docs_hold_commands() -> None:
    assert {doc for doc, _ in DOC_COMMANDS} >= {"README.md", "docs/load.md", "docs/monitoring.md", "docs/contract.md"}
    assert len(DOC_COMMANDS) >= 50


@pytest.mark.parametrize("doc", sorted({doc for doc, _ in DOC_COMMANDS}))
def test_every_docs_command_names_a_real_command_and_real_flags(doc: str) -> None:
    """Issue 24.9: `load --scenario campaign.yaml` named a file that never shipped."""
    created: set[str] = set()
    for _, line in (item for item in DOC_COMMANDS if item[0] == doc):
        try:
            _parse(line, created)
        except (AssertionError, click.ClickException) as exc:
            raise AssertionError(f"{doc}: {line}\n{exc}") from exc


@pytest.mark.parametrize(
    ("doc", "line"),
    [(doc, line) for doc, line in DOC_COMMANDS if any(w[1:2] and w[1] in FAST for w in _invocations(line))],
)
def test_the_fast_docs_commands_run_as_written(doc: str, line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "SUPERUSER_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(ROOT)
    for args in _parse(line, set()):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, f"{doc}: {line}\n{result.output}"
