"""Hook URLs: mapping per hook type, refusals, the unknown-lo_email policies, asynchronous creation, admin routes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sandbox_helpers import SEED_USERS, Sandbox, lead, start_sandbox


async def test_monitorbase_lead_is_created_after_the_delay_with_the_documented_mapping(sbx: Sandbox) -> None:
    payload = lead(
        1,
        lo_email="LO.TWO@lender.TEST",
        email="Test.MonitorBase.001@BonzoBuddy.test",
        custom_1="c1",
        custom_5=5,
        type="Inquiry",
        alert_intel="Credit Inquiry",
        alert_intel_category="Credit",
        alert_id="A-1",
        alert_date="2025-01-02",
        loan_number="LN-9",
        tags=["Hot", "MonitorBase", "hot"],
        address="123 Test St",
        state="CA",
        zip=12345,
        lo_name="LO Two",
        url="https://ignored.test",
    )
    response = await sbx.client.post(sbx.hooks["monitorbase"], json=payload)
    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    assert await sbx.prospects(102) == []
    assert (await sbx.client.get("/__sandbox/pending")).json() == {"pending": 1}
    await sbx.settle()
    (prospect,) = await sbx.prospects(102)
    assert prospect["first_name"] == "TestRecord_MonitorBase_001"
    assert prospect["email"] == "test.monitorbase.001@bonzobuddy.test"
    assert prospect["phone"] == "+15550100001" and prospect["phone_type"] == "mobile"
    assert (prospect["address"], prospect["city"], prospect["state"], prospect["zip"]) == (
        "123 Test St",
        "TestCity",
        "CA",
        "12345",
    )
    assert prospect["source"] == "monitorbase"
    assert prospect["custom_fields"] == {
        "custom_1": "c1",
        "custom_5": "5",
        "alert_type": "Inquiry",
        "alert_intel": "Credit Inquiry",
        "alert_intel_category": "Credit",
        "alert_id": "A-1",
        "alert_date": "2025-01-02",
        "loan_id": "LN-9",
    }
    assert [t["name"] for t in prospect["tags"]] == ["hot", "monitorbase"]
    assert prospect["assigned_user"]["id"] == 102 and prospect["business_entity_id"] == 12
    assert "lo_email" not in prospect and "lo_name" not in str(prospect)


@pytest.mark.parametrize(
    ("phones", "expected", "kind"),
    [
        ({"cell_phone": "", "home_phone": "1 (555) 010-0002"}, "+15550100002", "home"),
        ({"cell_phone": None, "work_phone": "555.010.0003"}, "+15550100003", "work"),
        ({"cell_phone": "12345"}, None, None),
    ],
)
async def test_monitorbase_phone_fallbacks_and_malformed_phone(
    sbx: Sandbox, phones: dict[str, str | None], expected: str | None, kind: str | None
) -> None:
    assert (await sbx.client.post(sbx.hooks["monitorbase"], json=lead(1) | phones)).status_code == 200
    await sbx.settle()
    (prospect,) = await sbx.prospects(101)
    assert (prospect["phone"], prospect["phone_type"]) == (expected, kind)


async def test_general_hook_routes_by_user_id(sbx: Sandbox) -> None:
    url = sbx.hooks["general"]
    body = {
        "first_name": "TestRecord_MonitorBase_SU_001",
        "phone": "5550100001",
        "user_id": "103",
        "prospect_state": "TX",
        "custom_Loan_Officer": "Ann",
        "notes": ["one", "two"],
        "external_id": "X1",
        "tags": "Control",
    }
    assert (await sbx.client.post(url, json=body)).status_code == 200
    assert (await sbx.client.post(url, json={**body, "user_id": 101, "first_name": "Second"})).status_code == 200
    await sbx.settle()
    (prospect,) = await sbx.prospects(103)
    assert prospect["source"] == "superuser"
    assert prospect["state"] == "TX"
    assert prospect["custom_fields"] == {"Loan_Officer": "Ann"}
    assert prospect["notes_count"] == 2 and prospect["external_id"] == "X1"
    assert [t["name"] for t in prospect["tags"]] == ["control"]
    assert [p["first_name"] for p in await sbx.prospects(101)] == ["Second"]


@pytest.mark.parametrize(
    ("user_id", "message"),
    [(None, "The user id field is required."), (999, "The selected user id is invalid."), ("abc", "invalid")],
)
async def test_general_hook_refuses_missing_or_unknown_user_id(sbx: Sandbox, user_id: object, message: str) -> None:
    body = {"first_name": "A", "email": "a@b.test", "user_id": user_id}
    response = await sbx.client.post(sbx.hooks["general"], json=body)
    assert response.status_code == 422
    assert message in response.json()["errors"]["user_id"][0]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"last_name": "x", "email": "a@b.test", "lo_email": "lo.one@lender.test"}, {"first_name"}),
        ({"first_name": "A", "lo_email": "lo.one@lender.test"}, {"email", "phone"}),
        ({"first_name": "A", "email": "", "cell_phone": "  ", "lo_email": "lo.one@lender.test"}, {"email", "phone"}),
        ({"first_name": "A", "cell_phone": "123", "lo_email": "lo.one@lender.test"}, {"phone"}),
        ({"first_name": {"x": 1}, "email": "a@b.test", "lo_email": "lo.one@lender.test"}, {"first_name"}),
        ({"first_name": "A", "email": "a@b.test", "tags": [{"x": 1}], "lo_email": "lo.one@lender.test"}, {"tags"}),
    ],
)
async def test_hook_refuses_what_bonzo_would_refuse(sbx: Sandbox, body: dict[str, object], fields: set[str]) -> None:
    response = await sbx.client.post(sbx.hooks["monitorbase"], json=body)
    assert response.status_code == 422
    assert set(response.json()["errors"]) == fields


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not json", "valid JSON"), (b"[1, 2]", "JSON object"), (b"\xff\xfe", "valid JSON"), (b"", "valid JSON")],
)
async def test_hook_body_must_be_a_json_object(sbx: Sandbox, content: bytes, message: str) -> None:
    response = await sbx.client.post(sbx.hooks["monitorbase"], content=content)
    assert response.status_code == 422
    assert message in response.json()["errors"]["body"][0]


async def test_hook_unknown_hash_wrong_method_and_oversized_body(sbx: Sandbox) -> None:
    assert (await sbx.client.post("/api/webhook/" + "0" * 32, json=lead(1))).status_code == 404
    assert (await sbx.client.post("/api/webhook/NOT-A-HASH", json=lead(1))).status_code == 404
    assert (await sbx.client.post("/api/webhook/", json=lead(1))).status_code == 404
    wrong = await sbx.client.get(sbx.hooks["monitorbase"])
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    big = await sbx.client.post(sbx.hooks["monitorbase"], content=b"x" * 1_100_000)
    assert big.status_code == 413


async def test_unknown_lo_email_rejected_by_default(sbx: Sandbox) -> None:
    response = await sbx.client.post(sbx.hooks["monitorbase"], json=lead(1, lo_email="nobody@lender.test"))
    assert response.status_code == 422
    assert "lo_email" in response.json()["errors"]
    missing = await sbx.client.post(sbx.hooks["monitorbase"], json={**lead(1), "lo_email": None})
    assert missing.json()["errors"]["lo_email"] == ["The lo email field is required."]


async def test_unknown_lo_email_fallback_and_drop(tmp_path: Path) -> None:
    async with start_sandbox(tmp_path, unknown_lo_email="fallback", fallback_user_id=103) as sbx:
        assert (await sbx.client.post(sbx.hooks["monitorbase"], json=lead(1, lo_email="x@y.test"))).status_code == 200
        await sbx.settle()
        assert [p["first_name"] for p in await sbx.prospects(103)] == ["TestRecord_MonitorBase_001"]
        update = await sbx.client.put("/__sandbox/settings", json={"unknown_lo_email": "drop"})
        assert update.json()["unknown_lo_email"] == "drop"
        assert (await sbx.client.post(sbx.hooks["monitorbase"], json=lead(2, lo_email="x@y.test"))).status_code == 200
        await sbx.settle()
        state = (await sbx.client.get("/__sandbox/state")).json()
        assert state["prospects"] == 1 and state["pending"] == 0


async def test_fallback_without_a_fallback_user_rejects(tmp_path: Path) -> None:
    async with start_sandbox(tmp_path, unknown_lo_email="fallback") as sbx:
        response = await sbx.client.post(sbx.hooks["monitorbase"], json=lead(1, lo_email="x@y.test"))
        assert response.status_code == 422
        assert "no fallback user" in response.json()["errors"]["lo_email"][0]


async def test_seed_is_idempotent_and_lowercases_sources(sbx: Sandbox) -> None:
    body = {"users": SEED_USERS, "hooks": [{"type": "general", "source": "SUPERUSER"}, {"type": "monitorbase"}]}
    again = (await sbx.client.post("/__sandbox/seed", json=body)).json()
    assert again["superuser_token"] == sbx.superuser_token
    assert again["user_tokens"] == sbx.user_tokens
    assert [h["url"] for h in again["hooks"]] == [sbx.hooks["general"], sbx.hooks["monitorbase"]]
    assert [h["source"] for h in again["hooks"]] == ["superuser", "monitorbase"]
    state = (await sbx.client.get("/__sandbox/state")).json()
    assert len(state["hooks"]) == 2 and len(state["users"]) == 3
    assert {"id": 11, "name": "Alpha"} in state["teams"] and {"id": 12, "name": "Team 12"} in state["teams"]
    listed = (await sbx.client.post("/__sandbox/seed", json={})).json()
    assert len(listed["hooks"]) == 2


@pytest.mark.parametrize(
    "body",
    [
        {"users": [{"name": "X", "email": "lo.one@lender.test", "user_id": 555, "team_id": 1}]},
        {"users": [{"name": "X", "email": "x@y.test", "user_id": 900000001, "team_id": 1}]},
        {"users": [{"name": "X", "email": "x@y.test", "user_id": 556, "team_id": 1, "external_id": "ext-2"}]},
    ],
)
async def test_a_seed_conflicting_with_the_sandbox_is_409_and_changes_nothing(sbx: Sandbox, body: object) -> None:
    response = await sbx.client.post("/__sandbox/seed", json=body)
    assert response.status_code == 409, response.text
    assert response.json()["errors"]
    assert len((await sbx.client.get("/__sandbox/state")).json()["users"]) == 3


@pytest.mark.parametrize(
    "body",
    [
        {"users": [{"name": "X", "email": "bad", "user_id": 1, "team_id": 1}]},
        {"users": [{"name": "X", "email": "x@y.test", "user_id": 0, "team_id": 1}]},
        {"users": [{"email": "x@y.test", "user_id": 1, "team_id": 1}]},
        {"hooks": [{"type": "bankrate"}]},
        {"hooks": [{"type": "general", "source": ""}]},
        {"unknown": 1},
        [],
    ],
)
async def test_bad_seed_is_422_and_changes_nothing(sbx: Sandbox, body: object) -> None:
    response = await sbx.client.post("/__sandbox/seed", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"]
    assert len((await sbx.client.get("/__sandbox/state")).json()["users"]) == 3


async def test_settings_get_put_and_validation(sbx: Sandbox) -> None:
    settings = (await sbx.client.get("/__sandbox/settings")).json()
    assert settings["processing"]["distribution"] == "fixed" and settings["unknown_lo_email"] == "reject"
    put = await sbx.client.put(
        "/__sandbox/settings", json={"processing": {"distribution": "uniform", "low": 0.01, "high": 0.02}}
    )
    assert put.json()["processing"]["distribution"] == "uniform"
    for bad in (
        {"processing": {"distribution": "gamma"}},
        {"unknown_lo_email": "ignore"},
        {"rate_limit_per_minute": 0},
        {"nope": 1},
    ):
        response = await sbx.client.put("/__sandbox/settings", json=bad)
        assert response.status_code == 422, (bad, response.text)
    unseeded = await sbx.client.put("/__sandbox/settings", json={"fallback_user_id": 999})
    assert unseeded.status_code == 409, unseeded.text


async def test_lognormal_and_uniform_delays_are_seeded(tmp_path: Path) -> None:
    from bonzo_bulk.config.schema import ProcessingDelayModel
    from bonzo_bulk.sandbox.state import SandboxOptions, SandboxState

    model = ProcessingDelayModel(distribution="lognormal", seconds=0.5, sigma=0.3)
    first = [SandboxState(SandboxOptions(processing=model, seed=3)).processing_delay() for _ in range(1)]
    again = SandboxState(SandboxOptions(processing=model, seed=3))
    assert [again.processing_delay()] == first
    uniform = SandboxState(SandboxOptions(processing=ProcessingDelayModel(distribution="uniform", low=2, high=1)))
    assert all(1 <= uniform.processing_delay() <= 2 for _ in range(50))


async def test_reset_scopes_and_request_log(sbx: Sandbox) -> None:
    await sbx.client.post(sbx.hooks["monitorbase"], json=lead(1))
    await sbx.settle()
    log = (await sbx.client.get("/__sandbox/requests", params={"limit": 50})).json()["requests"]
    hook_lines = [line for line in log if line["path"].startswith("/api/webhook/")]
    assert hook_lines and all(line["path"].endswith("****") for line in hook_lines)
    assert sbx.hooks["monitorbase"].rsplit("/", 1)[1] not in str(log)
    assert {"at", "method", "path", "status", "latency_ms"} <= set(hook_lines[0])
    assert len((await sbx.client.get("/__sandbox/requests", params={"limit": 1})).json()["requests"]) == 1
    for bad in ("0", "x", "100000"):
        assert (await sbx.client.get("/__sandbox/requests", params={"limit": bad})).status_code == 422
    assert (await sbx.client.post("/__sandbox/reset", json={"scope": "prospects"})).json() == {"reset": "prospects"}
    state = (await sbx.client.get("/__sandbox/state")).json()
    assert state["prospects"] == 0 and len(state["users"]) == 3
    assert (await sbx.client.post("/__sandbox/reset", json={"scope": "everything"})).status_code == 422
    assert (await sbx.client.post("/__sandbox/reset", json={"scope": "all"})).status_code == 200
    state = (await sbx.client.get("/__sandbox/state")).json()
    assert state["users"] == [] and state["hooks"] == []
    assert (await sbx.client.post(sbx.hooks["monitorbase"], json=lead(1))).status_code == 404
    assert (await sbx.client.get("/api/v3/prospects", headers=sbx.as_user(101))).status_code == 401
    assert (await sbx.client.get("/api/v3/prospects", headers=sbx.su())).status_code == 200


async def test_a_lead_due_sooner_than_the_queued_ones_wakes_the_sleeping_worker(sbx: Sandbox) -> None:
    """The worker sleeps until the earliest queued lead is due; a lead due sooner must not wait for it."""
    first, second = "TestRecord_MonitorBase_001", "TestRecord_MonitorBase_002"
    await sbx.faults({"kind": "late", "delay_seconds": 60, "records": [first]})
    assert (await sbx.client.post(sbx.hooks["monitorbase"], json=lead(1))).status_code == 200
    await asyncio.sleep(0.1)  # the worker has looked and now sleeps until the first lead is due, a minute away
    assert (await sbx.client.post(sbx.hooks["monitorbase"], json=lead(2))).status_code == 200
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not (names := [p["first_name"] for p in await sbx.prospects(101)]) and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert names == [second]
    assert (await sbx.client.get("/__sandbox/pending")).json() == {"pending": 1}
