"""Strict mode: the sandbox keeps only what the Bonzo reference promises; lenient mode stays as it was."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sandbox_helpers import Sandbox, lead, start_sandbox

from bonzo_bulk.config.loader import load_config
from bonzo_bulk.config.sandbox_clock import SandboxClock
from bonzo_bulk.errors import ConfigError, SandboxError
from bonzo_bulk.sandbox import SandboxOptions
from bonzo_bulk.sandbox.clock import shown_stamp

CUSTOM = {"custom_1": "run-1", "custom_2": "two", "custom_3": "three", "alert_id": "A-9"}


async def one(sbx: Sandbox, hook: str, body: dict[str, Any], user_id: int = 101) -> dict[str, Any]:
    """Post one lead, wait for the worker, and return the user's only prospect."""
    response = await sbx.client.post(sbx.hooks[hook], json=body)
    assert response.status_code == 200, response.text
    await sbx.settle()
    (prospect,) = await sbx.prospects(user_id)
    return prospect


def general(n: int, **extra: Any) -> dict[str, Any]:
    """A general-hook lead for user 101."""
    return {"first_name": f"Control_{n:03d}", "email": f"control.{n:03d}@bonzobuddy.test", "user_id": 101, **extra}


async def test_strict_keeps_only_mapped_custom_fields_as_a_key_value_list(tmp_path: Path) -> None:
    async with start_sandbox(tmp_path, strict=True, mapped_custom_fields={"monitorbase": ["custom_1"]}) as sbx:
        prospect = await one(sbx, "monitorbase", lead(1, tags=["Run-X", "Alpha"], **CUSTOM))
    assert prospect["custom_fields"] == [{"key": "custom_1", "value": "run-1"}]
    assert prospect["source"] == "monitorbase"
    assert [(t["name"], t["sequence_start"]) for t in prospect["tags"]] == [("run-x", None), ("alpha", None)]
    assert all(isinstance(t["id"], int) for t in prospect["tags"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000Z", prospect["created_at"])
    assert prospect["updated_at"].endswith(".000000Z")
    assert prospect["assigned_user"] == {"id": 101, "email": "LO.One@lender.test"}
    assert "notes_count" not in prospect and "external_id" not in prospect


async def test_strict_without_a_mapping_keeps_no_custom_field(tmp_path: Path) -> None:
    async with start_sandbox(tmp_path, strict=True) as sbx:
        prospect = await one(sbx, "monitorbase", lead(1, **CUSTOM))
        assert prospect["custom_fields"] == []
        control = await sbx.client.post(sbx.hooks["general"], json=general(2, custom_Loan="x"))
        assert control.status_code == 200
        await sbx.settle()
        by_name = {p["first_name"]: p for p in await sbx.prospects(101)}
    assert by_name["Control_002"]["custom_fields"] == []


@pytest.mark.parametrize(("strict", "source"), [(True, "webhook"), (False, "superuser")])
async def test_the_general_hook_source_is_its_own_when_strict_and_the_label_when_lenient(
    tmp_path: Path, strict: bool, source: str
) -> None:
    async with start_sandbox(tmp_path, strict=strict) as sbx:
        prospect = await one(sbx, "general", general(1))
    assert prospect["source"] == source


async def test_lenient_is_unchanged(tmp_path: Path) -> None:
    async with start_sandbox(tmp_path, mapped_custom_fields={"monitorbase": ["custom_1"]}) as sbx:
        prospect = await one(sbx, "monitorbase", lead(1, tags=["Run-X"], **CUSTOM))
    assert prospect["custom_fields"] == {
        "custom_1": "run-1",
        "custom_2": "two",
        "custom_3": "three",
        "alert_id": "A-9",
    }
    assert [set(t) for t in prospect["tags"]] == [{"id", "name"}]
    assert prospect["assigned_user"]["name"] == "LO One" and prospect["notes_count"] == 0


def test_whole_second_drops_the_fraction_only() -> None:
    strict = SandboxClock()
    assert shown_stamp("2023-06-26T10:43:40.987654Z", strict, whole_seconds=True) == "2023-06-26T10:43:40.000000Z"
    assert shown_stamp("2023-06-26T10:43:40.987654Z", strict) == "2023-06-26T10:43:40.987654Z"


@pytest.mark.parametrize(
    ("clock", "shown"),
    [
        (SandboxClock(zone="America/Chicago"), "2023-06-26T05:43:40.987654"),
        (SandboxClock(zone="America/Chicago", whole_seconds=True), "2023-06-26 05:43:40"),
        (SandboxClock(zone="Asia/Kolkata", naive=False), "2023-06-26T16:13:40.987654+05:30"),
        (SandboxClock(offset_seconds=37), "2023-06-26T10:44:17.987654Z"),
        (SandboxClock(whole_seconds=True, offset_seconds=-0.5), "2023-06-26T10:43:40.000000Z"),
    ],
)
def test_each_clock_variant_writes_the_true_instant_its_own_way(clock: SandboxClock, shown: str) -> None:
    assert shown_stamp("2023-06-26T10:43:40.987654Z", clock) == shown


async def test_strict_ignores_order_values_the_reference_does_not_document(tmp_path: Path) -> None:
    for strict, expected in ((True, ["Control_002", "Control_001"]), (False, ["Control_001", "Control_002"])):
        async with start_sandbox(tmp_path / str(strict), strict=strict) as sbx:
            for n in (1, 2):
                assert (await sbx.client.post(sbx.hooks["general"], json=general(n))).status_code == 200
                await sbx.settle()
            assert [p["first_name"] for p in await sbx.prospects(101, order="oldest")] == expected


async def test_strict_get_then_put_round_trips_the_list_shaped_custom_fields(tmp_path: Path) -> None:
    async with start_sandbox(tmp_path, strict=True, mapped_custom_fields={"monitorbase": ["custom_1"]}) as sbx:
        prospect = await one(sbx, "monitorbase", lead(1, **CUSTOM))
        body = {k: v for k, v in prospect.items() if k not in ("tags",)}
        put = await sbx.client.put(f"/api/v3/prospects/{prospect['id']}", headers=sbx.su(101), json=body)
        assert put.status_code == 200, put.text
        assert put.json()["data"]["custom_fields"] == [{"key": "custom_1", "value": "run-1"}]
        bad = await sbx.client.put(
            f"/api/v3/prospects/{prospect['id']}", headers=sbx.su(101), json={**body, "custom_fields": [1]}
        )
    assert bad.status_code == 422 and "custom_fields" in bad.json()["errors"]


async def test_admin_settings_switch_strictness_and_mapping_for_new_leads(sbx: Sandbox) -> None:
    settings = (await sbx.client.get("/__sandbox/settings")).json()
    assert (settings["strictness"], settings["mapped_custom_fields"]) == ("lenient", {})
    changed = await sbx.client.put(
        "/__sandbox/settings", json={"strictness": "strict", "mapped_custom_fields": {"monitorbase": ["custom_2"]}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["strictness"] == "strict"
    prospect = await one(sbx, "monitorbase", lead(1, **CUSTOM))
    assert prospect["custom_fields"] == [{"key": "custom_2", "value": "two"}]
    for bad in ({"strictness": "very"}, {"mapped_custom_fields": {"nohook": ["x"]}}):
        response = await sbx.client.put("/__sandbox/settings", json=bad)
        assert response.status_code == 422, bad
    back = await sbx.client.put("/__sandbox/settings", json={"strictness": "lenient"})
    assert back.json()["strictness"] == "lenient"


def test_bad_options_are_refused_with_the_option_named() -> None:
    with pytest.raises(SandboxError, match="strictness: 'very'"):
        SandboxOptions(strictness="very")  # type: ignore[arg-type]
    with pytest.raises(SandboxError, match="mapped_custom_fields: 'nohook'"):
        SandboxOptions(mapped_custom_fields={"nohook": ["x"]})  # type: ignore[dict-item]


def _config(tmp_path: Path, sandbox: str = "") -> Path:
    path = tmp_path / "c.yaml"
    path.write_text("test_users:\n  - {name: A, email: a@x.test, user_id: 1, team_id: 2}\n" + sandbox, encoding="utf-8")
    return path


def test_strictness_is_one_option_for_yaml_environment_and_command_line(tmp_path: Path) -> None:
    yaml_strict = _config(
        tmp_path, "sandbox:\n  strictness: strict\n  mapped_custom_fields: {monitorbase: [custom_1]}\n"
    )
    loaded = load_config(yaml_strict, environ={})
    options = SandboxOptions.from_settings(loaded.config.sandbox, base_dir=tmp_path)
    assert (options.strictness, options.mapped_custom_fields) == ("strict", {"monitorbase": ["custom_1"]})
    plain = _config(tmp_path)
    assert load_config(plain, environ={}).config.sandbox.strictness == "lenient"
    env = {"BONZO_BULK_SANDBOX_STRICTNESS": "strict"}
    assert load_config(plain, environ=env).config.sandbox.strictness == "strict"
    flag = load_config(yaml_strict, environ={}, overrides={"sandbox-strictness": "lenient"})
    assert flag.config.sandbox.strictness == "lenient"
    with pytest.raises(ConfigError, match=r"sandbox\.strictness"):
        load_config(_config(tmp_path, "sandbox:\n  strictness: stricter\n"), environ={})
    with pytest.raises(ConfigError, match=r"sandbox\.mapped_custom_fields"):
        load_config(_config(tmp_path, "sandbox:\n  mapped_custom_fields: {nohook: [x]}\n"), environ={})


def test_the_config_knows_exactly_the_hook_types_the_sandbox_serves() -> None:
    from typing import get_args

    from bonzo_bulk.config.schema import SandboxHookType
    from bonzo_bulk.sandbox.hooktypes import HOOK_TYPES

    assert sorted(get_args(SandboxHookType)) == sorted(HOOK_TYPES)
