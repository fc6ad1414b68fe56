"""The plan Locust deals is streamed (issue 24, finding 1: a 139 MB plan file written before the first send):
records are made, stored and written a window ahead of the schedule, a batch at a time, and a run stopped early
never makes the rest."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from builders import build_run

from bonzo_bulk.load.feed import BATCH, PlanFeed
from bonzo_bulk.models import PlannedRecord


def _records(count: int) -> tuple[list[PlannedRecord], Iterator[PlannedRecord], list[int]]:
    """``count`` records, an iterator over them that counts what it made, and that count."""
    pool = [o.record for o in build_run(records=count, invalid=0).phases[0].outcomes]
    made = [0]

    def iterate() -> Iterator[PlannedRecord]:
        for record in pool:
            made[0] += 1
            yield record

    return pool, iterate(), made


def _lines(path: Path) -> list[list[object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[1:]]


def test_the_plan_is_written_a_window_ahead_and_each_batch_is_told_before_it_is_written(tmp_path: Path) -> None:
    offsets = [i * 0.5 for i in range(120)]  # 2 leads/s for a minute
    pool, records, made = _records(120)
    told: list[int] = []

    def on_planned(batch: Sequence[PlannedRecord]) -> None:
        told.append(len(batch))
        assert len(_lines(tmp_path / "plan.jsonl")) == sum(told) - len(batch), "told before written"

    feed = PlanFeed(tmp_path / "plan.jsonl", records, offsets, header={"max_in_flight": 5}, on_planned=on_planned)
    feed.open(first_window=10)
    header = json.loads((tmp_path / "plan.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert header["count"] == 120 and header["max_in_flight"] == 5
    assert feed.written == made[0] == 21, "only the first 10 s of arrivals are made"
    assert [row[0] for row in _lines(tmp_path / "plan.jsonl")] == list(range(21))
    feed.fill(30.2)
    assert feed.written == made[0] == 61 and not feed.done
    assert feed.take(3) is pool[3] and feed.names[3] == pool[3].name
    feed.fill(1000)
    assert feed.done and sum(told) == 120
    feed.close()
    assert not (tmp_path / "plan.jsonl").exists(), "the payloads are in the run store"


def test_a_run_stopped_early_never_makes_the_rest(tmp_path: Path) -> None:
    offsets = [i / 100 for i in range(5 * BATCH)]
    _, records, made = _records(5 * BATCH)
    feed = PlanFeed(tmp_path / "plan.jsonl", records, offsets, header={}, on_planned=lambda batch: None)
    feed.open(first_window=3)
    assert made[0] == len(feed.names) == 301
    feed.close()
    assert made[0] == 301
