"""Reports are best effort after the verdict: the verdict table comes first, a report that cannot be written
is its own error naming the path, and the last line says the verdict in the words of the exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bonzo_bulk.cli import app


@pytest.mark.parametrize("command", ["run", "health"])
def test_an_unwritable_report_does_not_hide_the_verdict(
    tmp_path: Path, make_config: Any, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    for name in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "SUPERUSER_WEBHOOK_URL", "BONZO_API_URL"):
        monkeypatch.delenv(name, raising=False)
    loaded = make_config(tmp_path, test_records=3, sandbox={"processing": {"distribution": "fixed", "seconds": 0.02}})
    blocker = tmp_path / "reports" / "integration_health_reports"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the reports folder should be")

    result = CliRunner().invoke(app, [command, "--config", str(loaded.path)], env={"COLUMNS": "300"})

    output = " ".join(result.output.split())
    assert "error: the reports of run" in output
    assert str(tmp_path / "reports") in output
    assert output.index("error: the reports") > output.find("delivered ")  # after the verdict table
    last = result.output.strip().splitlines()[-1]
    assert last.endswith("PASSED, but its reports were not written (exit 1)"), last
    assert "(exit 0)" not in result.output
    assert result.exit_code == 1
    assert "Traceback" not in output
