"""What a load or stress run measured: the outcome object, and how it is summarised from a finished run.

:func:`summarize` joins the journal to what Bonzo showed and to the engine's verdicts, and computes the
per-stage figures, the per-second series, the thresholds (load) and the knee (stress).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bonzo_bulk.bonzo.clock import ClockOffset
from bonzo_bulk.load.child import JournalRow
from bonzo_bulk.load.knee import Knee, StepVerdict, sustained_rate
from bonzo_bulk.load.scenario import LoadScenario, LoadThresholds, StressScenario
from bonzo_bulk.load.schedule import Schedule
from bonzo_bulk.load.stats import SeriesPoint, StageFigures, join, stage_figures, stage_verdicts, time_series, whole_run
from bonzo_bulk.models import RETRY_DUPLICATE_CHECK, Observation, RecordOutcome, RunResult, Stage, ThresholdVerdict

Kind = Literal["load", "stress"]
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class LoadOutcome:
    """Everything a load or stress run measured; the store, the JSON summary and the dashboard read it."""

    kind: Kind
    scenario: dict[str, Any]
    run: RunResult
    schedule: Schedule
    t0: float
    stages: tuple[StageFigures, ...]
    overall: StageFigures
    series: tuple[SeriesPoint, ...]
    verdicts: tuple[ThresholdVerdict, ...]
    steps: tuple[StepVerdict, ...] = ()
    knee: Knee | None = None
    """A stress run's knee (None for a load run)."""
    planned: int = 0
    sent: int = 0
    dropped: int = 0
    cancelled: int = 0
    api_requests_while_loading: int = 0
    stop_reason: str | None = None
    interrupted: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def knee_rate(self) -> float | None:
        """The measured knee: None for a load run, when no step broke or when the first step did."""
        return self.knee.rate if self.knee is not None else None

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return 0 if self.passed else 1


def _verdicts_of(failed: Iterable[RecordOutcome]) -> tuple[set[str], set[str], set[str]]:
    """Names of lost, misrouted and duplicated leads from the engine's checks."""
    lost: set[str] = set()
    misrouted: set[str] = set()
    duplicates: set[str] = set()
    for outcome in failed:
        for check in outcome.failures():
            if check.check == "created":
                lost.add(check.record_name)
            elif check.check in ("duplicate", RETRY_DUPLICATE_CHECK):
                duplicates.add(check.record_name)
            elif check.stage is Stage.ASSIGNMENT:
                misrouted.add(check.record_name)
    return lost, misrouted, duplicates


def summarize(
    *,
    kind: Kind,
    scenario: LoadScenario | StressScenario,
    run: RunResult,
    schedule: Schedule,
    rows: Sequence[JournalRow],
    names: Sequence[str],
    t0: float,
    steps: Sequence[StepVerdict],
    stop_reason: str | None,
    interrupted: bool,
    api_requests: int,
    notes: Sequence[str],
    observations: Mapping[str, Observation],
    lags: Mapping[str, float],
    failed: Iterable[RecordOutcome],
    clock: ClockOffset | None = None,
) -> LoadOutcome:
    """Per-stage figures, the series, the thresholds (load) or the knee (stress), from a finished run.

    Each lead's end-to-end lag is the engine's processing time (Bonzo's ``created_at`` on our clock, else
    first seen), the same figure a bulk run reports.
    """
    clock = clock or ClockOffset()
    lost, misrouted, duplicates = _verdicts_of(failed)
    arrivals = join(
        rows,
        names,
        schedule.offsets,
        observations,
        lost=lost,
        misrouted=misrouted,
        duplicates=duplicates,
        clock_offset=clock.offset if clock.trusted else 0.0,
        lags=lags,
    )
    ran = [s for s in schedule.stages if any(a.was_sent for a in arrivals if s.first <= a.seq < s.first + s.count)]
    stages = tuple(stage_figures(s, arrivals) for s in ran)
    overall = whole_run(schedule, arrivals)
    verdicts = _verdicts(scenario, stages, overall, steps)
    knee = Knee.of(steps, schedule.stages[0].rate) if isinstance(scenario, StressScenario) and schedule.stages else None
    reached = knee is not None and knee.reached
    if isinstance(scenario, StressScenario) and not reached and not interrupted and schedule.stages:
        top = schedule.stages[-1].target_rate
        why = "max_rate" if top >= scenario.max_rate else "the highest step within the run's cap"
        notes = [*notes, f"no step broke up to {top:g} leads/s ({why}): the knee is above it"]
    if interrupted:
        notes = [*notes, "interrupted: the scenario did not run to its end"]
    return LoadOutcome(
        kind=kind,
        scenario=scenario.model_dump(mode="json"),
        run=run,
        schedule=schedule,
        t0=t0,
        stages=stages,
        overall=overall,
        series=tuple(time_series(schedule, arrivals, t0)),
        verdicts=tuple(verdicts),
        steps=tuple(steps),
        knee=knee,
        planned=len(schedule.offsets),
        sent=sum(1 for a in arrivals if a.was_sent),
        dropped=sum(1 for a in arrivals if a.dropped),
        cancelled=len(schedule.offsets) - sum(1 for a in arrivals if a.was_sent or a.dropped),
        api_requests_while_loading=api_requests,
        stop_reason=stop_reason,
        interrupted=interrupted,
        notes=tuple(notes),
    )


def _verdicts(
    scenario: LoadScenario | StressScenario,
    stages: Sequence[StageFigures],
    overall: StageFigures,
    steps: Sequence[StepVerdict],
) -> list[ThresholdVerdict]:
    """Load: the scenario's thresholds over the whole run and per stage. Stress: the knee against
    ``min_knee_rate``, and every sustained step held to correctness (nothing lost, misrouted, duplicated)."""
    if not isinstance(scenario, StressScenario):
        verdicts = list(stage_verdicts(overall, scenario.thresholds))
        for figures in stages:
            verdicts.extend(_named(figures.stage, stage_verdicts(figures, scenario.thresholds)))
        return verdicts
    verdicts = []
    sustained = sustained_rate(steps)
    if steps and sustained is None:  # the first step broke: no knee was measured, whatever else held
        first = steps[0].rate
        verdicts.append(ThresholdVerdict("first_step_sustained", first, 0.0, False))
    if scenario.min_knee_rate is not None:
        actual = sustained or 0.0
        verdicts.append(ThresholdVerdict("knee_rate", scenario.min_knee_rate, actual, actual >= scenario.min_knee_rate))
    kept = {s.step for s in steps if not s.broken}
    correctness = LoadThresholds(hook_p95_ms=None, e2e_lag_p95_s=None, error_rate=None, dropped_rate=None)
    for figures in stages:
        if figures.stage in kept:
            verdicts.extend(_named(figures.stage, stage_verdicts(figures, correctness)))
    return verdicts


def _named(stage: int, verdicts: Sequence[ThresholdVerdict]) -> list[ThresholdVerdict]:
    return [dataclasses.replace(v, name=f"stage {stage}: {v.name}") for v in verdicts]
