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
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from bonzo_bulk.bonzo.clock import ClockOffset, ClockTracker
from bonzo_bulk.config.schema import PollingSettings
from bonzo_bulk.errors import BudgetExhausted, RateLimited, RedirectRefused
from bonzo_bulk.models import Observation, Prospect, User
from bonzo_bulk.settle.index import Known, SettleIndex, SettleTarget, Sighting
from bonzo_bulk.settle.reach import ListReach

log = logging.getLogger(__name__)

_STOPS_SETTLING = (BudgetExhausted, RateLimited, RedirectRefused)
"""API errors that end settling early with a verdict on what was seen (a budget, a wait past the deadline, a
redirect to another host): the records not seen by then are judged not found, and the notes say why."""

FULL_SWEEP_EVERY = 3


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


_COMPACT = json.JSONEncoder(separators=(",", ":"), default=str)


@dataclass
class SettleOutcome:
    """What settling found: what the poller saw of each record, plus stray prospects."""

    poller: Poller
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

    def observations_of(self, names: Iterable[str]) -> dict[str, Observation]:
        """The observations of a batch of records (one read of the index)."""
        return self.poller.observations(names)

    @property
    def observations(self) -> dict[str, Observation]:
        """Every record's observation at once (small runs; the engine asks a batch at a time)."""
        return self.poller.observations()

    @property
    def unexpected(self) -> list[Prospect]:
        return self.poller.unexpected()


