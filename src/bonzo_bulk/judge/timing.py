"""Processing time, computed once per record: Bonzo's ``created_at`` minus the moment the lead was sent.

The spec defines processing time as ``prospect.created_at − webhook sent time``. ``created_at`` is
on Bonzo's clock, so it is moved onto ours with the offset bounded from the API's ``Date`` headers
(:mod:`bonzo_bulk.bonzo.clock`). When Bonzo gives no usable ``created_at`` or the clocks cannot be
related, the time the record was first seen through the API is used instead: an upper bound whose
resolution is the gap between the poll that found it and the one before. Either way the figure
says which it is and how fine it is, so a verdict never depends on how fast we were allowed to poll.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bonzo_bulk.bonzo.clock import ClockOffset
from bonzo_bulk.bonzo.view import ProspectView
from bonzo_bulk.models import DeliveryResult, Observation, ProcessingTime


def sent_time(delivery: DeliveryResult) -> datetime:
    """When the accepted attempt left (retries before it do not count as processing)."""
    if delivery.answered_at is not None:
        return delivery.answered_at - timedelta(milliseconds=delivery.latency_ms)
    return delivery.sent_at


def processing_time(
    delivery: DeliveryResult | None, observation: Observation | None, clock: ClockOffset
) -> ProcessingTime | None:
    """The processing time of one delivered, found record (None when either is missing)."""
    if delivery is None or not delivery.accepted or observation is None or not observation.found:
        return None
    sent = sent_time(delivery)
    visible_after = (
        (observation.first_seen_at - sent).total_seconds() if observation.first_seen_at is not None else None
    )
    created = ProspectView(observation.prospects[0]).created
    if created is not None and clock.trusted:
        instant, stamp_resolution = created
        # A whole-second stamp was cut down from somewhere in the second that follows it.
        middle = stamp_resolution / 2 if stamp_resolution >= 1 else 0.0
        seconds = (instant - sent).total_seconds() + middle - clock.offset
        resolution = (middle or stamp_resolution) + clock.uncertainty
        if seconds >= -resolution and (visible_after is None or seconds <= visible_after + resolution):
            return ProcessingTime(max(0.0, seconds), "created_at", round(resolution, 3), visible_after)
    if visible_after is None:
        return None
    gap = observation.poll_gap if observation.poll_gap is not None else 0.0
    return ProcessingTime(max(0.0, visible_after), "first_seen", round(gap, 3), visible_after)
