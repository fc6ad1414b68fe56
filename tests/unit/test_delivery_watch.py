"""Visible waiting: status lines while records retry, a total deadline, giving up on a webhook that is down."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from bonzo_bulk.config.schema import WebhookSettings
from bonzo_bulk.deliver.sender import deliver
from bonzo_bulk.models import PlannedRecord, User

OWNER = User(name="LO", email="lo@lender.test", user_id=1, team_id=1)


def _records(count: int) -> list[PlannedRecord]:
    return [
        PlannedRecord(
            run_id="r20250101-000000-abcd",
            phase="primary",
            index=i,
            name=f"TestRecord_Watch_{i:03d}",
            record_id=str(i),
            first_name=f"TestRecord_Watch_{i:03d}",
            last_name="Watch",
            email=f"w{i}@bonzobuddy.test",
            phone="555-000-0000",
            expected_user=OWNER,
            payload={"n": i},
            body=b'{"n": %d}' % i,
            content_type="application/json",
            expected={},
        )
        for i in range(1, count + 1)
    ]


@pytest.fixture
async def hook() -> AsyncIterator[Callable[[Callable[[web.Request], Any]], Any]]:
    runners: list[web.AppRunner] = []

    async def serve(handler: Callable[[web.Request], Any]) -> str:
        app = web.Application()
        app.router.add_post("/hook", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/hook"

    yield serve
    for runner in runners:
        await runner.cleanup()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_webhook_that_refuses_every_connection_is_given_up_early() -> None:
    lines: list[str] = []
    settings = WebhookSettings(
        timeout=2, retry_attempts=5, retry_delay=0.2, concurrent_requests=2, give_up_after_refusals=4
    )
    results = await deliver(
        _records(30), url=f"http://127.0.0.1:{_closed_port()}/hook", settings=settings, on_status=lines.append
    )
    assert len(results) == 30 and not any(r.accepted for r in results)
    assert sum(r.attempts for r in results) < 12
    unsent = [r for r in results if r.attempts == 0]
    assert len(unsent) >= 20
    assert all(r.error and "refused 4 connections in a row" in r.error for r in unsent)
    assert lines and "stopped: the webhook refused" in lines[-1]


async def test_retries_and_waits_show_in_periodic_status_lines(hook: Any) -> None:
    seen: set[bytes] = set()

    async def once_429(request: web.Request) -> web.Response:
        body = await request.read()
        if body not in seen:
            seen.add(body)
            return web.Response(status=429, headers={"Retry-After": "1"})
        return web.Response(status=200, text="ok")

    url = await hook(once_429)
    lines: list[str] = []
    settings = WebhookSettings(timeout=5, retry_attempts=2, retry_delay=0.1, concurrent_requests=3)
    results = await deliver(_records(3), url=url, settings=settings, on_status=lines.append, status_every=0.2)
    assert all(r.accepted and r.attempts == 2 for r in results)
    assert any("3 retrying" in line and "for 429 Retry-After" in line for line in lines), lines
    assert all(line.startswith("delivery: ") and "/3 sent" in line for line in lines)


async def test_the_total_delivery_deadline_stops_sending(hook: Any) -> None:
    async def slow(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(1.5)
        return web.Response(status=200)

    url = await hook(slow)
    settings = WebhookSettings(timeout=1, retry_attempts=3, retry_delay=0.1, concurrent_requests=2, deadline=0.3)
    started = datetime.now(UTC)
    results = await deliver(_records(8), url=url, settings=settings)
    unsent = [r for r in results if r.attempts == 0]
    assert len(unsent) == 6
    assert all(r.error and "delivery deadline (0.3 s" in r.error for r in unsent)
    assert [r.attempts for r in results if r.attempts] == [1, 1]  # timed out after the deadline: no retry
    assert all(r.sent_at >= started for r in results)
