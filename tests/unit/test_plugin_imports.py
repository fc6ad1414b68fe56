"""pytest loads the plugin in every session of a project that installs bonzo-bulk: loading it, and a whole
session that never uses its fixtures, import none of the engine, the config schema or their libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "aiohttp",
    "rich",
    "pydantic",
    "yaml",
    "faker",
    "typer",
    "plotly",
    "bonzo_bulk.engine.run",
    "bonzo_bulk.models",
    "bonzo_bulk.config.loader",
    "bonzo_bulk.report.publish",
    "bonzo_bulk.report.terminal",
    "bonzo_bulk.secrets",
)
REPORT_LOADED = """
import json, sys
from pathlib import Path

import pytest


def pytest_unconfigure(config):
    Path(config.rootpath, "modules.json").write_text(json.dumps(sorted(sys.modules)), encoding="utf-8")
"""


def test_importing_the_plugin_imports_only_the_package_root() -> None:
    probe = "import json, sys; import bonzo_bulk.pytest_plugin; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    loaded = set(json.loads(done.stdout))
    assert {m for m in loaded if m.startswith("bonzo_bulk")} == {
        "bonzo_bulk",
        "bonzo_bulk._lazy",
        "bonzo_bulk.errors",
        "bonzo_bulk.pytest_plugin",
    }
    assert not loaded & {*HEAVY, "pytest"}


def test_an_idle_session_with_pytest_html_loads_no_engine(tmp_path: Path) -> None:
    """Only our plugin and pytest-html (with the pytest-metadata it needs) are loaded (autoload off), so
    what the session imports is theirs and pytest's."""
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n", encoding="utf-8")
    (tmp_path / "conftest.py").write_text(REPORT_LOADED, encoding="utf-8")
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "bonzo_bulk",
        "-p",
        "metadata",
        "-p",
        "html",
        "--html=report.html",
        "-q",
    ]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    loaded = set(json.loads((tmp_path / "modules.json").read_text(encoding="utf-8")))
    assert "bonzo_bulk.pytest_plugin.fixtures" in loaded, "the plugin was not loaded"
    assert "pytest_html.plugin" in loaded, "pytest-html was not loaded"
    assert sorted(loaded & set(HEAVY)) == []


def test_the_names_tests_import_from_the_plugin_resolve_on_first_use() -> None:
    import bonzo_bulk.pytest_plugin as plugin

    for name in plugin.__all__:
        value = getattr(plugin, name)
        assert name == "MARKERS" or value.__module__.startswith("bonzo_bulk.pytest_plugin."), name
    assert set(plugin.MARKERS) >= {"integration", "superuser"}
    with pytest.raises(AttributeError, match="no_such_name"):
        plugin.no_such_name  # noqa: B018
