"""pytest honours ``regression.fail_on_regression`` and prints every regression in its summary (the sessions run
against a sandbox the test serves, not one process each)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import begin_run_of, build_run, sandbox_server
from test_plugin import FAST, write_config

from bonzo_bulk.report.regression import MIN_COST_RECORDS
from bonzo_bulk.sandbox import SandboxServer
from bonzo_bulk.store import RunStore


@pytest.fixture
def served(tmp_path: Path) -> Iterator[SandboxServer]:
    """A sandbox with 50 ms processing, served around one test."""
    with sandbox_server(tmp_path / "served.sqlite3") as server:
        yield server


def test_a_regressed_run_is_printed_and_fails_the_session_when_asked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, served: SandboxServer
) -> None:
    for variable in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "SUPERUSER_WEBHOOK_URL", "BONZO_BULK_TARGET"):
        monkeypatch.delenv(variable, raising=False)
    config = write_config(
        pytester.path,
        control=False,
        regression={"fail_on_regression": True},
        invalid_records=[],
        test_records=MIN_COST_RECORDS,
        sandbox={"url": served.url},
    )
    # A baseline of the same size that needed one API request: any real run costs more, so it regressed.
    baseline = build_run(
        run_id="base_cheap", records=MIN_COST_RECORDS, invalid=0, api_requests_per_record=1 / MIN_COST_RECORDS
    )
    with RunStore(pytester.path / "reports" / "runs.sqlite3") as store:
        begin_run_of(store, baseline)
        store.finish_run(baseline)
        store.set_baseline("base_cheap")
    pytester.makepyfile("def test_ran(bulk_run):\n    assert bulk_run.passed\n")
    result = pytester.runpytest(*FAST, f"--config={config}")
    assert result.parseoutcomes() == {"passed": 1}
    result.stdout.fnmatch_lines(
        ["regression vs baseline base_cheap: primary API requests per record * is above the allowed ceiling 0.015 *"]
    )
    result.stdout.fnmatch_lines(["*the run regressed and regression.fail_on_regression is set: the session fails*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_small_healthy_run_is_not_a_regression_of_a_bigger_baseline(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, served: SandboxServer
) -> None:
    """Issue 24.4: 3-9 records against a 21-record baseline "rose to 2.33 from 0.29" API requests per record (the
    run's fixed costs over few records) and failed the session."""
    for variable in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "SUPERUSER_WEBHOOK_URL", "BONZO_BULK_TARGET"):
        monkeypatch.delenv(variable, raising=False)
    config = write_config(
        pytester.path,
        control=False,
        regression={"fail_on_regression": True},
        invalid_records=[],
        sandbox={"url": served.url},
    )
    baseline = build_run(run_id="base_big", records=21, invalid=0, api_requests_per_record=0.29)
    with RunStore(pytester.path / "reports" / "runs.sqlite3") as store:
        begin_run_of(store, baseline)
        store.finish_run(baseline)
        store.set_baseline("base_big")
    pytester.makepyfile("def test_ran(bulk_run):\n    assert bulk_run.passed\n")
    # In a child process: a second in-process session of this module would meet the first one's imports.
    result = pytester.runpytest_subprocess(*FAST, f"--config={config}")
    assert "regression vs baseline" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.OK
