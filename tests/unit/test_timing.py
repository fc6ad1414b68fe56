"""Date headers bound the clock; processing time is an interval from created_at (zone learned) or first seen."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from zoneinfo import ZoneInfo

import pytest

from bonzo_bulk.bonzo.clock import ClockOffset, ClockTracker
from bonzo_bulk.config.contract import CreatedAtPin
from bonzo_bulk.judge.diagnosis import pinned_zone_contradicted
from bonzo_bulk.judge.stamps import StampEvidence, StampMapping, utc_offset_text
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


def _observation(created_at: str | None, first_seen: datetime, gap: float | None) -> Observation:
    prospect = {"id": 1} if created_at is None else {"id": 1, "created_at": created_at}
    return Observation("r", (prospect,), (1,), first_seen, 3, gap)


def _learned(
    records: list[tuple[DeliveryResult, Observation]], clock: ClockOffset, pin: str | None = None
) -> StampMapping:
    evidence = StampEvidence()
    for delivery, observation in records:
        evidence.add(delivery, observation)
    return evidence.mapping(clock, CreatedAtPin(zone=pin) if pin else None)


def _naive_records(zone: str, lags: list[float], *, whole: bool = False) -> list[tuple[DeliveryResult, Observation]]:
    """Records sent a second apart, created ``lag`` later, stamped naive in ``zone``, seen 0.2 s after creation."""
    records = []
    for n, lag in enumerate(lags):
        sent = T0 + timedelta(seconds=n)
        created = sent + timedelta(seconds=lag)
        wall = created.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
        text = wall.strftime("%Y-%m-%dT%H:%M:%S") if whole else wall.isoformat()
        records.append((_delivery(sent), _observation(text, created + timedelta(seconds=0.2), 1.0)))
    return records


def test_processing_time_comes_from_created_at_not_from_polling() -> None:
    # Created 1.5 s after sending, but first seen only 51 s later (the API was rate limiting).
    created = (T0 + timedelta(seconds=1.5)).isoformat().replace("+00:00", "Z")
    record = (_delivery(T0), _observation(created, T0 + timedelta(seconds=51), 50.0))
    timing = processing_time(*record, _learned([record], ClockOffset(-0.1, 0.1, 9)))
    assert timing is not None
    assert timing.source == "created_at"
    assert timing.contains(1.5) and timing.width <= 0.21
    assert timing.visible_after is not None and timing.visible_after > 50


def test_whole_second_stamps_widen_the_interval_to_the_second() -> None:
    created = (T0 + timedelta(seconds=2.4)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    record = (_delivery(T0), _observation(created, T0 + timedelta(seconds=4), 1.0))
    timing = processing_time(*record, _learned([record], ClockOffset(0, 0, 5)))
    assert timing is not None and timing.source == "created_at"
    assert timing.contains(2.4) and timing.width >= 1.0


def test_without_created_at_first_seen_runs_from_the_last_poll_that_could_have_seen_it() -> None:
    timing = processing_time(_delivery(T0), _observation(None, T0 + timedelta(seconds=3), 1.0), StampMapping())
    assert timing is not None and timing.source == "first_seen"
    assert abs(timing.low - 2.0) < 1e-6 and abs(timing.high - 3.0) < 1e-6
    first_poll = processing_time(_delivery(T0), _observation(None, T0 + timedelta(seconds=3), None), StampMapping())
    assert first_poll is not None and first_poll.low == 0.0


def test_unknown_clock_falls_back_to_first_seen_and_says_so() -> None:
    created = (T0 + timedelta(seconds=1)).isoformat()
    record = (_delivery(T0), _observation(created, T0 + timedelta(seconds=3), 1.0))
    mapping = _learned([record], ClockOffset())
    timing = processing_time(*record, mapping)
    assert timing is not None and timing.source == "first_seen"
    assert any("not used" in note for note in mapping.notes)


def test_created_at_after_first_seen_is_not_believed() -> None:
    created = (T0 + timedelta(seconds=30)).isoformat()
    record = (_delivery(T0), _observation(created, T0 + timedelta(seconds=3), 1.0))
    other = (_delivery(T0), _observation((T0 + timedelta(seconds=1)).isoformat(), T0 + timedelta(seconds=3), 1.0))
    mapping = _learned([other], ClockOffset(0, 0, 5))
    timing = processing_time(*record, mapping)
    assert timing is not None and timing.source == "first_seen"


@pytest.mark.parametrize("zone", ["America/Chicago", "Asia/Kolkata", "UTC", "Australia/Eucla"])
def test_a_naive_stamp_zone_is_learned_and_every_lag_is_inside(zone: str) -> None:
    lags = [0.3 + 0.37 * n for n in range(12)]
    records = _naive_records(zone, lags)
    mapping = _learned(records, ClockOffset(-0.4, 0.6, 20))
    offset = T0.astimezone(ZoneInfo(zone)).utcoffset()
    assert offset is not None and mapping.zone == utc_offset_text(offset.total_seconds())
    for (delivery, observation), lag in zip(records, lags, strict=True):
        timing = processing_time(delivery, observation, mapping)
        assert timing is not None and timing.source == "created_at"
        assert timing.contains(lag, 1e-6), (lag, timing)


def test_a_naive_stamp_is_never_read_as_utc_when_the_evidence_says_otherwise() -> None:
    lags = [1.0 + 0.1 * n for n in range(5)]
    records = _naive_records("America/Chicago", lags, whole=True)
    mapping = _learned(records, ClockOffset(-0.5, 0.5, 20))
    assert mapping.zone == "UTC-06:00"
    for (delivery, observation), lag in zip(records, lags, strict=True):
        timing = processing_time(delivery, observation, mapping)
        assert timing is not None and timing.contains(lag, 1e-6)


def test_without_date_headers_a_naive_zone_is_not_enough_evidence() -> None:
    records = _naive_records("America/Chicago", [1.0, 1.2])
    mapping = _learned(records, ClockOffset())
    assert mapping.naive is None and any("cannot be told" in n for n in mapping.notes)
    timing = processing_time(*records[0], mapping)
    assert timing is not None and timing.source == "first_seen" and timing.contains(1.0)


def test_a_pin_the_evidence_allows_is_used_and_one_it_contradicts_is_a_diagnosis() -> None:
    records = _naive_records("America/Chicago", [1.0, 1.5, 2.0])
    kept = _learned(records, ClockOffset(-0.5, 0.5, 20), pin="America/Chicago")
    assert kept.pin_contradiction is None and kept.zone == "UTC-06:00"
    wrong = _learned(records, ClockOffset(-0.5, 0.5, 20), pin="America/New_York")
    assert wrong.pin_contradiction is not None and "America/New_York" in wrong.pin_contradiction
    assert wrong.zone == "UTC-06:00"  # the evidence decides, and says so
    diagnosis = pinned_zone_contradicted("primary", wrong.pin_contradiction, 3)
    assert diagnosis is not None and diagnosis.check == "created_at zone"


def test_stamps_that_fit_no_single_zone_fall_back_to_first_seen() -> None:
    records = _naive_records("America/Chicago", [1.0]) + _naive_records("America/New_York", [1.0])[:1]
    mapping = _learned(records, ClockOffset(-0.5, 0.5, 20))
    assert mapping.naive is None
    timing = processing_time(*records[0], mapping)
    assert timing is not None and timing.source == "first_seen"


def test_a_pinned_zone_must_be_a_zone() -> None:
    with pytest.raises(ValueError, match="not a time zone"):
        CreatedAtPin(zone="America/Chicgo")
    assert CreatedAtPin(zone="-06:00").tz.utcoffset(None) == timedelta(hours=-6)


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


def _carrying(observation: Observation, zone: str) -> Observation:
    return dataclasses.replace(observation, prospects=({**observation.prospects[0], "timezone": zone},))


def test_the_zone_the_prospects_carry_names_a_learned_offset_but_proves_nothing() -> None:
    records = _naive_records("America/Chicago", [1.0, 1.4])
    named = [
        (d, dataclasses.replace(o, prospects=({**o.prospects[0], "timezone": "America/Chicago"},))) for d, o in records
    ]
    mapping = _learned(named, ClockOffset(-0.5, 0.5, 20))
    assert any("the prospects' timezone America/Chicago (2) has it" in n for n in mapping.notes), mapping.notes
    other = [
        (d, dataclasses.replace(o, prospects=({**o.prospects[0], "timezone": "Europe/Paris"},))) for d, o in records
    ]
    mapping = _learned(other, ClockOffset(-0.5, 0.5, 20))
    assert mapping.naive is not None  # the stamps decide, not the field
    assert any("not the prospects' timezone Europe/Paris (2)" in n for n in mapping.notes), mapping.notes
