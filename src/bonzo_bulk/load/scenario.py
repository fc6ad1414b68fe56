"""Load and stress scenarios: k6-style stages of arrival rates, thresholds and breaking criteria, from YAML.

A load scenario (``tests/configs/load/campaign.yaml``)::

    name: campaign-launch
    stages:
      - {rate: 5, duration: 10s}            # constant 5 leads/s for 10 s
      - {rate: 5, to: 20, duration: 20s}    # ramp from 5 to 20 leads/s over 20 s
      - {rate: 20, duration: 30s}
    thresholds: {hook_p95_ms: 500, e2e_lag_p95_s: 10, error_rate: 0.01, lost: 0}

Every mistake is a :class:`ConfigError` naming the key (``stages[1].rate``), the value and the fix,
before anything is sent.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from bonzo_bulk.config.files import YamlFile, read_yaml, validate
from bonzo_bulk.errors import ConfigError

MAX_RATE_PER_PROCESS = 1500.0
"""Leads/s one Locust process is trusted to generate on time: ``benchmarks/bench_load.py --goal`` measured one
process sending 2,000/s on time against a fast sink on 2 shared cores (load average 3 to 4), about 300 us of CPU
a lead; this keeps a quarter of that in hand for a machine busy with the target and the engine."""
MAX_ARRIVALS = 1_000_000
MAX_PROCESSES = 256
MAX_USERS = 10_000
ANSWER_BUDGET_S = 0.1
"""The answer time the user pool must absorb at the peak rate without dropping arrivals."""
AUTO_USERS_FLOOR = 100
"""``max_in_flight: auto``: Locust users per process at least (each opens its connection when it first sends)."""
AUTO_ANSWER_S = 0.3
"""``max_in_flight: auto``: the users hold the peak rate for answers up to this long (one lead a user at a time)."""

_DURATION = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m(?!s))?(?:(?P<s>\d+(?:\.\d+)?)s)?"
    r"(?:(?P<ms>\d+(?:\.\d+)?)ms)?$"
)


def parse_duration(value: Any) -> float:
    """Seconds from ``30``, ``"30s"``, ``"2m"``, ``"1m30s"``, ``"1h"`` or ``"500ms"``.

    >>> parse_duration("1m30s"), parse_duration(12), parse_duration("500ms")
    (90.0, 12.0, 0.5)
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write e.g. 30s, 2m or 1m30s")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        match = _DURATION.match(text) if text else None
        if match is None or not any(match.groupdict().values()):
            raise ValueError(f"{value!r} is not a duration; write e.g. 30s, 2m, 1m30s or 500ms")
        parts = {k: float(v) for k, v in match.groupdict().items() if v}
        seconds = parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0) + parts.get("ms", 0) / 1000
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{value!r} must be a duration above zero")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _processes(value: Any) -> int | str:
    """``auto``, or a whole number of Locust processes from 1 to 256.

    >>> _processes("AUTO"), _processes("3")
    ('auto', 3)
    """
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        count = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        count = None
    if count is None or not 1 <= count <= MAX_PROCESSES:
        raise ValueError(f"{value!r} is not a number of processes; write auto, or a number from 1 to {MAX_PROCESSES}")
    return count


def _users(value: Any) -> int | str:
    """``auto``, or a whole number of Locust users per process from 1 to 10,000.

    >>> _users("Auto"), _users(40)
    ('auto', 40)
    """
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        count = int(str(value).strip()) if not isinstance(value, bool | float) else None
    except ValueError:
        count = None
    if count is None or not 1 <= count <= MAX_USERS:
        raise ValueError(f"{value!r} is not a number of users; write auto, or a number from 1 to {MAX_USERS:,}")
    return count


def users_per_process(max_in_flight: int | str, peak: float, processes: int) -> int:
    """The Locust users of each process: ``max_in_flight``, or with ``auto`` enough for the peak rate at answers
    of :data:`AUTO_ANSWER_S` (at least :data:`AUTO_USERS_FLOOR`).

    >>> users_per_process("auto", 20, 1), users_per_process("auto", 1000, 1), users_per_process(30, 1000, 1)
    (100, 300, 30)
    """
    if max_in_flight != "auto":
        return int(max_in_flight)
    return min(MAX_USERS, max(AUTO_USERS_FLOOR, math.ceil(peak * AUTO_ANSWER_S / max(1, processes))))


