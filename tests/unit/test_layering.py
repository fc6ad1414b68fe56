"""The layers stay apart: the engine imports no report or front door; the sandbox imports no engine module;
the CLI (``cli/``) may import anything, and nothing outside it imports the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "src" / "bonzo_bulk"
ENGINE = (
    "plan.py",
    "run.py",
    "target.py",
    "events.py",
    "observers.py",
    "cleanup_policy.py",
    "delivery.py",
    "settle.py",
    "judge.py",
    "metrics.py",
    "diagnosis.py",
    "timing.py",
)
OUTPUTS = (
    "bonzo_bulk.report",
    "bonzo_bulk.publishing",
    "bonzo_bulk.cli",
    "bonzo_bulk.console",
    "bonzo_bulk.pytest_plugin",
)
ENGINE_MODULES = tuple(f"bonzo_bulk.{name.removesuffix('.py')}" for name in ENGINE)


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("module", ENGINE)
def test_the_engine_imports_no_output(module: str) -> None:
    found = {name for name in imported(PACKAGE / module) if name.startswith(OUTPUTS)}
    assert not found, f"{module} imports {sorted(found)}"


def test_the_sandbox_imports_no_engine_module() -> None:
    for path in (PACKAGE / "sandbox").glob("*.py"):
        found = {name for name in imported(path) if name.startswith(ENGINE_MODULES)}
        assert not found, f"sandbox/{path.name} imports {sorted(found)}"


def test_nothing_outside_the_cli_imports_it() -> None:
    """The CLI is a front door on top: the engine, the reports and the pytest plugin never pay for typer."""
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "cli" or relative == Path("__main__.py"):  # `python -m bonzo_bulk` is the CLI
            continue
        found = {name for name in imported(path) if name == "bonzo_bulk.cli" or name.startswith("bonzo_bulk.cli.")}
        if found:
            offenders[str(relative)] = sorted(found)
    assert not offenders, f"modules outside cli/ import it: {offenders}"
    assert imported(PACKAGE / "__main__.py") == {"__future__", "bonzo_bulk.cli"}


def test_the_cli_is_a_package_of_command_group_modules() -> None:
    """One module per command group, none of them a hub: app.py is the only one that imports the others' commands."""
    modules = {p.stem for p in (PACKAGE / "cli").glob("*.py")}
    assert {"app", "run", "report", "cleanup", "contract", "load", "monitor", "store", "prune", "export"} <= modules
    assert not (PACKAGE / "cli.py").exists() and not (PACKAGE / "commands.py").exists()
    for name in modules - {"__init__", "app"}:
        siblings = {m for m in imported(PACKAGE / "cli" / f"{name}.py") if m.startswith("bonzo_bulk.cli.")}
        assert siblings <= {"bonzo_bulk.cli.exits", "bonzo_bulk.cli.options", "bonzo_bulk.cli.terminal"}, name
