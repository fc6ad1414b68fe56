"""Settle: poll Bonzo's API until every expected record is visible and stable, or a deadline passes.

Never a blind sleep. Each poll lists the test users' prospects On-Behalf-Of each user, narrowed by
``search`` to the run's own marker, and pages only as far as it must: once a page holds a prospect
seen in an earlier poll, everything older has been seen too. That holds when a list comes newest
first, as the sandbox's does; Bonzo's order is not documented, so it is checked on every page, and a
user whose list is not newest first is listed in full from then on. Only users with records still
outstanding are polled, with a sweep over every user every few polls and at the end (to catch
misrouted records and late duplicates). Poll intervals grow while nothing changes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from bonzo_bulk.bonzo.clock import ClockOffset, ClockTracker
from bonzo_bulk.errors import BudgetExhausted, RateLimited
from bonzo_bulk.models import DeliveryResult, Observation, PlannedRecord, Prospect, User
from bonzo_bulk.settings import PollingSettings

log = logging.getLogger(__name__)

FULL_SWEEP_EVERY = 3


class ProspectPageLike(Protocol):
    @property
    def data(self) -> Sequence[Prospect]: ...
    @property
    def current_page(self) -> int: ...
    @property
    def last_page(self) -> int: ...
    @property
    def per_page(self) -> int: ...


class ProspectLister(Protocol):
    """The part of :class:`bonzo_bulk.bonzo.BonzoClient` the poller needs."""

    requests_made: int
    deadline: float | None
    rate_limited_seconds: float

    @property
    def clock(self) -> ClockTracker: ...

    def list_prospects(
        self,
        *,
        on_behalf_of: int | str,
        search: str | None = None,
        page: int = 1,
        per_page: int | None = None,
        order: str | None = None,
    ) -> Awaitable[Any]: ...


@dataclass
class SettleOutcome:
    """What settling found: one observation per record that was seen, plus stray prospects."""

    observations: dict[str, Observation]
    unexpected: list[Prospect]
    settled: bool
    seconds: float
    polls: int
    api_requests: int
    clock: ClockOffset = field(default_factory=ClockOffset)
    """Bonzo's clock against ours, for processing times from ``created_at``."""
    rate_limited_seconds: float = 0.0
    """Seconds of the settle spent waiting on 429 answers."""
    stopped_early: str | None = None
    """Why polling stopped before the records settled or the deadline passed (budget, rate limit)."""


@dataclass
class _Seen:
    prospect: Prospect
    users: set[int] = field(default_factory=set)
    first_seen_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    first_poll: int = 0
    poll_gap: float | None = None


def expects_prospect(record: PlannedRecord, delivery: DeliveryResult | None) -> bool:
    """Whether a record should produce a prospect the poller must wait for."""
    if delivery is None or not delivery.accepted:
        return False
    return record.is_valid or record.expected_handling in ("fallback", "accept")


class Poller:
    """Incremental, per-user listing of a run's prospects."""

    def __init__(
        self,
        client: ProspectLister,
        records: Sequence[PlannedRecord],
        *,
        users: Sequence[User],
        search: str,
        per_page: int,
        order: str | None = None,
    ) -> None:
        self.client = client
        self.order = order
        self.marker = search.lower()
        self.users = list(users)
        self.search: str | None = search
        self.per_page = per_page
        self._by_email = {r.email.lower(): r for r in records if r.email}
        self._by_name = {r.name: r for r in records}
        self._seen: dict[int, _Seen] = {}
        self._known: dict[int, set[int]] = {u.user_id: set() for u in users}
        self._ordered: dict[int, bool] = {u.user_id: True for u in users}
        self._last_polled: dict[int, datetime] = {}
        self.polls = 0

    def record_of(self, prospect: Prospect) -> PlannedRecord | None:
        """The planned record a prospect belongs to: by email, else (records sent without one) by its
        first name — but only when it carries this run's marker, as names repeat from run to run."""
        email = str(prospect.get("email") or "").lower()
        if email and email in self._by_email:
            return self._by_email[email]
        record = self._by_name.get(str(prospect.get("first_name") or ""))
        return record if record is not None and self.carries_marker(prospect) else None

    def carries_marker(self, prospect: Prospect) -> bool:
        """Whether a prospect holds this run's marker anywhere (email tag, last name, custom field, tag)."""
        return self.marker in json.dumps(prospect, default=str).lower()

    async def poll(self, user_ids: Sequence[int]) -> int:
        """List the given users' new prospects; return how many prospects were new."""
        self.polls += 1
        counts = await asyncio.gather(*(self._poll_user(uid) for uid in user_ids))
        return sum(counts)

    async def _poll_user(self, user_id: int) -> int:
        new = 0
        page = 1
        # Only prospects known before this poll prove the rest is known: while records are being
        # created, ones seen on page 1 of this poll slide onto page 2 and must not stop the paging.
        known_before = frozenset(self._known[user_id])
        previous = self._last_polled.get(user_id)
        self._last_polled[user_id] = datetime.now(UTC)
        while True:
            result = await self.client.list_prospects(
                on_behalf_of=user_id, search=self.search, page=page, per_page=self.per_page, order=self.order
            )
            data = list(result.data)
            ids = [int(p.get("id") or 0) for p in data]
            if ids != sorted(ids, reverse=True) and self._ordered[user_id]:
                log.info("List for user %s is not newest-first; listing it in full from now on", user_id)
                self._ordered[user_id] = False
            known = self._known[user_id]
            saw_known = any(i in known_before for i in ids)
            now = datetime.now(UTC)
            for prospect_id, prospect in zip(ids, data, strict=True):
                entry = self._seen.get(prospect_id)
                if entry is None:
                    gap = (now - previous).total_seconds() if previous is not None else None
                    entry = _Seen(prospect=prospect, first_seen_at=now, first_poll=self.polls, poll_gap=gap)
                    self._seen[prospect_id] = entry
                    new += 1
                else:
                    entry.prospect = prospect
                entry.users.add(user_id)
                known.add(prospect_id)
            per_page = max(1, int(result.per_page or self.per_page))
            last_page = int(result.last_page or page)
            if not data or page >= last_page or len(data) < per_page:
                return new
            if saw_known and self._ordered[user_id]:
                return new
            page += 1

    def observations(self) -> tuple[dict[str, Observation], list[Prospect]]:
        """Group what was seen by record; prospects that match no record are unexpected."""
        grouped: dict[str, list[_Seen]] = {}
        unexpected: list[Prospect] = []
        for entry in self._seen.values():
            record = self.record_of(entry.prospect)
            if record is None:
                if self.carries_marker(entry.prospect):
                    unexpected.append(entry.prospect)
            else:
                grouped.setdefault(record.name, []).append(entry)
        observations = {
            name: Observation(
                record_name=name,
                prospects=tuple(e.prospect for e in sorted(entries, key=lambda e: int(e.prospect.get("id") or 0))),
                seen_in=tuple(sorted({u for e in entries for u in e.users})),
                first_seen_at=min(e.first_seen_at for e in entries),
                polls=self.polls,
                poll_gap=min(entries, key=lambda e: e.first_seen_at).poll_gap,
            )
            for name, entries in grouped.items()
        }
        return observations, unexpected


