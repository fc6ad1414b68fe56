"""The poller against an in-memory stand-in of Bonzo's list endpoint whose data changes while it pages."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from yarl import URL

from bonzo_bulk.bonzo.clock import ClockTracker
from bonzo_bulk.bonzo.listing import ListedPage, walk_pages
from bonzo_bulk.config.schema import BulkConfig, PollingSettings
from bonzo_bulk.errors import BonzoAPIError
from bonzo_bulk.judge.verify import expects_prospect
from bonzo_bulk.models import DeliveryResult, PlannedRecord, User
from bonzo_bulk.plan.integration import load_integration
from bonzo_bulk.plan.records import Factory, RunIdentity
from bonzo_bulk.settle.delivering import Delivering
from bonzo_bulk.settle.index import SettleIndex, SettleTarget
from bonzo_bulk.settle.poller import settle

USERS = [User("A", "a@x.test", 1, 10), User("B", "b@x.test", 2, 20), User("C", "c@x.test", 3, 30)]
FAST = PollingSettings(interval=0.01, max_interval=0.02, stable_polls=1)


ROOT = URL("http://bonzo.test/api/v3")


class FakeBonzo:
    """Prospect lists per user, answered in Laravel's envelope (``links.next`` null on the last page) and walked
    by the real listing module; ``before_page`` may create prospects between page requests."""

    def __init__(self, *, newest_first: bool = True, max_per_page: int = 50, search_matches: bool = True) -> None:
        self.search_matches = search_matches
        self.lists: dict[int, list[dict[str, Any]]] = {u.user_id: [] for u in USERS}
        self.next_id = 1
        self.requests_made = 0
        self.deadline: float | None = None
        self.rate_limited_seconds = 0.0
        self.clock = ClockTracker()
        self.newest_first = newest_first
        self.max_per_page = max_per_page
        self.before_page: Callable[[], None] = lambda: None
        self.orders: set[str | None] = set()
        self.fail_user: int | None = None
        """A user whose every listing answers 503 (a server error the poller must ride out)."""
        self.page_seconds = 0.0
        """How long each page takes to answer (a slow API: a long list takes long to walk)."""
        self.created: dict[str, float] = {}
        """When each record's prospect was created (epoch seconds)."""

    def add(self, record: PlannedRecord, owner: int | None = None) -> None:
        prospect = {"id": self.next_id, "email": record.email.lower(), "first_name": record.name}
        self.next_id += 1
        self.created.setdefault(record.name, time.time())
        self.lists[owner or record.expected_user.user_id].append(prospect)

    def answer(self, user: int, params: Mapping[str, str]) -> dict[str, Any]:
        self.requests_made += 1
        self.orders.add(params.get("order"))
        if user == self.fail_user:
            raise BonzoAPIError("Service Unavailable", status=503, method="GET", path="/prospects")
        self.before_page()
        size = min(int(params.get("per_page", 25)), self.max_per_page)
        page = int(params.get("page", 1))
        search = params.get("search")
        items = [p for p in self.lists[user] if not search or (self.search_matches and search in p["email"])]
        items.sort(key=lambda p: p["id"], reverse=self.newest_first)
        last = max(1, -(-len(items) // size))
        return {
            "data": items[(page - 1) * size : page * size],
            "links": {"next": f"/api/v3/prospects?page={page + 1}" if page < last else None},
            "meta": {"current_page": page, "last_page": last, "per_page": size},
        }

    def walk_prospects(
        self,
        *,
        on_behalf_of: int | str,
        search: str | None = None,
        per_page: int | None = None,
        order: str | None = None,
        deadline: float | None = None,
    ) -> AsyncGenerator[ListedPage, None]:
        async def fetch(path: str, params: Mapping[str, str]) -> Any:
            if self.page_seconds:
                await asyncio.sleep(self.page_seconds)
            return self.answer(int(on_behalf_of), params)

        params = {"page": 1, "per_page": per_page or 25, "search": search, "order": order}
        return walk_pages(fetch, root=ROOT, path="prospects", params=params, deadline=deadline)


def plan(count: int) -> list[PlannedRecord]:
    config = BulkConfig.model_validate(
        {
            "test_records": count,
            "test_users": [
                {"name": u.name, "email": u.email, "user_id": u.user_id, "team_id": u.team_id} for u in USERS
            ],
        }
    )
    integration = load_integration("monitorbase")
    identity = RunIdentity(run_id="r20250101-000000-aaaa", started_at=datetime(2025, 1, 1, tzinfo=UTC))
    return Factory(config, USERS, integration, integration.template, identity).plan()


def delivered(records: list[PlannedRecord]) -> list[SettleTarget]:
    """Every record accepted by the hook: what the engine hands the poller after delivery."""
    now = datetime.now(UTC)
    return [
        SettleTarget.of(r, expects_prospect(r, DeliveryResult(r.name, 200, 1, 1.0, 1.0, now, now))) for r in records
    ]


async def run_settle(api: FakeBonzo, records: list[PlannedRecord], deadline: float = 2.0) -> Any:
    return await settle(
        api,
        delivered(records),
        users=USERS,
        search="r20250101-000000-aaaa",
        polling=FAST,
        deadline_seconds=deadline,
        per_page=50,
    )


async def test_records_created_while_paging_are_all_found() -> None:
    records = plan(600)
    api = FakeBonzo()
    pending = list(records)

    def create_some() -> None:
        for _ in range(min(7, len(pending))):
            api.add(pending.pop(0))

    api.before_page = create_some
    outcome = await run_settle(api, records)
    assert outcome.settled
    assert len(outcome.observations) == 600
    assert not outcome.unexpected


async def test_an_api_that_ignores_order_is_listed_in_full() -> None:
    records = plan(300)
    api = FakeBonzo(newest_first=False)
    pending = list(records)

    def create_some() -> None:
        for _ in range(min(11, len(pending))):
            api.add(pending.pop(0))

    api.before_page = create_some
    outcome = await run_settle(api, records)
    assert outcome.settled
    assert len(outcome.observations) == 300


async def test_misrouted_record_is_found_in_the_wrong_list() -> None:
    records = plan(6)
    api = FakeBonzo()
    for record in records[1:]:
        api.add(record)
    api.add(records[0], owner=3)  # expected owner is user 1
    outcome = await run_settle(api, records)
    assert outcome.settled
    assert outcome.observations[records[0].name].seen_in == (3,)


async def test_missing_record_ends_at_the_deadline_unsettled() -> None:
    records = plan(6)
    api = FakeBonzo()
    for record in records[:-1]:
        api.add(record)
    # Ends because the deadline passed: it polls at least that long, and returns (the guard only catches a hang).
    outcome = await asyncio.wait_for(run_settle(api, records, deadline=0.3), timeout=60)
    assert not outcome.settled
    assert records[-1].name not in outcome.observations
    assert outcome.seconds >= 0.3


async def test_late_duplicate_is_caught_by_the_closing_sweep() -> None:
    records = plan(6)
    api = FakeBonzo()
    for record in records:
        api.add(record)
    calls = {"n": 0}

    def duplicate_once() -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            api.add(records[2])

    api.before_page = duplicate_once
    outcome = await run_settle(api, records)
    assert len(outcome.observations[records[2].name].prospects) == 2


async def test_strangers_in_the_search_results_are_reported() -> None:
    records = plan(3)
    api = FakeBonzo()
    for record in records:
        api.add(record)
    api.lists[1].append({"id": 999, "email": "x+r20250101-000000-aaaa@bonzobuddy.test", "first_name": "Who"})
    outcome = await run_settle(api, records)
    assert [p["id"] for p in outcome.unexpected] == [999]


async def test_a_settled_run_costs_few_requests() -> None:
    records = plan(900)
    api = FakeBonzo(max_per_page=100)
    for record in records:
        api.add(record)
    outcome = await settle(
        api,
        delivered(records),
        users=USERS,
        search="r20250101-000000-aaaa",
        polling=FAST,
        deadline_seconds=2,
        per_page=100,
    )
    # 3 users x 3 pages for the first listing, then one page each for the closing sweep.
    assert outcome.api_requests == 12
    assert api.orders == {None}  # Bonzo's `order` values are undocumented: none is sent unless configured


async def test_a_search_that_misses_the_marker_is_caught_by_a_last_unfiltered_sweep(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = plan(6)
    api = FakeBonzo(search_matches=False)
    for record in records:
        api.add(record)
    api.lists[1].append({"id": 500, "email": "real.borrower@gmail.test", "first_name": "Real"})
    with caplog.at_level(logging.WARNING, logger="bonzo_bulk.settle.poller"):
        outcome = await run_settle(api, records, deadline=0.3)
    assert set(outcome.observations) == {r.name for r in records}
    assert not outcome.unexpected  # a real prospect without the run marker is nobody's business
    assert "does not match the run marker" in caplog.text


async def test_a_failing_listing_leaves_its_users_unlisted_with_the_reason() -> None:
    records = plan(6)
    api = FakeBonzo()
    for record in records:
        api.add(record)
    api.fail_user = 2
    outcome = await asyncio.wait_for(run_settle(api, records, deadline=0.3), timeout=60)
    assert not outcome.settled
    assert set(outcome.unlisted) == {2}
    assert "503" in outcome.unlisted[2]
    reason = outcome.unverified_reason()
    assert reason is not None and "user 2" in reason
    # The users whose lists were read are judged as usual: every record of users 1 and 3 is found.
    found = set(outcome.observations)
    assert found == {r.name for r in records if r.expected_user.user_id != 2}


async def test_a_listing_that_recovers_leaves_nobody_unlisted() -> None:
    records = plan(6)
    api = FakeBonzo()
    for record in records:
        api.add(record)
    api.fail_user = 2
    calls = {"n": 0}

    def recover() -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            api.fail_user = None

    api.before_page = recover
    outcome = await run_settle(api, records)
    assert outcome.settled
    assert outcome.unlisted == {}
    assert outcome.unverified_reason() is None
    assert len(outcome.observations) == 6


SLOW_LISTS = 150
"""Records in the slow-listing tests: 50 per user, one a page, each page 5 ms: a walk of a whole list takes
0.25 s, five times the 0.05 s deadline."""


def slow_api() -> FakeBonzo:
    api = FakeBonzo(max_per_page=1)
    api.page_seconds = 0.005
    return api


async def settle_slowly(api: FakeBonzo, targets: SettleIndex, delivering: Delivering | None = None) -> Any:
    return await settle(
        api,
        targets,
        users=USERS,
        search="r20250101-000000-aaaa",
        polling=FAST,
        deadline_seconds=0.05,
        per_page=1,
        delivering=delivering,
    )


async def test_lists_too_long_to_walk_after_the_last_delivery_leave_records_unverified() -> None:
    # The failure a 100k run met: settling only after the last delivery, the deadline passes mid-walk.
    records = plan(SLOW_LISTS)
    api = slow_api()
    for record in records:
        api.add(record)
    index = SettleIndex(delivered(records))
    outcome = await settle_slowly(api, index)
    assert not outcome.settled
    assert set(outcome.unlisted) == {1, 2, 3}  # no list was read to its end: its oldest records are unverified
    assert len(outcome.observations) < SLOW_LISTS


async def test_settling_while_delivering_reads_the_lists_as_they_grow() -> None:
    # The same lists, polled from the first delivery: each poll reads only what was added since the last.
    records = plan(SLOW_LISTS)
    api = slow_api()
    index = SettleIndex()
    delivering = Delivering()
    polls: list[tuple[int, int]] = []
    settling = asyncio.create_task(
        settle(
            api,
            index,
            users=USERS,
            search="r20250101-000000-aaaa",
            polling=FAST,
            deadline_seconds=0.05,
            per_page=1,
            on_poll=lambda found, expected: polls.append((found, expected)),
            delivering=delivering,
        )
    )
    targets = dict(zip((r.name for r in records), delivered(records), strict=True))
    for start in range(0, SLOW_LISTS, 15):
        batch = records[start : start + 15]
        index.add_unsent(SettleTarget.of(r, expects=False) for r in batch)  # known before a byte leaves
        for record in batch:
            api.add(record)  # created before its delivery's answer came back ...
        seen = len(polls)
        while len(polls) == seen:  # ... and listed by a poll before the engine hears of the delivery
            await asyncio.sleep(0.002)
        for record in batch:
            index.add(targets[record.name])
    delivering.end()
    outcome = await asyncio.wait_for(settling, timeout=30)
    assert outcome.settled
    assert outcome.unlisted == {}
    assert not outcome.unexpected  # a prospect listed before its delivery was answered is its record's, not a stray
    observations = outcome.observations
    assert set(observations) == set(targets)
    assert outcome.polls_delivering >= SLOW_LISTS // 15
    assert outcome.seconds < 0.05 + 5  # counted from the last delivery
    # Every interval holds the true creation time: a poll before a record existed never narrows it past that.
    for name, observation in observations.items():
        assert observation.first_seen_at is not None
        seen_at = observation.first_seen_at.timestamp()
        assert seen_at >= api.created[name]
        if observation.poll_gap is not None:
            assert seen_at - observation.poll_gap <= api.created[name]
    # Progress: what was expected grows while records are delivered, and never counts a record not yet sent.
    assert polls[0][1] < SLOW_LISTS and polls[-1] == (SLOW_LISTS, SLOW_LISTS)
    assert all(found <= expected for found, expected in polls)
    # Each record's page is read about once: pages of new records plus about one known page per user and poll.
    assert api.requests_made <= SLOW_LISTS + 3 * (outcome.polls + 2)
