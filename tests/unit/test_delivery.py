"""The webhook sender and probe against a real aiohttp server on a free loopback port."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from bonzo_bulk.config.schema import WebhookSettings
from bonzo_bulk.deliver.probe import probe
from bonzo_bulk.deliver.sender import deliver
from bonzo_bulk.errors import DeliveryError
from bonzo_bulk.models import DeliveryResult, PlannedRecord, User

HOOK_HASH = "0123456789abcdef0123456789abcdef"
USER = User(name="Lo One", email="lo.one@bonzobuddy.test", user_id=11, team_id=7)


def make_records(count: int, *, key: str = "r") -> list[PlannedRecord]:
    """Small valid records whose body names the record, so the server can script per record."""
    records = []
    for i in range(1, count + 1):
        name = f"TestRecord_{key}_{i:03d}"
        payload = {"first_name": name, "email": f"test.{key}.{i:03d}@bonzobuddy.test"}
        records.append(
            PlannedRecord(
                run_id="run1",
                phase="primary",
                index=i,
                name=name,
                record_id=f"20250101_000000_{i:03d}",
                first_name=name,
                last_name="MonitorBase",
                email=payload["email"],
                phone="+15555550100",
                expected_user=USER,
                payload=payload,
                body=json.dumps(payload).encode(),
                content_type="application/json",
                expected={},
            )
        )
    return records


def fast(**overrides: object) -> WebhookSettings:
    """Settings that keep the tests quick: short timeouts, tiny backoff."""
    values: dict[str, object] = {
        "timeout": 2.0,
        "retry_attempts": 2,
        "retry_delay": 0.01,
        "max_retry_delay": 0.05,
        "concurrent_requests": 4,
    }
    values.update(overrides)
    return WebhookSettings.model_validate(values)


@dataclass
class Hook:
    """A scriptable webhook: counts hits, in-flight requests and arrival times per path."""

    base: str = ""
    hits: Counter[str] = field(default_factory=Counter)
    methods: Counter[str] = field(default_factory=Counter)
    arrivals: list[float] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    content_types: set[str] = field(default_factory=set)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.methods[request.method] += 1
        if request.method != "POST":
            return await self.handle_probe(request)
        body = await request.read()
        self.content_types.add(request.headers.get("Content-Type", ""))
        name = json.loads(body)["first_name"] if body else ""
        key = f"{request.path}#{name}"
        self.hits[key] += 1
        tries = self.hits[key]
        self.arrivals.append(time.monotonic())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self.respond(request, tries)
        finally:
            self.in_flight -= 1

    async def respond(self, request: web.Request, tries: int) -> web.StreamResponse:
        kind = request.match_info["kind"]
        if kind == "ok":
            return web.json_response({"ok": True})
        if kind == "busy":
            await asyncio.sleep(0.02)
            return web.json_response({})
        if kind == "jitter":
            await asyncio.sleep(random.uniform(0, 0.01))
            return web.json_response({})
        if kind == "flaky":
            return web.json_response({"message": "down"}, status=503) if tries <= 2 else web.json_response({})
        if kind == "limited":
            if tries == 1:
                return web.json_response({"message": "Too Many Attempts."}, status=429, headers={"Retry-After": "1"})
            return web.json_response({})
        if kind == "invalid":
            return web.json_response({"errors": {"first_name": ["The first name field is required."]}}, status=422)
        if kind == "broken":
            return web.json_response({"message": "always down"}, status=500)
        if kind == "slow":
            await asyncio.sleep(1.0)
            return web.json_response({})
        if kind == "reset":
            assert request.transport is not None
            request.transport.abort()
            await asyncio.sleep(0.05)
            return web.json_response({})
        if kind == "echo":
            return web.Response(status=404, text=f"no hook at {request.url} " + "x" * 1000)
        return web.Response(status=400)

    async def handle_probe(self, request: web.Request) -> web.StreamResponse:
        if request.method == "OPTIONS":
            return web.Response(status=204, headers={"Allow": "POST, OPTIONS"})
        if request.method == "GET":
            return web.Response(status=405, headers={"Allow": "POST"})
        return web.Response(status=200)


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    """A real aiohttp server on 127.0.0.1, a free port, stopped after the test."""
    state = Hook()
    app = web.Application()
    app.router.add_route("*", "/{kind}", state.handle)
    app.router.add_route("*", "/{kind}/api/webhook/{hash}", state.handle)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    state.base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        yield state
    finally:
        await runner.cleanup()


async def test_success_records_everything(hook: Hook) -> None:
    records = make_records(3)
    seen: list[DeliveryResult] = []
    results = await deliver(
        records, url=hook.url("/ok"), settings=fast(), on_result=lambda _, result: seen.append(result)
    )
    assert [r.record_name for r in results] == [r.name for r in records]
    assert len(seen) == 3
    for result in results:
        assert result.accepted
        assert result.status == 200
        assert result.attempts == 1
        assert result.error_category is None
        assert result.error is None
        assert result.response_excerpt == '{"ok": true}'
        assert result.sent_at.tzinfo is not None
        assert result.answered_at is not None
        assert result.answered_at >= result.sent_at
        assert 0 < result.latency_ms <= result.total_ms
    assert hook.content_types == {"application/json"}


async def test_no_records_sends_nothing(hook: Hook) -> None:
    assert await deliver([], url=hook.url("/ok"), settings=fast()) == []
    assert hook.hits.total() == 0


async def test_5xx_is_retried_until_success(hook: Hook) -> None:
    [result] = await deliver(make_records(1), url=hook.url("/flaky"), settings=fast())
    assert result.accepted
    assert result.attempts == 3
    assert result.error_category is None
    assert result.total_ms >= result.latency_ms


async def test_5xx_that_never_heals_is_a_failed_result(hook: Hook) -> None:
    [result] = await deliver(make_records(1), url=hook.url("/broken"), settings=fast(retry_attempts=1))
    assert not result.accepted
    assert result.status == 500
    assert result.attempts == 2
    assert result.error_category == "http_5xx"
    assert result.error is not None
    assert "500" in result.error
    assert "always down" in result.response_excerpt


async def test_429_waits_retry_after(hook: Hook) -> None:
    started = time.monotonic()
    [result] = await deliver(make_records(1), url=hook.url("/limited"), settings=fast())
    waited = time.monotonic() - started
    assert result.accepted
    assert result.attempts == 2
    assert waited >= 0.8, "Retry-After: 1 was not honoured (the backoff alone is at most 0.05 s)"
    assert result.total_ms >= 800


async def test_4xx_is_never_retried(hook: Hook) -> None:
    [result] = await deliver(make_records(1), url=hook.url("/invalid"), settings=fast(retry_attempts=5))
    assert result.status == 422
    assert result.attempts == 1
    assert result.error_category == "http_4xx"
    assert "first name field is required" in result.response_excerpt
    assert hook.hits.total() == 1


async def test_timeout_is_categorised_and_retried(hook: Hook) -> None:
    [result] = await deliver(make_records(1), url=hook.url("/slow"), settings=fast(timeout=0.2, retry_attempts=1))
    assert result.status is None
    assert result.answered_at is None
    assert result.error_category == "timeout"
    assert result.attempts == 2
    assert hook.hits.total() == 2


async def test_connection_reset_is_categorised(hook: Hook) -> None:
    [result] = await deliver(make_records(1), url=hook.url("/reset"), settings=fast(retry_attempts=1))
    assert result.status is None
    assert result.error_category == "reset"
    assert result.attempts == 2
    assert result.error


async def test_refused_connection_is_a_connect_failure(unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/api/webhook/{HOOK_HASH}"
    [result] = await deliver(make_records(1), url=url, settings=fast(retry_attempts=1))
    assert result.error_category == "connect"
    assert result.attempts == 2
    assert HOOK_HASH not in repr(result)


async def test_concurrency_never_exceeds_the_bound(hook: Hook) -> None:
    records = make_records(40)
    worker_tasks: list[int] = []

    def count_workers(_: PlannedRecord, __: DeliveryResult) -> None:
        names = [repr(t.get_coro()) for t in asyncio.all_tasks()]  # <coroutine object deliver.<locals>.worker ...>
        worker_tasks.append(sum("worker" in name for name in names))

    results = await deliver(
        records, url=hook.url("/busy"), settings=fast(concurrent_requests=4), on_result=count_workers
    )
    assert all(r.accepted for r in results)
    assert hook.max_in_flight <= 4
    assert hook.max_in_flight >= 2
    assert max(worker_tasks) <= 4, "one task per worker, not one per record"


async def test_rate_limit_spreads_requests(hook: Hook) -> None:
    records = make_records(10)
    started = time.monotonic()
    results = await deliver(records, url=hook.url("/ok"), settings=fast(rate_limit=25.0, concurrent_requests=8))
    elapsed = time.monotonic() - started
    assert all(r.accepted for r in results)
    assert elapsed >= 0.3, "10 records at 25/s take at least 9 intervals of 40 ms"
    gaps = [b - a for a, b in zip(hook.arrivals, hook.arrivals[1:], strict=False)]
    assert statistics.median(gaps) >= 0.025, "requests came in bursts, not spread out"


async def test_results_keep_record_order(hook: Hook) -> None:
    records = make_records(30)
    results = await deliver(records, url=hook.url("/jitter"), settings=fast(concurrent_requests=8))
    assert [r.record_name for r in results] == [r.name for r in records]


async def test_hook_hash_is_redacted_in_errors(hook: Hook) -> None:
    url = hook.url(f"/echo/api/webhook/{HOOK_HASH}")
    [result] = await deliver(make_records(1), url=url, settings=fast())
    assert result.status == 404
    assert result.error_category == "http_4xx"
    assert len(result.response_excerpt) <= 300
    assert "/api/webhook/***" in result.response_excerpt
    assert HOOK_HASH not in repr(result)


@pytest.mark.parametrize(
    "url",
    [f"ftp://example.test/api/webhook/{HOOK_HASH}", f"/api/webhook/{HOOK_HASH}", "http://", "not a url"],
)
async def test_unusable_url_raises_delivery_error_without_the_hash(url: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        await deliver(make_records(1), url=url, settings=fast())
    assert HOOK_HASH not in str(caught.value)
    assert "http(s)" in str(caught.value)


async def test_a_given_session_is_used_and_left_open(hook: Hook) -> None:
    async with aiohttp.ClientSession() as session:
        results = await deliver(make_records(2), url=hook.url("/ok"), settings=fast(), session=session)
        assert not session.closed
    assert all(r.accepted for r in results)


async def test_a_failing_callback_stops_the_run(hook: Hook) -> None:
    def explode(_: PlannedRecord, __: DeliveryResult) -> None:
        raise RuntimeError("store is full")

    with pytest.raises(RuntimeError, match="store is full"):
        await deliver(make_records(20), url=hook.url("/ok"), settings=fast(), on_result=explode)
    assert hook.hits.total() < 20


async def test_probe_reports_methods_without_posting(hook: Hook) -> None:
    found = await probe(hook.url(f"/ok/api/webhook/{HOOK_HASH}"), attempts=2, timeout=2.0)
    assert found.reachable
    assert found.tls_ok is None
    assert found.error is None
    assert HOOK_HASH not in found.url
    by_method = {m.method: m for m in found.methods}
    assert by_method["HEAD"].statuses == (200, 200)
    assert by_method["GET"].statuses == (405, 405)
    assert by_method["GET"].allow == "POST"
    assert by_method["OPTIONS"].statuses == (204, 204)
    assert by_method["OPTIONS"].allow == "POST, OPTIONS"
    assert found.probes == 6
    assert found.latency_p50_ms is not None
    assert found.latency_max_ms is not None
    assert 0 < found.latency_p50_ms <= found.latency_max_ms
    assert hook.methods["POST"] == 0


async def test_probe_of_a_dead_port_is_unreachable(unused_tcp_port: int) -> None:
    found = await probe(f"http://127.0.0.1:{unused_tcp_port}/api/webhook/{HOOK_HASH}", attempts=1, timeout=1.0)
    assert not found.reachable
    assert found.latency_p50_ms is None
    assert found.error is not None
    assert all(m.failures == 1 and m.error_category == "connect" for m in found.methods)
    assert HOOK_HASH not in repr(found)


async def test_probe_of_an_unusable_url_raises() -> None:
    with pytest.raises(DeliveryError):
        await probe("mailto:someone@example.test", attempts=1, timeout=1.0)
