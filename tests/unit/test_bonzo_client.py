"""Bonzo's API client against aioresponses: headers, envelopes, pages, errors, retries, counting, secrecy."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses
from yarl import URL

from bonzo_bulk.bonzo import BonzoClient, ProspectPage
from bonzo_bulk.config.schema import ApiSettings
from bonzo_bulk.errors import (
    AuthError,
    BonzoAPIError,
    ListingIncomplete,
    MethodNotAllowed,
    NotFoundError,
    RateLimited,
)

CANARY = "canary-eyJhbGciOi.JIUzI1NiJ9-do-not-leak-42"
ROOT = "https://app.getbonzo.com/api/v3"
PROSPECTS = re.compile(r"^https://app\.getbonzo\.com/api/v3/prospects(\?.*)?$")


def settings(**overrides: object) -> ApiSettings:
    values: dict[str, object] = {"retry_attempts": 2, "retry_delay": 0.0, "default_retry_after": 0.01, "timeout": 5.0}
    values.update(overrides)
    return ApiSettings.model_validate(values)


@pytest.fixture
async def client() -> AsyncIterator[BonzoClient]:
    async with BonzoClient(base_url="https://app.getbonzo.com", api_key=CANARY, settings=settings()) as bonzo:
        yield bonzo


def sent(mock: aioresponses, method: str, url: str) -> list[Any]:
    """The recorded calls of one method and URL (query included)."""
    return list(mock.requests.get((method, URL(url)), []))


def prospect(pid: int) -> dict[str, Any]:
    return {"id": pid, "email": f"test.monitorbase.{pid:03d}@bonzobuddy.test", "assigned_to": 11}


async def test_auth_and_accept_headers(mocked: aioresponses, client: BonzoClient) -> None:
    mocked.get(f"{ROOT}/prospects/5", payload={"data": prospect(5)})
    await client.get_prospect(5)
    [call] = sent(mocked, "GET", f"{ROOT}/prospects/5")
    headers = call.kwargs["headers"]
    assert headers["Authorization"] == f"Bearer {CANARY}"
    assert headers["Accept"] == "application/json"
    assert "On-Behalf-Of" not in headers


@pytest.mark.parametrize("who", [42, "lo.one@bonzobuddy.test", "ex:crm-7"])
async def test_on_behalf_of_header(mocked: aioresponses, client: BonzoClient, who: int | str) -> None:
    mocked.get(f"{ROOT}/prospects/5", payload={"data": prospect(5)})
    await client.get_prospect(5, on_behalf_of=who)
    [call] = sent(mocked, "GET", f"{ROOT}/prospects/5")
    assert call.kwargs["headers"]["On-Behalf-Of"] == str(who)


async def test_envelope_is_unwrapped(mocked: aioresponses, client: BonzoClient) -> None:
    mocked.get(f"{ROOT}/prospects/5", payload={"data": prospect(5)})
    mocked.post(f"{ROOT}/prospects", payload={"data": {"id": 9, "first_name": "A"}})
    mocked.put(f"{ROOT}/prospects/9", payload={"data": {"id": 9, "first_name": "B"}})
    mocked.delete(f"{ROOT}/prospects/9", status=204)
    assert (await client.get_prospect(5))["id"] == 5
    assert (await client.create_prospect({"first_name": "A"}, on_behalf_of=11)) == {"id": 9, "first_name": "A"}
    assert (await client.update_prospect(9, {"first_name": "B"}))["first_name"] == "B"
    await client.delete_prospect(9)
    assert sent(mocked, "DELETE", f"{ROOT}/prospects/9")
    [put] = sent(mocked, "PUT", f"{ROOT}/prospects/9")
    assert put.kwargs["json"] == {"first_name": "B"}


async def test_request_returns_unenveloped_bodies_as_is(mocked: aioresponses, client: BonzoClient) -> None:
    mocked.get(f"{ROOT}/oauth/personal-access-tokens", payload=[{"id": 1}])
    assert await client.request("GET", "/oauth/personal-access-tokens") == [{"id": 1}]


@pytest.mark.parametrize("base", ["https://app.getbonzo.com", "https://app.getbonzo.com/", f"{ROOT}", f"{ROOT}/"])
async def test_api_prefix_is_added_once(mocked: aioresponses, base: str) -> None:
    mocked.get(f"{ROOT}/prospects/1", payload={"data": prospect(1)})
    async with BonzoClient(base_url=base, api_key=CANARY, settings=settings()) as bonzo:
        assert bonzo.base_url == ROOT
        await bonzo.get_prospect(1)


def paged(pages: list[list[dict[str, Any]]], *, meta: bool = True, per_page: int = 2) -> Any:
    """An aioresponses callback serving ``pages`` by the ``page`` query parameter."""

    def serve(url: URL, **_: Any) -> CallbackResult:
        number = int(url.query.get("page", "1"))
        data = pages[number - 1] if number <= len(pages) else []
        body: dict[str, Any] = {"data": data}
        if meta:
            body["meta"] = {"current_page": number, "last_page": len(pages), "per_page": per_page, "total": 99}
        return CallbackResult(payload=body)

    return serve


async def test_iter_prospects_pages_through_page_numbers_to_an_empty_page(
    mocked: aioresponses, client: BonzoClient
) -> None:
    # Page numbers alone (no links, no cursor): last_page is a hint, so the walk asks once past it.
    pages = [[prospect(1), prospect(2)], [prospect(3), prospect(4)], [prospect(5), prospect(6)]]
    mocked.get(PROSPECTS, callback=paged(pages), repeat=True)
    found = [p["id"] async for p in client.iter_prospects(on_behalf_of=11, search="TestRecord", per_page=2)]
    assert found == [1, 2, 3, 4, 5, 6]
    assert client.requests_made == 4
    assert client.request_counts[("GET", "/prospects")] == 4
    for page in (1, 2, 3, 4):
        url = f"{ROOT}/prospects?page={page}&per_page=2&search=TestRecord"
        [call] = sent(mocked, "GET", url)
        assert call.kwargs["headers"]["On-Behalf-Of"] == "11"


async def test_a_short_page_is_not_the_end(mocked: aioresponses, client: BonzoClient) -> None:
    # A server capping pages below per_page answers short pages that are not the last.
    pages = [[prospect(1), prospect(2)], [prospect(3)], [prospect(4)]]
    mocked.get(PROSPECTS, callback=paged(pages, meta=False), repeat=True)
    found = [p["id"] async for p in client.iter_prospects(on_behalf_of=11, per_page=2)]
    assert found == [1, 2, 3, 4]
    assert client.requests_made == 4


async def test_iter_prospects_stops_on_an_empty_page(mocked: aioresponses, client: BonzoClient) -> None:
    pages = [[prospect(1), prospect(2)], []]
    mocked.get(PROSPECTS, callback=paged(pages, meta=False), repeat=True)
    assert [p["id"] async for p in client.iter_prospects(on_behalf_of=11, per_page=2)] == [1, 2]
    assert client.requests_made == 2


async def test_a_server_repeating_a_page_is_an_error_not_an_end(mocked: aioresponses, client: BonzoClient) -> None:
    mocked.get(PROSPECTS, payload={"data": [prospect(1), prospect(2)]}, repeat=True)
    found: list[object] = []

    async def read_all() -> None:
        async for p in client.iter_prospects(on_behalf_of=11, per_page=2):
            found.append(p["id"])

    with pytest.raises(ListingIncomplete, match="repeats a page") as error:
        await read_all()
    assert found == [1, 2]
    assert error.value.reason == "repeated_page"
    assert client.requests_made == 2


async def test_list_prospects_reads_meta_and_defaults_per_page(mocked: aioresponses, client: BonzoClient) -> None:
    mocked.get(PROSPECTS, callback=paged([[prospect(1)]], per_page=100), repeat=True)
    page = await client.list_prospects(on_behalf_of="lo.one@bonzobuddy.test", order="created_at")
    assert page == ProspectPage(data=(prospect(1),), current_page=1, last_page=1, per_page=100, total=99)
    [call] = sent(mocked, "GET", f"{ROOT}/prospects?order=created_at&page=1&per_page=100")
    assert call.kwargs["params"] == {"page": 1, "per_page": 100, "order": "created_at"}


@pytest.mark.parametrize(
    ("status", "error_type", "hint"),
    [
        (401, AuthError, "SUPERUSER_API_KEY"),
        (403, AuthError, "scope"),
        (404, NotFoundError, "no such resource"),
        (405, MethodNotAllowed, "PUT"),
        (422, BonzoAPIError, "email: The email must be a valid email address."),
        (409, BonzoAPIError, "The given data was invalid."),
    ],
)
async def test_error_mapping(
    mocked: aioresponses, client: BonzoClient, status: int, error_type: type[BonzoAPIError], hint: str
) -> None:
    body = {"message": "The given data was invalid.", "errors": {"email": ["The email must be a valid email address."]}}
    mocked.get(f"{ROOT}/prospects/5", status=status, payload=body)
    with pytest.raises(error_type) as caught:
        await client.get_prospect(5, on_behalf_of="lo.one@bonzobuddy.test")
    assert type(caught.value) is error_type
    assert caught.value.status == status
    assert caught.value.method == "GET"
    assert caught.value.path == "/prospects/5"
    assert hint in str(caught.value)
    assert CANARY not in str(caught.value)
    assert client.requests_made == 1, "4xx is never retried"


async def test_auth_error_names_on_behalf_of_rights(mocked: aioresponses, client: BonzoClient) -> None:
    mocked.get(f"{ROOT}/prospects/5", status=403, payload={"message": "Invalid scope(s) provided."})
    with pytest.raises(AuthError, match=r"Invalid scope\(s\).*On-Behalf-Of lo.one@bonzobuddy.test"):
        await client.get_prospect(5, on_behalf_of="lo.one@bonzobuddy.test")


async def test_5xx_is_retried_then_succeeds(mocked: aioresponses, client: BonzoClient) -> None:
    mocked.get(f"{ROOT}/prospects/5", status=502, body="Bad Gateway")
    mocked.get(f"{ROOT}/prospects/5", status=500, payload={"message": "Server Error"})
    mocked.get(f"{ROOT}/prospects/5", payload={"data": prospect(5)})
    assert (await client.get_prospect(5))["id"] == 5
    assert client.requests_made == 3
    assert client.request_counts == {("GET", "/prospects/{id}"): 3}


async def test_5xx_after_every_retry_is_an_api_error(mocked: aioresponses, client: BonzoClient) -> None:
    mocked.get(f"{ROOT}/prospects/5", status=503, payload={"message": "Service Unavailable"}, repeat=True)
    with pytest.raises(BonzoAPIError, match="failed 3 tries: Service Unavailable") as caught:
        await client.get_prospect(5)
    assert caught.value.status == 503
    assert client.requests_made == 3


async def test_429_waits_and_retries(mocked: aioresponses, client: BonzoClient) -> None:
    mocked.get(f"{ROOT}/prospects/5", status=429, headers={"Retry-After": "0"}, payload={"message": "Too Many"})
    mocked.get(f"{ROOT}/prospects/5", status=429, payload={"message": "Too Many"})
    mocked.get(f"{ROOT}/prospects/5", payload={"data": prospect(5)})
    assert (await client.get_prospect(5))["id"] == 5
    assert client.requests_made == 3


async def test_429_after_every_retry_is_rate_limited(mocked: aioresponses, client: BonzoClient) -> None:
    mocked.get(
        f"{ROOT}/prospects/5",
        status=429,
        headers={"Retry-After": "0.01"},
        payload={"message": "Too Many Attempts."},
        repeat=True,
    )
    with pytest.raises(RateLimited) as caught:
        await client.get_prospect(5)
    assert caught.value.status == 429
    assert caught.value.retry_after == pytest.approx(0.01)
    assert client.requests_made == 3


async def test_a_429_wait_past_the_deadline_is_refused_at_once(mocked: aioresponses, client: BonzoClient) -> None:
    """What keeps a run's settle deadline: a Retry-After that would end past it is not waited out (the guard
    only catches a client that waits: it would wait the 100 s, within api_settings.max_wait's 120 s)."""
    mocked.get(
        f"{ROOT}/prospects/5",
        status=429,
        headers={"Retry-After": "100"},
        payload={"message": "Too Many Attempts."},
        repeat=True,
    )
    client.deadline = time.monotonic() + 30
    with pytest.raises(RateLimited, match="past the run's deadline; the deadline is kept"):
        await asyncio.wait_for(client.get_prospect(5), timeout=60)
    assert client.requests_made == 1
    assert client.rate_limited_seconds == 0


