"""The listing walk (bonzo/listing.py) through the client: pages follow what the answer names, never our arithmetic."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses
from yarl import URL

from bonzo_bulk.bonzo import BonzoClient
from bonzo_bulk.bonzo.listing import walk_pages
from bonzo_bulk.config.schema import ApiSettings
from bonzo_bulk.errors import ListingIncomplete

ROOT = "https://app.getbonzo.com/api/v3"
ANY_URL = re.compile(r"^https?://.*$")


@pytest.fixture
async def client() -> AsyncIterator[BonzoClient]:
    settings = ApiSettings.model_validate({"retry_attempts": 0, "retry_delay": 0.0, "timeout": 5.0})
    async with BonzoClient(base_url="https://app.getbonzo.com", api_key="k-test", settings=settings) as bonzo:
        yield bonzo


def prospects(*ids: int) -> list[dict[str, Any]]:
    return [{"id": n, "first_name": f"P{n}"} for n in ids]


class Server:
    """Answers each request by a function of its URL; keeps every URL asked, in order."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[URL] = []

    def __call__(self, url: URL, **_: Any) -> CallbackResult:
        self.asked.append(url)
        return CallbackResult(payload=self.answer(url))


async def read(client: BonzoClient, **kwargs: Any) -> list[Any]:
    return [p["id"] async for p in client.iter_prospects(on_behalf_of=7, **kwargs)]


async def read_until_error(client: BonzoClient, found: list[Any], **kwargs: Any) -> None:
    async for p in client.iter_prospects(on_behalf_of=7, **kwargs):
        found.append(p["id"])


async def test_links_next_is_followed_with_its_cursor_and_our_search(mocked: aioresponses, client: BonzoClient) -> None:
    def answer(url: URL) -> dict[str, Any]:
        if "cursor" not in url.query:
            # An absolute next with an opaque cursor; last_page claims this is the only page.
            nxt = f"{ROOT}/prospects?cursor=eyJpZCI6OX0%3D"
            return {"data": prospects(3, 2), "links": {"next": nxt}, "meta": {"last_page": 1, "total": 2}}
        return {"data": prospects(1), "links": {"next": None}}

    server = Server(answer)
    mocked.get(ANY_URL, callback=server, repeat=True)
    assert await read(client, search="r2026", per_page=2) == [3, 2, 1]
    second = server.asked[1]
    assert second.query["cursor"] == "eyJpZCI6OX0="
    # Laravel leaves the query out of its links: search and per_page are kept from the first request.
    assert (second.query["search"], second.query["per_page"]) == ("r2026", "2")
    assert "page" not in second.query


@pytest.mark.parametrize("link", ["?page=2", "/api/v3/prospects?page=2", "prospects?page=2"])
async def test_a_relative_next_resolves_against_the_api(mocked: aioresponses, client: BonzoClient, link: str) -> None:
    def answer(url: URL) -> dict[str, Any]:
        if url.query.get("page") == "2":
            return {"data": prospects(1), "links": {"next": None}}
        return {"data": prospects(2), "links": {"next": link}}

    server = Server(answer)
    mocked.get(ANY_URL, callback=server, repeat=True)
    assert await read(client) == [2, 1]
    assert [u.path for u in server.asked] == ["/api/v3/prospects", "/api/v3/prospects"]


async def test_an_http_next_on_our_host_is_sent_to_our_https_root(mocked: aioresponses, client: BonzoClient) -> None:
    # Laravel behind a TLS proxy writes http:// links: the token must still go over https only.
    def answer(url: URL) -> dict[str, Any]:
        if url.query.get("page") == "2":
            return {"data": prospects(1), "links": {"next": None}}
        return {"data": prospects(2), "links": {"next": "http://app.getbonzo.com/api/v3/prospects?page=2"}}

    server = Server(answer)
    mocked.get(ANY_URL, callback=server, repeat=True)
    assert await read(client) == [2, 1]
    assert {u.scheme for u in server.asked} == {"https"}