async def _sweep_without_search(poller: Poller, user_ids: Sequence[int], missing: int) -> None:
    """One last listing without ``search``, in case Bonzo's search does not match the run's marker
    (its behaviour is undocumented): records found only this way are real, and the user is told why."""
    marker = poller.search
    before = len(poller.observations()[0])
    poller.search = None
    await poller.poll(user_ids)
    recovered = len(poller.observations()[0]) - before
    if recovered:
        log.warning(
            "%d of %d records missing from the API's search for %r were found by listing without search: "
            "the API's search does not match the run marker, so settling took until the deadline",
            recovered,
            missing,
            marker,
        )


async def settle(
    client: ProspectLister,
    records: Sequence[PlannedRecord],
    deliveries: Mapping[str, DeliveryResult],
    *,
    users: Sequence[User],
    search: str,
    polling: PollingSettings,
    deadline_seconds: float,
    per_page: int,
    order: str | None = None,
    on_poll: Callable[[int, int], None] | None = None,
) -> SettleOutcome:
    """Poll until every expected record is visible and a full sweep shows nothing new, or the deadline.

    ``on_poll(found, expected)`` is called after each poll (for progress bars).
    """
    started = time.monotonic()
    deadline = started + deadline_seconds
    client.deadline = deadline + polling.interval
    requests_before = client.requests_made
    limited_before = client.rate_limited_seconds
    stopped_early: str | None = None
    poller = Poller(client, records, users=users, search=search, per_page=per_page, order=order)
    expected = {r.name: r for r in records if expects_prospect(r, deliveries.get(r.name))}
    all_users = [u.user_id for u in users]
    interval = polling.interval
    quiet_sweeps = 0
    settled = False

    def outstanding() -> list[PlannedRecord]:
        observed = poller.observations()[0]
        return [r for name, r in expected.items() if name not in observed]

    while True:
        await asyncio.sleep(max(0.0, min(interval, deadline - time.monotonic())))
        waiting = outstanding()
        late = time.monotonic() >= deadline
        full = not waiting or late or poller.polls % FULL_SWEEP_EVERY == FULL_SWEEP_EVERY - 1
        targets = all_users if full else sorted({r.expected_user.user_id for r in waiting})
        try:
            new = await poller.poll(targets)
        except (BudgetExhausted, RateLimited) as exc:
            stopped_early = str(exc)
            log.warning("Settling stopped early: %s", exc)
            break
        waiting = outstanding()
        if on_poll is not None:
            on_poll(len(expected) - len(waiting), len(expected))
        if not waiting:
            quiet_sweeps = quiet_sweeps + 1 if full and new == 0 else 0
            if quiet_sweeps >= polling.stable_polls:
                settled = True
                break
            interval = polling.interval
        elif new:
            interval = polling.interval
        else:
            interval = min(interval * 1.5, polling.max_interval)
        if late and full:
            if waiting and poller.search is not None:
                try:
                    await _sweep_without_search(poller, all_users, len(waiting))
                except (BudgetExhausted, RateLimited) as exc:
                    stopped_early = str(exc)
            break
        if time.monotonic() >= deadline:
            interval = 0.0
    observations, unexpected = poller.observations()
    return SettleOutcome(
        observations=observations,
        unexpected=unexpected,
        settled=settled,
        seconds=time.monotonic() - started,
        polls=poller.polls,
        api_requests=client.requests_made - requests_before,
        clock=client.clock.estimate,
        rate_limited_seconds=client.rate_limited_seconds - limited_before,
        stopped_early=stopped_early,
    )
