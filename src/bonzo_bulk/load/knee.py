"""The capacity knee: judge each stress step as sustained or broken, with the evidence.

A step is broken when its error rate, hook p95 or dropped arrivals pass the breaking criteria, when
its end-to-end lag keeps growing within the step (the backlog grows without bound: beyond the
system's capacity every lead waits longer than the one before), or when leads it sent are still not
visible in Bonzo ``patience`` seconds after it ended. The knee is the highest rate sustained before
the first broken step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bonzo_bulk.load.scenario import Breaking
from bonzo_bulk.load.schedule import StageWindow
from bonzo_bulk.load.stats import Arrival, stage_figures


@dataclass(frozen=True, slots=True)
class StepVerdict:
    """One stress step: what it asked for, what it got, and whether the system sustained it."""

    step: int
    rate: float
    achieved_rate: float
    sent: int
    error_rate: float
    dropped_rate: float
    hook_p95_ms: float | None
    e2e_lag_p95_s: float | None
    lag_growth: float | None
    """Seconds of lag gained per second of the step (least squares over the step's leads)."""
    lag_increase_s: float | None
    visible: int
    accepted: int
    broken: bool
    reasons: tuple[str, ...]
    sender_errors: int = 0
    """Leads our own sender failed in the step: reported, never a reason to break it."""


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x (None for fewer than 3 points or no spread in x).

    >>> slope([(0, 1.0), (1, 1.5), (2, 2.0)])
    0.5
    """
    if len(points) < 3:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread <= 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def judge_step(
    stage: StageWindow, arrivals: Sequence[Arrival], t0: float, breaking: Breaking, *, patience_spent: bool
) -> StepVerdict:
    """Judge one step from its arrivals as observed so far (``patience_spent``: no more waiting for leads)."""
    figures = stage_figures(stage, arrivals)
    mine = [a for a in arrivals if stage.first <= a.seq < stage.first + stage.count]
    accepted = [a for a in mine if a.accepted]
    visible = [a for a in accepted if a.created is not None]
    points = [(a.sent - t0, a.lag_s) for a in visible if a.sent is not None and a.lag_s is not None]
    growth = slope(points)
    increase = None if growth is None else growth * stage.duration
    attempted = figures.sent + figures.dropped_arrivals
    dropped_rate = figures.dropped_arrivals / attempted if attempted else 0.0
    reasons: list[str] = []
    if figures.error_rate > breaking.error_rate:
        reasons.append(f"error rate {figures.error_rate:.1%} > {breaking.error_rate:.1%}")
    if figures.hook_p95_ms is not None and figures.hook_p95_ms > breaking.hook_p95_ms:
        reasons.append(f"hook p95 {figures.hook_p95_ms:.0f} ms > {breaking.hook_p95_ms:g} ms")
    if dropped_rate > breaking.dropped_rate:
        reasons.append(f"{figures.dropped_arrivals} dropped arrivals ({dropped_rate:.1%})")
    growing = growth is not None and growth > breaking.lag_growth
    if growing and increase is not None and increase > breaking.min_lag_increase_s:
        reasons.append(f"lag grew {increase:.2f} s within the step ({growth:.3f} s per s): backlog growing")
    missing = len(accepted) - len(visible)
    if patience_spent and missing:
        reasons.append(f"{missing} accepted lead(s) not yet visible in Bonzo after the step")
    return StepVerdict(
        step=stage.index,
        rate=stage.target_rate,
        achieved_rate=figures.achieved_rate,
        sent=figures.sent,
        error_rate=figures.error_rate,
        dropped_rate=round(dropped_rate, 4),
        hook_p95_ms=figures.hook_p95_ms,
        e2e_lag_p95_s=figures.e2e_lag_p95_s,
        lag_growth=None if growth is None else round(growth, 4),
        lag_increase_s=None if increase is None else round(increase, 3),
        visible=len(visible),
        accepted=len(accepted),
        broken=bool(reasons),
        reasons=tuple(reasons),
        sender_errors=figures.sender_errors,
    )


def sustained_rate(verdicts: Sequence[StepVerdict]) -> float | None:
    """The highest rate sustained before the first broken step, or of every step when none broke (None if the
    first step broke).

    >>> steps = [(10, False), (20, True)]
    >>> sustained_rate([StepVerdict(i, r, r, 1, 0, 0, 1, 1, 0, 0, 1, 1, b, ()) for i, (r, b) in enumerate(steps)])
    10
    """
    knee: float | None = None
    for verdict in sorted(verdicts, key=lambda v: v.step):
        if verdict.broken:
            return knee
        knee = verdict.rate
    return knee


@dataclass(frozen=True, slots=True)
class Knee:
    """What a stress run says of its knee, stated once for the JSON, the terminal and the dashboard."""

    reached: bool
    """A step broke: the knee is measured (or below the first step)."""
    rate: float | None
    """The knee: the highest rate sustained before the first broken step; None when no step broke, or the first."""
    sustained_up_to: float | None
    """The highest rate every step up to it sustained (the knee when one was reached)."""
    first_rate: float

    @classmethod
    def of(cls, verdicts: Sequence[StepVerdict], first_rate: float) -> Knee:
        reached = any(v.broken for v in verdicts)
        sustained = sustained_rate(verdicts)
        return cls(reached, sustained if reached else None, sustained, first_rate)

    @property
    def below_first_step(self) -> bool:
        return self.reached and self.rate is None

    def sentence(self) -> str:
        """The knee in words.

        >>> Knee(True, 20.0, 20.0, 10).sentence()
        'capacity knee at ~20 leads/s: beyond it the backlog grows'
        >>> Knee(False, None, 80.0, 10).sentence()
        'no knee up to 80 leads/s: every step run was sustained'
        """
        if self.below_first_step:
            return f"knee below the first step ({self.first_rate:g} leads/s): start lower with --start-rate"
        if self.reached:
            return f"capacity knee at ~{self.rate:g} leads/s: beyond it the backlog grows"
        if self.sustained_up_to is None:
            return "no step was judged: no knee measured"
        return f"no knee up to {self.sustained_up_to:g} leads/s: every step run was sustained"
