"""The library's public surface is small, sorted and importable."""

from __future__ import annotations

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

    from bonzo_bulk.metrics import phase_metrics
    from bonzo_bulk.models import PhaseResult, RunResult
    from bonzo_bulk.settings import Thresholds

    metrics = phase_metrics("primary", [], {}, {}, [], thresholds=Thresholds(), api_requests=0)
    phase = PhaseResult("primary", (), (), (), (), (), metrics, settled=True, settle_seconds=0.0)
    now = datetime.now(UTC)
    result = RunResult("r1", "t", "monitorbase", None, "sandbox", now, now, False, (phase,) * 50)
    assert len(repr(result)) < 4000
    assert "r1" in repr(result)
    assert "primary" in repr(phase)
