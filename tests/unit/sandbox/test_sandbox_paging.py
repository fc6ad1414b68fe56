"""The sandbox's pagination switches (sandbox.listing): each style's envelope, the per-page cap, lying hints,
and the hostile listings, read as a client would read them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sandbox_helpers import Sandbox, lead, start_sandbox

from bonzo_bulk.config.schema import SandboxListing
from bonzo_bulk.sandbox.paging import HOSTILE_LAST_PAGE, PHANTOM_ID


async def seeded(sbx: Sandbox, count: int) -> None:
    hook = sbx.hooks["monitorbase"].replace("http://sandbox.test", "")
    for n in range(count):
        assert (await sbx.client.post(hook, json=lead(n))).status_code == 200
    await sbx.settle()


async def get(sbx: Sandbox, url: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await sbx.client.get(url, headers=sbx.su(101), params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def walk_links(sbx: Sandbox, first: dict[str, Any]) -> list[list[int]]:
    """Follow links.next as given (Laravel's bare links carry no per_page: it is added back), at most 10 pages."""
    pages, body = [], first
    for _ in range(10):
        pages.append([p["id"] for p in body["data"]])
        nxt = body["links"]["next"]
        if nxt is None:
            return pages
        body = await get(sbx, nxt.replace("http://sandbox.test", "") + "&per_page=4")
    raise AssertionError(f"links.next never ended: {pages}")


async def test_laravel_style_pages_by_number_with_links_and_meta(tmp_path: Path) -> None:
    async with start_sandbox(tmp_path, listing=SandboxListing(max_per_page=4)) as sbx:
        await seeded(sbx, 10)
        first = await get(sbx, "/api/v3/prospects", {"per_page": 100})
        assert first["meta"]["per_page"] == 4 and first["meta"]["last_page"] == 3 and first["meta"]["total"] == 10
        assert await walk_links(sbx, first) == [[10, 9, 8, 7], [6, 5, 4, 3], [2, 1]]


async def test_page_numbers_style_has_meta_only_and_asked_hints_lie(tmp_path: Path) -> None:
    listing = SandboxListing(style="page_numbers", max_per_page=4, hints="asked")
    async with start_sandbox(tmp_path, listing=listing) as sbx:
        await seeded(sbx, 10)
        first = await get(sbx, "/api/v3/prospects", {"per_page": 100})
        assert "links" not in first
        # The cap serves 4, the meta says what was asked: one page of 100, when three pages hold the list.
        assert first["meta"] == {"current_page": 1, "last_page": 1, "per_page": 100, "total": 10}
        assert [p["id"] for p in first["data"]] == [10, 9, 8, 7]
        third = await get(sbx, "/api/v3/prospects", {"per_page": 100, "page": 3})
        assert [p["id"] for p in third["data"]] == [2, 1]


@pytest.mark.parametrize("order", ["newest", "oldest"])
async def test_links_cursor_style_walks_the_whole_list_by_keyset(tmp_path: Path, order: str) -> None:
    async with start_sandbox(tmp_path, listing=SandboxListing(style="links_cursor", max_per_page=4)) as sbx:
        await seeded(sbx, 10)
        first = await get(sbx, "/api/v3/prospects", {"per_page": 100, "order": order})
        assert set(first["meta"]) == {"path", "per_page"}
        assert first["links"]["next"].startswith("/api/v3/prospects?cursor=")  # relative, opaque, nothing else
        pages = [[p["id"] for p in first["data"]]]
        body = first
        for _ in range(10):
            if body["links"]["next"] is None:
                break
            body = await get(sbx, body["links"]["next"] + f"&order={order}")
            pages.append([p["id"] for p in body["data"]])
        ids = [n for page in pages for n in page]
        assert ids == (list(range(10, 0, -1)) if order == "newest" else list(range(1, 11)))


async def test_meta_cursor_style_names_the_next_cursor_in_meta(tmp_path: Path) -> None:
    async with start_sandbox(tmp_path, listing=SandboxListing(style="meta_cursor", max_per_page=4)) as sbx:
        await seeded(sbx, 6)
        first = await get(sbx, "/api/v3/prospects")
        assert "links" not in first and first["meta"]["next_cursor"]
        second = await get(sbx, "/api/v3/prospects", {"cursor": first["meta"]["next_cursor"]})
        assert [p["id"] for p in second["data"]] == [2, 1]
        assert second["meta"]["next_cursor"] is None
        stranger = await get(sbx, "/api/v3/prospects", {"cursor": "not-ours"})  # as Laravel: the first page
        assert [p["id"] for p in stranger["data"]] == [p["id"] for p in first["data"]]


async def test_a_repeating_listing_serves_page_one_forever(tmp_path: Path) -> None:
    async with start_sandbox(tmp_path, listing=SandboxListing(max_per_page=2, hostile="repeat")) as sbx:
        await seeded(sbx, 5)
        page9 = await get(sbx, "/api/v3/prospects", {"page": 9})
        assert [p["id"] for p in page9["data"]] == [5, 4]
        assert page9["meta"]["last_page"] == HOSTILE_LAST_PAGE and page9["links"]["next"].endswith("page=10")


async def test_an_endless_listing_makes_up_new_ids_on_every_later_page(tmp_path: Path) -> None:
    async with start_sandbox(tmp_path, listing=SandboxListing(max_per_page=2, hostile="endless")) as sbx:
        await seeded(sbx, 3)
        first = await get(sbx, "/api/v3/prospects")
        assert [p["id"] for p in first["data"]] == [3, 2]
        later = [await get(sbx, "/api/v3/prospects", {"page": n}) for n in (2, 3)]
        ids = [[p["id"] for p in body["data"]] for body in later]
        assert all(n >= PHANTOM_ID for page in ids for n in page) and ids[0] != ids[1]
        assert later[1]["links"]["next"] is not None


async def test_a_foreign_next_names_another_host(tmp_path: Path) -> None:
    async with start_sandbox(tmp_path, listing=SandboxListing(style="meta_cursor", hostile="foreign_next")) as sbx:
        await seeded(sbx, 1)
        body = await get(sbx, "/api/v3/prospects")
        assert body["links"]["next"].startswith("http://elsewhere.invalid/")


async def test_the_listing_switches_change_on_a_running_sandbox(tmp_path: Path) -> None:
    async with start_sandbox(tmp_path) as sbx:
        await seeded(sbx, 3)
        changed = await sbx.client.put(
            "/__sandbox/settings", json={"listing": {"style": "meta_cursor", "max_per_page": 2}}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["listing"]["style"] == "meta_cursor"
        body = await get(sbx, "/api/v3/prospects")
        assert len(body["data"]) == 2 and body["meta"]["next_cursor"]
        refused = await sbx.client.put("/__sandbox/settings", json={"listing": {"style": "pages"}})
        assert refused.status_code == 422
