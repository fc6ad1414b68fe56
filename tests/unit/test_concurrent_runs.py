"""Runs that share a reports folder do not collide: each started sandbox owns its database and port."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from bonzo_bulk.library import run_bulk
from bonzo_bulk.models import RunResult
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer
from bonzo_bulk.store import RunStore

RUNS = 3


def test_three_concurrent_runs_sharing_the_reports_folder_all_pass(
    tmp_path: Path, make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "SUPERUSER_WEBHOOK_URL", "BONZO_API_URL"):
        monkeypatch.delenv(name, raising=False)
    loaded = make_config(
        tmp_path,
        control=True,
        test_records=12,
        sandbox={"processing": {"distribution": "fixed", "seconds": 0.05}},
        polling={"deadline": 10.0},
    )
    # Real concurrent runs are separate processes. Threads share one interpreter, where FastAPI builds each
    # app's routes lazily on the first request and pydantic's schema building is not thread-safe; one
    # sandbox served first makes the shared model schemas exist before the threads start.
    with SandboxServer(SandboxOptions()) as warm:
        warm.seed([{"name": "Warm", "email": "warm@lender.test", "user_id": 1, "team_id": 1}], [{"type": "general"}])
    results: list[RunResult] = []
    errors: list[BaseException] = []

    def one_run() -> None:
        try:
            results.append(run_bulk(loaded))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one_run) for _ in range(RUNS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert not errors, errors
    assert len(results) == RUNS
    for result in results:
        failures = [c for phase in result.phases for c in phase.failures()]
        assert result.passed, failures[:5]
        for phase in result.phases:
            assert phase.metrics.created == len(phase.records)
            assert not phase.unexpected_prospects
    with RunStore(tmp_path / "reports" / "runs.sqlite3") as store:
        assert {r.run_id for r in store.list_runs()} == {r.run_id for r in results}
    assert len(list((tmp_path / "reports" / "sandboxes").glob("*.sqlite3"))) == RUNS
