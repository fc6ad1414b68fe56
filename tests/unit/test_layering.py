"""The folder is the pipeline: every package sits on one floor, and no import runs up a floor.

The order is stated once, here. A module may import its own package and any package on a lower floor;
packages on the same floor never import each other. Lazy imports (inside a function) and type-only
imports (under ``TYPE_CHECKING``) count the same as the others: a floor is a promise about what a
module *can* reach, not about what it happens to load first. The sandbox stands apart: it imports only
the ground floor and the config, and only the target (which starts it) and the CLI (which serves it)
import it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "src" / "bonzo_bulk"

GROUND = ("_lazy", "errors", "models", "secrets", "_http", "_paths")
FLOORS: tuple[tuple[str, ...], ...] = (
    GROUND,
    ("config",),
    ("bonzo", "store", "target"),
    ("plan",),
    ("deliver", "settle", "judge"),
    ("engine",),
    ("problems",),
    ("report", "cleanup"),
    ("load", "monitor", "calibrate", "serve"),
    ("library",),
    ("cli", "pytest_plugin", "__init__", "__main__"),
)
"""Floor by floor, from the ground up: the pipeline's order read as packages. ``library`` (a whole bulk run with
its cleanup policy, what ``bonzo_bulk.run_bulk`` is) sits under the front doors that share it. ``problems`` (failures
tracked across runs) reads what the engine's runs found and sits under the outputs that say "new" or "known" of each
failure and the monitor that alerts per problem."""

SANDBOX = "sandbox"
SANDBOX_MAY_IMPORT = {*GROUND, "config"}
MAY_IMPORT_SANDBOX = {"target", "cli", SANDBOX}
TOP_LEVEL_MODULES = 12


def _floor_of(room: str) -> int:
    for number, floor in enumerate(FLOORS):
        if room in floor:
            return number
    raise AssertionError(f"{room!r} is on no floor: add it to FLOORS in {Path(__file__).name}")


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str

    @property
    def where(self) -> str:
        return f"src/bonzo_bulk/{self.path.relative_to(PACKAGE).as_posix()}:{self.line}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> Iterator[Import]:
    """Every import of ``bonzo_bulk`` in a file, wherever it stands (module level, function, TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = _module_name(path).split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            for alias in node.names:  # `from package import module` imports the module
                name = f"{module}.{alias.name}"
                yield Import(path, node.lineno, name if _is_module(name) else module)
        elif isinstance(node, ast.Import):
            yield from (Import(path, node.lineno, alias.name) for alias in node.names)


def _is_module(dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[0] != "bonzo_bulk":
        return False
    place = PACKAGE.joinpath(*parts[1:])
    return place.with_suffix(".py").is_file() or (place / "__init__.py").is_file()


def _room(path_or_module: Path | str) -> str:
    """The top-level room (package, or ground module) a file or a dotted module belongs to."""
    if isinstance(path_or_module, Path):
        parts = path_or_module.relative_to(PACKAGE).with_suffix("").parts
        return parts[0]
    return path_or_module.split(".")[1] if "." in path_or_module else "__init__"


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _internal(found: Import) -> bool:
    return found.module == "bonzo_bulk" or found.module.startswith("bonzo_bulk.")


def test_every_room_is_on_a_floor() -> None:
    rooms = {_room(path) for path in _sources()}
    for room in sorted(rooms - {SANDBOX}):
        _floor_of(room)


def test_no_import_runs_up_a_floor_or_across_one() -> None:
    broken = []
    for path in _sources():
        here = _room(path)
        for found in filter(_internal, imports_of(path)):
            there = _room(found.module)
            if there == here or (here in GROUND and there in GROUND) or (here, there) == ("__main__", "cli"):
                continue
            if here == SANDBOX:
                if there not in SANDBOX_MAY_IMPORT:
                    broken.append(f"{found.where} imports {found.module}: the sandbox imports only ground and config")
                continue
            if there == SANDBOX:
                if here not in MAY_IMPORT_SANDBOX:
                    broken.append(f"{found.where} imports {found.module}: only target/ and cli/ start a sandbox")
                continue
            mine, theirs = _floor_of(here), _floor_of(there)
            if theirs > mine:
                broken.append(f"{found.where} imports {found.module}: {there} sits above {here}")
            elif theirs == mine:
                broken.append(f"{found.where} imports {found.module}: {there} and {here} share a floor")
    assert not broken, "imports against the layer order:\n" + "\n".join(broken)


def _file_graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in _sources()}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for found in filter(_internal, imports_of(path)):
            target = found.module
            while target and target not in modules:  # `from package.module import name`
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_cycle_between_files() -> None:
    """A package's ``__init__`` re-exporting its own modules is not a cycle of the design, so it is left out."""
    graph = _file_graph()
    for name in graph:
        graph[name] = {target for target in graph[name] if not (target.count(".") == 1 and name.startswith(target))}
    assert _cycles(graph) == []


def test_the_ground_floor_is_small() -> None:
    modules = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(modules) <= TOP_LEVEL_MODULES, modules
    assert {path.stem for path in PACKAGE.glob("*.py")} <= {*GROUND, "library", "__init__", "__main__"}


def test_the_layer_check_sees_lazy_and_type_only_imports(tmp_path: Path) -> None:
    """The checker itself: an import inside a function or under TYPE_CHECKING is still an import."""
    path = tmp_path / "probe.py"
    path.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bonzo_bulk.engine.run import execute\n"
        "def later():\n    from bonzo_bulk.report import publish\n",
        encoding="utf-8",
    )
    assert {found.module for found in imports_of(path) if _internal(found)} == {
        "bonzo_bulk.engine.run",
        "bonzo_bulk.report.publish",
    }
    assert _floor_of("engine") > _floor_of("plan") > _floor_of("config") > _floor_of("errors")


