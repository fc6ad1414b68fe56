"""The clock offset from Date headers and processing time from Bonzo's created_at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import formatdate

from bonzo_bulk.bonzo.clock import ClockOffset, ClockTracker
from bonzo_bulk.judge.timing import processing_time
from bonzo_bulk.models import DeliveryResult, Observation

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_date_headers_bound_the_offset() -> None:
    tracker = ClockTracker()
    base = T0.timestamp()
    # The server's clock runs 5.3 s ahead; answers arrive 20 ms after they leave.
    for step in range(40):
        sent = base + step * 0.27
        server = sent + 5.3 + 0.01
        tracker.observe(formatdate(int(server), usegmt=True), sent, sent + 0.02)
    estimate = tracker.estimate
    assert estimate.trusted
    assert estimate.low is not None and estimate.high is not None
    assert estimate.low - 0.02 <= 5.3 <= estimate.high + 0.02
    assert abs(estimate.offset - 5.3) <= estimate.uncertainty + 0.02


def test_no_date_header_means_unknown() -> None:
    tracker = ClockTracker()
    tracker.observe(None, 0.0, 1.0)
    assert not tracker.estimate.known and not tracker.estimate.trusted


def _delivery(sent: datetime) -> DeliveryResult:
    return DeliveryResult("r", 200, 1, 10.0, 10.0, sent, sent + timedelta(milliseconds=10))


def _observation(created_at: str | None, first_seen: datetime, gap: float) -> Observation:
    prospect = {"id": 1} if created_at is None else {"id": 1, "created_at": created_at}
    return Observation("r", (prospect,), (1,), first_seen, 3, gap)


def test_processing_time_comes_from_created_at_not_from_polling() -> None:
    # Created 1.5 s after sending, but first seen only 51 s later (the API was rate limiting).
    created = (T0 + timedelta(seconds=1.5)).isoformat().replace("+00:00", "Z")
    timing = processing_time(
        _delivery(T0), _observation(created, T0 + timedelta(seconds=51), 50.0), ClockOffset(-0.1, 0.1, 9)
    )
    assert timing is not None
    assert timing.source == "created_at"
    assert abs(timing.seconds - 1.5) <= timing.resolution
    assert timing.visible_after is not None and timing.visible_after > 50


def test_whole_second_stamps_say_so_in_the_resolution() -> None:
    created = (T0 + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    timing = processing_time(_delivery(T0), _observation(created, T0 + timedelta(seconds=4), 1.0), ClockOffset(0, 0, 5))
    assert timing is not None and timing.source == "created_at" and timing.resolution >= 0.5


def test_without_created_at_first_seen_is_an_upper_bound_with_the_poll_gap() -> None:
    timing = processing_time(_delivery(T0), _observation(None, T0 + timedelta(seconds=3), 1.0), ClockOffset(0, 0, 5))
    assert timing is not None
    assert timing.source == "first_seen" and timing.resolution == 1.0
    assert 2.9 < timing.seconds < 3.1


def test_untrusted_clock_falls_back_to_first_seen() -> None:
    created = (T0 + timedelta(seconds=1)).isoformat()
    timing = processing_time(_delivery(T0), _observation(created, T0 + timedelta(seconds=3), 1.0), ClockOffset())
    assert timing is not None and timing.source == "first_seen"


def test_created_at_after_first_seen_is_not_believed() -> None:
    created = (T0 + timedelta(seconds=30)).isoformat()
    timing = processing_time(_delivery(T0), _observation(created, T0 + timedelta(seconds=3), 1.0), ClockOffset(0, 0, 5))
    assert timing is not None and timing.source == "first_seen"


def test_synchronised_clocks_behind_a_cached_date_get_no_correction() -> None:
    tracker = ClockTracker()
    base = T0.timestamp()
    for step in range(20):
        sent = base + step * 0.3
        stale = sent - 0.8  # the server's Date header lags its (correct) clock by up to a second
        tracker.observe(formatdate(int(stale), usegmt=True), sent, sent + 0.01)
    estimate = tracker.estimate
    assert estimate.known and estimate.offset == 0.0
    assert "none measurable" in estimate.describe()
