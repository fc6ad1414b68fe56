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
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from bonzo_bulk.bonzo.clock import ClockOffset, ClockTracker
from bonzo_bulk.bonzo.listing import ListedPage
from bonzo_bulk.config.schema import PollingSettings
from bonzo_bulk.errors import (
    BonzoAPIError,
    BudgetExhausted,
    ListingIncomplete,
    RateLimited,
    RedirectRefused,
    UnreadableAnswer,
)
from bonzo_bulk.models import Observation, Prospect, User
from bonzo_bulk.settle.index import Known, SettleIndex, SettleTarget, Sighting
from bonzo_bulk.settle.reach import ListReach

log = logging.getLogger(__name__)

_STOPS_SETTLING = (BudgetExhausted, RateLimited, RedirectRefused)
"""API errors that end settling early with a verdict on what was seen (a budget, a wait past the deadline, a
redirect to another host): the records not seen by then are judged not found, and the notes say why."""

FULL_SWEEP_EVERY = 3
NEVER_LISTED = "never listed"
FINAL_SWEEP_SECONDS = 5.0
"""How long past the deadline the last sweep may take (at most the deadline itself, at least a poll interval)."""


class ProspectLister(Protocol):
    """The part of :class:`bonzo_bulk.bonzo.BonzoClient` the poller needs."""

    requests_made: int
    deadline: float | None
    rate_limited_seconds: float

    @property
    def clock(self) -> ClockTracker: ...

    def walk_prospects(
        self,
        *,
        on_behalf_of: int | str,
        search: str | None = None,
        per_page: int | None = None,
        order: str | None = None,
        deadline: float | None = None,
    ) -> AsyncGenerator[ListedPage, None]: ...


def _transient(error: BonzoAPIError) -> bool:
    """A failure the next poll may not meet: an incomplete walk, a server error, no answer, a 429 ridden out, a
    body that is not JSON (a maintenance page, even with a 200)."""
    return (
        isinstance(error, ListingIncomplete | UnreadableAnswer)
        or error.status is None
        or error.status >= 500
        or error.status == 429
    )


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
    unlisted: Mapping[int, str] = field(default_factory=dict)
    """Users whose last listing did not reach its end, with why: records missing from every list are then
    unverified, not "not created" (:meth:`unverified_reason`)."""

    def listing_notes(self) -> list[str]:
        """A note per user whose list was not read to its end, for the run's notes."""
        return [
            f"listing incomplete: user {user}'s list was not read to its end ({why}); records missing from the "
            "lists are unverified: whether they were created is unknown"
            for user, why in self.unlisted.items()
        ]

    def unverified_reason(self) -> str | None:
        """Why a record missing from every list could not be checked, or None when every list was read to its end."""
        if not self.unlisted:
            return None
        return "; ".join(f"the listing of user {user} never completed ({why})" for user, why in self.unlisted.items())

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
        self.deadline: float | None = None
        """A ``time.monotonic()`` instant no page of any walk may start after (None: the client's own limit)."""
        self.unlisted: dict[int, str] = {u.user_id: NEVER_LISTED for u in users}
        """Users whose last walk did not reach the end of their list, with why: a record missing from the lists
        cannot be called not created while any user is here."""

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
        """List the given users' new prospects; return how many prospects were new.

        A user whose listing fails on the way (a transient API error, a page that repeats, a ``next`` that
        leaves the API, the deadline) is noted in :attr:`unlisted` and listed again at the next poll; the
        budget running out, or a 429 wait past the deadline, is raised once every user's walk has stopped.
        """
        self.polls += 1
        results = await asyncio.gather(*(self._poll_user(uid) for uid in user_ids), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return sum(r for r in results if isinstance(r, int))

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
        """Walk one user's list, newest first as far as it must; note whether the walk reached its end."""
        new = 0
        # Only prospects known before this poll prove the rest is known: while records are being
        # created, ones seen on page 1 of this poll slide onto page 2 and must not stop the paging.
        poll = self.polls
        # ... and only when the walk that saw them reached its end: after one cut short, the rest was never read.
        may_stop_early = user_id not in self.unlisted
        key = (user_id, self.search)
        started = time.time()
        depth = 0
        complete = False
        pages = self.client.walk_prospects(
            on_behalf_of=user_id, search=self.search, per_page=self.per_page, order=self.order, deadline=self.deadline
        )
        try:
            async for page in pages:
                depth += 1
                previous = self.reach.not_there_since(key, depth)
                fresh, saw_known = self._take_page(user_id, page.data, poll, previous)
                new += fresh
                if saw_known and self._ordered[user_id] and may_stop_early:
                    break
            else:
                complete = True
        except (BudgetExhausted, RateLimited) as exc:
            self.unlisted[user_id] = str(exc)
            if isinstance(exc, BudgetExhausted) or self._wait_passes_deadline(exc):
                raise
            log.warning("Listing user %s was rate limited (listed again at the next poll): %s", user_id, exc)
            return new
        except BonzoAPIError as exc:
            if not _transient(exc):
                raise
            self._note_unlisted(user_id, exc)
            log.warning("Listing user %s did not complete (listed again at the next poll): %s", user_id, exc)
            return new
        finally:
            await pages.aclose()
            if depth:  # the pages read, even of a walk cut short, show what was not there when it started
                self.reach.finished(key, started, depth, complete=complete)
        self.unlisted.pop(user_id, None)
        return new

    def _note_unlisted(self, user_id: int, error: BonzoAPIError) -> None:
        """Note why a user's walk stopped short; a walk the deadline stopped before its first page keeps the
        reason of the walk before it (which says what the listing did)."""
        unstarted = isinstance(error, ListingIncomplete) and error.reason == "deadline" and error.pages == 0
        if not (unstarted and user_id in self.unlisted and self.unlisted[user_id] != NEVER_LISTED):
            self.unlisted[user_id] = str(error)

    def _wait_passes_deadline(self, error: RateLimited) -> bool:
        """Whether the wait a 429 asks for reaches past the deadline (polling again before it is no use)."""
        wait = error.retry_after or 0.0
        return self.deadline is not None and time.monotonic() + wait >= self.deadline

    def _take_page(self, user_id: int, data: Sequence[Prospect], poll: int, previous: float | None) -> tuple[int, bool]:
        """Match one page to the records and write what was seen: (prospects new, whether one was known before)."""
        ids = [int(p.get("id") or 0) for p in data]
        if ids != sorted(ids, reverse=True) and self._ordered[user_id]:
            log.info("List for user %s is not newest-first; listing it in full from now on", user_id)
            self._ordered[user_id] = False
        now = time.time()
        known = self.index.seen(ids)
        matched = self._records_of(data, known)
        new = 0
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
        return new, saw_known

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
    # The last sweep starts at the deadline and may take this long; no page of any walk starts after it.
    bound = deadline + max(polling.interval, min(FINAL_SWEEP_SECONDS, deadline_seconds))
    client.deadline = bound
    requests_before = client.requests_made
    limited_before = client.rate_limited_seconds
    stopped_early: str | None = None
    poller = Poller(client, targets, users=users, search=search, per_page=per_page, order=order)
    poller.deadline = bound
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
        unlisted=dict(poller.unlisted),
    )
