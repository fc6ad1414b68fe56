"""Cleanup against the sandbox: exactly the test records go, every real or lookalike prospect survives."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bonzo_bulk._http import run_async
from bonzo_bulk.bonzo import BonzoClient
from bonzo_bulk.cleanup.clean import clean, cleanup
from bonzo_bulk.cleanup.select import judge, selector_for_all, selector_for_pattern
from bonzo_bulk.config.schema import ApiSettings, TestDataSettings
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.library import run_bulk
from bonzo_bulk.sandbox import SandboxServer
from bonzo_bulk.store import RunStore

SETTINGS = TestDataSettings()
PATTERN = "TestRecord_MonitorBase_*"
RUN_A = "r20250101-120000-aaaa"
RUN_B = "r20250102-120000-bbbb"
API = ApiSettings(retry_delay=0.01, concurrent_requests=8)
_user_ids = itertools.count(900_001, 3)


async def _seed(url: str, users: list[dict[str, Any]]) -> str:
    async with aiohttp.ClientSession() as session, session.post(f"{url}/__sandbox/seed", json={"users": users}) as r:
        body = await r.json()
        assert r.status == 200, body
        return str(body["superuser_token"])


def _users(count: int = 3) -> list[dict[str, Any]]:
    first = next(_user_ids)
    return [
        {"name": f"Cleanup LO {first + i}", "email": f"lo{first + i}@lender.test", "user_id": first + i, "team_id": 77}
        for i in range(count)
    ]


def _body(kind: str, n: int) -> dict[str, Any]:
    """A prospect of one kind; only ``test_record`` and ``control_record`` may ever be deleted."""
    name = f"TestRecord_MonitorBase_{n:03d}"
    all_markers = {"tags": ["test", "bonzo-bulk", RUN_A], "custom_fields": {"custom_1": RUN_A}}
    bodies: dict[str, dict[str, Any]] = {
        "real": {"first_name": ["Maria", "John", "Wei", "Ana"][n % 4], "email": f"person{n}@gmail.com"},
        "lookalike_real_email": {"first_name": name, "email": f"jane.doe{n}@gmail.com", **all_markers},
        "test_domain_no_marker": {"first_name": name, "email": f"test.monitorbase.{n:03d}@bonzobuddy.test"},
        "markers_wrong_name": {"first_name": "Maria", "email": f"test.monitorbase.{n:03d}+{RUN_A}@bonzobuddy.test"}
        | all_markers,
        "subdomain_trick": {"first_name": name, "email": f"x{n}@evil.bonzobuddy.test", **all_markers},
        "junk_custom_1": {
            "first_name": name,
            "email": f"test.monitorbase.{n:03d}@bonzobuddy.test",
            "custom_fields": {"custom_1": "vip client"},
        },
        "test_record": {"first_name": name, "email": f"test.monitorbase.{n:03d}+{RUN_A}@bonzobuddy.test"} | all_markers,
        "control_record": {
            "first_name": f"TestRecord_MonitorBase_SU_{n:03d}",
            "email": f"test.monitorbase.su.{n:03d}+{RUN_B}@bonzobuddy.test",
        },
    }
    return {"last_name": "Person", "phone": f"555-{n % 1000:03d}-{n % 10000:04d}", **bodies[kind]}


DELETABLE = {"test_record", "control_record"}
KINDS = sorted({"real", "lookalike_real_email", "test_domain_no_marker", "markers_wrong_name"} | DELETABLE)
KINDS += ["subdomain_trick", "junk_custom_1"]


async def _populate(
    client: BonzoClient, users: list[dict[str, Any]], population: list[tuple[str, int]]
) -> dict[str, list[int]]:
    created: dict[str, list[int]] = {"deletable": [], "kept": []}
    for i, (kind, owner) in enumerate(population):
        prospect = await client.create_prospect(_body(kind, i + 1), on_behalf_of=users[owner]["user_id"])
        created["deletable" if kind in DELETABLE else "kept"].append(int(prospect["id"]))
    return created


async def _remaining(client: BonzoClient, users: list[dict[str, Any]]) -> set[int]:
    ids: set[int] = set()
    for user in users:
        async for prospect in client.iter_prospects(on_behalf_of=user["user_id"]):
            ids.add(int(prospect["id"]))
    return ids


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(population=st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 2)), min_size=1, max_size=24))
def test_only_marked_test_records_are_ever_deleted(
    sandbox: SandboxServer, tmp_path: Path, population: list[tuple[str, int]]
) -> None:
    async def scenario() -> None:
        users = _users()
        token = await _seed(sandbox.url, users)
        async with BonzoClient(base_url=sandbox.url, api_key=token, settings=API) as client:
            created = await _populate(client, users, population)
            with RunStore(tmp_path / "runs.sqlite3") as store:
                report = await clean(
                    client,
                    selector_for_pattern(PATTERN, SETTINGS),
                    user_ids=[u["user_id"] for u in users],
                    dry_run=False,
                    store=store,
                    manual_dir=tmp_path,
                )
            assert sorted(int(c.prospect_id) for c in report.deleted) == sorted(created["deletable"])
            assert report.passed and not report.failed and not report.manual
            assert await _remaining(client, users) == set(created["kept"])

    run_async(scenario())


def test_dry_run_lists_but_deletes_nothing(sandbox: SandboxServer, tmp_path: Path) -> None:
    async def scenario() -> None:
        users = _users(1)
        token = await _seed(sandbox.url, users)
        async with BonzoClient(base_url=sandbox.url, api_key=token, settings=API) as client:
            created = await _populate(client, users, [("test_record", 0), ("lookalike_real_email", 0), ("real", 0)])
            report = await clean(client, selector_for_all(SETTINGS), user_ids=[users[0]["user_id"]], dry_run=True)
            assert [int(c.prospect_id) for c in report.deletable] == created["deletable"]
            assert [c.reason for c in report.kept] == ["kept: email is not on the test domain bonzobuddy.test"]
            assert not report.deleted
            assert await _remaining(client, users) == {*created["deletable"], *created["kept"]}

    run_async(scenario())


def test_judge_reads_every_custom_field_shape_and_needs_the_domain_exactly() -> None:
    selector = selector_for_pattern(PATTERN, SETTINGS)
    base = {"id": 1, "first_name": "TestRecord_MonitorBase_001", "email": "t@bonzobuddy.test"}
    as_list = judge({**base, "custom": [{"key": "custom_1", "value": RUN_A}]}, 5, selector)
    assert as_list is not None and as_list.deletable and as_list.run_id == RUN_A
    for email in ("t@bonzobuddy.test.evil.com", "t@notbonzobuddy.test", "t@sub.bonzobuddy.test"):
        verdict = judge({**base, "email": email, "tags": [{"id": 1, "name": "bonzo-bulk"}]}, 5, selector)
        assert verdict is not None and not verdict.deletable
    assert judge({**base, "first_name": "testrecord_monitorbase_001"}, 5, selector) is None


def test_real_runs_are_removed_run_by_run_and_lookalikes_survive(
    sandbox: SandboxServer, tmp_path: Path, make_config: Any
) -> None:
    users = _users()
    loaded = make_config(tmp_path, sandbox.url, test_users=users, control=True, test_records=6)
    first, second = run_bulk(loaded), run_bulk(loaded)
    assert first.passed and second.passed, [c for r in (first, second) for p in r.phases for c in p.failures()]
    token = run_async(_seed(sandbox.url, users))

    async def lookalikes() -> dict[str, list[int]]:
        async with BonzoClient(base_url=sandbox.url, api_key=token, settings=API) as client:
            kinds = ["lookalike_real_email", "test_domain_no_marker", "real", "subdomain_trick"]
            return await _populate(client, users, [(k, i % 3) for i, k in enumerate(kinds)])

    kept = run_async(lookalikes())["kept"]
    created_by = {
        r.run_id: {
            int(p["id"]) for phase in r.phases for o in phase.outcomes if o.observation for p in o.observation.prospects
        }
        for r in (first, second)
    }
    assert all(len(ids) == 12 for ids in created_by.values())

    report = run_async(cleanup(loaded, run_id=first.run_id, dry_run=False))
    assert {int(c.prospect_id) for c in report.deleted} == created_by[first.run_id]
    with RunStore(Path(loaded.config.reports_dir) / "runs.sqlite3") as store:
        assert all(p.deleted_at is not None for p in store.observed_prospects(first.run_id))
        assert all(p.deleted_at is None for p in store.observed_prospects(second.run_id))

    report = run_async(cleanup(loaded, all_test_data=True, dry_run=False))
    assert {int(c.prospect_id) for c in report.deleted} == created_by[second.run_id]

    async def left() -> set[int]:
        async with BonzoClient(base_url=sandbox.url, api_key=token, settings=API) as client:
            return await _remaining(client, users)

    assert run_async(left()) == set(kept)


def test_selection_must_be_exactly_one(tmp_path: Path, sandbox: SandboxServer, make_config: Any) -> None:
    loaded = make_config(tmp_path, sandbox.url)
    with pytest.raises(ConfigError, match="exactly one of"):
        run_async(cleanup(loaded))
    with pytest.raises(ConfigError, match="--run and --pattern"):
        run_async(cleanup(loaded, run_id="x", pattern=PATTERN))


@asynccontextmanager
async def _refusing_api(prospects: list[dict[str, Any]], delete_status: int) -> AsyncIterator[tuple[str, list[str]]]:
    """A tiny Bonzo stand-in on a real socket that lists and shows prospects but refuses DELETE."""
    deletes: list[str] = []

    async def listing(request: web.Request) -> web.Response:
        return web.json_response({"data": prospects, "meta": {"current_page": 1, "last_page": 1}})

    async def one(request: web.Request) -> web.Response:
        if request.method == "DELETE":
            deletes.append(request.match_info["id"])
            return web.json_response({"message": "The DELETE method is not supported."}, status=delete_status)
        match = [p for p in prospects if str(p["id"]) == request.match_info["id"]]
        return web.json_response({"data": match[0]}) if match else web.json_response({}, status=404)

    app = web.Application()
    app.router.add_get("/api/v3/prospects", listing)
    app.router.add_route("*", "/api/v3/prospects/{id}", one)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", deletes
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("delete_status", [405, 404])
def test_an_api_that_refuses_deletes_gets_a_manual_list(tmp_path: Path, delete_status: int) -> None:
    prospects = [{"id": i, **_body("test_record", i)} for i in range(1, 6)] + [{"id": 99, **_body("real", 99)}]

    async def scenario() -> None:
        async with (
            _refusing_api(prospects, delete_status) as (url, deletes),
            BonzoClient(base_url=url, api_key="token-for-a-stand-in", settings=API) as client,
        ):
            report = await clean(
                client, selector_for_pattern(PATTERN, SETTINGS), user_ids=[1], dry_run=False, manual_dir=tmp_path
            )
            assert deletes == ["1"], "one refused DELETE is enough; the rest are not attempted"
        expected = "(405)" if delete_status == 405 else "offers no delete"
        assert report.refused is not None and expected in report.refused
        assert not report.deleted and not report.passed
        assert sorted(int(c.prospect_id) for c in report.manual) == [1, 2, 3, 4, 5]
        csv_file, json_file = report.manual_files
        assert csv_file.read_text().count("\n") == 6
        listed = json.loads(json_file.read_text())["prospects"]
        assert sorted(p["prospect_id"] for p in listed) == [1, 2, 3, 4, 5]

    asyncio.run(scenario())


@pytest.mark.parametrize("hostile", ["repeat", "endless"])
def test_a_hostile_listing_is_reported_and_bounded_never_a_quiet_end(tmp_path: Path, hostile: str) -> None:
    from bonzo_bulk.config.schema import ProcessingDelayModel, SandboxListing
    from bonzo_bulk.sandbox import SandboxOptions

    listing = SandboxListing.model_validate({"max_per_page": 2, "hostile": hostile})
    fast = ProcessingDelayModel(distribution="fixed", seconds=0.05)
    options = SandboxOptions(db_path=tmp_path / "hostile.sqlite3", processing=fast, listing=listing)
    bounded = ApiSettings(retry_delay=0.01, concurrent_requests=8, listing_timeout=1.0)

    async def scenario(url: str) -> None:
        users = _users(1)
        token = await _seed(url, users)
        async with BonzoClient(base_url=url, api_key=token, settings=bounded) as client:
            await _populate(client, users, [("test_record", 0), ("test_record", 0), ("test_record", 0)])
            report = await clean(client, selector_for_all(SETTINGS), user_ids=[users[0]["user_id"]], dry_run=True)
        # The first page's two records are selected; the third sits behind a listing that never ends.
        assert len(report.deletable) == 2
        assert len(report.unlisted) == 1 and f"user {users[0]['user_id']}" in report.unlisted[0]
        reason = "repeats a page" if hostile == "repeat" else "deadline passed"
        assert reason in report.unlisted[0]
        assert not report.passed

    with SandboxServer(options) as server:
        run_async(scenario(server.url))
