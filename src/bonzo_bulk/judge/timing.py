"""Processing time, computed once per record: an interval ``[low, high]`` seconds that contains the true lag.

The spec defines processing time as ``prospect.created_at − webhook sent time``. ``created_at`` is read
through what the run learned about it (:mod:`bonzo_bulk.judge.stamps`: its zone, Bonzo's clock offset, the
stamp's resolution), and the interval it gives is cut to what is certain anyway: the prospect was created
after the lead was sent and before it was first seen. When ``created_at`` cannot be used, the interval is
first seen's: from the last poll of the same user's list that read as deep as the page the record was
found on (when it was not there yet) to the poll that found it.

Every verdict on time reads the upper end (:attr:`ProcessingTime.seconds`), so a verdict never claims more
speed than the evidence shows, and never depends on a guess about a zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bonzo_bulk.bonzo.view import ProspectView
from bonzo_bulk.judge.stamps import StampMapping, sent_time
from bonzo_bulk.models import (
    DeliveryResult,
    LatencySummary,
    Observation,
    PhaseKind,
    ProcessingTime,
    TimingWidths,
)

__all__ = ["describe_widths", "processing_time", "sent_time", "timing_widths"]


def processing_time(
    delivery: DeliveryResult | None, observation: Observation | None, stamps: StampMapping
) -> ProcessingTime | None:
    """The processing time of one delivered, found record (None when either is missing)."""
    if delivery is None or not delivery.accepted or observation is None or not observation.found:
        return None
    if observation.first_seen_at is None:
        return None
    sent = sent_time(delivery).timestamp()
    seen = observation.first_seen_at.timestamp()
    visible_after = seen - sent
    stamp = ProspectView(observation.oldest_first()[0]).created_stamp
    shift = stamps.shift(stamp) if stamp is not None else None
    if stamp is not None and shift is not None:
        low = max(sent, stamp.earliest - shift[1])
        high = min(seen, stamp.latest - shift[0])
        if low <= high:
            return ProcessingTime(round(low - sent, 6), round(high - sent, 6), "created_at", visible_after)
    gap = observation.poll_gap
    not_yet = max(sent, seen - gap) if gap is not None else sent
    return ProcessingTime(round(not_yet - sent, 6), round(max(0.0, visible_after), 6), "first_seen", visible_after)


def timing_widths(widths: Mapping[str, LatencySummary]) -> tuple[TimingWidths, ...]:
    """Per source, how many records and how wide their intervals, from the widths' percentiles (in ms)."""
    return tuple(
        TimingWidths(source, summary.count, round(summary.p50_ms / 1000, 3), round(summary.max_ms / 1000, 3))
        for source, summary in sorted(widths.items())
        if summary.count
    )


def describe_widths(kind: PhaseKind, widths: Iterable[TimingWidths]) -> str:
    """The run's note on one phase's processing times: each source, its records and its interval widths."""
    parts = [w.text for w in widths]
    return f"processing time [{kind}], upper ends judged: " + ("; ".join(parts) if parts else "no record was created")
