"""Load statistics: each arrival joined to what Bonzo showed, per-stage figures and per-second series.

Hook latency is measured from each lead's *intended* send time (a stalled sender cannot hide a
stall); end-to-end lag is the prospect's ``created_at`` (Bonzo's clock; first seen through the API
where Bonzo gives none) minus the time the POST was sent.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bonzo_bulk.bonzo.view import ProspectView
from bonzo_bulk.load.child import JournalRow
from bonzo_bulk.load.scenario import LoadThresholds
from bonzo_bulk.load.schedule import Schedule, StageWindow
from bonzo_bulk.models import Observation, ThresholdVerdict


def created_epoch(observation: Observation | None, clock_offset: float = 0.0) -> float | None:
    """When Bonzo created the record's prospect, on our clock: its ``created_at`` less Bonzo's clock offset
    (server minus local), else when it was first seen."""
    if observation is None or not observation.found:
        return None
    first = min(observation.prospects, key=lambda p: int(p.get("id") or 0))
    created = ProspectView(first).created
    if created is not None:
        return created[0].timestamp() - clock_offset
    return observation.first_seen_at.timestamp() if observation.first_seen_at else None


SENDER_ERRORS = frozenset({"closed"})
"""Journal categories of failures in the sender itself: ``closed``, a pooled keep-alive connection the server had
already closed when the sender reused it (geventhttpclient's ``HTTPConnectionClosed``). They say nothing about
the system under load, so they never count as its errors nor set a knee; they are reported apart."""


@dataclass(frozen=True, slots=True)
class Arrival:
    """One planned lead through the run: when it was meant to go, what the hook said, when Bonzo had it."""

    seq: int
    record_name: str
    offset: float
    intended: float
    sent: float | None
    answered: float | None
    status: int | None
    error_category: str | None
    created: float | None = None
    """When Bonzo created it, on our clock (for the backlog and the stress slope): sent plus the upper end of the
    engine's processing-time interval where known, else `created_at` less the clock offset, else first seen."""
    lag: float | None = None
    """The engine's processing time of the lead (:func:`bonzo_bulk.judge.timing.processing_time`), when known."""
    lost: bool = False
    misrouted: bool = False
    duplicate: bool = False

    @property
    def was_sent(self) -> bool:
        return self.sent is not None

    @property
    def dropped(self) -> bool:
        return self.error_category == "dropped"

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def sender_error(self) -> bool:
        """Sent, then failed in our own sender, not in the system under load (:data:`SENDER_ERRORS`)."""
        return self.error_category in SENDER_ERRORS

    @property
    def failed(self) -> bool:
        """Sent and refused or unanswered by the system under load (a sender's own error is not its failure)."""
        return self.was_sent and not self.accepted and not self.sender_error

    @property
    def hook_ms(self) -> float | None:
        """Answer time from the intended send time (coordinated-omission safe)."""
        return None if self.answered is None else (self.answered - self.intended) * 1000

    @property
    def lag_s(self) -> float | None:
        """End-to-end lag: the engine's processing time where given, else created in Bonzo minus sent."""
        if self.lag is not None:
            return self.lag
        return None if self.created is None or self.sent is None else self.created - self.sent


def join(
    rows: Iterable[JournalRow],
    names: Sequence[str],
    offsets: Sequence[float],
    observations: Mapping[str, Observation],
    *,
    lost: Iterable[str] = (),
    misrouted: Iterable[str] = (),
    duplicates: Iterable[str] = (),
    clock_offset: float = 0.0,
    lags: Mapping[str, float] | None = None,
) -> list[Arrival]:
    """Arrivals from journal rows, the records' names and offsets, and what the API showed (``lags``: the
    engine's processing time per record — its interval's upper end — which wins over ``created_at - sent``
    for the lag and for when the lead was created)."""
    lost_set, misrouted_set, dup_set = set(lost), set(misrouted), set(duplicates)
    arrivals = []
    for row in rows:
        name = names[row.seq]
        lag = (lags or {}).get(name) if row.sent is not None else None
        # The engine's interval (its upper end) wins: a naive created_at is not read as UTC here either.
        created = (
            row.sent + lag
            if row.sent is not None and lag is not None
            else created_epoch(observations.get(name), clock_offset)
            if row.sent is not None
            else None
        )
        arrivals.append(
            Arrival(
                seq=row.seq,
                record_name=name,
                offset=offsets[row.seq],
                intended=row.intended,
                sent=row.sent,
                answered=row.answered,
                status=row.status,
                error_category=row.error_category,
                created=created,
                lag=lag,
                lost=name in lost_set,
                misrouted=name in misrouted_set,
                duplicate=name in dup_set,
            )
        )
    return sorted(arrivals, key=lambda a: a.seq)


def _p(values: Sequence[float], percentile: float) -> float | None:
    """The exact nearest-rank percentile, rounded to microseconds (None for no values).

    >>> _p([5.0, 1.0, 3.0, 2.0, 4.0], 95), _p([], 50)
    (5.0, None)
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, math.ceil(percentile / 100 * len(ordered)) - 1)
    return round(ordered[rank], 3)


@dataclass(frozen=True, slots=True)
class StageFigures:
    """What one stage asked for and what it got."""

    stage: int
    start_s: float
    end_s: float
    target_rate: float
    achieved_rate: float
    planned: int
    sent: int
    dropped_arrivals: int
    errors: int
    error_rate: float
    hook_p50_ms: float | None
    hook_p95_ms: float | None
    hook_p99_ms: float | None
    e2e_lag_p50_s: float | None
    e2e_lag_p95_s: float | None
    e2e_lag_max_s: float | None
    created: int
    lost: int
    misrouted: int
    duplicates: int
    sender_errors: int = 0
    """Leads our own sender failed (:data:`SENDER_ERRORS`): apart from ``errors``, outside ``error_rate``."""


def stage_figures(stage: StageWindow, arrivals: Sequence[Arrival]) -> StageFigures:
    """One stage's figures, over the arrivals whose intended time falls in the stage. The achieved rate is
    how fast they were really sent: (n - 1) over the span of their send times, which drops, stalls and a
    sender falling behind all lower."""
    mine = [a for a in arrivals if stage.first <= a.seq < stage.first + stage.count]
    sent = [a for a in mine if a.was_sent]
    send_times = [a.sent for a in sent if a.sent is not None]
    span = max(send_times) - min(send_times) if len(send_times) > 1 else 0.0
    achieved = (len(send_times) - 1) / span if span > 0 else len(send_times) / (stage.duration or 1.0)
    errors = sum(1 for a in sent if a.failed)
    sender_errors = sum(1 for a in sent if a.sender_error)
    judged = len(sent) - sender_errors
    hook = [a.hook_ms for a in sent if a.hook_ms is not None and not a.sender_error]
    lags = [a.lag_s * 1000 for a in sent if a.lag_s is not None]
    lag_p50, lag_p95 = _p(lags, 50), _p(lags, 95)
    return StageFigures(
        stage=stage.index,
        start_s=round(stage.start, 3),
        end_s=round(stage.end, 3),
        target_rate=round(stage.target_rate, 3),
        achieved_rate=round(achieved, 3),
        planned=stage.count,
        sent=len(sent),
        dropped_arrivals=sum(1 for a in mine if a.dropped),
        errors=errors,
        error_rate=round(errors / judged, 4) if judged else 0.0,
        hook_p50_ms=_p(hook, 50),
        hook_p95_ms=_p(hook, 95),
        hook_p99_ms=_p(hook, 99),
        e2e_lag_p50_s=None if lag_p50 is None else round(lag_p50 / 1000, 3),
        e2e_lag_p95_s=None if lag_p95 is None else round(lag_p95 / 1000, 3),
        e2e_lag_max_s=round(max(lags) / 1000, 3) if lags else None,
        created=sum(1 for a in sent if a.created is not None),
        lost=sum(1 for a in sent if a.lost),
        misrouted=sum(1 for a in sent if a.misrouted),
        duplicates=sum(1 for a in sent if a.duplicate),
        sender_errors=sender_errors,
    )


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One second of the run."""

    t: float
    target_rate: float
    achieved_rate: float
    dropped: int
    errors: int
    hook_p95_ms: float | None
    e2e_lag_p95_s: float | None
    backlog: int


def time_series(schedule: Schedule, arrivals: Sequence[Arrival], t0: float, *, step: float = 1.0) -> list[SeriesPoint]:
    """Per-second points: target vs achieved rate, drops, errors, hook p95, lag p95 (by send time), backlog.

    The backlog at a moment is the leads the hook had accepted by then that Bonzo had not yet created.
    """
    sent = [a for a in arrivals if a.sent is not None]
    last = max([schedule.duration, *((a.answered or a.sent or t0) - t0 for a in sent)], default=0.0)
    buckets = max(1, math.ceil(last / step))
    accepted_at = sorted(a.sent - t0 for a in sent if a.accepted and a.sent is not None)
    created_at = sorted(a.created - t0 for a in sent if a.accepted and a.created is not None)
    by_bucket: dict[int, list[Arrival]] = {}
    for a in sent:
        assert a.sent is not None
        by_bucket.setdefault(min(buckets - 1, int((a.sent - t0) // step)), []).append(a)
    dropped: dict[int, int] = {}
    for a in arrivals:
        if a.dropped:
            index = min(buckets - 1, int(a.offset // step))
            dropped[index] = dropped.get(index, 0) + 1
    points = []
    for index in range(buckets):
        mine = by_bucket.get(index, [])
        hook = [a.hook_ms for a in mine if a.hook_ms is not None]
        lags = [a.lag_s * 1000 for a in mine if a.lag_s is not None]
        end = (index + 1) * step
        lag95 = _p(lags, 95)
        points.append(
            SeriesPoint(
                t=round(index * step, 3),
                target_rate=round(schedule.target_rate_at(index * step + step / 2), 3),
                achieved_rate=round(len(mine) / step, 3),
                dropped=dropped.get(index, 0),
                errors=sum(1 for a in mine if a.failed),
                hook_p95_ms=_p(hook, 95),
                e2e_lag_p95_s=None if lag95 is None else round(lag95 / 1000, 3),
                backlog=bisect.bisect_right(accepted_at, end) - bisect.bisect_right(created_at, end),
            )
        )
    return points


def stage_verdicts(figures: StageFigures, thresholds: LoadThresholds) -> list[ThresholdVerdict]:
    """The scenario's thresholds applied to one stage (or to the whole run's figures)."""
    verdicts: list[ThresholdVerdict] = []

    def upper(name: str, limit: float | None, actual: float | None) -> None:
        if limit is not None and actual is not None:
            verdicts.append(ThresholdVerdict(name, limit, actual, actual <= limit, "<="))

    sent_or_dropped = figures.sent + figures.dropped_arrivals
    dropped_rate = figures.dropped_arrivals / sent_or_dropped if sent_or_dropped else 0.0
    upper("hook_p95_ms", thresholds.hook_p95_ms, figures.hook_p95_ms)
    upper("e2e_lag_p95_s", thresholds.e2e_lag_p95_s, figures.e2e_lag_p95_s)
    upper("error_rate", thresholds.error_rate, figures.error_rate)
    upper("dropped_rate", thresholds.dropped_rate, round(dropped_rate, 4))
    upper("lost", None if thresholds.lost is None else float(thresholds.lost), float(figures.lost))
    upper("misrouted", None if thresholds.misrouted is None else float(thresholds.misrouted), float(figures.misrouted))
    upper(
        "duplicates", None if thresholds.duplicates is None else float(thresholds.duplicates), float(figures.duplicates)
    )
    return verdicts


def whole_run(schedule: Schedule, arrivals: Sequence[Arrival]) -> StageFigures:
    """The whole run as one stage (index -1)."""
    window = StageWindow(-1, 0.0, schedule.duration or 1.0, 0.0, 0.0, 0, len(schedule.offsets))
    figures = stage_figures(window, arrivals)
    planned_rate = len(schedule.offsets) / schedule.duration if schedule.duration else 0.0
    return dataclasses.replace(figures, target_rate=round(planned_rate, 3))
