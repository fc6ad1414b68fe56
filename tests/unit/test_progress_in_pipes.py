"""Progress in pipes and CI logs (issue 24.8): INFO lines on the progress logger, at least every few seconds, where
a terminal would show bars; never ``WARNING delivery: 199/302 sent``."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator

import pytest

from bonzo_bulk.cli.terminal import LoggedProgress, RichProgress, command_progress, setup_logging
from bonzo_bulk.deliver.watch import PROGRESS_LOG


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """The root logger's handlers and levels as they were, after a test that sets logging up as a command does."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger(PROGRESS_LOG).setLevel(logging.NOTSET)


@pytest.mark.usefixtures("logging_restored")
def test_in_a_pipe_progress_shows_at_info_and_the_rest_keeps_the_chosen_level(monkeypatch: pytest.MonkeyPatch) -> None:
    piped_stderr = io.StringIO()  # patched here: pytest sets its own stderr again when the test body starts
    monkeypatch.setattr("sys.stderr", piped_stderr)
    setup_logging("WARNING")
    logging.getLogger(PROGRESS_LOG).info("delivery: 199/302 sent")
    logging.getLogger("bonzo_bulk").info("an ordinary info line")
    assert piped_stderr.getvalue().splitlines() == ["INFO delivery: 199/302 sent"]

    setup_logging("ERROR")
    logging.getLogger(PROGRESS_LOG).info("silenced by --log-level ERROR")
    assert "silenced" not in piped_stderr.getvalue()


def test_without_a_terminal_a_command_logs_progress_instead_of_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bonzo_bulk.cli.terminal.is_interactive", lambda: False)
    assert isinstance(command_progress(), LoggedProgress)
    assert isinstance(command_progress(json_output=True), LoggedProgress)
    monkeypatch.setattr("bonzo_bulk.cli.terminal.is_interactive", lambda: True)
    assert isinstance(command_progress(), RichProgress)


def test_logged_progress_says_what_each_stage_did_every_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=PROGRESS_LOG)
    with LoggedProgress(every=0.05) as progress:
        progress.stage("deliver", 302)
        progress.advance("deliver", 199)
        progress.update("settle", 40, 302)
        give_up = time.monotonic() + 30
        while len(caplog.records) < 2 and time.monotonic() < give_up:
            time.sleep(0.01)
    lines = [r.getMessage() for r in caplog.records if r.name == PROGRESS_LOG]
    assert len(lines) >= 2, "a line every interval, also while nothing moves"
    assert all(r.levelno == logging.INFO for r in caplog.records)
    assert lines[-1].startswith("progress after ") and lines[-1].endswith(" s: deliver 199/302, settle 40/302")
    count = len(caplog.records)
    time.sleep(0.2)
    assert len(caplog.records) == count, "no line once the command is done"
