"""Redirects are never followed blindly: each attack reproduced with a redirecting proxy in front of the sandbox.

- Bonzo's API redirected to another host: refused with both hosts named (never the path or query), the
  foreign host gets nothing (so never the key), and a run cannot pass on its answers.
- Bonzo's API redirected within its own host: followed at most 3 hops a call, counted, said in the notes.
- The webhook answering 307 or 301: the lead is not re-sent, the record is not delivered, and the
  delivery says where it was redirected.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostile_servers import HOP, ForeignHost, HostileProxy, Redirect, Reply
from typer.testing import CliRunner

from bonzo_bulk.bonzo import BonzoClient
from bonzo_bulk.cli import app
from bonzo_bulk.config.schema import ApiSettings, WebhookSettings
from bonzo_bulk.deliver.sender import deliver
from bonzo_bulk.errors import RedirectRefused
from bonzo_bulk.models import PlannedRecord, User
from bonzo_bulk.report import terminal as console_module
from bonzo_bulk.sandbox import SandboxServer

LISTING = Reply(body=json.dumps({"data": [], "meta": {"current_page": 1, "last_page": 1}}).encode())
LO = User(name="LO One", email="lo.one@lender.test", user_id=101, team_id=11)


@pytest.fixture
def seeded(sandbox: SandboxServer, users: list[dict[str, object]]) -> dict[str, Any]:
    """The session sandbox seeded with the test users and a Monitorbase hook (and the control's general hook)."""
    return sandbox.seed(
        users, [{"type": "monitorbase", "source": "monitorbase"}, {"type": "general", "source": "monitorbase"}]
    )


def hook_of(seeded: dict[str, Any], kind: str) -> dict[str, str]:
    hook: dict[str, str] = next(h for h in seeded["hooks"] if h["type"] == kind)
    return hook


def api_settings() -> ApiSettings:
    return ApiSettings.model_validate({"retry_attempts": 0, "retry_delay": 0.0, "timeout": 5.0})


def records(count: int) -> list[PlannedRecord]:
    """Valid Monitorbase leads for LO One."""
    planned = []
    for i in range(1, count + 1):
        name = f"TestRecord_Redirect_{i:03d}"
        payload = {"first_name": name, "last_name": "Redirect", "email": f"test.redirect.{i:03d}@bonzobuddy.test"}
        payload["lo_email"] = LO.email
        planned.append(
            PlannedRecord(
                run_id="redirects",
                phase="primary",
                index=i,
                name=name,
                record_id=f"20260101_000000_{i:03d}",
                first_name=name,
                last_name="Redirect",
                email=payload["email"],
                phone="+15555550100",
                expected_user=LO,
                payload=payload,
                body=json.dumps(payload).encode(),
                content_type="application/json",
                expected={},
            )
        )
    return planned


async def test_api_redirect_to_another_host_is_refused_and_the_foreign_host_gets_nothing(
    sandbox: SandboxServer, seeded: dict[str, Any]
) -> None:
    with (
        ForeignHost(reply=LISTING) as foreign,
        HostileProxy(sandbox.url, [Redirect(307, "/api/v3/", to=foreign.url + "/steal?token=leaky")]) as proxy,
    ):
        async with BonzoClient(base_url=proxy.url, api_key=seeded["superuser_token"], settings=api_settings()) as api:
            with pytest.raises(RedirectRefused) as refused:
                await api.list_prospects(on_behalf_of=101, search="needle", per_page=1)
        assert foreign.requests == []
        assert proxy.redirected == 1
    message = str(refused.value)
    assert proxy.url in message and foreign.url in message
    assert "another host" in message and "BONZO_API_URL" in message
    for secretish in ("steal", "leaky", "needle", seeded["superuser_token"]):
        assert secretish not in message
    assert refused.value.status == 307


async def test_api_redirects_within_its_host_are_followed_three_hops_and_counted(
    sandbox: SandboxServer, seeded: dict[str, Any]
) -> None:
    with HostileProxy(sandbox.url, [Redirect(307, "/api/v3/prospects", hops=3)]) as proxy:
        async with BonzoClient(base_url=proxy.url, api_key=seeded["superuser_token"], settings=api_settings()) as api:
            page = await api.list_prospects(on_behalf_of=101, per_page=1)
            assert page.current_page == 1
            assert api.requests_made == 4  # the call and its 3 hops, each a request the budget counts
            assert api.redirects.followed == {307: 3}
            note = api.redirects.describe()
        hopped = [seen.path for seen in proxy.requests]
    assert hopped[-1].startswith(HOP * 3 + "/api/v3/prospects")
    assert all(seen_path.endswith("per_page=1") for seen_path in hopped)  # the query went along each hop
    assert note is not None and "3 request(s)" in note and proxy.url in note and "307 ×3" in note


async def test_a_fourth_redirect_within_the_host_is_refused(sandbox: SandboxServer, seeded: dict[str, Any]) -> None:
    with HostileProxy(sandbox.url, [Redirect(302, "/api/v3/prospects", hops=4)]) as proxy:
        async with BonzoClient(base_url=proxy.url, api_key=seeded["superuser_token"], settings=api_settings()) as api:
            with pytest.raises(RedirectRefused, match="more than 3 times"):
                await api.list_prospects(on_behalf_of=101, per_page=1)
        assert proxy.redirected == 4
        assert all(seen.authorization for seen in proxy.requests)  # same host: the key may go along


@pytest.mark.parametrize("status", [307, 301])
async def test_hook_redirect_to_another_host_is_a_failed_delivery(
    sandbox: SandboxServer, seeded: dict[str, Any], status: int
) -> None:
    """307 would re-post the lead to the foreign host, 301 would turn it into a GET that answers 200."""
    hook = hook_of(seeded, "monitorbase")
    with (
        ForeignHost() as foreign,
        HostileProxy(sandbox.url, [Redirect(status, "/api/webhook/", to=foreign.url)]) as proxy,
    ):
        url = hook["url"].replace(sandbox.url, proxy.url)
        settings = WebhookSettings(timeout=5.0, retry_attempts=2, retry_delay=0.01, concurrent_requests=2)
        results = await deliver(records(3), url=url, settings=settings)
        assert foreign.requests == []
        assert proxy.redirected == 3  # one POST each: a redirect is not retried
    assert [r.accepted for r in results] == [False, False, False]
    for result in results:
        assert result.status == status
        assert result.error_category == "redirect"
        assert result.error is not None and f"redirected to {foreign.url}" in result.error
        assert hook["hash"] not in result.error


def _live_env(seeded: dict[str, Any], sandbox: SandboxServer, proxy: HostileProxy) -> dict[str, str | None]:
    return {
        "TEST_HOOK_URL": hook_of(seeded, "monitorbase")["url"].replace(sandbox.url, proxy.url),
        "SUPERUSER_WEBHOOK_URL": hook_of(seeded, "general")["url"].replace(sandbox.url, proxy.url),
        "SUPERUSER_API_KEY": seeded["superuser_token"],
        "BONZO_API_URL": proxy.url,
        "BONZO_BULK_REPORTS_DIR": None,
        "BONZO_BULK_TARGET": None,
        "COLUMNS": "400",
    }


@pytest.fixture
def live_config(tmp_path: Path, users: list[dict[str, object]], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small live run's config (6 records, control on), reports under tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(console_module.console, "width", 400)
    config = tmp_path / "live.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "test_name": "redirects",
                "webhook_url": "{TEST_HOOK_URL}",
                "superuser_webhook_url": "{SUPERUSER_WEBHOOK_URL}",
                "superuser_api_key": "{SUPERUSER_API_KEY}",
                "test_records": 6,
                "test_users": users,
                "webhook_settings": {"timeout": 5, "retry_attempts": 1, "retry_delay": 0.05},
                "api_settings": {"retry_attempts": 1, "retry_delay": 0.05},
                "polling": {"interval": 0.2, "deadline": 5},
                "reports_dir": str(tmp_path / "reports"),
            }
        )
    )
    return config


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_a_307_to_another_host_after_preflight_does_not_make_a_run_pass(
    sandbox: SandboxServer, seeded: dict[str, Any], live_config: Path
) -> None:
    """The attack: preflight sees the real API, then settling's listings (``search=``) go to a foreign host
    that answers them correctly (it forwards to the sandbox with the key of its own)."""
    token = seeded["superuser_token"]
    with ForeignHost(upstream=sandbox.url, add_headers={"Authorization": f"Bearer {token}"}) as foreign:
        rule = Redirect(307, "/api/v3/prospects", method="GET", query_contains="search=", to=foreign.url)
        with HostileProxy(sandbox.url, [rule]) as proxy:
            result = CliRunner().invoke(
                app, ["run", "--config", str(live_config)], env=_live_env(seeded, sandbox, proxy)
            )
            assert proxy.redirected >= 1
        assert foreign.requests == []
    output = _flat(result.output)
    assert result.exit_code == 1, output
    # A verdict on what the real API showed: the records settling could not look for are unverified, never passed
    # and never "not created".
    assert "PASSED" not in output
    assert re.search(
        r"\(live\): FAILED \(\d+ records? unverified: a listing never reached its end\) \(exit 1\)", output
    )
    assert f"settling stopped early: GET /prospects -> 307: Bonzo's API at {proxy.url} redirected" in output
    assert f"redirected the call to another host, {foreign.url}" in output
    assert proxy.url in output
    assert token not in result.output


