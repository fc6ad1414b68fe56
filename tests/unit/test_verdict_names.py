"""Verdict names are one enum: a dashboard tile can turn red for every verdict it shows."""

from __future__ import annotations

import dataclasses

from builders import build_run

from bonzo_bulk.models import ThresholdVerdict, Verdict
from bonzo_bulk.report.dashboard import _tiles


def test_every_produced_verdict_is_a_known_name() -> None:
    phase = build_run().primary
    assert phase is not None
    assert {v.name for v in phase.metrics.thresholds} <= set(Verdict)


def test_a_slow_webhook_turns_the_latency_tile_red() -> None:
    phase = build_run().primary
    assert phase is not None
    slow = ThresholdVerdict(Verdict.MAX_RESPONSE, 30.0, 45.0, False, "<=")
    kept = tuple(v for v in phase.metrics.thresholds if v.name != Verdict.MAX_RESPONSE)
    metrics = dataclasses.replace(phase.metrics, thresholds=(*kept, slow))
    tiles = {t.label: t.state for t in _tiles(dataclasses.replace(phase, metrics=metrics))}
    assert tiles["p95 delivery latency"] == "bad"
    assert tiles["Delivered"] == "ok"
