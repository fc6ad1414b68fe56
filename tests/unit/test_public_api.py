"""The library's public surface is small, sorted and importable."""

from __future__ import annotations

import pytest

import bonzo_bulk


def test_all_is_sorted_and_every_name_exists() -> None:
    assert bonzo_bulk.__all__ == sorted(bonzo_bulk.__all__)
    for name in bonzo_bulk.__all__:
        assert hasattr(bonzo_bulk, name), name


def test_errors_share_one_root() -> None:
    for name in bonzo_bulk.__all__:
        value = getattr(bonzo_bulk, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, bonzo_bulk.BonzoBulkError)


def test_results_have_short_reprs_whatever_their_size() -> None:
    from datetime import UTC, datetime

    from bonzo_bulk.config.schema import Thresholds
    from bonzo_bulk.judge.tally import phase_metrics
    from bonzo_bulk.models import PhaseResult, RunResult

    metrics = phase_metrics("primary", [], thresholds=Thresholds(), api_requests=0)
    phase = PhaseResult("primary", metrics, (), True, 0, (), (), settled=True, settle_seconds=0.0)
    now = datetime.now(UTC)
    result = RunResult("r1", "t", "monitorbase", None, "sandbox", now, now, False, (phase,) * 50)
    assert len(repr(result)) < 4000
    assert "r1" in repr(result)
    assert "primary" in repr(phase)


def test_every_public_name_is_exported_once_and_loads_lazily() -> None:
    import bonzo_bulk.errors

    errors = {n for n in bonzo_bulk.__all__ if isinstance(getattr(bonzo_bulk.errors, n, None), type)}
    assert set(bonzo_bulk.__all__) == {*errors, *bonzo_bulk._LAZY, "__version__"}
    assert set(dir(bonzo_bulk)) >= set(bonzo_bulk.__all__)
    with pytest.raises(AttributeError, match="no_such_name"):
        bonzo_bulk.no_such_name  # noqa: B018


HEAVY = (
    "aiohttp",
    "faker",
    "plotly",
    "jinja2",
    "fastapi",
    "uvicorn",
    "pydantic",
    "bonzo_bulk.engine.run",
    "bonzo_bulk.plan.planner",
    "bonzo_bulk.report.publish",
)


def _loaded_after(statement: str) -> list[str]:
    import subprocess
    import sys

    probe = f"{statement}; import sys; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split()


def test_importing_the_package_the_plugin_and_the_cli_loads_no_heavy_library() -> None:
    """pytest loads the plugin in every session and `--help` should answer at once: the engine waits for use."""
    assert _loaded_after("import bonzo_bulk") == []
    assert _loaded_after("import bonzo_bulk.pytest_plugin") == []
    assert _loaded_after("import bonzo_bulk.cli") == []
    assert {"aiohttp", "bonzo_bulk.engine.run"} <= set(_loaded_after("from bonzo_bulk import run_bulk")), (
        "loaded on use"
    )
