"""Bonzo API v3 as the sandbox serves it: auth, On-Behalf-Of, prospects CRUD, pagination, search, rate limits."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sandbox_helpers import Sandbox, start_sandbox

from bonzo_bulk.config.schema import SandboxListing
from bonzo_bulk.sandbox import create_app
from bonzo_bulk.sandbox.prospects import e164

STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


async def create(sbx: Sandbox, user_id: int, n: int, **fields: object) -> dict[str, Any]:
    body = {"first_name": f"Person{n:03d}", "last_name": "Tester", "email": f"person.{n:03d}@x.test", **fields}
    response = await sbx.client.post("/api/v3/prospects", headers=sbx.su(user_id), json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def test_openapi_document_lists_api_hook_and_admin_routes(sbx: Sandbox) -> None:
    paths = (await sbx.client.get("/openapi.json")).json()["paths"]
    assert {
        "/api/v3/prospects",
        "/api/v3/prospects/{prospect_id}",
        "/api/webhook/{hook_hash}",
        "/__sandbox/seed",
    } <= set(paths)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}],
    ids=["missing", "unknown", "basic", "empty"],
)
async def test_bad_or_missing_token_is_401(sbx: Sandbox, headers: dict[str, str]) -> None:
    response = await sbx.client.get("/api/v3/prospects", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthenticated."}


@pytest.mark.parametrize("target", ["102", "lo.two@lender.test", "LO.TWO@LENDER.TEST", "ex:ext-2"])
async def test_superuser_acts_on_behalf_of_id_email_or_external_id(sbx: Sandbox, target: str) -> None:
    created = await create(sbx, 102, 1)
    response = await sbx.client.get("/api/v3/prospects", headers=sbx.su(target))
    assert [p["id"] for p in response.json()["data"]] == [created["id"]]
    assert created["assigned_to"] == 102
    assert created["assigned_user"] == {"id": 102, "name": "LO Two", "email": "lo.two@lender.test"}
    assert created["business_entity_id"] == 12
    assert created["business"] == {"id": 12, "name": "Team 12"}


async def test_superuser_without_on_behalf_of_sees_only_its_own_list(sbx: Sandbox) -> None:
    await create(sbx, 101, 1)
    response = await sbx.client.get("/api/v3/prospects", headers=sbx.su())
    assert response.status_code == 200
    assert response.json()["data"] == []


async def test_on_behalf_of_an_unknown_user_is_a_clear_422(sbx: Sandbox) -> None:
    for target in ("999", "nobody@x.test", "ex:nope", "weird value"):
        response = await sbx.client.get("/api/v3/prospects", headers=sbx.su(target))
        assert response.status_code == 422
        assert "On-Behalf-Of" in response.json()["message"]


async def test_on_behalf_of_is_refused_for_a_user_token(sbx: Sandbox) -> None:
    headers = {**sbx.as_user(101), "On-Behalf-Of": "101"}
    response = await sbx.client.get("/api/v3/prospects", headers=headers)
    assert response.status_code == 403
    assert "SuperUser" in response.json()["message"]


async def test_user_token_sees_its_own_prospects_and_not_others(sbx: Sandbox) -> None:
    mine = await create(sbx, 101, 1)
    theirs = await create(sbx, 102, 2)
    listed = (await sbx.client.get("/api/v3/prospects", headers=sbx.as_user(101))).json()["data"]
    assert [p["id"] for p in listed] == [mine["id"]]
    assert (await sbx.client.get(f"/api/v3/prospects/{mine['id']}", headers=sbx.as_user(101))).status_code == 200
    assert (await sbx.client.get(f"/api/v3/prospects/{theirs['id']}", headers=sbx.as_user(101))).status_code == 404


async def test_created_prospect_has_bonzo_shape(sbx: Sandbox) -> None:
    data = await create(
        sbx,
        101,
        1,
        phone="(555) 010-0001",
        tags=["Hot", "hot", "VIP"],
        custom_fields={"loan": "1"},
        prospect_state="CA",
        birthday="1980-01-02",
    )
    assert data["email"] == "person.001@x.test"
    assert data["phone"] == "+15550100001"
    assert data["phone_type"] == "mobile"
    assert data["full_name"] == "Person001 Tester"
    assert data["status"] == "active"
    assert data["source"] == "api"
    assert data["state"] == "CA"
    assert [t["name"] for t in data["tags"]] == ["hot", "vip"]
    assert data["custom_fields"] == {"loan": "1"}
    assert data["mortgage"] == {}
    assert STAMP.match(str(data["created_at"])) and STAMP.match(str(data["updated_at"]))
    fetched = await sbx.client.get(f"/api/v3/prospects/{data['id']}", headers=sbx.su(101))
    assert fetched.json() == {"data": data}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"last_name": "x", "email": "a@b.test"}, {"first_name"}),
        ({"first_name": "A"}, {"email", "phone"}),
        ({"first_name": "A", "email": "not-an-email"}, {"email"}),
        ({"first_name": "A", "phone": "12345"}, {"phone"}),
        ({"first_name": ["A"], "email": "a@b.test"}, {"first_name"}),
        ({"first_name": "A", "email": "a@b.test", "tags": "x", "custom_fields": [1]}, {"custom_fields"}),
        ({"first_name": "A", "email": "a@b.test", "birthday": "02/01/1980"}, {"birthday"}),
        ([1, 2], {"body"}),
    ],
)
async def test_invalid_create_is_422_with_field_errors(sbx: Sandbox, body: object, fields: set[str]) -> None:
    response = await sbx.client.post("/api/v3/prospects", headers=sbx.su(101), json=body)
    assert response.status_code == 422
    assert set(response.json()["errors"]) == fields
    assert response.json()["message"]


async def test_create_with_a_body_that_is_not_json_is_422(sbx: Sandbox) -> None:
    response = await sbx.client.post("/api/v3/prospects", headers=sbx.su(101), content=b"{nope")
    assert response.status_code == 422
    assert "body" in response.json()["errors"]


async def test_put_replaces_the_whole_prospect(sbx: Sandbox) -> None:
    data = await create(sbx, 101, 1, phone="5550100001", city="Old", tags=["a"])
    response = await sbx.client.put(
        f"/api/v3/prospects/{data['id']}", headers=sbx.su(101), json={"first_name": "New", "email": "new@x.test"}
    )
    assert response.status_code == 200
    updated = response.json()["data"]
    assert (updated["first_name"], updated["last_name"], updated["phone"], updated["city"]) == ("New", None, None, None)
    assert updated["tags"] == []
    assert updated["source"] == "api"
    assert updated["created_at"] == data["created_at"]
    bad = await sbx.client.put(f"/api/v3/prospects/{data['id']}", headers=sbx.su(101), json={"email": "x@y.test"})
    assert bad.status_code == 422
    other = await sbx.client.put(f"/api/v3/prospects/{data['id']}", headers=sbx.su(102), json={"first_name": "X"})
    assert other.status_code == 404


async def test_patch_is_405_and_delete_removes(sbx: Sandbox) -> None:
    data = await create(sbx, 101, 1)
    url = f"/api/v3/prospects/{data['id']}"
    patched = await sbx.client.patch(url, headers=sbx.su(101), json={"first_name": "X"})
    assert patched.status_code == 405
    assert "PATCH" in patched.json()["message"]
    assert (await sbx.client.delete(url, headers=sbx.su(102))).status_code == 404
    assert (await sbx.client.delete(url, headers=sbx.su(101))).status_code == 204
    assert (await sbx.client.get(url, headers=sbx.su(101))).status_code == 404
    assert (await sbx.client.delete(url, headers=sbx.su(101))).status_code == 404


@pytest.mark.parametrize("prospect_id", ["abc", "-1", "1.5", "99999999999999999999999", "%20"])
async def test_odd_prospect_ids_are_404(sbx: Sandbox, prospect_id: str) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = await sbx.client.request(method, f"/api/v3/prospects/{prospect_id}", headers=sbx.su(101), json={})
        assert response.status_code == 404, (method, response.text)


async def test_unknown_api_route_is_404_json(sbx: Sandbox) -> None:
    response = await sbx.client.get("/api/v3/nothing", headers=sbx.su())
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}


async def test_empty_list_pagination(sbx: Sandbox) -> None:
    body = (await sbx.client.get("/api/v3/prospects", headers=sbx.su(101))).json()
    assert body["data"] == []
    assert body["meta"] | {"path": ""} == {
        "current_page": 1,
        "from": None,
        "last_page": 1,
        "path": "",
        "per_page": 25,
        "to": None,
        "total": 0,
    }
    assert body["links"]["prev"] is None and body["links"]["next"] is None
    assert body["links"]["first"].endswith("/api/v3/prospects?page=1")


async def test_pagination_exact_multiple_last_page_and_beyond(sbx: Sandbox) -> None:
    ids = [(await create(sbx, 101, n))["id"] for n in range(10)]
    page1 = (await sbx.client.get("/api/v3/prospects", headers=sbx.su(101), params={"per_page": 5})).json()
    assert [p["id"] for p in page1["data"]] == ids[::-1][:5]
    assert page1["meta"]["last_page"] == 2 and page1["meta"]["total"] == 10
    assert page1["links"]["next"].endswith("page=2")
    page2 = (await sbx.client.get("/api/v3/prospects", headers=sbx.su(101), params={"per_page": 5, "page": 2})).json()
    assert [p["id"] for p in page2["data"]] == ids[::-1][5:]
    assert (page2["meta"]["from"], page2["meta"]["to"]) == (6, 10)
    assert page2["links"]["next"] is None
    last = (await sbx.client.get("/api/v3/prospects", headers=sbx.su(101), params={"per_page": 4, "page": 3})).json()
    assert len(last["data"]) == 2 and last["meta"]["last_page"] == 3
    beyond = (await sbx.client.get("/api/v3/prospects", headers=sbx.su(101), params={"per_page": 5, "page": 9})).json()
    assert beyond["data"] == [] and beyond["meta"]["from"] is None and beyond["meta"]["total"] == 10
    oldest = (await sbx.client.get("/api/v3/prospects", headers=sbx.su(101), params={"order": "oldest"})).json()
    assert [p["id"] for p in oldest["data"]] == ids


@pytest.mark.parametrize(
    ("params", "page", "per_page"),
    [
        ({"per_page": "1000"}, 1, 7),
        ({"per_page": "0"}, 1, 1),
        ({"per_page": "x", "page": "y"}, 1, 7),
        ({"page": "-3"}, 1, 7),
        ({"page": "2", "per_page": "3"}, 2, 3),
    ],
)
async def test_page_and_per_page_are_clamped_like_laravel(
    tmp_path: Path, params: dict[str, str], page: int, per_page: int
) -> None:
    async with start_sandbox(tmp_path, listing=SandboxListing(max_per_page=7)) as sbx:
        meta = (await sbx.client.get("/api/v3/prospects", headers=sbx.su(101), params=params)).json()["meta"]
        assert (meta["current_page"], meta["per_page"]) == (page, per_page)


async def test_search_is_case_insensitive_over_names_email_and_phone(sbx: Sandbox) -> None:
    a = await create(sbx, 101, 1, first_name="Alice", last_name="Zed", phone="5550100001")
    b = await create(sbx, 101, 2, first_name="Bob", last_name="Young", email="BOB.Y@Example.test")

    async def found(term: str) -> list[object]:
        return [p["id"] for p in await sbx.prospects(101, search=term)]

    assert await found("ALICE") == [a["id"]]
    assert await found("alice zed") == [a["id"]]
    assert await found("young") == [b["id"]]
    assert await found("bob.y@example") == [b["id"]]
    assert await found("5550100001") == [a["id"]]
    assert await found("%") == []
    assert await found("") == [b["id"], a["id"]]


async def test_search_names_matches_names_but_never_email_or_phone(tmp_path: Path) -> None:
    # sandbox.search: names — what Bonzo's search reads is undocumented (reference §2.2).
    async with start_sandbox(tmp_path, search="names") as sbx:
        a = await create(sbx, 101, 1, first_name="Alice", last_name="Zed r1", phone="5550100001")
        b = await create(sbx, 101, 2, first_name="Bob", last_name="Young", email="bob.r1@example.test")

        async def found(term: str) -> list[object]:
            return [p["id"] for p in await sbx.prospects(101, search=term)]

        assert await found("ALICE") == [a["id"]]
        assert await found("alice zed") == [a["id"]]  # the full name
        assert await found("r1") == [a["id"]]  # in Alice's last name; in Bob's email only, so not Bob
        assert await found("bob.r1@example") == []
        assert await found("5550100001") == []
        assert await found("") == [b["id"], a["id"]]
        # The switch changes on a running sandbox, and listings read before it are not served stale.
        settings = await sbx.client.put("/__sandbox/settings", json={"search": "all"})
        assert settings.status_code == 200 and settings.json()["search"] == "all"
        assert await found("r1") == [b["id"], a["id"]]
        assert await found("5550100001") == [a["id"]]


async def test_unsupported_filters_are_ignored(sbx: Sandbox) -> None:
    await create(sbx, 101, 1)
    await create(sbx, 101, 2)
    for params in ({"email": "person.001@x.test"}, {"phone": "+1555"}, {"created_after": "2999-01-01"}, {"query": "x"}):
        assert len(await sbx.prospects(101, **params)) == 2


async def test_rate_limit_per_token_with_headers(sbx: Sandbox) -> None:
    assert (await sbx.client.put("/__sandbox/settings", json={"rate_limit_per_minute": 2})).status_code == 200
    first = await sbx.client.get("/api/v3/prospects", headers=sbx.su(101))
    assert first.headers["x-ratelimit-limit"] == "2" and first.headers["x-ratelimit-remaining"] == "1"
    assert (await sbx.client.get("/api/v3/prospects", headers=sbx.su(101))).status_code == 200
    limited = await sbx.client.get("/api/v3/prospects", headers=sbx.su(101))
    assert limited.status_code == 429
    assert limited.json() == {"message": "Too Many Attempts."}
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert (await sbx.client.get("/api/v3/prospects", headers=sbx.as_user(101))).status_code == 200
    assert (await sbx.client.put("/__sandbox/settings", json={"rate_limit_per_minute": None})).status_code == 200
    assert (await sbx.client.get("/api/v3/prospects", headers=sbx.su(101))).status_code == 200


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("1 (555) 010-0002", "+15550100002"),
        ("555.010.0003", "+15550100003"),
        ("1\U00016a635550100004", "+15550100004"),  # a Mro digit is no digit of the number, as in the schema
        ("555010000\u0665", None),  # nor is an Arabic-Indic five: nine digits
    ],
)
def test_a_phone_is_valid_exactly_when_the_openapi_pattern_says(phone: str, expected: str | None) -> None:
    body = create_app().openapi()["paths"]["/api/v3/prospects"]["post"]["requestBody"]
    pattern = body["content"]["application/json"]["schema"]["properties"]["phone"]["pattern"]
    # JSON Schema patterns are ECMA regexes: \d and \D are ASCII there.
    assert (re.search(pattern, phone, re.ASCII) is not None) == (expected is not None)
    assert e164(phone) == expected