@pytest.mark.parametrize("module", ["engine", "judge", "settle", "deliver", "plan", "config", "store", "bonzo"])
def test_the_pipeline_never_imports_an_output(module: str) -> None:
    """Stated apart from the floors because it is the rule people rely on: the engine emits, outputs subscribe."""
    outputs = ("bonzo_bulk.report", "bonzo_bulk.cleanup", "bonzo_bulk.cli", "bonzo_bulk.pytest_plugin")
    for path in (PACKAGE / module).rglob("*.py"):
        found = [f.where + " " + f.module for f in imports_of(path) if f.module.startswith(outputs)]
        assert not found, found


def test_nothing_outside_the_cli_imports_it() -> None:
    """The CLI is a front door on top: the engine, the reports and the pytest plugin never pay for typer."""
    offenders = {}
    for path in _sources():
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "cli" or relative == Path("__main__.py"):  # `python -m bonzo_bulk` is the CLI
            continue
        found = [
            f.where for f in imports_of(path) if f.module == "bonzo_bulk.cli" or f.module.startswith("bonzo_bulk.cli.")
        ]
        if found:
            offenders[str(relative)] = found
    assert not offenders, f"modules outside cli/ import it: {offenders}"
    assert {f.module for f in imports_of(PACKAGE / "__main__.py")} == {"__future__", "bonzo_bulk.cli"}


def test_the_cli_is_a_package_of_command_group_modules() -> None:
    """One module per command group, none of them a hub: app.py is the only one that imports the others' commands."""
    modules = {p.stem for p in (PACKAGE / "cli").glob("*.py")}
    assert {"app", "run", "report", "cleanup", "contract", "load", "monitor", "store", "prune", "export"} <= modules
    assert not (PACKAGE / "cli.py").exists() and not (PACKAGE / "commands.py").exists()
    for name in modules - {"__init__", "app"}:
        siblings = {
            f.module for f in imports_of(PACKAGE / "cli" / f"{name}.py") if f.module.startswith("bonzo_bulk.cli.")
        }
        assert siblings <= {"bonzo_bulk.cli.exits", "bonzo_bulk.cli.options", "bonzo_bulk.cli.terminal"}, name