Rate = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Stage(_Section):
    """``rate`` leads/s for ``duration``; with ``to``, a linear ramp from ``rate`` to ``to``."""

    rate: Rate
    duration: Duration
    to: Rate | None = None

    @property
    def end_rate(self) -> float:
        return self.rate if self.to is None else self.to

    @property
    def mean_rate(self) -> float:
        return (self.rate + self.end_rate) / 2

    @property
    def peak_rate(self) -> float:
        return max(self.rate, self.end_rate)


class LoadThresholds(_Section):
    """Pass criteria of a load run (each per stage and over the whole run); None leaves one unchecked."""

    hook_p95_ms: float | None = Field(default=None, gt=0)
    e2e_lag_p95_s: float | None = Field(default=None, gt=0)
    error_rate: float | None = Field(default=0.01, ge=0, le=1)
    dropped_rate: float | None = Field(default=0.01, ge=0, le=1)
    lost: int | None = Field(default=0, ge=0)
    misrouted: int | None = Field(default=0, ge=0)
    duplicates: int | None = Field(default=0, ge=0)


class Breaking(_Section):
    """When a stress step counts as broken; the knee is the highest rate before the first broken step."""

    error_rate: float = Field(default=0.01, ge=0, le=1)
    hook_p95_ms: float = Field(default=2000.0, gt=0)
    dropped_rate: float = Field(default=0.01, ge=0, le=1)
    lag_growth: float = Field(
        default=0.05, gt=0, description="seconds of end-to-end lag gained per second of the step (backlog growing)"
    )
    min_lag_increase_s: float = Field(default=0.25, ge=0, description="lag growth below this is noise")


class SenderSettings(_Section):
    """How the Locust senders run: users per process, lateness allowed, request timeout, processes."""

    max_in_flight: Annotated[int | Literal["auto"], BeforeValidator(_users)] = Field(
        default="auto",
        description="Locust users (open requests) per process; auto: enough for the peak rate at 0.3 s answers, "
        "at least 100",
    )
    drop_after: Duration = Field(default=1.0, description="an arrival later than this is dropped (not sent)")
    timeout: Duration = Field(default=10.0, description="per-request timeout")
    processes: Annotated[int | Literal["auto"], BeforeValidator(_processes)] = Field(
        default="auto", description="Locust processes on this machine; auto: as many as the peak rate needs"
    )
    verify_interval: Duration = Field(default=2.0, description="how often the API is polled while loading")


class LoadScenario(SenderSettings):
    """A load run: stages of arrival rates and the thresholds that decide its exit code."""

    name: str = "load"
    stages: list[Stage] = Field(min_length=1)
    thresholds: LoadThresholds = Field(default_factory=LoadThresholds)

    @property
    def peak_rate(self) -> float:
        return max(s.peak_rate for s in self.stages)


class StressScenario(SenderSettings):
    """A stress run: constant steps from ``start_rate``, each ``step_factor`` times the last, up to ``max_rate``."""

    name: str = "stress"
    start_rate: Rate = 10.0
    max_rate: Rate = 1000.0
    step_factor: float = Field(default=1.25, gt=1, le=10)
    step_duration: Duration = 10.0
    breaking: Breaking = Field(default_factory=Breaking)
    min_knee_rate: float | None = Field(default=None, gt=0, description="exit 1 when the knee is below this rate")

    @model_validator(mode="after")
    def _ordered(self) -> StressScenario:
        if self.max_rate < self.start_rate:
            raise ValueError(f"max_rate {self.max_rate:g} is below start_rate {self.start_rate:g}; raise max_rate")
        return self

    def step_rates(self) -> list[float]:
        """The rate of every step, ``start_rate`` up to ``max_rate`` (inclusive, the last step capped)."""
        rates = [self.start_rate]
        while rates[-1] < self.max_rate - 1e-9:
            grown = rates[-1] * self.step_factor
            rounded = round(grown, 1)
            rates.append(min(self.max_rate, rounded if rounded > rates[-1] else grown))
        return rates

    def stages(self) -> list[Stage]:
        """The steps as constant stages."""
        return [Stage(rate=r, duration=self.step_duration) for r in self.step_rates()]

    @property
    def peak_rate(self) -> float:
        return self.max_rate


