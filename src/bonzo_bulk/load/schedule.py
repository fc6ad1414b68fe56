"""The arrival schedule: when each lead is meant to be sent, from stages of (ramping) arrival rates.

Arrivals are spaced evenly like k6's arrival-rate executors: at 10 leads/s one every tenth of a
second; in a ramp the n-th arrival falls where the integral of the rate reaches n. The schedule is
decided once, before anything is sent, so every process and machine sends the same plan and each
lead's latency is measured from its intended send time (no coordinated omission).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bonzo_bulk.errors import ConfigError
from bonzo_bulk.load.scenario import MAX_ARRIVALS, Stage


@dataclass(frozen=True, slots=True)
class StageWindow:
    """One stage placed on the run's clock: seconds from the start, rates, and its arrivals."""

    index: int
    start: float
    end: float
    rate: float
    end_rate: float
    first: int
    count: int

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def target_rate(self) -> float:
        """The mean arrival rate the stage asks for."""
        return (self.rate + self.end_rate) / 2

    def rate_at(self, offset: float) -> float:
        """The target rate ``offset`` seconds into the run (inside this stage)."""
        fraction = min(1.0, max(0.0, (offset - self.start) / self.duration)) if self.duration else 0.0
        return self.rate + (self.end_rate - self.rate) * fraction


@dataclass(frozen=True, slots=True)
class Schedule:
    """Every arrival's offset (seconds from the start) and the stages' windows."""

    offsets: tuple[float, ...]
    stages: tuple[StageWindow, ...]

    @property
    def duration(self) -> float:
        return self.stages[-1].end if self.stages else 0.0

    def stage_of(self, offset: float) -> StageWindow | None:
        """The stage a moment belongs to (the last one for the very end)."""
        for stage in self.stages:
            if stage.start <= offset < stage.end:
                return stage
        return self.stages[-1] if self.stages and offset == self.stages[-1].end else None

    def target_rate_at(self, offset: float) -> float:
        stage = self.stage_of(offset)
        return stage.rate_at(offset) if stage else 0.0


def _time_for(target: float, rate: float, end_rate: float, duration: float) -> float:
    """Seconds into a stage at which ``target`` arrivals have accumulated (linear rate)."""
    slope = (end_rate - rate) / duration
    if abs(slope) < 1e-12:
        return target / rate
    # rate*t + slope*t^2/2 = target
    root = math.sqrt(max(0.0, rate * rate + 2 * slope * target))
    return (root - rate) / slope


def build_schedule(stages: Sequence[Stage]) -> Schedule:
    """Place the stages end to end and every arrival in them.

    >>> s = build_schedule([Stage(rate=2, duration=2), Stage(rate=2, to=4, duration=1)])
    >>> len(s.offsets), s.offsets[:4], [w.count for w in s.stages]
    (7, (0.0, 0.5, 1.0, 1.5), [4, 3])
    """
    total = sum(s.mean_rate * s.duration for s in stages)
    if total > MAX_ARRIVALS:
        raise ConfigError(
            f"the scenario asks for {total:,.0f} leads, more than {MAX_ARRIVALS:,} in one run; shorten the stages",
            key="stages",
        )
    offsets: list[float] = []
    windows: list[StageWindow] = []
    start = 0.0
    accumulated = 0.0
    for index, stage in enumerate(stages):
        in_stage = stage.mean_rate * stage.duration
        first = len(offsets)
        next_arrival = math.ceil(accumulated - 1e-9)
        while next_arrival < accumulated + in_stage - 1e-9:
            t = _time_for(next_arrival - accumulated, stage.rate, stage.end_rate, stage.duration)
            offsets.append(round(start + min(t, stage.duration), 6))
            next_arrival += 1
        windows.append(
            StageWindow(index, start, start + stage.duration, stage.rate, stage.end_rate, first, len(offsets) - first)
        )
        accumulated += in_stage
        start += stage.duration
    return Schedule(tuple(offsets), tuple(windows))
