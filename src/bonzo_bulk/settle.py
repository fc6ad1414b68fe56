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
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from bonzo_bulk.bonzo.clock import ClockOffset, ClockTracker
from bonzo_bulk.errors import BudgetExhausted, RateLimited
from bonzo_bulk.models import Observation, PlannedRecord, Prospect, User
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


@dataclass(frozen=True, slots=True)
class SettleTarget:
    """What the poller knows of one sent record: enough to match prospects to it and to wait for it."""

    name: str
    email: str
    user_id: int
    """The expected owner (polled first while the record is outstanding)."""
    expects: bool
    """Whether a prospect must appear (see :func:`bonzo_bulk.judge.expects_prospect`)."""

    @classmethod
    def of(cls, record: PlannedRecord, expects: bool) -> SettleTarget:
        return cls(record.name, record.email.lower(), record.expected_user.user_id, expects)


_COMPACT = json.JSONEncoder(separators=(",", ":"), default=str)


class _Seen:
    """One prospect seen while polling: whose it is and when it was first seen (its JSON is in the spill)."""

    __slots__ = ("first_poll", "first_seen", "poll_gap", "record", "stray", "users")

    def __init__(self, first_poll: int, first_seen: float, poll_gap: float | None) -> None:
        self.record: str | None = None
        self.stray = False
        """Not matched to a record but carrying the run's marker: an unexpected prospect."""
        self.users: tuple[int, ...] = ()
        self.first_poll = first_poll
        self.first_seen = first_seen
        self.poll_gap = poll_gap


