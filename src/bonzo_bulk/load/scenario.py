"""Load and stress scenarios: k6-style stages of arrival rates, thresholds and breaking criteria, from YAML.

A load scenario::

    name: campaign-launch
    stages:
      - {rate: 5, duration: 10s}            # constant 5 leads/s for 10 s
      - {rate: 5, to: 20, duration: 20s}    # ramp from 5 to 20 leads/s over 20 s
      - {rate: 20, duration: 1m}
    thresholds: {hook_p95_ms: 500, e2e_lag_p95_s: 10, error_rate: 0.01, lost: 0}

Every mistake is a :class:`ConfigError` naming the key (``stages[1].rate``), the value and the fix,
before anything is sent.
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from bonzo_bulk.errors import ConfigError

MAX_RATE_PER_PROCESS = 600.0
"""Leads/s one Locust process is trusted to generate on time (see benchmarks/bench_load.py)."""
MAX_ARRIVALS = 1_000_000
ANSWER_BUDGET_S = 0.1
"""The answer time the user pool must absorb at the peak rate without dropping arrivals."""

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

    max_in_flight: int = Field(default=100, ge=1, le=10_000, description="Locust users (open requests) per process")
    drop_after: Duration = Field(default=1.0, description="an arrival later than this is dropped (not sent)")
    timeout: Duration = Field(default=10.0, description="per-request timeout")
    processes: int = Field(default=1, ge=1, le=256)
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
    step_duration: Duration = 20.0
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


def _key(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "scenario"


def _fields(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The known keys at ``loc`` (for a did-you-mean hint)."""
    current: type[BaseModel] = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        found = next((a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if found is None:
            return []
        current = found
    return list(current.model_fields)


def _one_line(model: type[BaseModel], exc: ValidationError, source: str) -> ConfigError:
    # An unknown key first: a misspelt key also shows up as the real one missing.
    error = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    loc = tuple(error["loc"])
    key = _key(loc)
    if error["type"] == "extra_forbidden":
        known = _fields(model, loc)
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        fix = f"did you mean {hint[0]!r}?" if hint else f"known keys: {', '.join(known)}"
        return ConfigError(f"scenario key {key!r} is unknown; {fix}", key=key, source=source)
    value = error.get("input")
    shown = "" if isinstance(value, dict | list) else f": {value!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return ConfigError(f"scenario {key!r}{shown} — {message}; fix that key", key=key, source=source)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"cannot read the scenario file ({exc.strerror})", key="--scenario", source=str(path)
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML ({exc})", key="--scenario", source=str(path)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("a scenario is a YAML mapping (stages:, thresholds:, …)", key="--scenario", source=str(path))
    return data


def parse_load(
    data: dict[str, Any], *, source: str = "scenario", overrides: dict[str, Any] | None = None
) -> LoadScenario:
    """A checked load scenario from YAML data (``overrides`` are flags that win over the file)."""
    merged = {**data, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    try:
        scenario = LoadScenario.model_validate(merged)
    except ValidationError as exc:
        raise _one_line(LoadScenario, exc, source) from exc
    check_generator(scenario, scenario.peak_rate, "stages", source)
    return scenario


def parse_stress(
    data: dict[str, Any], *, source: str = "scenario", overrides: dict[str, Any] | None = None
) -> StressScenario:
    """A checked stress scenario from YAML data (``overrides`` are flags that win over the file)."""
    merged = {**data, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    try:
        scenario = StressScenario.model_validate(merged)
    except ValidationError as exc:
        raise _one_line(StressScenario, exc, source) from exc
    check_generator(scenario, scenario.max_rate, "max_rate", source)
    return scenario


def load_scenario(path: Path, *, overrides: dict[str, Any] | None = None) -> LoadScenario:
    """Read and check a load scenario file."""
    return parse_load(_read(path), source=str(path), overrides=overrides)


def stress_scenario(path: Path | None, *, overrides: dict[str, Any] | None = None) -> StressScenario:
    """Read and check a stress scenario file (None: defaults and flags only)."""
    data = _read(path) if path is not None else {}
    return parse_stress(data, source=str(path) if path else "stress flags", overrides=overrides)


def check_generator(
    scenario: SenderSettings, peak: float, key: str, source: str, *, workers: int | None = None
) -> None:
    """Refuse a rate the senders cannot generate on time, and plans too large to hold."""
    processes = workers if workers is not None else scenario.processes
    limit = processes * MAX_RATE_PER_PROCESS
    if peak > limit:
        needed = math.ceil(peak / MAX_RATE_PER_PROCESS)
        raise ConfigError(
            f"scenario {key!r}: {peak:g} leads/s is more than {processes} Locust process(es) generate on time "
            f"(about {MAX_RATE_PER_PROCESS:g}/s each); use --processes {needed} (or workers) or a lower rate",
            key=key,
            source=source,
        )
    in_flight = scenario.max_in_flight * processes
    if peak * ANSWER_BUDGET_S > in_flight:
        raise ConfigError(
            f"scenario 'max_in_flight': {scenario.max_in_flight} users per process cannot hold {peak:g} leads/s "
            f"(each user sends one lead at a time, so {peak:g}/s needs {math.ceil(peak * ANSWER_BUDGET_S)} users for "
            f"answers of {ANSWER_BUDGET_S * 1000:g} ms); raise max_in_flight to at least "
            f"{math.ceil(peak * ANSWER_BUDGET_S / processes)}",
            key="max_in_flight",
            source=source,
        )
