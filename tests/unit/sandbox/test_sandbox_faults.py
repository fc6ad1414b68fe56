"""Fault profiles: validation, deterministic selection, and every fault class with its ground truth."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from sandbox_helpers import Sandbox, lead

from bonzo_bulk.config.faults import chosen_fraction, load_profile, parse_profile
from bonzo_bulk.errors import ConfigError, SandboxError
from bonzo_bulk.sandbox import SandboxOptions

R1, R2 = "TestRecord_MonitorBase_001", "TestRecord_MonitorBase_002"


async def send(sbx: Sandbox, *numbers: int, lo_email: str = "lo.one@lender.test") -> None:
    for n in numbers:
        response = await sbx.client.post(sbx.hooks["monitorbase"], json=lead(n, lo_email=lo_email))
        assert response.status_code == 200, response.text
    await sbx.settle()


def only(entries: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (entry,) = [e for e in entries if e["fault"] == kind]
    return entry


def flat_custom(prospect: dict[str, Any]) -> dict[str, Any]:
    """Custom fields as a flat object from either shape (lenient: an object; strict: ``[{key, value}]``)."""
    raw = prospect["custom_fields"]
    return {i["key"]: i["value"] for i in raw} if isinstance(raw, list) else dict(raw)


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"faults": [{"kind": "dropp"}]}, "did you mean 'drop'"),
        ({"faults": [{"kind": "drop", "rat": 0.1}]}, "faults[0].rat"),
        ({"faults": [{"kind": "drop", "rate": 2}]}, "faults[0].rate"),
        ({"faults": [{"kind": "mangle_field", "field": "nope"}]}, "'nope' is not a prospect field"),
        ({"faults": [{"kind": "mangle_field"}]}, "faults[0].field"),
        ({"faults": [{"kind": "intake_5xx", "status": 404}]}, "faults[0].status"),
        ({"faults": [{"kind": "api_5xx", "records": ["x"]}]}, "faults[0].records"),
        ({"faults": "drop"}, "faults"),
        ({"seed": "x"}, "seed"),
        ({"faults": [], "extra": 1}, "extra"),
        ([1], "mapping"),
    ],
)
def test_bad_profiles_are_refused_with_the_key_named(profile: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_profile(profile)


async def test_put_faults_validates_and_get_returns_it(sbx: Sandbox) -> None:
    bad = await sbx.client.put("/__sandbox/faults", json={"faults": [{"kind": "explode"}]})
    assert bad.status_code == 422
    assert "explode" in bad.json()["errors"]["faults"][0]
    assert (await sbx.client.put("/__sandbox/faults", content=b"{nope")).status_code == 422
    await sbx.faults({"kind": "drop", "rate": 0.5, "hooks": ["monitorbase"]}, seed=9)
    got = (await sbx.client.get("/__sandbox/faults")).json()
    assert got == {"seed": 9, "faults": [{"kind": "drop", "rate": 0.5, "hooks": ["monitorbase"]}]}
    assert (await sbx.client.put("/__sandbox/faults", content=b"")).json() == {"seed": 0, "faults": []}


def test_rate_selection_is_deterministic_and_close_to_the_rate() -> None:
    profile = parse_profile({"seed": 7, "faults": [{"kind": "drop", "rate": 0.3}]})
    ((_, fault),) = profile.record_faults()
    picks = [fault.selects(7, f"TestRecord_{n:04d}", "", "monitorbase") for n in range(2000)]
    assert picks == [fault.selects(7, f"TestRecord_{n:04d}", "", "monitorbase") for n in range(2000)]
    assert 0.26 < sum(picks) / len(picks) < 0.34
    assert chosen_fraction(7, "drop", "a") != chosen_fraction(8, "drop", "a")


def test_records_patterns_match_first_name_or_email_and_hooks_filter() -> None:
    profile = parse_profile({"faults": [{"kind": "drop", "records": ["test.monitorbase.004*"], "hooks": ["general"]}]})
    ((_, fault),) = profile.record_faults()
    assert fault.selects(0, "Whoever", "test.monitorbase.004@x.test", "general")
    assert not fault.selects(0, "Whoever", "test.monitorbase.004@x.test", "monitorbase")
    assert not fault.selects(0, "TestRecord_MonitorBase_004", "other@x.test", "general")


def test_load_profile_from_yaml_and_options_from_settings(tmp_path: Path) -> None:
    from bonzo_bulk.config.schema import SandboxSettings

    (tmp_path / "f.yaml").write_text("seed: 3\nfaults:\n  - kind: late\n    delay_seconds: 5\n")
    assert load_profile("f.yaml", base_dir=tmp_path) == {"seed": 3, "faults": [{"kind": "late", "delay_seconds": 5.0}]}
    options = SandboxOptions.from_settings(SandboxSettings(db="s.sqlite3", faults="f.yaml"), base_dir=tmp_path)
    assert options.db_path == tmp_path / "s.sqlite3"
    assert options.faults == {"seed": 3, "faults": [{"kind": "late", "delay_seconds": 5.0}]}
    inline = SandboxOptions.from_settings(SandboxSettings(faults={"faults": [{"kind": "drop"}]}), base_dir=tmp_path)
    assert inline.faults == {"seed": 0, "faults": [{"kind": "drop"}]} and inline.db_path is None
    (tmp_path / "bad.yaml").write_text("faults: [{kind: nope}]\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: faults\[0\].kind"):
        load_profile(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match=r"missing\.yaml' does not exist"):
        load_profile(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("faults: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_profile(tmp_path / "broken.yaml")
    with pytest.raises(SandboxError, match="unknown_lo_email"):
        SandboxOptions(unknown_lo_email="maybe")  # type: ignore[arg-type]


async def test_drop_applies_only_to_selected_records(sbx_mode: Sandbox) -> None:
    await sbx_mode.faults({"kind": "drop", "records": [R2]})
    await send(sbx_mode, 1, 2)
    assert [p["first_name"] for p in await sbx_mode.prospects(101)] == [R1]
    entry = only(await sbx_mode.truth(), "drop")
    assert (entry["record"], entry["email"], entry["hook"]) == (
        R2,
        "test.monitorbase.002@bonzobuddy.test",
        "monitorbase",
    )
    assert entry["at"].endswith("Z") and entry["count"] == 1


async def test_wrong_owner_goes_to_the_next_seeded_user(sbx_mode: Sandbox) -> None:
    await sbx_mode.faults({"kind": "wrong_owner", "records": [R1]})
    await send(sbx_mode, 1)
    await send(sbx_mode, 2, lo_email="lo.three@lender.test")
    assert await sbx_mode.prospects(101) == []
    (moved,) = await sbx_mode.prospects(102)
    assert moved["business_entity_id"] == 12
    assert [p["first_name"] for p in await sbx_mode.prospects(103)] == [R2]
    entry = only(await sbx_mode.truth(), "wrong_owner")
    assert entry["detail"] | {"prospect_ids": []} == {
        "expected_user_id": 101,
        "actual_user_id": 102,
        "prospect_ids": [],
    }


async def test_wrong_team_keeps_owner_and_changes_business(sbx_mode: Sandbox) -> None:
    await sbx_mode.faults({"kind": "wrong_team"})
    await send(sbx_mode, 1)
    (prospect,) = await sbx_mode.prospects(101)
    assert prospect["assigned_to"] == 101
    assert prospect["business_entity_id"] == 12 and prospect["business"] == {"id": 12, "name": "Team 12"}
    assert only(await sbx_mode.truth(), "wrong_team")["detail"]["actual_team_id"] == 12


async def test_mangle_missing_and_wrong_source(sbx_mode: Sandbox) -> None:
    await sbx_mode.faults(
        {"kind": "mangle_field", "field": "last_name"},
        {"kind": "mangle_field", "field": "phone"},
        {"kind": "mangle_field", "field": "custom_fields.custom_1"},
        {"kind": "missing_field", "field": "city"},
        {"kind": "missing_field", "field": "custom_fields.alert_id"},
        {"kind": "wrong_source", "value": "app"},
    )
    response = await sbx_mode.client.post(sbx_mode.hooks["monitorbase"], json=lead(1, alert_id="A1", custom_1="c1"))
    assert response.status_code == 200
    await sbx_mode.settle()
    (prospect,) = await sbx_mode.prospects(101)
    assert prospect["last_name"] == "MonitorBase-mangled"
    assert prospect["full_name"] == "TestRecord_MonitorBase_001 MonitorBase-mangled"
    assert prospect["phone"] == "+15550100002"
    assert prospect["city"] is None
    assert flat_custom(prospect) == {"custom_1": "c1-mangled"}
    assert prospect["source"] == "app"
    truth = await sbx_mode.truth()
    assert sorted(e["fault"] for e in truth) == [
        "mangle_field",
        "mangle_field",
        "mangle_field",
        "missing_field",
        "missing_field",
        "wrong_source",
    ]
    assert only([e for e in truth if e["detail"].get("field") == "custom_fields.custom_1"], "mangle_field")[
        "detail"
    ] | {"prospect_ids": []} == {
        "field": "custom_fields.custom_1",
        "original": "c1",
        "value": "c1-mangled",
        "prospect_ids": [],
    }
    assert {"field": "city", "original": "TestCity"}.items() <= only(
        [e for e in truth if e["detail"].get("field") == "city"], "missing_field"
    )["detail"].items()


async def test_duplicate_creates_two_prospects(sbx_mode: Sandbox) -> None:
    await sbx_mode.faults({"kind": "duplicate", "records": ["*001"]})
    await send(sbx_mode, 1, 2)
    names = [p["first_name"] for p in await sbx_mode.prospects(101)]
    assert sorted(names) == [R1, R1, R2]
    assert len(only(await sbx_mode.truth(), "duplicate")["detail"]["prospect_ids"]) == 2


async def test_late_processing_is_recorded_at_intake(sbx_mode: Sandbox) -> None:
    await sbx_mode.faults({"kind": "late", "delay_seconds": 0.4, "records": [R1]})
    for n in (1, 2):
        assert (await sbx_mode.client.post(sbx_mode.hooks["monitorbase"], json=lead(n))).status_code == 200
    await asyncio.sleep(0.2)
    assert [p["first_name"] for p in await sbx_mode.prospects(101)] == [R2]
    assert only(await sbx_mode.truth(), "late")["detail"] == {"delay_seconds": 0.4}
    await sbx_mode.settle()
    assert len(await sbx_mode.prospects(101)) == 2


async def test_intake_5xx_times_then_accepts(sbx_mode: Sandbox) -> None:
    await sbx_mode.faults({"kind": "intake_5xx", "status": 502, "times": 2, "records": [R1]})
    statuses = [(await sbx_mode.client.post(sbx_mode.hooks["monitorbase"], json=lead(1))).status_code for _ in range(3)]
    assert statuses == [502, 502, 200]
    entry = only(await sbx_mode.truth(), "intake_5xx")
    assert entry["count"] == 2 and entry["detail"] == {"status": 502}
    await sbx_mode.faults({"kind": "intake_5xx"})
    assert (await sbx_mode.client.post(sbx_mode.hooks["monitorbase"], json=lead(2))).status_code == 503


async def test_intake_hang_holds_then_504(sbx_mode: Sandbox) -> None:
    await sbx_mode.faults({"kind": "intake_hang", "seconds": 0.2, "times": 1})
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await sbx_mode.client.post(sbx_mode.hooks["monitorbase"], json=lead(1))
    assert response.status_code == 504 and loop.time() - started >= 0.2
    assert (await sbx_mode.client.post(sbx_mode.hooks["monitorbase"], json=lead(1))).status_code == 200
    assert only(await sbx_mode.truth(), "intake_hang")["detail"] == {"seconds": 0.2}


async def test_reset_in_process_raises_connection_reset(sbx_mode: Sandbox) -> None:
    await sbx_mode.faults({"kind": "reset", "times": 1})
    with pytest.raises(ConnectionResetError):
        await sbx_mode.client.post(sbx_mode.hooks["monitorbase"], json=lead(1))
    assert (await sbx_mode.client.post(sbx_mode.hooks["monitorbase"], json=lead(1))).status_code == 200
    assert only(await sbx_mode.truth(), "reset")["record"] == R1


async def test_api_429_burst_and_5xx_windows(sbx_mode: Sandbox) -> None:
    await sbx_mode.faults(
        {"kind": "api_429_burst", "after_requests": 1, "count": 2, "retry_after": 3},
        {"kind": "api_5xx", "after_requests": 3, "count": 1, "status": 503},
    )
    responses = [await sbx_mode.client.get("/api/v3/prospects", headers=sbx_mode.su(101)) for _ in range(5)]
    assert [r.status_code for r in responses] == [200, 429, 429, 503, 200]
    assert responses[1].headers["retry-after"] == "3"
    assert responses[1].json() == {"message": "Too Many Attempts."}
    truth = await sbx_mode.truth()
    assert [(e["fault"], e["detail"]["request_number"]) for e in truth] == [
        ("api_429_burst", 1),
        ("api_429_burst", 2),
        ("api_5xx", 3),
    ]
    assert truth[0]["detail"]["path"] == "/api/v3/prospects" and truth[0]["record"] is None
    await sbx_mode.faults({"kind": "api_5xx", "count": 1})
    assert (await sbx_mode.client.get("/api/v3/prospects", headers=sbx_mode.su(101))).status_code == 500


async def test_ground_truth_is_emptied_by_reset(sbx_mode: Sandbox) -> None:
    await sbx_mode.faults({"kind": "drop"})
    await send(sbx_mode, 1)
    assert len(await sbx_mode.truth()) == 1
    await sbx_mode.client.post("/__sandbox/reset", json={"scope": "prospects"})
    assert await sbx_mode.truth() == []


def test_api_fault_windows_and_rates_pick_requests_by_number_and_seed() -> None:
    burst, five_hundreds, one_in_five, capped = parse_profile(
        {
            "faults": [
                {"kind": "api_429_burst", "after_requests": 2},
                {"kind": "api_5xx"},
                {"kind": "api_429_burst", "rate": 0.2},
                {"kind": "api_429_burst", "rate": 1, "after_requests": 1, "count": 2},
            ]
        }
    ).api_faults()
    assert [n for n in range(20) if burst.hits(n)] == [2, 3, 4, 5, 6]
    assert [n for n in range(20) if five_hundreds.hits(n)] == [0, 1, 2]
    picked = [n for n in range(5000) if one_in_five.hits(n, seed=7)]
    assert picked == [n for n in range(5000) if one_in_five.hits(n, seed=7)]
    assert picked != [n for n in range(5000) if one_in_five.hits(n, seed=8)]
    assert 0.18 < len(picked) / 5000 < 0.22 and picked[-1] > 4000
    assert [n for n in range(20) if capped.hits(n)] == [1, 2]


async def test_api_429_one_request_in_five_answers_retry_after_and_is_recorded(sbx_mode: Sandbox) -> None:
    await sbx_mode.faults({"kind": "api_429_burst", "rate": 0.2, "retry_after": 2}, seed=3)
    responses = [await sbx_mode.client.get("/api/v3/prospects", headers=sbx_mode.su(101)) for _ in range(60)]
    limited = [n for n, r in enumerate(responses) if r.status_code == 429]
    assert {r.status_code for r in responses} == {200, 429} and 6 <= len(limited) <= 18
    assert all(responses[n].headers["retry-after"] == "2" for n in limited)
    assert not any(k.lower().startswith("x-ratelimit") for r in responses for k in r.headers)
    truth = await sbx_mode.truth()
    assert [e["detail"]["request_number"] for e in truth if e["fault"] == "api_429_burst"] == limited
