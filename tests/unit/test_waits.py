"""Nothing waits silently or for ever: each attack reproduced with a hostile server.

- A webhook that accepts connections and never answers: timeouts in a row stop the delivery (as refused
  connections do), the status line says how many requests await an answer, and a delivery always has a
  deadline (a default one when the config sets none).
- Bonzo's API answering 429 with a huge ``Retry-After`` in the preflight or in cleanup: refused at once,
  naming ``api_settings.max_wait``; a wait that is honoured is logged with what it waits for and until when.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import yaml
from hostile_servers import Canned, HostileProxy, Reply, SilentHook
from typer.testing import CliRunner

from bonzo_bulk.bonzo import BonzoClient
from bonzo_bulk.cli import app
from bonzo_bulk.config.schema import ApiSettings, WebhookSettings
from bonzo_bulk.deliver.sender import deliver
from bonzo_bulk.deliver.watch import MIN_DEFAULT_DEADLINE, delivery_deadline
from bonzo_bulk.models import PlannedRecord, User
from bonzo_bulk.report import terminal as console_module
from bonzo_bulk.sandbox import SandboxServer

LO = User(name="LO One", email="lo.one@lender.test", user_id=101, team_id=11)


def too_many(retry_after: str) -> Reply:
    body = json.dumps({"message": "Too Many Attempts."}).encode()
    return Reply(429, body, {"Content-Type": "application/json", "Retry-After": retry_after})


def records(count: int) -> list[PlannedRecord]:
    planned = []
    for i in range(1, count + 1):
        name = f"TestRecord_Wait_{i:03d}"
        payload = {"first_name": name, "email": f"test.wait.{i:03d}@bonzobuddy.test", "lo_email": LO.email}
        planned.append(
            PlannedRecord(
                run_id="waits",
                phase="primary",
                index=i,
                name=name,
                record_id=str(i),
                first_name=name,
                last_name="Wait",
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


async def test_a_hook_that_never_answers_is_given_up_after_timeouts_in_a_row() -> None:
    lines: list[str] = []
    settings = WebhookSettings(
        timeout=0.3, retry_attempts=3, retry_delay=0.05, concurrent_requests=2, give_up_after_timeouts=4
    )
    with SilentHook() as silent:
        results = await deliver(
            records(20), url=silent.url, settings=settings, on_status=lines.append, status_every=0.1
        )
        held = silent.posts
    assert len(results) == 20 and not any(r.accepted for r in results)
    assert held <= 4 + 2  # the 4 timeouts in a row, and what was in flight when they added up
    unsent = [r for r in results if r.attempts == 0]
    assert len(unsent) >= 14
    assert all(r.error_category == "timeout" and "4 requests in a row got no answer" in (r.error or "") for r in unsent)
    assert any("2 awaiting an answer" in line for line in lines), lines
    assert "stopped: 4 requests in a row got no answer" in lines[-1]


def test_every_delivery_has_a_deadline_a_healthy_one_never_meets() -> None:
    chosen = delivery_deadline(WebhookSettings(deadline=42), 1_000)
    assert (chosen.seconds, chosen.chosen) == (42, True)
    assert "webhook_settings.deadline)" in chosen.describe()
    small = delivery_deadline(WebhookSettings(timeout=30, concurrent_requests=5), 6)
    assert (small.seconds, small.chosen) == (MIN_DEFAULT_DEADLINE, False)
    assert "default; webhook_settings.deadline sets it" in small.describe()
    # 1,000 records in rounds of 5, each answered within its 30 s timeout: 200 rounds of 30 s.
    assert delivery_deadline(WebhookSettings(timeout=30, concurrent_requests=5), 1_000).seconds == 6_000
    # Paced at 1 record/s, 1,000 records take 1,000 s, and the last one its timeout.
    paced = WebhookSettings(timeout=1, concurrent_requests=100, rate_limit=1)
    assert delivery_deadline(paced, 1_000).seconds == 1_001


def _live_config(tmp_path: Path, users: list[dict[str, object]], **webhook: object) -> Path:
    config = tmp_path / "live.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "test_name": "waits",
                "webhook_url": "{TEST_HOOK_URL}",
                "superuser_api_key": "{SUPERUSER_API_KEY}",
                "control": False,
                "test_records": 6,
                "test_users": users,
                "webhook_settings": {"timeout": 0.5, "retry_attempts": 3, "retry_delay": 0.05, **webhook},
                "api_settings": {"retry_attempts": 1, "retry_delay": 0.05},
                "polling": {"interval": 0.2, "deadline": 2},
                "reports_dir": str(tmp_path / "reports"),
            }
        )
    )
    return config


@pytest.fixture
def quiet_console(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(console_module.console, "width", 400)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_a_run_against_a_hook_that_never_answers_ends_with_a_verdict(
    sandbox: SandboxServer, users: list[dict[str, object]], tmp_path: Path, quiet_console: None
) -> None:
    seeded = sandbox.seed(users, [{"type": "monitorbase", "source": "monitorbase"}])
    with SilentHook() as silent:
        env = {
            "TEST_HOOK_URL": silent.url,
            "SUPERUSER_API_KEY": seeded["superuser_token"],
            "BONZO_API_URL": sandbox.url,
        }
        result = CliRunner().invoke(app, ["run", "--config", str(_live_config(tmp_path, users))], env=env)
        held = silent.posts
    output = _flat(result.output)
    assert result.exit_code == 1, output
    assert "10 requests in a row got no answer within their timeout" in output
    assert "delivered 0/6" in output and "(live): FAILED (exit 1)" in output
    assert held <= 10 + 5  # default give_up_after_timeouts, and the 5 in flight (concurrent_requests)


def test_a_huge_retry_after_in_the_preflight_stops_the_run_at_once_nothing_sent(
    sandbox: SandboxServer, users: list[dict[str, object]], tmp_path: Path, quiet_console: None
) -> None:
    seeded = sandbox.seed(users, [{"type": "monitorbase", "source": "monitorbase"}])
    hook = next(h for h in seeded["hooks"] if h["type"] == "monitorbase")
    with HostileProxy(sandbox.url, [Canned(too_many("100000"), "/api/v3/")]) as proxy:
        env = {
            "TEST_HOOK_URL": hook["url"].replace(sandbox.url, proxy.url),
            "SUPERUSER_API_KEY": seeded["superuser_token"],
            "BONZO_API_URL": proxy.url,
        }
        result = CliRunner().invoke(app, ["run", "--config", str(_live_config(tmp_path, users))], env=env)
        posted = [seen for seen in proxy.requests if seen.method == "POST"]
        throttled = proxy.canned
    output = _flat(result.output)
    assert result.exit_code == 2, output
    assert "preflight failed, nothing was sent" in output
    assert "Bonzo asked to wait 100000 s (429 Retry-After), more than api_settings.max_wait (120 s)" in output
    assert posted == []
    assert throttled == len(users)  # one request per user: not one retry waited for


def test_a_huge_retry_after_in_cleanup_ends_it_at_once_naming_the_limit(
    sandbox: SandboxServer, users: list[dict[str, object]], tmp_path: Path, quiet_console: None
) -> None:
    seeded = sandbox.seed(users, [{"type": "monitorbase", "source": "monitorbase"}])
    hook = next(h for h in seeded["hooks"] if h["type"] == "monitorbase")
    with HostileProxy(sandbox.url, [Canned(too_many("100000"), "/api/v3/")]) as proxy:
        env = {
            "TEST_HOOK_URL": hook["url"].replace(sandbox.url, proxy.url),
            "SUPERUSER_API_KEY": seeded["superuser_token"],
            "BONZO_API_URL": proxy.url,
        }
        config = _live_config(tmp_path, users)
        result = CliRunner().invoke(app, ["cleanup", "--config", str(config), "--pattern", "TestRecord_*"], env=env)
        throttled = proxy.canned
    output = _flat(result.output)
    assert result.exit_code == 1, output
    assert "more than api_settings.max_wait (120 s); not waited" in output
    assert throttled == 1


async def test_a_429_wait_that_is_honoured_says_what_it_waits_for_and_until_when(
    sandbox: SandboxServer, users: list[dict[str, object]], caplog: pytest.LogCaptureFixture
) -> None:
    seeded = sandbox.seed(users, [{"type": "monitorbase", "source": "monitorbase"}])
    settings = ApiSettings.model_validate({"retry_attempts": 1, "retry_delay": 0.05})
    with HostileProxy(sandbox.url, [Canned(too_many("5"), "/api/v3/prospects", times=1)]) as proxy:
        async with BonzoClient(base_url=proxy.url, api_key=seeded["superuser_token"], settings=settings) as api:
            with caplog.at_level(logging.WARNING, logger="bonzo_bulk"):
                page = await api.list_prospects(on_behalf_of=101, per_page=1)
    assert page.current_page == 1
    [said] = [r.getMessage() for r in caplog.records if "429" in r.getMessage()]
    assert re.search(r"to GET /prospects: waiting 5 s for its Retry-After, until \d\d:\d\d:\d\d UTC$", said), said
