"""pytest plugin benchmark: what the plugin costs a pytest session that never uses it.

pytest loads the ``bonzo_bulk`` plugin (``pytest11`` entry point) in every session of a project that
installs bonzo-bulk, so its import must stay cheap. Prints, best of ``--repeats``:

- ``python -c "import bonzo_bulk.pytest_plugin"``: wall and CPU (user + sys) time, beside the interpreter's
  start and ``import pytest`` for comparison;
- a session that uses none of the plugin's fixtures (``pytest --collect-only`` of one plain test, plugin
  autoload off, so no other installed plugin muddies it) with and without ``-p bonzo_bulk``, and every
  ``bonzo_bulk`` module such a session has loaded by its end;
- the time to import the plugin's modules once pytest is imported: what a session really pays (pytest
  imports them through ``importlib``, which ``-X importtime`` does not trace);
- ``-X importtime`` of ``import bonzo_bulk.pytest_plugin``: what remains.

Run: ``uv run python benchmarks/bench_plugin.py [--repeats 7]``. Bytecode is cached first (as a user's
installed package has it); a shell with PYTHONDONTWRITEBYTECODE=1 would recompile every module.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON = str(Path(sys.executable))
IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")
MODULES_AT_EXIT = """
import sys
from pathlib import Path


def pytest_unconfigure(config):
    names = sorted(name for name in sys.modules if name.startswith("bonzo_bulk"))
    Path(config.rootpath, "modules.txt").write_text(" ".join(names), encoding="utf-8")
"""
AFTER_PYTEST = """
import time
import pytest
started = time.perf_counter()
import bonzo_bulk.pytest_plugin.plugin, bonzo_bulk.pytest_plugin.fixtures
print(time.perf_counter() - started)
"""


def best_of(command: list[str], env: dict[str, str], cwd: Path, repeats: int) -> tuple[float, float]:
    """Best wall and best CPU (user + sys) seconds of ``command`` over ``repeats`` runs, after one warm-up."""
    subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=True)
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=True)
        best_wall = min(best_wall, time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best_cpu = min(best_cpu, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return best_wall, best_cpu


def import_profile(statement: str, env: dict[str, str], cwd: Path) -> list[tuple[int, int, str]]:
    """``-X importtime`` rows of ``python -c statement``: (cumulative µs, depth, module)."""
    stderr = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", statement], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stderr
    rows = []
    for line in stderr.splitlines():
        if match := IMPORTTIME.match(line):
            rows.append((int(match.group(2)), len(match.group(3)) // 2, match.group(4)))
    return rows


def main() -> None:
    """Print the plugin's import figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    session_env = {**env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    with tempfile.TemporaryDirectory(prefix="bench-plugin-") as tmp:
        work = Path(tmp)
        (work / "test_plain.py").write_text("def test_plain():\n    assert True\n", encoding="utf-8")
        (work / "conftest.py").write_text(MODULES_AT_EXIT, encoding="utf-8")
        session = [PYTHON, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "test_plain.py"]
        for label, command, command_env in (
            ("python -c pass (interpreter start)", [PYTHON, "-c", "pass"], env),
            ("python -c 'import pytest'", [PYTHON, "-c", "import pytest"], env),
            ("python -c 'import bonzo_bulk.pytest_plugin'", [PYTHON, "-c", "import bonzo_bulk.pytest_plugin"], env),
            ("idle pytest session, without the plugin", session, session_env),
            ("idle pytest session, with -p bonzo_bulk", [*session, "-p", "bonzo_bulk"], session_env),
        ):
            wall, cpu = best_of(command, command_env, work, args.repeats)
            print(f"{label:<46} wall {wall:6.3f} s   cpu {cpu:6.3f} s (best of {args.repeats})")

        in_session = min(
            float(
                subprocess.run([PYTHON, "-c", AFTER_PYTEST], env=env, capture_output=True, text=True, check=True).stdout
            )
            for _ in range(args.repeats)
        )
        print(f"the plugin's modules imported after pytest (what a session pays): {1000 * in_session:.1f} ms")
        loaded = (work / "modules.txt").read_text(encoding="utf-8").split()
        print(f"bonzo_bulk modules an idle session has loaded at its end ({len(loaded)}): {', '.join(loaded)}")

        rows = import_profile("import bonzo_bulk.pytest_plugin", env, work)
        print("import bonzo_bulk.pytest_plugin, -X importtime (cumulative, inflated by the tracing; >= 0.5 ms):")
        for us, depth, name in reversed(rows):
            if us >= 500:
                print(f"  {'  ' * depth}{name} {us / 1000:.1f} ms")


if __name__ == "__main__":
    main()
