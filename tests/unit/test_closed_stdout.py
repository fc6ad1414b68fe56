"""``bonzo-bulk export RUN | head``: when the reader closes stdout, the command ends quietly with exit 0, as a Unix
filter does (it was an "internal error (BrokenPipeError)", exit 3, and an error log).

The command runs in-process through the console entry point with stdout a real pipe whose reading end is closed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from builders import RunSpec, begin_run_of, build_run

from bonzo_bulk.cli import main
from bonzo_bulk.store import RunStore


@pytest.fixture
def stored_run(tmp_path: Path) -> tuple[Path, str]:
    store_at = tmp_path / "reports" / "runs.sqlite3"
    result = build_run(RunSpec(records=40, run_id="r20260101-000000-0f1e"))
    with RunStore(store_at) as store:
        begin_run_of(store, result)
        store.add_records(result.run_id, [o.record for phase in result.phases for o in phase.outcomes])
        store.finish_run(result)
    return store_at, result.run_id


@pytest.mark.parametrize("command", [["export", "{run}"], ["history", "--json"]], ids=["export", "history-json"])
def test_a_command_whose_reader_closed_stdout_ends_quietly_with_exit_0(
    stored_run: tuple[Path, str],
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    store_at, run_id = stored_run
    reading, writing = os.pipe()
    os.close(reading)  # `head` has read what it wanted and gone
    closed = os.fdopen(writing, "w")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdout", closed)
    monkeypatch.setattr(sys, "argv", ["bonzo-bulk", *(a.format(run=run_id) for a in command), "--store", str(store_at)])

    with pytest.raises(SystemExit) as ended:
        main()

    monkeypatch.undo()
    closed.close()
    errors = capsys.readouterr().err
    assert ended.value.code in (0, None), errors
    assert "internal error" not in errors and "BrokenPipeError" not in errors
    assert not list(tmp_path.rglob("bonzo-bulk-error-*.log"))
