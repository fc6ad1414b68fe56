"""Sandbox capacity: beyond N leads/s the queue grows and each lead is created later than the one before."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest
from sandbox_helpers import lead, start_sandbox

from bonzo_bulk.errors import ConfigError, SandboxError
from bonzo_bulk.sandbox import SandboxOptions
from bonzo_bulk.sandbox.intake import Capacity
from bonzo_bulk.sandbox.standalone import build_options


async def _created_at(tmp_path: Path, capacity: float | None, leads: int) -> list[float]:
    async with start_sandbox(tmp_path, capacity=capacity) as sbx:
        await asyncio.gather(*(sbx.client.post(sbx.hooks["monitorbase"], json=lead(n)) for n in range(1, leads + 1)))
        await sbx.settle(timeout=20)
        prospects = await sbx.prospects(101, per_page=100)
    assert len(prospects) == leads
    by_record = sorted(prospects, key=lambda p: str(p["first_name"]))
    return [datetime.fromisoformat(str(p["created_at"]).replace("Z", "+00:00")).timestamp() for p in by_record]


async def test_beyond_capacity_leads_queue_and_are_created_at_that_rate(tmp_path: Path) -> None:
    created = await _created_at(tmp_path, 20.0, 40)
    span = max(created) - min(created)
    # 40 leads at 20/s: each takes the worker 1/20 s, so the last is created 39/20 s after the first.
    assert span == pytest.approx(39 / 20, abs=0.01), span
    assert created == sorted(created)  # first accepted, first created


async def test_without_capacity_a_burst_is_created_at_once(tmp_path: Path) -> None:
    created = await _created_at(tmp_path, None, 40)
    assert max(created) - min(created) < 1.0


def test_capacity_queues_leads_one_after_another() -> None:
    queue = Capacity(10.0)
    finishes = []
    for due in (0.0, 0.0, 0.0, 5.0):
        finishes.append(queue.finish(due))
        queue.free_at = finishes[-1]
    assert finishes == pytest.approx([0.1, 0.2, 0.3, 5.1])


def test_a_capacity_must_be_positive() -> None:
    with pytest.raises(SandboxError, match="capacity"):
        SandboxOptions(capacity=0)
    with pytest.raises(ConfigError, match="--capacity"):
        build_options(None, None, capacity=-1)
    assert build_options(None, None, capacity=25).capacity == 25
