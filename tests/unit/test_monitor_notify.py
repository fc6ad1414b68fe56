"""Notification channels and pings: secrets registered and shown only as labels, failures recorded not raised,
and the run lock that keeps monitor runs from overlapping (the stored state: tests/unit/store)."""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hostile_servers import ForeignHost, HostileProxy, Redirect, Reply

from bonzo_bulk.config.monitor import MonitorSettings
from bonzo_bulk.errors import ConfigError, MonitorLocked
from bonzo_bulk.monitor.notify import channel_label, notification_urls, ping, ping_url, send
from bonzo_bulk.monitor.state import run_lock
from bonzo_bulk.secrets import redact


@pytest.fixture
def pings() -> Iterator[tuple[str, list[str]]]:
    """A local healthchecks stand-in: answers 200, except 500 on /fail; keeps the paths it saw."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append(self.path)
            self.send_response(500 if self.path.endswith("/fail") else 200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ping/3f2a9c1e-uuid-token", seen
    server.shutdown()
    server.server_close()


def test_urls_from_the_named_variable_are_registered_secrets() -> None:
    settings = MonitorSettings(notify_env="MY_ALERTS")
    urls = notification_urls(settings, {"MY_ALERTS": "json://h:1/a/SecretPathToken99, mailto://u:Pass9Word7@x.test"})
    assert len(urls) == 2
    text = redact(f"sent to {urls[0]} and Pass9Word7 and SecretPathToken99")
    assert "SecretPathToken99" not in text and "Pass9Word7" not in text
    assert channel_label(urls[0]).startswith("json://h:1 #") and "Secret" not in channel_label(urls[0])


def test_unreachable_and_unknown_channels_are_recorded_failures() -> None:
    deliveries = send("alert", "t", "b", ["json://127.0.0.1:9/x/TokenTokenToken1", "nosuch://x"])
    assert [(d.kind, d.ok) for d in deliveries] == [("alert", False), ("alert", False)]
    assert "does not understand" in deliveries[1].detail
    assert all("TokenTokenToken1" not in d.detail and "TokenTokenToken1" not in d.channel for d in deliveries)


def test_pings_hit_start_success_and_fail_and_a_failed_ping_is_only_a_result(pings: tuple[str, list[str]]) -> None:
    url, seen = pings
    assert ping_url(MonitorSettings(), {"BONZO_BULK_PING_URL": url}) == url
    results = [ping(url, event, timeout=5) for event in ("start", "success", "fail")]
    assert [p.rsplit("/", 1)[-1] for p in seen] == ["start", "3f2a9c1e-uuid-token", "fail"]
    assert [r.ok for r in results] == [True, True, False] and results[2].detail == "HTTP 500"
    down = ping("http://127.0.0.1:9/ping/abc", "start", timeout=2)
    assert down.ok is False and down.kind == "ping:start"
    assert "3f2a9c1e-uuid-token" not in redact(f"{url}")
    with pytest.raises(ConfigError, match="must be http"):
        ping_url(MonitorSettings(), {"BONZO_BULK_PING_URL": "ftp://x/y"})


class BasicAuthPings(ForeignHost):
    """A ping endpoint that answers 401 unless the request carries ``Basic pinger:s3cr%t`` (decoded)."""

    expected = "Basic " + base64.b64encode(b"pinger:s3cr%t").decode()

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        if headers.get("Authorization") != self.expected:
            return Reply(401, b"", {"WWW-Authenticate": 'Basic realm="pings"'})
        return Reply(200, b"OK", {})


def test_a_ping_url_with_user_and_password_sends_them_as_basic_auth_and_never_shows_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with BasicAuthPings() as server:
        port = server.url.rsplit(":", 1)[1]
        url = f"http://pinger:s3cr%25t@127.0.0.1:{port}/ping/abc"
        assert ping_url(MonitorSettings(), {"BONZO_BULK_PING_URL": url}) == url
        good = ping(url, "start", timeout=5, message="run started")
        refused = ping(f"http://pinger:wrong-Passw0rd@127.0.0.1:{port}/ping/abc", "fail", timeout=5)
        anonymous = ping(f"http://127.0.0.1:{port}/ping/abc", "success", timeout=5)
    assert good.ok is True, good.detail
    assert (refused.ok, refused.detail, anonymous.ok, anonymous.detail) == (False, "HTTP 401", False, "HTTP 401")
    first = server.requests[0]
    assert (first.method, first.path, first.body) == ("POST", "/ping/abc/start", b"run started")
    shown = " ".join([caplog.text, *(d.channel + d.detail for d in (good, refused, anonymous))])
    assert "s3cr" not in shown and "wrong-Passw0rd" not in shown and BasicAuthPings.expected not in shown


def test_a_ping_follows_a_same_host_redirect_but_not_one_to_another_host(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "bonzo_bulk.monitor")
    with ForeignHost() as home, ForeignHost() as elsewhere:
        rules = [Redirect(302, path_prefix="/away", to=elsewhere.url), Redirect(302, path_prefix="/moved", hops=1)]
        with HostileProxy(home.url, rules) as proxy:
            port = proxy.url.rsplit(":", 1)[1]
            away = ping(f"http://pinger:Sup3rS3cretPw@127.0.0.1:{port}/away/abc", "start", timeout=5)
            moved = ping(f"http://pinger:Sup3rS3cretPw@127.0.0.1:{port}/moved/abc", "start", timeout=5)
    assert elsewhere.requests == []
    assert away.ok is False and "redirect to another host (http://127.0.0.1:" in away.detail
    assert "not followed" in away.detail and "Sup3rS3cretPw" not in caplog.text
    assert moved.ok is True, moved.detail
    assert [(seen.path, seen.authorization is not None) for seen in home.requests] == [("/moved/abc/start", True)]


def test_a_second_run_while_the_first_holds_the_lock_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "monitor-mb.lock"
    with run_lock(lock), pytest.raises(MonitorLocked, match="still holds") as refused, run_lock(lock):
        pass
    assert refused.value.exit_code == 75
    with run_lock(lock):
        pass  # released once the first run ended
