"""Bad input to every route gets a clear 4xx (or a normal answer), never a 500 (hypothesis, served sandbox)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sandbox_helpers import FAST, SEED_USERS

from bonzo_bulk.sandbox import SandboxOptions, SandboxServer

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12,
)
KEYS = st.sampled_from(
    ["first_name", "last_name", "email", "phone", "cell_phone", "lo_email", "user_id", "tags", "custom_1", "zip"]
)
PAYLOADS = st.dictionaries(KEYS, JSON, max_size=8) | JSON
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Served:
    """A served, seeded sandbox shared by the fuzz tests."""

    def __init__(self, server: SandboxServer, seeded: dict[str, Any]) -> None:
        self.server = server
        self.client = httpx.Client(base_url=server.url, timeout=10)
        self.hooks = [h["url"] for h in seeded["hooks"]]
        self.token = seeded["superuser_token"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db: Path = tmp_path_factory.mktemp("fuzz") / "s.sqlite3"
    with SandboxServer(SandboxOptions(db_path=db, processing=FAST)) as server:
        seeded = server.seed(SEED_USERS, [{"type": "monitorbase"}, {"type": "general"}])
        box = Served(server, seeded)
        yield box
        box.client.close()


@FUZZ
@given(payload=PAYLOADS, which=st.integers(0, 1))
def test_hook_answers_200_or_422(served: Served, payload: Any, which: int) -> None:
    response = served.client.post(served.hooks[which], json=payload)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert isinstance(response.json()["errors"], dict)


@FUZZ
@given(raw=st.binary(max_size=64))
def test_hook_raw_bytes_never_500(served: Served, raw: bytes) -> None:
    assert served.client.post(served.hooks[0], content=raw).status_code in (200, 422)


@FUZZ
@given(params=st.dictionaries(st.sampled_from(["page", "per_page", "order", "search", "email"]), st.text(max_size=12)))
def test_list_params_never_500(served: Served, params: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {served.token}", "On-Behalf-Of": "101"}
    response = served.client.get("/api/v3/prospects", headers=headers, params=params)
    assert response.status_code == 200, response.text


@FUZZ
@given(value=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30))
def test_headers_never_500(served: Served, value: str) -> None:
    value = value.strip() or "x"
    for headers in ({"Authorization": value}, {"Authorization": f"Bearer {served.token}", "On-Behalf-Of": value}):
        assert served.client.get("/api/v3/prospects", headers=headers).status_code in (200, 401, 422)


@FUZZ
@given(body=PAYLOADS)
def test_api_create_and_replace_never_500(served: Served, body: Any) -> None:
    headers = {"Authorization": f"Bearer {served.token}", "On-Behalf-Of": "102"}
    created = served.client.post("/api/v3/prospects", headers=headers, json=body)
    assert created.status_code in (201, 422), created.text
    if created.status_code == 201:
        prospect_id = created.json()["data"]["id"]
        assert served.client.put(f"/api/v3/prospects/{prospect_id}", headers=headers, json=body).status_code == 200


@FUZZ
@given(
    route=st.sampled_from(
        [("POST", "seed"), ("PUT", "faults"), ("PUT", "settings"), ("POST", "reset"), ("GET", "requests")]
    ),
    body=JSON,
)
def test_admin_routes_never_500(served: Served, route: tuple[str, str], body: Any) -> None:
    method, path = route
    if path == "reset" and isinstance(body, dict) and body.get("scope") == "all":
        body = {"scope": "prospects"}
    params = {"limit": str(body)[:10]} if method == "GET" else None
    response = served.client.request(method, f"/__sandbox/{path}", json=body, params=params)
    assert response.status_code in (200, 422), response.text
