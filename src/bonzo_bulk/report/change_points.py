"""Change points of a series of runs: E-divisive with a Welch t-test, as Apache Otava (Hunter) runs it.

The history check (:mod:`bonzo_bulk.report.history_regression`) asks it where a figure shifted, to name the run
where it got worse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MIN_SEGMENT = 3
"""Runs on each side of a change point (a single spike is not a change; Otava #150)."""


@dataclass(frozen=True, slots=True)
class ChangePoint:
    """Where a series shifted: the first run of the new level, the levels either side, how sure."""

    index: int
    before: float
    after: float
    p_value: float


def change_points(
    values: Sequence[float], *, max_pvalue: float = 0.001, min_magnitude: float = 0.1, min_size: int = MIN_SEGMENT
) -> list[ChangePoint]:
    """Change points of a positive series by E-divisive, as Apache Otava (Hunter) runs it.

    Each segment is split where the E-divisive energy statistic (Matteson & James) peaks, on log values;
    the split is kept when Welch's t-test gives p < ``max_pvalue`` (Otava's deterministic replacement for
    the permutation test), the levels differ by ``min_magnitude`` and each side has ``min_size`` runs;
    then both sides are searched again. Levels are geometric means.

    >>> [(c.index, round(c.after / c.before, 1)) for c in change_points([10, 11, 10, 9, 10, 10, 20, 21, 19, 20])]
    [(6, 2.0)]
    """
    import numpy as np

    logs = np.log(np.asarray(values, dtype=float))
    found: list[ChangePoint] = []
    pending = [(0, len(logs))]
    while pending:
        start, end = pending.pop()
        segment = logs[start:end]
        split = _energy_split(segment, min_size)
        if split is None:
            continue
        left, right = segment[:split], segment[split:]
        p_value = _welch_p(left, right)
        before, after = math.exp(float(left.mean())), math.exp(float(right.mean()))
        if p_value < max_pvalue and max(after / before, before / after) - 1 >= min_magnitude:
            found.append(ChangePoint(start + split, before, after, p_value))
            pending += [(start, start + split), (start + split, end)]
    return sorted(found, key=lambda c: c.index)


def _energy_split(segment: Any, min_size: int) -> int | None:
    """Where the E-divisive statistic of a segment peaks (None when too short or flat)."""
    import numpy as np

    count = len(segment)
    if count < 2 * min_size or float(np.ptp(segment)) == 0.0:
        return None
    distance = np.abs(segment[:, None] - segment[None, :])
    best, best_at = -math.inf, None
    for tau in range(min_size, count - min_size + 1):
        left, right = tau, count - tau
        between = float(distance[:tau, tau:].mean())
        within_left = float(distance[:tau, :tau].sum()) / (left * (left - 1))
        within_right = float(distance[tau:, tau:].sum()) / (right * (right - 1))
        statistic = left * right / count * (2 * between - within_left - within_right)
        if statistic > best:
            best, best_at = statistic, tau
    return best_at


def _welch_p(left: Any, right: Any) -> float:
    """Two-sided p-value of Welch's t-test (0 when both sides are flat at different levels)."""
    from scipy.special import stdtr

    n1, n2 = len(left), len(right)
    v1, v2 = float(left.var(ddof=1)) / n1, float(right.var(ddof=1)) / n2
    gap = abs(float(left.mean()) - float(right.mean()))
    if v1 + v2 == 0:
        return 0.0 if gap > 0 else 1.0
    t = gap / math.sqrt(v1 + v2)
    freedom = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    return float(2 * stdtr(freedom, -t))
