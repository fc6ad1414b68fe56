"""What a load or stress run may spend: a total cap of leads and minutes, decided before anything is sent.

A run that nobody bounded can put a hundred thousand prospects into loan officers' accounts, so every
``load`` and ``stress`` has a cap (:data:`DEFAULT_MAX_LEADS` leads and :data:`DEFAULT_MAX_MINUTES` minutes
unless ``--max-leads`` / ``--max-minutes`` raise it). The minutes bound the whole command: the sending
gets what is left after the settling and judging that follow it (:func:`reserve_seconds`). A stress run
keeps the steps that fit the cap; a load scenario that does not fit is refused (exit 2, nothing sent).
The Locust processes are chosen here too (``--processes auto``: as many as the peak rate needs, up to
the machine's cores).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from bonzo_bulk.config.schema import BulkConfig
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.load.scenario import (
    MAX_RATE_PER_PROCESS,
    LoadScenario,
    Stage,
    StressScenario,
    check_generator,
    users_per_process,
)
from bonzo_bulk.settle.policy import SettlePolicy

DEFAULT_MAX_LEADS = 10_000
"""Leads a load or stress run sends at most unless ``--max-leads`` raises it."""
DEFAULT_MAX_MINUTES = 5.0
"""Minutes a load or stress run takes at most, settling included, unless ``--max-minutes`` raises it."""
OVERHEAD_S = 30.0
"""Starting the target and Locust, judging, storing and reporting: what a run needs beyond sending and settling."""


@dataclass(frozen=True, slots=True)
class Cap:
    """The most a run may send and take; raised only by ``--max-leads`` and ``--max-minutes``."""

    leads: int = DEFAULT_MAX_LEADS
    minutes: float = DEFAULT_MAX_MINUTES

    @classmethod
    def of(cls, leads: int | None, minutes: float | None) -> Cap:
        """The cap the flags ask for (the defaults where a flag is not given)."""
        if leads is not None and leads < 1:
            raise ConfigError(f"--max-leads {leads}: send at least 1 lead, e.g. --max-leads 5000", key="--max-leads")
        if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
            raise ConfigError(f"--max-minutes {minutes}: must be above 0, e.g. --max-minutes 10", key="--max-minutes")
        return cls(leads or DEFAULT_MAX_LEADS, minutes or DEFAULT_MAX_MINUTES)


@dataclass(frozen=True, slots=True)
class Budget:
    """What the run will do within its cap: its stages, leads, sending time, reserve and Locust processes."""

    cap: Cap
    stages: tuple[Stage, ...]
    leads: int
    sending_s: float
    reserve_s: float
    processes: int
    users: int
    """Locust users of each process (the scenario's ``max_in_flight``, worked out when it is ``auto``)."""
    dropped_steps: int = 0
    """Stress steps of the scenario left out because they did not fit the cap."""

    @property
    def peak_rate(self) -> float:
        return max(s.peak_rate for s in self.stages)

    def describe(self, kind: str) -> str:
        """The line printed before the first send: the cap, what fits in it and how to raise it."""
        what = f"{len(self.stages)} step(s) up to {self.peak_rate:g} leads/s" if kind == "stress" else "the scenario"
        cut = f" ({self.dropped_steps} higher step(s) left out)" if self.dropped_steps else ""
        return (
            f"cap: at most {self.cap.leads:,} leads and {self.cap.minutes:g} min in all (--max-leads, --max-minutes "
            f"raise it); this run: {what}{cut}, {self.leads:,} leads over {self.sending_s:g} s, then up to "
            f"{self.reserve_s:g} s to settle and report; {self.processes} Locust process(es) of {self.users} users"
        )


def reserve_seconds(config: BulkConfig) -> float:
    """Seconds a run needs after its last send: waiting for the stress steps to show, settling, reporting."""
    return config.processing_delay + SettlePolicy.of(config, "").deadline + OVERHEAD_S


def _total(stages: Sequence[Stage]) -> tuple[int, float]:
    return math.ceil(sum(s.mean_rate * s.duration for s in stages)), sum(s.duration for s in stages)


def _fit_steps(scenario: StressScenario, cap: Cap, sending_budget: float) -> list[Stage]:
    """The stress steps from the first that fit the cap, in order."""
    kept: list[Stage] = []
    for stage in scenario.stages():
        leads, seconds = _total([*kept, stage])
        if leads > cap.leads or seconds > sending_budget:
            break
        kept.append(stage)
    if not kept:
        first = scenario.stages()[0]
        leads, seconds = _total([first])
        raise ConfigError(
            f"the first stress step ({first.rate:g} leads/s for {first.duration:g} s: {leads:,} leads) does not fit "
            f"the cap of {cap.leads:,} leads and {cap.minutes:g} min ({sending_budget:g} s of sending after "
            "settling); lower --start-rate or --step-duration, or raise --max-leads / --max-minutes",
            key="--max-leads",
        )
    return kept


def _check_load(scenario: LoadScenario, cap: Cap, sending_budget: float) -> None:
    leads, seconds = _total(scenario.stages)
    if leads > cap.leads or seconds > sending_budget:
        minutes = math.ceil((cap.minutes * 60 - sending_budget + seconds) / 60)
        raise ConfigError(
            f"the scenario sends {leads:,} leads over {seconds:g} s, more than the cap of {cap.leads:,} leads and "
            f"{cap.minutes:g} min ({sending_budget:g} s of sending after settling); to run it anyway pass "
            f"--max-leads {max(leads, cap.leads)} --max-minutes {max(minutes, math.ceil(cap.minutes))}",
            key="--max-leads" if leads > cap.leads else "--max-minutes",
        )


def auto_processes(peak: float, cores: int | None = None) -> int:
    """Locust processes for a peak rate: as many as it needs (about 1,500 leads/s each), up to the cores.

    >>> auto_processes(150, 2), auto_processes(1000, 2), auto_processes(2500, 2)
    (1, 1, 2)
    """
    available = max(1, cores if cores is not None else (os.cpu_count() or 1))
    needed = max(1, math.ceil(peak / MAX_RATE_PER_PROCESS))
    if needed > available:
        raise ConfigError(
            f"--processes auto: {peak:g} leads/s needs {needed} Locust processes (about {MAX_RATE_PER_PROCESS:g}/s "
            f"each) and this machine has {available} core(s); lower the rate, or add machines with --master and "
            "`bonzo-bulk load-worker`",
            key="--processes",
        )
    return needed


def plan_budget(
    scenario: LoadScenario | StressScenario, config: BulkConfig, cap: Cap, *, workers: int | None = None
) -> Budget:
    """The stages that fit the cap and the processes that send them; ConfigError (nothing sent) otherwise.

    ``workers`` is the remote worker count of a master (the processes are then theirs, not this machine's).
    """
    reserve = reserve_seconds(config)
    sending_budget = cap.minutes * 60 - reserve
    if sending_budget <= 0:
        raise ConfigError(
            f"--max-minutes {cap.minutes:g}: the run needs {reserve:g} s after its last send to settle and report "
            f"(processing_delay and polling in the config), so nothing could be sent; raise --max-minutes to at "
            f"least {math.ceil(reserve / 60) + 1}",
            key="--max-minutes",
        )
    dropped = 0
    if isinstance(scenario, StressScenario):
        stages = _fit_steps(scenario, cap, sending_budget)
        dropped = len(scenario.stages()) - len(stages)
    else:
        _check_load(scenario, cap, sending_budget)
        stages = list(scenario.stages)
    leads, seconds = _total(stages)
    peak = max(s.peak_rate for s in stages)
    if workers is not None:
        processes = workers
    elif scenario.processes == "auto":
        processes = auto_processes(peak)
    else:
        processes = scenario.processes
    check_generator(
        scenario, peak, "max_rate" if isinstance(scenario, StressScenario) else "stages", "scenario", workers=processes
    )
    users = users_per_process(scenario.max_in_flight, peak, processes)
    return Budget(cap, tuple(stages), leads, seconds, reserve, processes, users, dropped)
