"""An internal error (exit 3) is logged under the command's reports folder, never the working directory's."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from bonzo_bulk.cli.exits import errors_logged_under, report_unexpected
from bonzo_bulk.cli.options import config_options
from bonzo_bulk.config.loader import LoadedConfig


def _broken(*, loaded: LoadedConfig) -> None:
    """A command with a bug: it fails in a way no check foresaw."""
    raise RuntimeError(f"a bug while running {loaded.config.test_name}")


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("broken")(config_options(_broken))
    app.command("other")(lambda: None)
    return app


@pytest.mark.parametrize("flag", [True, False])
def test_the_error_log_goes_under_the_reports_folder(
    tmp_path: Path, make_config: Any, monkeypatch: pytest.MonkeyPatch, flag: bool
) -> None:
    """``--reports-dir`` (or, without it, the config's ``reports_dir``) holds the log; the working directory none."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("BONZO_BULK_REPORTS_DIR", raising=False)
    loaded = make_config(tmp_path)  # reports_dir: tmp_path / "reports"
    chosen = tmp_path / "chosen" if flag else tmp_path / "reports"
    args = ["broken", "--config", str(loaded.path), *(["--reports-dir", str(chosen)] if flag else [])]

    result = CliRunner().invoke(_app(), args, env={"COLUMNS": "300"})

    assert result.exit_code == 3, result.output
    [log] = (chosen / "logs").glob("bonzo-bulk-error-*.log")
    assert "RuntimeError: a bug while running engine test" in log.read_text(encoding="utf-8")
    assert log.name in "".join(result.output.split())  # the message says where the details are
    assert not (work / "reports").exists()


def test_an_unwritable_reports_folder_logs_to_the_temporary_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    with errors_logged_under(blocker / "reports"):
        assert report_unexpected(RuntimeError("boom")) == 3
    shown = "".join(capsys.readouterr().err.split())
    [log] = [p for p in Path(tempfile.gettempdir()).glob("bonzo-bulk-error-*.log") if p.name in shown]
    try:
        assert "RuntimeError: boom" in log.read_text(encoding="utf-8")
    finally:
        log.unlink()