S = TypeVar("S", bound=BaseModel)


def _checked(
    model: type[S], data: dict[str, Any], source: str, overrides: dict[str, Any] | None, root: yaml.Node | None
) -> S:
    """``data`` with the flags in ``overrides`` (which win over the file) as a checked scenario."""
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    origins: dict[tuple[str, ...], str] = {(k,): "--" + k.replace("_", "-") for k in flags}
    return validate(model, {**data, **flags}, source=source, root=root, origins=origins, fix="fix that key")


def _read(path: Path) -> YamlFile:
    return read_yaml(path, what="scenario file", key="--scenario", shape="keys (stages:, thresholds:, …)")


def parse_load(
    data: dict[str, Any],
    *,
    source: str = "scenario",
    overrides: dict[str, Any] | None = None,
    root: yaml.Node | None = None,
) -> LoadScenario:
    """A checked load scenario from YAML data (``overrides`` are flags that win over the file; ``root``, the
    file's YAML nodes, lets a mistake name its line)."""
    scenario = _checked(LoadScenario, data, source, overrides, root)
    check_generator(scenario, scenario.peak_rate, "stages", source)
    return scenario


def parse_stress(
    data: dict[str, Any],
    *,
    source: str = "scenario",
    overrides: dict[str, Any] | None = None,
    root: yaml.Node | None = None,
) -> StressScenario:
    """A checked stress scenario from YAML data (``overrides`` are flags that win over the file)."""
    scenario = _checked(StressScenario, data, source, overrides, root)
    check_generator(scenario, scenario.max_rate, "max_rate", source)
    return scenario


def load_scenario(path: Path, *, overrides: dict[str, Any] | None = None) -> LoadScenario:
    """Read and check a load scenario file."""
    document = _read(path)
    return parse_load(document.data, source=document.source, overrides=overrides, root=document.root)


def stress_scenario(path: Path | None, *, overrides: dict[str, Any] | None = None) -> StressScenario:
    """Read and check a stress scenario file (None: defaults and flags only)."""
    if path is None:
        return parse_stress({}, source="stress flags", overrides=overrides)
    document = _read(path)
    return parse_stress(document.data, source=document.source, overrides=overrides, root=document.root)


def check_generator(
    scenario: SenderSettings, peak: float, key: str, source: str, *, workers: int | None = None
) -> None:
    """Refuse a rate the senders cannot generate on time, and plans too large to hold (``processes: auto`` is
    checked once the processes are chosen: :func:`bonzo_bulk.load.budget.plan_budget`)."""
    chosen = workers if workers is not None else scenario.processes
    # auto: as many processes as the rate needs (whether the machine has the cores is the budget's question)
    processes = max(1, math.ceil(peak / MAX_RATE_PER_PROCESS)) if chosen == "auto" else chosen
    limit = processes * MAX_RATE_PER_PROCESS
    if peak > limit:
        needed = math.ceil(peak / MAX_RATE_PER_PROCESS)
        raise ConfigError(
            f"scenario {key!r}: {peak:g} leads/s is more than {processes} Locust process(es) generate on time "
            f"(about {MAX_RATE_PER_PROCESS:g}/s each); use --processes {needed} (or workers) or a lower rate",
            key=key,
            source=source,
        )
    in_flight = users_per_process(scenario.max_in_flight, peak, processes) * processes
    if peak * ANSWER_BUDGET_S > in_flight:
        raise ConfigError(
            f"scenario 'max_in_flight': {scenario.max_in_flight} users per process cannot hold {peak:g} leads/s "
            f"(each user sends one lead at a time, so {peak:g}/s needs {math.ceil(peak * ANSWER_BUDGET_S)} users for "
            f"answers of {ANSWER_BUDGET_S * 1000:g} ms); raise max_in_flight to at least "
            f"{math.ceil(peak * ANSWER_BUDGET_S / processes)}",
            key="max_in_flight",
            source=source,
        )