class Poller:
    """Incremental, per-user listing of a run's prospects, matched to the sent records in a :class:`SettleIndex`."""

    def __init__(
        self,
        client: ProspectLister,
        targets: SettleIndex | Iterable[SettleTarget],
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
        self.index = targets if isinstance(targets, SettleIndex) else SettleIndex(targets)
        self._ordered: dict[int, bool] = {u.user_id: True for u in users}
        self.reach = ListReach()
        self.polls = 0

    def add(self, targets: Iterable[SettleTarget]) -> None:
        """Know more sent records (the load runner adds them while Locust sends)."""
        self.index.add_many(targets)

    def carries_marker(self, prospect: Prospect) -> bool:
        """Whether a prospect holds this run's marker anywhere (email tag, last name, custom field, tag)."""
        return self.marker in json.dumps(prospect, default=str).lower()

    @property
    def found_count(self) -> int:
        """Records with at least one prospect seen."""
        return self.index.found_count()

    async def poll(self, user_ids: Sequence[int]) -> int:
        """List the given users' new prospects; return how many prospects were new."""
        self.polls += 1
        counts = await asyncio.gather(*(self._poll_user(uid) for uid in user_ids))
        return sum(counts)

    def _records_of(self, data: Sequence[Prospect], known: Mapping[int, Known]) -> dict[int, str]:
        """The record each not-yet-matched prospect of a page belongs to: by email, else (records sent
        without one) by its first name — but only when it carries this run's marker, as names repeat."""
        loose = [p for p in data if known.get(int(p.get("id") or 0), (None,))[0] is None]
        emails = self.index.by_email([str(p.get("email") or "").lower() for p in loose])
        named = self.index.names([str(p.get("first_name") or "") for p in loose])
        matched: dict[int, str] = {}
        for prospect in loose:
            email = str(prospect.get("email") or "").lower()
            name = str(prospect.get("first_name") or "")
            if email in emails:
                matched[int(prospect.get("id") or 0)] = emails[email]
            elif name in named and self.carries_marker(prospect):
                matched[int(prospect.get("id") or 0)] = name
        return matched

    async def _poll_user(self, user_id: int) -> int:
        new = 0
        page = 1
        # Only prospects known before this poll prove the rest is known: while records are being
        # created, ones seen on page 1 of this poll slide onto page 2 and must not stop the paging.
        poll = self.polls
        started = time.time()
        while True:
            result = await self.client.list_prospects(
                on_behalf_of=user_id, search=self.search, page=page, per_page=self.per_page, order=self.order
            )
            data = list(result.data)
            ids = [int(p.get("id") or 0) for p in data]
            if ids != sorted(ids, reverse=True) and self._ordered[user_id]:
                log.info("List for user %s is not newest-first; listing it in full from now on", user_id)
                self._ordered[user_id] = False
            now = time.time()
            previous = self.reach.not_there_since((user_id, self.search), page)
            known = self.index.seen(ids)
            matched = self._records_of(data, known)
            saw_known = False
            rows: list[Sighting] = []
            for prospect_id, prospect in zip(ids, data, strict=True):
                entry = known.get(prospect_id)
                record: str | None
                users: tuple[int, ...]
                if entry is None:
                    new += 1
                    record, users, first_poll = None, (), poll
                    gap = now - previous if previous is not None else None
                else:
                    record, users, first_poll = entry
                    saw_known = saw_known or (first_poll < poll and user_id in users)
                    gap = None
                record = record or matched.get(prospect_id)
                stray = record is None and self.carries_marker(prospect)
                raw = _COMPACT.encode(prospect).encode() if record is not None or stray else None
                users = users if user_id in users else (*users, user_id)
                rows.append((prospect_id, record, int(stray), ",".join(map(str, users)), first_poll, now, gap, raw))
            if rows:
                self.index.write_seen(rows)
            per_page = max(1, int(result.per_page or self.per_page))
            last_page = int(result.last_page or page)
            if not data or page >= last_page or len(data) < per_page:
                self.reach.finished((user_id, self.search), started, page, complete=True)
                return new
            if saw_known and self._ordered[user_id]:
                self.reach.finished((user_id, self.search), started, page, complete=False)
                return new
            page += 1

    def observations(self, names: Iterable[str] | None = None) -> dict[str, Observation]:
        """The observations of the records named (of every record seen, when None), in one read of the index."""
        wanted = self.index.all_observed_names() if names is None else names
        return {
            name: Observation(
                record_name=name,
                prospects=tuple(json.loads(raw) for _, _, _, _, raw in seen),
                seen_in=tuple(sorted({u for _, users, _, _, _ in seen for u in users})),
                first_seen_at=datetime.fromtimestamp(min(s[2] for s in seen), UTC),
                polls=self.polls,
                poll_gap=min(seen, key=lambda s: s[2])[3],
            )
            for name, seen in self.index.observed(wanted).items()
        }

    def unexpected(self) -> list[Prospect]:
        """Prospects that carry the run's marker but match no record that was sent."""
        return self.index.strays()

    def close(self) -> None:
        """Let go of the index (its file goes with it)."""
        self.index.close()


async def _sweep_without_search(poller: Poller, user_ids: Sequence[int], missing: int) -> None:
    """One last listing without ``search``, in case Bonzo's search does not match the run's marker
    (its behaviour is undocumented): records found only this way are real, and the user is told why."""
    marker = poller.search
    before = poller.found_count
    poller.search = None
    await poller.poll(user_ids)
    recovered = poller.found_count - before
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
    targets: SettleIndex | Iterable[SettleTarget],
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
    poller = Poller(client, targets, users=users, search=search, per_page=per_page, order=order)
    expected = poller.index.expected()
    all_users = [u.user_id for u in users]
    interval = polling.interval
    quiet_sweeps = 0
    settled = False

    while True:
        await asyncio.sleep(max(0.0, min(interval, deadline - time.monotonic())))
        late = time.monotonic() >= deadline
        waiting, their_users = poller.index.waiting()
        full = not waiting or late or poller.polls % FULL_SWEEP_EVERY == FULL_SWEEP_EVERY - 1
        targets_now = all_users if full else their_users
        try:
            new = await poller.poll(targets_now)
        except _STOPS_SETTLING as exc:
            stopped_early = str(exc)
            log.warning("Settling stopped early: %s", exc)
            break
        waiting, _ = poller.index.waiting()
        if on_poll is not None:
            on_poll(expected - waiting, expected)
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
                    await _sweep_without_search(poller, all_users, waiting)
                except _STOPS_SETTLING as exc:
                    stopped_early = str(exc)
            break
        if time.monotonic() >= deadline:
            interval = 0.0
    return SettleOutcome(
        poller=poller,
        settled=settled,
        seconds=time.monotonic() - started,
        polls=poller.polls,
        api_requests=client.requests_made - requests_before,
        clock=client.clock.estimate,
        rate_limited_seconds=client.rate_limited_seconds - limited_before,
        stopped_early=stopped_early,
    )