class ProspectSpill:
    """The JSON of each prospect the run owns, in a private temporary SQLite file rather than in memory.

    A 100k run sees 100k prospects of about 1 KB; held as Python objects they would be most of the
    engine's memory. SQLite deletes the file when it is closed.
    """

    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # "" = a private on-disk temporary database
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE prospect (id INTEGER PRIMARY KEY, raw BLOB NOT NULL)")

    def put(self, rows: Sequence[tuple[int, bytes]]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO prospect (id, raw) VALUES (?, ?)", rows)

    def get(self, ids: Sequence[int]) -> dict[int, Prospect]:
        marks = ", ".join("?" for _ in ids)
        query = f"SELECT id, raw FROM prospect WHERE id IN ({marks})"  # noqa: S608 - placeholders only
        return {int(i): json.loads(raw) for i, raw in self._db.execute(query, list(ids))}

    def close(self) -> None:
        self._db.close()


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

    def observation(self, name: str) -> Observation | None:
        return self.poller.observation(name)

    def observations_of(self, names: Iterable[str]) -> dict[str, Observation]:
        """The observations of a batch of records (one read of the spill)."""
        return self.poller.observations(names)

    @property
    def observations(self) -> dict[str, Observation]:
        """Every record's observation at once (small runs; the engine asks a batch at a time)."""
        return self.poller.observations()

    @property
    def unexpected(self) -> list[Prospect]:
        return self.poller.unexpected()


class Poller:
    """Incremental, per-user listing of a run's prospects."""

    def __init__(
        self,
        client: ProspectLister,
        targets: Iterable[SettleTarget],
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
        self._by_email: dict[str, SettleTarget] = {}
        self._by_name: dict[str, SettleTarget] = {}
        for target in targets:
            self.add(target)
        self._seen: dict[int, _Seen] = {}
        self._of_record: dict[str, int | list[int]] = {}
        """Each found record's prospect id (a list when there are several)."""
        self._spill = ProspectSpill()
        self._ordered: dict[int, bool] = {u.user_id: True for u in users}
        self._last_polled: dict[int, float] = {}
        self.polls = 0

    def add(self, target: SettleTarget) -> None:
        """Know one more sent record (the load runner adds them while Locust sends)."""
        if target.email:
            self._by_email[target.email] = target
        self._by_name[target.name] = target

    @property
    def targets(self) -> Iterable[SettleTarget]:
        return self._by_name.values()

    def target_of(self, prospect: Prospect) -> SettleTarget | None:
        """The record a prospect belongs to: by email, else (records sent without one) by its
        first name — but only when it carries this run's marker, as names repeat from run to run."""
        email = str(prospect.get("email") or "").lower()
        if email and email in self._by_email:
            return self._by_email[email]
        target = self._by_name.get(str(prospect.get("first_name") or ""))
        return target if target is not None and self.carries_marker(prospect) else None

    def carries_marker(self, prospect: Prospect) -> bool:
        """Whether a prospect holds this run's marker anywhere (email tag, last name, custom field, tag)."""
        return self.marker in json.dumps(prospect, default=str).lower()

    def found(self, name: str) -> bool:
        return name in self._of_record

    @property
    def found_count(self) -> int:
        """Records with at least one prospect seen."""
        return len(self._of_record)

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
        poll = self.polls
        previous = self._last_polled.get(user_id)
        self._last_polled[user_id] = time.time()
        while True:
            result = await self.client.list_prospects(
                on_behalf_of=user_id, search=self.search, page=page, per_page=self.per_page, order=self.order
            )
            data = list(result.data)
            ids = [int(p.get("id") or 0) for p in data]
            if ids != sorted(ids, reverse=True) and self._ordered[user_id]:
                log.info("List for user %s is not newest-first; listing it in full from now on", user_id)
                self._ordered[user_id] = False
            saw_known = False
            now = time.time()
            spilled: list[tuple[int, bytes]] = []
            for prospect_id, prospect in zip(ids, data, strict=True):
                entry = self._seen.get(prospect_id)
                if entry is None:
                    gap = now - previous if previous is not None else None
                    entry = self._seen[prospect_id] = _Seen(poll, now, gap)
                    new += 1
                elif entry.first_poll < poll and user_id in entry.users:
                    saw_known = True
                if entry.record is None:
                    target = self.target_of(prospect)
                    if target is not None:
                        entry.record = target.name
                        self._claim(target.name, prospect_id)
                    else:
                        entry.stray = self.carries_marker(prospect)
                if entry.record is not None or entry.stray:
                    spilled.append((prospect_id, _COMPACT.encode(prospect).encode()))
                # else not ours: only its id matters (it stops the paging)
                if user_id not in entry.users:
                    entry.users = (*entry.users, user_id)
            if spilled:
                self._spill.put(spilled)
            per_page = max(1, int(result.per_page or self.per_page))
            last_page = int(result.last_page or page)
            if not data or page >= last_page or len(data) < per_page:
                return new
            if saw_known and self._ordered[user_id]:
                return new
            page += 1

    def _claim(self, name: str, prospect_id: int) -> None:
        held = self._of_record.get(name)
        if held is None:
            self._of_record[name] = prospect_id
        elif isinstance(held, list):
            held.append(prospect_id)
        else:
            self._of_record[name] = [held, prospect_id]

    def observation(self, name: str) -> Observation | None:
        """What was seen of one record (None when nothing was)."""
        return self.observations([name]).get(name)

    def _observation(self, name: str, ids: Sequence[int], prospects: Mapping[int, Prospect]) -> Observation:
        entries = [self._seen[i] for i in ids]
        first = min(entries, key=lambda e: e.first_seen)
        return Observation(
            record_name=name,
            prospects=tuple(prospects[i] for i in ids),
            seen_in=tuple(sorted({u for e in entries for u in e.users})),
            first_seen_at=datetime.fromtimestamp(first.first_seen, UTC),
            polls=self.polls,
            poll_gap=first.poll_gap,
        )

    def observations(self, names: Iterable[str] | None = None) -> dict[str, Observation]:
        """The observations of the records named (of every record seen, when None), read from the spill at once."""
        wanted = [n for n in (self._of_record if names is None else names) if n in self._of_record]
        ids = {n: sorted(h) if isinstance(h, list) else [h] for n in wanted for h in (self._of_record[n],)}
        prospects = self._spill.get([i for group in ids.values() for i in group]) if ids else {}
        return {name: self._observation(name, group, prospects) for name, group in ids.items()}

    def unexpected(self) -> list[Prospect]:
        """Prospects that carry the run's marker but match no record that was sent."""
        ids = [i for i, e in self._seen.items() if e.record is None and e.stray]
        found = self._spill.get(ids) if ids else {}
        return [found[i] for i in ids]

    def close(self) -> None:
        """Let go of the spilled prospects."""
        self._spill.close()


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
    targets: Iterable[SettleTarget],
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
    waiting: dict[str, int] = {t.name: t.user_id for t in poller.targets if t.expects}
    expected = len(waiting)
    all_users = [u.user_id for u in users]
    interval = polling.interval
    quiet_sweeps = 0
    settled = False

    def outstanding() -> dict[str, int]:
        for name in [n for n in waiting if poller.found(n)]:
            del waiting[name]
        return waiting

    while True:
        await asyncio.sleep(max(0.0, min(interval, deadline - time.monotonic())))
        late = time.monotonic() >= deadline
        full = not outstanding() or late or poller.polls % FULL_SWEEP_EVERY == FULL_SWEEP_EVERY - 1
        targets_now = all_users if full else sorted(set(waiting.values()))
        try:
            new = await poller.poll(targets_now)
        except (BudgetExhausted, RateLimited) as exc:
            stopped_early = str(exc)
            log.warning("Settling stopped early: %s", exc)
            break
        outstanding()
        if on_poll is not None:
            on_poll(expected - len(waiting), expected)
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