async def test_a_retry_after_longer_than_max_wait_is_refused_at_once(mocked: aioresponses, client: BonzoClient) -> None:
    """No deadline (preflight, cleanup): the wait is still bounded, by api_settings.max_wait (120 s by default)."""
    mocked.get(
        f"{ROOT}/prospects/5",
        status=429,
        headers={"Retry-After": "100000"},
        payload={"message": "Too Many Attempts."},
        repeat=True,
    )
    assert client.deadline is None
    with pytest.raises(
        RateLimited, match=r"wait 100000 s \(429 Retry-After\), more than api_settings.max_wait \(120 s\)"
    ):
        await asyncio.wait_for(client.get_prospect(5), timeout=60)
    assert client.requests_made == 1


async def test_network_failure_is_mapped_with_its_cause(mocked: aioresponses, client: BonzoClient) -> None:
    mocked.get(f"{ROOT}/prospects/5", exception=aiohttp.ServerDisconnectedError(), repeat=True)
    with pytest.raises(BonzoAPIError, match="could not reach") as caught:
        await client.get_prospect(5)
    assert isinstance(caught.value.__cause__, aiohttp.ServerDisconnectedError)
    assert caught.value.status is None
    assert client.requests_made == 3


async def test_timeout_then_success(mocked: aioresponses, client: BonzoClient) -> None:
    mocked.get(f"{ROOT}/prospects/5", exception=TimeoutError())
    mocked.get(f"{ROOT}/prospects/5", payload={"data": prospect(5)})
    assert (await client.get_prospect(5))["id"] == 5
    assert client.requests_made == 2


