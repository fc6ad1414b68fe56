"""The layers stay apart: the engine imports no report or front door; the sandbox imports no engine module."""

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
