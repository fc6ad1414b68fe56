"""The shared HTTP plumbing: categories, Retry-After, backoff bounds, the retry loop, the loop runner."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from bonzo_bulk._http import (
    RETRYABLE,
    RetryPolicy,
    TransientError,
    categorize_exception,
    categorize_status,
    describe_exception,
    make_session,
    origin_of,
    parse_retry_after,
    redirect_target,
    retry_transient,
    run_async,
    same_origin,
)


@pytest.mark.parametrize(
    ("status", "category"),
    [
        (200, None),
        (204, None),
        (301, "redirect"),
        (302, "redirect"),
        (307, "redirect"),
        (308, "redirect"),
        (304, "redirect"),
        (400, "http_4xx"),
        (404, "http_4xx"),
        (422, "http_4xx"),
        (429, "http_429"),
        (500, "http_5xx"),
        (503, "http_5xx"),
        (599, "http_5xx"),
    ],
)
def test_categorize_status(status: int, category: str | None) -> None:
    assert categorize_status(status) == category


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/api/v3/prospects?page=2", "https://app.getbonzo.com/api/v3/prospects?page=2"),
        ("page2", "https://app.getbonzo.com/api/v3/page2"),
        ("https://evil.test:8443/x?token=t", "https://evil.test:8443/x?token=t"),
        ("//evil.test/x", "https://evil.test/x"),
        ("javascript:alert(1)", None),
        ("http://[::1", None),
        ("", None),
        (None, None),
    ],
)
def test_redirect_target_resolves_against_the_request(location: str | None, expected: str | None) -> None:
    found = redirect_target(URL("https://app.getbonzo.com/api/v3/prospects?page=1"), location)
    assert (str(found) if found is not None else None) == expected


def test_origins_name_scheme_host_and_port_only() -> None:
    api = URL("https://app.getbonzo.com/api/v3")
    assert same_origin(api, URL("https://APP.getbonzo.com:443/elsewhere?x=1"))
    assert not same_origin(api, URL("http://app.getbonzo.com/api/v3"))  # a downgrade is another origin
    assert not same_origin(api, URL("https://app.getbonzo.com:8443/api/v3"))
    assert not same_origin(api, URL("https://app.getbonzo.com.evil.test/api/v3"))
    assert origin_of(URL("https://user:pass@evil.test:8443/steal?token=t")) == "https://evil.test:8443"


def test_only_client_errors_are_never_retried() -> None:
    assert "http_4xx" not in RETRYABLE
    assert {"connect", "timeout", "reset", "http_429", "http_5xx"} == RETRYABLE


@pytest.mark.parametrize(
    ("exc", "category"),
    [
        (TimeoutError(), "timeout"),
        (aiohttp.ServerTimeoutError("read"), "timeout"),
        (aiohttp.ConnectionTimeoutError("connect"), "timeout"),
        (aiohttp.ServerDisconnectedError(), "reset"),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), "reset"),
        (aiohttp.ClientPayloadError("cut"), "reset"),
        (ConnectionResetError(), "reset"),
        (aiohttp.ClientError("other"), "connect"),
        (ValueError("a bug"), None),
        (asyncio.CancelledError(), None),
    ],
)
def test_categorize_exception(exc: BaseException, category: str | None) -> None:
    assert categorize_exception(exc) == category


async def test_refused_connection_is_a_connect_error(unused_tcp_port: int) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError) as caught:
            await session.get(f"http://127.0.0.1:{unused_tcp_port}/")
    assert categorize_exception(caught.value) == "connect"


def test_describe_exception_is_short_and_redacted() -> None:
    text = describe_exception(aiohttp.ClientError("POST /api/webhook/0123456789abcdef0123456789abcdef " + "x" * 500))
    assert "0123456789abcdef" not in text
    assert len(text) <= 200
    assert describe_exception(TimeoutError()) == "timed out"


def test_parse_retry_after_seconds_and_dates() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None


@given(
    retry_number=st.integers(min_value=1, max_value=100),
    base=st.floats(min_value=0, max_value=10),
    cap=st.floats(min_value=0, max_value=120),
)
def test_backoff_is_exponential_jittered_and_capped(retry_number: int, base: float, cap: float) -> None:
    policy = RetryPolicy(retries=3, base_delay=base, max_delay=cap)
    ceiling = min(cap, base * 2.0 ** min(retry_number - 1, 30))
    assert ceiling * 0.5 <= policy.backoff(retry_number) <= ceiling + 1e-9


def test_retry_after_wins_and_is_capped() -> None:
    policy = RetryPolicy(retries=3, base_delay=1.0, max_delay=2.0, default_retry_after=9.0, retry_after_cap=20.0)
    assert policy.delay(1, TransientError("http_429", "x", retry_after=5.0)) == 5.0
    assert policy.delay(1, TransientError("http_5xx", "x", retry_after=500.0)) == 20.0
    assert policy.delay(1, TransientError("http_429", "x")) == 9.0
    assert policy.delay(1, TransientError("timeout", "x")) <= 1.0
    assert RetryPolicy(retries=1, base_delay=0.1, max_delay=1.0).delay(1, TransientError("http_429", "x")) <= 0.1


async def test_retry_transient_happy_path_calls_once() -> None:
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    assert await retry_transient(attempt, RetryPolicy(retries=3, base_delay=0, max_delay=0)) == "ok"
    assert calls == 1


async def test_retry_transient_retries_then_succeeds() -> None:
    calls = 0

    async def attempt() -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise TransientError("http_5xx", "HTTP 503", status=503)
        return calls

    assert await retry_transient(attempt, RetryPolicy(retries=3, base_delay=0.001, max_delay=0.01)) == 3


async def test_retry_transient_reraises_the_last_failure() -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise TransientError("timeout", f"try {calls}")

    with pytest.raises(TransientError, match="try 3"):
        await retry_transient(attempt, RetryPolicy(retries=2, base_delay=0, max_delay=0))
    assert calls == 3


async def test_retry_transient_does_not_retry_other_errors() -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("permanent")

    with pytest.raises(ValueError, match="permanent"):
        await retry_transient(attempt, RetryPolicy(retries=5, base_delay=0, max_delay=0))
    assert calls == 1


async def test_retry_transient_with_a_first_failure_given() -> None:
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        return "second"

    seed = TransientError("reset", "first")
    assert await retry_transient(attempt, RetryPolicy(retries=1, base_delay=0, max_delay=0), first_failure=seed) == (
        "second"
    )
    assert calls == 1
    with pytest.raises(TransientError, match="first"):
        await retry_transient(attempt, RetryPolicy(retries=0, base_delay=0, max_delay=0), first_failure=seed)


async def test_make_session_is_pooled_to_the_limit() -> None:
    session = make_session(limit=7, timeout=3.0)
    try:
        connector = session.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        assert connector.limit == 7
        assert connector.limit_per_host == 7
        assert session.timeout.total == 3.0
        assert isinstance(session.cookie_jar, aiohttp.DummyCookieJar)
    finally:
        await session.close()


def test_run_async_uses_uvloop() -> None:
    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run_async(loop_module()).startswith("uvloop")