async def test_non_json_success_is_an_api_error(mocked: aioresponses, client: BonzoClient) -> None:
    mocked.get(f"{ROOT}/prospects/5", body="<html>login</html>", content_type="text/html")
    with pytest.raises(BonzoAPIError, match="not JSON"):
        await client.get_prospect(5)


async def test_request_counting_per_route(mocked: aioresponses, client: BonzoClient) -> None:
    mocked.get(f"{ROOT}/prospects/1", payload={"data": prospect(1)})
    mocked.get(f"{ROOT}/prospects/2", payload={"data": prospect(2)})
    mocked.post(f"{ROOT}/prospects/2/notes", payload={"data": {"id": 1}})
    mocked.get(PROSPECTS, payload={"data": []})
    await client.get_prospect(1)
    await client.get_prospect(2)
    await client.request("POST", "prospects/2/notes", json={"content": "hi"})
    await client.list_prospects(on_behalf_of=11)
    assert client.requests_made == 4
    assert client.request_counts == {
        ("GET", "/prospects/{id}"): 2,
        ("POST", "/prospects/{id}/notes"): 1,
        ("GET", "/prospects"): 1,
    }


async def test_key_never_shows(mocked: aioresponses) -> None:
    bonzo = BonzoClient(base_url="https://app.getbonzo.com", api_key=CANARY, settings=settings(retry_attempts=0))
    assert CANARY not in repr(bonzo)
    assert CANARY not in str(bonzo)
    mocked.get(f"{ROOT}/prospects/1", status=401, body=f"Unauthenticated. Bearer {CANARY}")
    mocked.get(f"{ROOT}/prospects/2", status=500, payload={"message": f"token {CANARY} rejected"})
    mocked.get(f"{ROOT}/prospects/3", exception=aiohttp.ClientError(f"boom {CANARY}"))
    async with bonzo:
        for pid in (1, 2, 3):
            with pytest.raises(BonzoAPIError) as caught:
                await bonzo.get_prospect(pid)
            assert CANARY not in str(caught.value)
            assert CANARY not in repr(caught.value)


async def test_without_async_with_the_session_opens_lazily(mocked: aioresponses) -> None:
    mocked.get(f"{ROOT}/prospects/1", payload={"data": prospect(1)})
    bonzo = BonzoClient(base_url="https://app.getbonzo.com", api_key=CANARY, settings=settings())
    try:
        assert (await bonzo.get_prospect(1))["id"] == 1
    finally:
        await bonzo.aclose()


async def test_a_given_session_is_left_open(mocked: aioresponses) -> None:
    mocked.get(f"{ROOT}/prospects/1", payload={"data": prospect(1)})
    async with aiohttp.ClientSession() as session:
        async with BonzoClient(
            base_url="https://app.getbonzo.com", api_key=CANARY, settings=settings(), session=session
        ) as bonzo:
            await bonzo.get_prospect(1)
        assert not session.closed