@pytest.mark.parametrize(
    "link",
    ["https://elsewhere.test/api/v3/prospects?page=2", "//elsewhere.test/x", "https://app.getbonzo.com:8443/api/v3/p"],
)
async def test_a_next_on_another_host_is_an_error_and_never_followed(
    mocked: aioresponses, client: BonzoClient, link: str
) -> None:
    server = Server(lambda url: {"data": prospects(2, 1), "links": {"next": link}})
    mocked.get(ANY_URL, callback=server, repeat=True)
    found: list[Any] = []
    with pytest.raises(ListingIncomplete, match="another host") as error:
        await read_until_error(client, found)
    assert error.value.reason == "foreign_next"
    assert found == [2, 1]
    assert len(server.asked) == 1


async def test_a_next_outside_the_api_is_not_followed(mocked: aioresponses, client: BonzoClient) -> None:
    server = Server(lambda url: {"data": prospects(1), "links": {"next": "/admin/users?page=2"}})
    mocked.get(ANY_URL, callback=server, repeat=True)
    with pytest.raises(ListingIncomplete, match="outside the API"):
        await read(client)
    assert len(server.asked) == 1


async def test_a_meta_cursor_is_sent_as_cursor_until_it_is_null(mocked: aioresponses, client: BonzoClient) -> None:
    def answer(url: URL) -> dict[str, Any]:
        cursor = url.query.get("cursor")
        if cursor is None:
            return {"data": prospects(9, 8), "meta": {"next_cursor": "c1", "per_page": 100}}
        if cursor == "c1":
            return {"data": prospects(7), "meta": {"next_cursor": "c2"}}  # short page: not the end
        return {"data": prospects(6), "meta": {"next_cursor": None}}

    server = Server(answer)
    mocked.get(ANY_URL, callback=server, repeat=True)
    assert await read(client, search="r1") == [9, 8, 7, 6]
    assert [u.query.get("cursor") for u in server.asked] == [None, "c1", "c2"]
    assert all(u.query["search"] == "r1" for u in server.asked)


async def test_a_next_already_followed_is_an_error(mocked: aioresponses, client: BonzoClient) -> None:
    def answer(url: URL) -> dict[str, Any]:
        cursor = url.query.get("cursor")
        return {"data": prospects(2 if cursor is None else 1), "meta": {"next_cursor": "same"}}

    server = Server(answer)
    mocked.get(ANY_URL, callback=server, repeat=True)
    with pytest.raises(ListingIncomplete, match="already asked for") as error:
        await read(client)
    assert error.value.reason == "repeated_next"
    assert len(server.asked) == 2


async def test_page_numbers_end_where_the_api_answers_an_earlier_page(
    mocked: aioresponses, client: BonzoClient
) -> None:
    # A server that clamps `page` to its last page: asked for page 3, it answers page 2 again.
    def answer(url: URL) -> dict[str, Any]:
        page = min(int(url.query["page"]), 2)
        return {"data": prospects(10 - page), "meta": {"current_page": page, "last_page": 2}}

    server = Server(answer)
    mocked.get(ANY_URL, callback=server, repeat=True)
    assert await read(client) == [9, 8]
    assert len(server.asked) == 3


async def test_last_page_and_total_never_end_a_walk_the_links_continue(
    mocked: aioresponses, client: BonzoClient
) -> None:
    def answer(url: URL) -> dict[str, Any]:
        page = int(url.query.get("page", "1"))
        meta = {"current_page": page, "last_page": 1, "per_page": 100, "total": 1}
        nxt = f"{ROOT}/prospects?page={page + 1}" if page < 3 else None
        return {"data": prospects(10 - page), "links": {"next": nxt}, "meta": meta}

    mocked.get(ANY_URL, callback=Server(answer), repeat=True)
    assert await read(client) == [9, 8, 7]


async def test_a_walk_stops_at_its_deadline_with_an_error_not_an_end() -> None:
    pages = 0

    async def endless(path: str, params: Mapping[str, str]) -> Any:
        nonlocal pages
        pages += 1
        return {"data": prospects(pages), "meta": {"current_page": pages, "last_page": 1_000_000}}

    walk = walk_pages(endless, root=URL(ROOT), path="prospects", params={"page": 1}, deadline=time.monotonic() + 0.2)
    with pytest.raises(ListingIncomplete, match="deadline passed") as error:
        async for _ in walk:
            pass
    assert error.value.reason == "deadline"
    assert error.value.pages == pages > 0
