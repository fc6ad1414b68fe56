"""How Bonzo's ``created_at`` maps onto our clock: a run-level fact, learned once from every record before judging.

Every record's creation lies between the moment it was sent and the moment it was first seen, both on our
clock. A stamp is ``our clock + shift``: for a stamp with an offset or ``Z`` the shift is Bonzo's clock
offset, which the API's ``Date`` headers bound (:mod:`bonzo_bulk.bonzo.clock`); for a naive stamp it is
that plus the UTC offset of the zone the stamp is written in, which nothing tells us. So each record
bounds the shift to ``[stamp - first seen, stamp - sent]``, and the run's records together to the
intersection of those windows.

A zone's UTC offset is a whole quarter-hour. With the ``Date`` headers' bound on the clock offset, a
window narrower than that names exactly one offset; otherwise the evidence is not enough, and
processing times fall back to first seen (:mod:`bonzo_bulk.judge.timing`). A zone pinned by the contract
(``contract.created_at.zone``) is used when the evidence allows it; one the evidence contradicts is a
diagnosis, and the evidence decides. The ``timezone`` the prospects (or their owners) carry only names a
learned offset (``America/Chicago has it``); it is never evidence of its own, as nothing says Bonzo writes
``created_at`` in it.

Example::

    evidence = StampEvidence()
    for delivery, observation in records:
        evidence.add(delivery, observation)
    mapping = evidence.mapping(clock, pin=None)
    mapping.shift(stamp)          # (low, high) seconds: our time = stamp - shift, or None
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bonzo_bulk.bonzo.clock import ClockOffset
from bonzo_bulk.bonzo.view import ProspectView, Stamp
from bonzo_bulk.config.contract import CreatedAtPin
from bonzo_bulk.models import DeliveryResult, Observation

NOTE = "created_at"
"""Every note this module writes starts with it (what ``calibrate`` reports)."""
QUARTER_HOUR = 900.0
"""Seconds: every UTC offset in use is a multiple of it."""
OFFSET_RANGE = (-12 * 3600.0, 14 * 3600.0)
"""The UTC offsets zones use, in seconds."""


def sent_time(delivery: DeliveryResult) -> datetime:
    """When the accepted attempt left (retries before it do not count as processing)."""
    if delivery.answered_at is not None:
        return delivery.answered_at - timedelta(milliseconds=delivery.latency_ms)
    return delivery.sent_at


def utc_offset_text(seconds: float) -> str:
    """``-21600`` -> ``UTC-06:00``."""
    sign = "-" if seconds < 0 else "+"
    minutes = round(abs(seconds) / 60)
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _offsets_text(candidates: list[float], low: float, high: float) -> str:
    """``at UTC-06:00`` (one whole quarter-hour fits) or ``between UTC-07:12 and UTC-04:48``."""
    if len(candidates) == 1:
        return f"at {utc_offset_text(candidates[0])}"
    return f"between {utc_offset_text(low)} and {utc_offset_text(high)}"


@dataclass
class Window:
    """An interval narrowed by intersection, one record at a time."""

    low: float = -math.inf
    high: float = math.inf
    records: int = 0

    def add(self, low: float, high: float) -> None:
        self.low, self.high = max(self.low, low), min(self.high, high)
        self.records += 1

    @property
    def empty(self) -> bool:
        return self.low > self.high

    def __and__(self, other: tuple[float, float]) -> tuple[float, float] | None:
        low, high = max(self.low, other[0]), min(self.high, other[1])
        return (low, high) if low <= high else None


@dataclass(frozen=True)
class StampMapping:
    """What a run learned about ``created_at``: the shift of each kind of stamp onto our clock, and why."""

    aware: tuple[float, float] | None = None
    """Seconds a stamp with an offset is ahead of our clock (Bonzo's clock offset), or None when not usable."""
    naive: tuple[float, float] | None = None
    """Seconds a naive stamp (read as UTC) is ahead of our clock (zone offset + clock offset), or None."""
    zone: str | None = None
    """The UTC offset naive stamps are written in, when learned or pinned (``UTC-06:00``)."""
    style: str | None = None
    """How the stamps are written (``naive (no offset), whole seconds``)."""
    notes: tuple[str, ...] = ()
    pin_contradiction: str | None = None
    """Set when the contract pins a zone the evidence rules out: the cause, for a diagnosis."""

    def shift(self, stamp: Stamp) -> tuple[float, float] | None:
        """Seconds the stamp is ahead of our clock (our time = stamp - shift), or None when it is not known."""
        return self.naive if stamp.naive else self.aware


@dataclass
class StampEvidence:
    """Every record's bound on the shift of its ``created_at``, gathered once per run before judging."""

    naive: Window = field(default_factory=Window)
    aware: Window = field(default_factory=Window)
    styles: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    carried: dict[str, int] = field(default_factory=dict)
    """IANA zones the prospects (or their owners) carry in ``timezone``, and how many: names for a learned offset."""
    at: datetime | None = None
    """When the first record was sent (a pinned zone's offset is taken then)."""

    def add(self, delivery: DeliveryResult | None, observation: Observation | None) -> None:
        """Narrow the shift with one record (records not delivered, not found or duplicated say nothing)."""
        if delivery is None or not delivery.accepted or observation is None or observation.first_seen_at is None:
            return
        if len(observation.prospects) != 1:
            return  # a duplicate's own first sighting is not recorded, so it bounds nothing
        raw = observation.prospects[0]
        owner = raw.get("assigned_user")
        for zone in (raw.get("timezone"), owner.get("timezone") if isinstance(owner, dict) else None):
            if isinstance(zone, str) and zone:
                self.carried[zone] = self.carried.get(zone, 0) + 1
        stamp = ProspectView(raw).created_stamp
        if stamp is None:
            self.missing += 1
            return
        sent = sent_time(delivery)
        self.at = sent if self.at is None else min(self.at, sent)
        self.styles[stamp.style] = self.styles.get(stamp.style, 0) + 1
        window = self.naive if stamp.naive else self.aware
        window.add(stamp.earliest - observation.first_seen_at.timestamp(), stamp.latest - sent.timestamp())

    def mapping(self, clock: ClockOffset, pin: CreatedAtPin | None = None) -> StampMapping:
        """What the evidence says about each kind of stamp (and about a pinned zone)."""
        notes: list[str] = []
        style = max(self.styles, key=lambda s: self.styles[s]) if self.styles else None
        if style is not None:
            kinds = "; ".join(f"{n} {s}" for s, n in sorted(self.styles.items()))
            notes.append(f"created_at format: ISO 8601 — {kinds}")
        elif self.missing:
            notes.append(f"created_at: none usable on {self.missing} record(s); processing times are first seen")
        aware = self._aware(clock, notes)
        naive, zone, contradiction = self._naive(clock, pin, notes)
        return StampMapping(aware, naive, zone, style, tuple(notes), contradiction)

    def _aware(self, clock: ClockOffset, notes: list[str]) -> tuple[float, float] | None:
        window = self.aware
        if not window.records:
            return None
        if not clock.known or clock.low is None or clock.high is None:
            notes.append(f"created_at (with offset): not used, Bonzo's clock is {clock.describe()}")
            return None
        shift = window & (clock.low, clock.high)
        if shift is None:
            notes.append(
                f"created_at (with offset) contradicts the evidence: {window.records} records put Bonzo's clock "
                f"at [{window.low:+.3f}, {window.high:+.3f}] s, its Date headers at [{clock.low:+.3f}, "
                f"{clock.high:+.3f}] s; processing times are first seen"
            )
            return None
        notes.append(f"created_at (with offset): used as given, Bonzo's clock {shift[0]:+.3f} to {shift[1]:+.3f} s")
        return shift

    def _naive(
        self, clock: ClockOffset, pin: CreatedAtPin | None, notes: list[str]
    ) -> tuple[tuple[float, float] | None, str | None, str | None]:
        window = self.naive
        if not window.records:
            return None, None, None
        fallback = "processing times are first seen"
        if window.empty:
            notes.append(
                f"created_at (naive): {window.records} records do not agree on one zone (no single offset puts every "
                f"stamp between its send and its first sighting); {fallback}"
            )
            return None, None, None
        if not clock.known or clock.low is None or clock.high is None:
            notes.append(
                f"created_at (naive): its zone cannot be told from Bonzo's clock offset, which is {clock.describe()}; "
                f"{fallback}"
            )
            return None, None, None
        low, high = window.low - clock.high, window.high - clock.low
        candidates = [
            k * QUARTER_HOUR
            for k in range(math.ceil(low / QUARTER_HOUR), math.floor(high / QUARTER_HOUR) + 1)
            if OFFSET_RANGE[0] <= k * QUARTER_HOUR <= OFFSET_RANGE[1]
        ]
        contradiction = None
        if pin is not None:
            at = self.at or datetime.now(UTC)
            delta = at.astimezone(pin.tz).utcoffset()
            pinned = delta.total_seconds() if delta is not None else 0.0
            if low <= pinned <= high:
                return self._naive_at(pinned, f"{pin.zone} ({utc_offset_text(pinned)}), as pinned", clock, notes)
            contradiction = (
                f"the contract pins created_at to {pin.zone} ({utc_offset_text(pinned)}), but {window.records} records "
                f"put its zone offset {_offsets_text(candidates, low, high)}"
            )
            notes.append(f"created_at (naive): {contradiction}; the evidence decides")
        if len(candidates) != 1:
            why = "no zone offset fits" if not candidates else f"{len(candidates)} zone offsets fit"
            notes.append(
                f"created_at (naive): not enough evidence ({why}: the records put it "
                f"{_offsets_text(candidates, low, high)}); {fallback}"
            )
            return None, None, contradiction
        shift, zone, _ = self._naive_at(candidates[0], f"{utc_offset_text(candidates[0])}, learned", clock, notes)
        return shift, zone, contradiction

    def _naive_at(
        self, offset: float, how: str, clock: ClockOffset, notes: list[str]
    ) -> tuple[tuple[float, float] | None, str | None, str | None]:
        shift = self.naive & (offset + (clock.low or 0.0), offset + (clock.high or 0.0))
        if shift is None:  # the candidate came from this window, so only a pin can miss it
            notes.append(f"created_at (naive) in {how}: contradicted by the records; processing times are first seen")
            return None, None, None
        notes.append(
            f"created_at (naive): zone {how}{self._carried_text(offset)} from {self.naive.records} records; stamps are "
            f"{shift[0] - offset:+.3f} to {shift[1] - offset:+.3f} s off our clock beyond the zone "
            f"(pin it with contract: {{created_at: {{zone: '{utc_offset_text(offset)[3:]}'}}}} or the zone's IANA name)"
        )
        return shift, utc_offset_text(offset), None

    def _carried_text(self, offset: float) -> str:
        """`` — America/Chicago, the timezone 20 prospects carry, has it`` (names only: never evidence of its own)."""
        at = self.at or datetime.now(UTC)
        fits: list[str] = []
        others: list[str] = []
        for zone, count in sorted(self.carried.items(), key=lambda item: -item[1]):
            try:
                delta = at.astimezone(ZoneInfo(zone)).utcoffset()
            except (ZoneInfoNotFoundError, ValueError):
                continue
            (fits if delta is not None and delta.total_seconds() == offset else others).append(f"{zone} ({count})")
        if fits:
            return f" — the prospects' timezone {', '.join(fits)} has it"
        if others:
            return f" — not the prospects' timezone {', '.join(others)}"
        return ""
