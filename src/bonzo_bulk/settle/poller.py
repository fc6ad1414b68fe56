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
from typing import Any, Protocol, TypeAlias

from bonzo_bulk.bonzo.clock import ClockOffset, ClockTracker
from bonzo_bulk.config.schema import PollingSettings
from bonzo_bulk.errors import BudgetExhausted, RateLimited
from bonzo_bulk.models import Observation, PlannedRecord, Prospect, User

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
    """Whether a prospect must appear (see :func:`bonzo_bulk.judge.verify.expects_prospect`)."""

    @classmethod
    def of(cls, record: PlannedRecord, expects: bool) -> SettleTarget:
        return cls(record.name, record.email.lower(), record.expected_user.user_id, expects)


_COMPACT = json.JSONEncoder(separators=(",", ":"), default=str)

Sighting: TypeAlias = tuple[int, str | None, int, str, int, float, float | None, bytes | None]
"""A prospect listed: id, record, stray (0/1), users (comma list), first poll, first seen, poll gap, JSON."""
Known: TypeAlias = tuple[str | None, tuple[int, ...], int]
"""A prospect seen before: its record, the users whose lists held it, the poll that first saw it."""
Seen: TypeAlias = tuple[int, tuple[int, ...], float, float | None, bytes]
"""One of a record's prospects: id, users, first seen, poll gap, JSON."""


class SettleIndex:
    """What settling knows of a run, in a private temporary SQLite file rather than in Python objects.

    Two tables: ``target`` (each sent record: name, email, expected owner, whether a prospect must
    appear) and ``seen`` (each prospect listed: its record, the users whose lists held it, when it was
    first seen, and its JSON when it is the run's). A 100k run holds none of it in memory; SQLite
    deletes the file when the index is closed. The engine adds targets as records are delivered.
    """

    def __init__(self, targets: Iterable[SettleTarget] = ()) -> None:
        self._db = sqlite3.connect("")  # "" = a private on-disk temporary database
        self._db.executescript(
            """
            PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
            CREATE TABLE target (
                name TEXT PRIMARY KEY, email TEXT, user_id INTEGER NOT NULL, expects INTEGER NOT NULL,
                found INTEGER NOT NULL DEFAULT 0
            );
            CREATE INDEX target_email ON target (email) WHERE email != '';
            CREATE INDEX target_waiting ON target (expects, found, user_id);
            CREATE TABLE seen (
                id INTEGER PRIMARY KEY, record TEXT, stray INTEGER NOT NULL DEFAULT 0, users TEXT NOT NULL,
                first_poll INTEGER NOT NULL, first_seen REAL NOT NULL, poll_gap REAL, raw BLOB
            );
            CREATE INDEX seen_record ON seen (record) WHERE record IS NOT NULL;
            """
        )
        self.add_many(targets)

    def add_many(self, targets: Iterable[SettleTarget]) -> None:
        """Know more sent records (the engine adds each batch as it is delivered)."""
        self._db.executemany(
            "INSERT OR REPLACE INTO target (name, email, user_id, expects) VALUES (?, ?, ?, ?)",
            ((t.name, t.email, t.user_id, int(t.expects)) for t in targets),
        )

    def add(self, target: SettleTarget) -> None:
        self.add_many((target,))

    def expected(self) -> int:
        """Records that must produce a prospect."""
        return int(self._db.execute("SELECT COUNT(*) FROM target WHERE expects = 1").fetchone()[0])

    def waiting(self) -> tuple[int, list[int]]:
        """How many expected records are not seen yet, and the users they are meant for."""
        rows = self._db.execute(
            "SELECT user_id, COUNT(*) FROM target WHERE expects = 1 AND found = 0 GROUP BY user_id"
        ).fetchall()
        return sum(int(n) for _, n in rows), sorted(int(u) for u, _ in rows)

    def found_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM target WHERE found = 1").fetchone()[0])

    def by_email(self, emails: Sequence[str]) -> dict[str, str]:
        """Record names of the given (lower-case) emails, where a sent record has one."""
        return dict(self._lookup("SELECT email, name FROM target WHERE email IN ({})", emails))

    def names(self, names: Sequence[str]) -> set[str]:
        """Which of these are the names of sent records."""
        return {n for n, _ in self._lookup("SELECT name, name FROM target WHERE name IN ({})", names)}

    def _lookup(self, query: str, keys: Sequence[str]) -> list[tuple[str, str]]:
        unique = list(dict.fromkeys(k for k in keys if k))
        if not unique:
            return []
        marks = ", ".join("?" for _ in unique)
        return [(str(a), str(b)) for a, b in self._db.execute(query.format(marks), unique)]

    def seen(self, ids: Sequence[int]) -> dict[int, Known]:
        """Of the given prospect ids, those seen before: their record, the users who listed them, their first poll."""
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        query = f"SELECT id, record, users, first_poll FROM seen WHERE id IN ({marks})"  # noqa: S608
        return {
            int(i): (record, tuple(int(u) for u in users.split(",") if u), int(first))
            for i, record, users, first in self._db.execute(query, list(ids))
        }

    def write_seen(
        self, rows: Sequence[tuple[int, str | None, int, str, int, float, float | None, bytes | None]]
    ) -> None:
        """Insert or refresh sightings: id, record, stray, users, first poll, first seen, poll gap, JSON."""
        self._db.executemany(
            "INSERT INTO seen (id, record, stray, users, first_poll, first_seen, poll_gap, raw)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET record = excluded.record,"
            " stray = excluded.stray, users = excluded.users, raw = COALESCE(excluded.raw, seen.raw)",
            rows,
        )
        found = [(r[1],) for r in rows if r[1] is not None]
        self._db.executemany("UPDATE target SET found = 1 WHERE name = ?", found)

    def observed(
        self, names: Iterable[str]
    ) -> dict[str, list[tuple[int, tuple[int, ...], float, float | None, bytes]]]:
        """Each named record's prospects: id, users, first seen, poll gap, JSON (oldest id first)."""
        wanted = list(names)
        found: dict[str, list[Seen]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            query = (
                "SELECT record, id, users, first_seen, poll_gap, raw FROM seen"  # noqa: S608 - placeholders only
                f" WHERE record IN ({marks}) ORDER BY id"
            )
            for record, i, users, first_seen, gap, raw in self._db.execute(query, chunk):
                found.setdefault(str(record), []).append(
                    (int(i), tuple(int(u) for u in users.split(",") if u), float(first_seen), gap, bytes(raw))
                )
        return found

    def all_observed_names(self) -> list[str]:
        return [str(r) for (r,) in self._db.execute("SELECT DISTINCT record FROM seen WHERE record IS NOT NULL")]

    def strays(self) -> list[Prospect]:
        rows = self._db.execute("SELECT raw FROM seen WHERE record IS NULL AND stray = 1 ORDER BY id")
        return [json.loads(raw) for (raw,) in rows]

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
        self._last_polled: dict[int, float] = {}
        self.polls = 0

    def add(self, target: SettleTarget) -> None:
        """Know one more sent record (the load runner adds them while Locust sends)."""
        self.index.add(target)

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

    def _records_of(
        self, data: Sequence[Prospect], known: Mapping[int, tuple[str | None, tuple[int, ...], int]]
    ) -> dict[int, str]:
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
            now = time.time()
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
                return new
            if saw_known and self._ordered[user_id]:
                return new
            page += 1

    def observation(self, name: str) -> Observation | None:
        """What was seen of one record (None when nothing was)."""
        return self.observations([name]).get(name)

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
        except (BudgetExhausted, RateLimited) as exc:
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
