"""Reports are best effort after the verdict: the verdict table comes first, a report that cannot be written
is its own error naming the path, and the last line says the verdict in the words of the exit code. (Against the
session's sandbox: starting a sandbox process for each run is not what these tests are about.)"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest
from builders import RunSpec, begin_run_of, build_run
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.pytest_plugin.reporter import Reporter
from bonzo_bulk.pytest_plugin.session import STATE, SessionState
from bonzo_bulk.report.publish import publish_best_effort
from bonzo_bulk.report.summary import HEALTH_DIR
from bonzo_bulk.sandbox import SandboxServer
from bonzo_bulk.store import RunStore


@pytest.mark.parametrize("command", ["run", "health"])
def test_an_unwritable_report_does_not_hide_the_verdict(
    tmp_path: Path, make_config: Any, monkeypatch: pytest.MonkeyPatch, command: str, sandbox: SandboxServer
) -> None:
    for name in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "SUPERUSER_WEBHOOK_URL", "BONZO_API_URL"):
        monkeypatch.delenv(name, raising=False)
    clean = {"url": sandbox.url, "faults": {"seed": 1, "faults": []}}  # whatever an earlier test left on it
    loaded = make_config(tmp_path, sandbox.url, test_records=3, sandbox=clean)
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


def _pending_run(tmp_path: Path, make_config: Any, pending: int) -> tuple[Any, Any]:
    """A passing run in the store whose cleanup left ``pending`` records, and a reports folder that cannot be
    written (a file where ``integration_health_reports`` should be)."""
    loaded = make_config(tmp_path, test_records=3)
    result = build_run(RunSpec(records=3, invalid=0, run_id="r20260101-000000-beef"))
    assert result.passed
    with RunStore(tmp_path / "reports" / "runs.sqlite3") as store:
        begin_run_of(store, result)
        store.finish_run(result)
        store.set_cleanup_pending(result.run_id, pending)
    (tmp_path / "reports" / HEALTH_DIR).write_text("a file where the reports folder should be")
    return loaded, result


def test_the_verdict_of_unwritten_reports_counts_records_pending_cleanup(tmp_path: Path, make_config: Any) -> None:
    """Issue 25.8: the fallback verdict (reports not written) said PASSED although the run's cleanup left records
    pending, which the normal verdict fails."""
    loaded, result = _pending_run(tmp_path, make_config, pending=2)

    outcome = publish_best_effort(result, loaded)

    assert outcome.published is None and outcome.report_error is not None
    assert outcome.verdict.cleanup_pending == 2
    assert outcome.exit_code == 1
    assert outcome.label.startswith("FAILED (2 records pending cleanup")


class _Terminal:
    """What :meth:`Reporter.pytest_terminal_summary` writes to, keeping the lines."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.lines: list[str] = []

    def write_sep(self, sep: str, title: str) -> None:
        self.lines.append(title)

    def write_line(self, line: str, **markup: bool) -> None:
        self.lines.append(line)

    def write(self, text: str) -> None:
        self.lines.append(text)


class _Config:
    """The few parts of a pytest config the reporter reads."""

    def __init__(self) -> None:
        self.stash = pytest.Stash()

    def getoption(self, name: str, default: Any = None) -> Any:
        return default

    def getini(self, name: str) -> Any:
        return False


def test_the_pytest_reporter_line_counts_records_pending_cleanup(tmp_path: Path, make_config: Any) -> None:
    """Issue 25.8: the plugin's "run … · verdict" line ignored records pending cleanup (here publishing failed,
    so the verdict is the unpublished one)."""
    loaded, result = _pending_run(tmp_path, make_config, pending=3)
    config = _Config()
    config.stash[STATE] = SessionState(loaded=loaded, result=result)
    terminal = _Terminal(config)

    Reporter(config).pytest_terminal_summary(terminal)  # type: ignore[arg-type]

    [line] = [line for line in terminal.lines if line.startswith(f"run {result.run_id}")]
    assert line.endswith("FAILED (3 records pending cleanup: run `bonzo-bulk cleanup --pending --yes`)"), line


def test_a_pytest_session_whose_run_left_records_pending_cleanup_fails(tmp_path: Path, make_config: Any) -> None:
    """As ``bonzo-bulk run`` exits 1 while records are pending cleanup, so does the pytest session."""
    loaded, result = _pending_run(tmp_path, make_config, pending=2)
    (tmp_path / "reports" / HEALTH_DIR).unlink()
    config = _Config()
    config.stash[STATE] = current = SessionState(loaded=loaded, result=result)
    session = types.SimpleNamespace(config=config, exitstatus=pytest.ExitCode.OK)

    Reporter(config).pytest_sessionfinish(session)  # type: ignore[arg-type]

    assert current.published is not None and current.published.verdict.cleanup_pending == 2
    assert session.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert any("2 record(s) are pending cleanup" in note for note in current.notes), current.notes