def test_a_redirect_of_the_first_api_request_stops_the_run_before_sending(
    sandbox: SandboxServer, seeded: dict[str, Any], live_config: Path
) -> None:
    with ForeignHost(reply=LISTING) as foreign:
        with HostileProxy(sandbox.url, [Redirect(307, "/api/v3/", to=foreign.url)]) as proxy:
            result = CliRunner().invoke(
                app, ["run", "--config", str(live_config)], env=_live_env(seeded, sandbox, proxy)
            )
            posted = [seen for seen in proxy.requests if seen.method == "POST"]
        assert foreign.requests == []
    output = _flat(result.output)
    assert result.exit_code == 2, output
    assert "nothing was sent" in output and foreign.url in output
    assert posted == []


def test_a_301_on_the_hook_is_not_counted_delivered(
    sandbox: SandboxServer, seeded: dict[str, Any], live_config: Path
) -> None:
    with ForeignHost() as foreign:
        rule = Redirect(301, "/api/webhook/", method="POST", to=foreign.url)
        with HostileProxy(sandbox.url, [rule]) as proxy:
            result = CliRunner().invoke(
                app, ["run", "--config", str(live_config)], env=_live_env(seeded, sandbox, proxy)
            )
        assert foreign.requests == []
    output = _flat(result.output)
    assert result.exit_code == 1, output
    assert "delivered 0/6" in output and "(live): FAILED (exit 1)" in output
    assert f"the webhook answered a redirect (301): redirected to {foreign.url}" in output
    assert hook_of(seeded, "monitorbase")["hash"] not in result.output


def test_cleanup_refuses_a_redirect_to_another_host_and_sends_it_nothing(
    sandbox: SandboxServer, seeded: dict[str, Any], live_config: Path
) -> None:
    with ForeignHost(reply=LISTING) as foreign:
        with HostileProxy(sandbox.url, [Redirect(308, "/api/v3/", to=foreign.url)]) as proxy:
            result = CliRunner().invoke(
                app,
                ["cleanup", "--config", str(live_config), "--pattern", "TestRecord_*", "--yes"],
                env=_live_env(seeded, sandbox, proxy),
            )
        assert foreign.requests == []
    output = _flat(result.output)
    assert result.exit_code == 1, output
    assert f"Bonzo's API at {proxy.url} redirected the call to another host, {foreign.url}" in output
    assert seeded["superuser_token"] not in result.output
