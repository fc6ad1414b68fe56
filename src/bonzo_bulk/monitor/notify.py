"""Deliver the monitor's notices through apprise, and ping a dead-man's switch; neither can fail a run.

Notification and ping URLs are secrets (the URL is the credential): they come from the environment
(or an apprise config file), are registered for redaction the moment they are read, and are only
ever shown or stored as a label (scheme, host and a short hash). Each channel's result is returned
so the monitor records it.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Literal

from bonzo_bulk.config.monitor import MonitorSettings
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.monitor.policy import NoticeKind
from bonzo_bulk.monitor.state import Delivery
from bonzo_bulk.secrets import redact, redact_cut, register_secret, register_secret_parts

log = logging.getLogger("bonzo_bulk.monitor")

PingEvent = Literal["start", "success", "fail"]

_NOTIFY_TYPE: dict[NoticeKind, str] = {
    "alert": "failure",
    "reminder": "failure",
    "flapping": "warning",
    "degraded": "warning",
    "recovery": "success",
    "new": "failure",
    "reopened": "failure",
    "escalated": "failure",
    "resolved": "success",
}


class _Heard(logging.Handler):
    """Keeps apprise's warnings about one notification, so its failure reason is recorded (redacted)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(redact(record.getMessage()))

    def text(self) -> str:
        return redact_cut("; ".join(self.messages), 300)


def register_url(url: str) -> None:
    """Register a URL and its credential parts (password and its Basic credential, long path segments, query
    values) as secrets."""
    register_secret_parts(url)
    parsed = urllib.parse.urlsplit(url)
    register_secret(parsed.password)
    for part in parsed.path.split("/"):
        if len(part) >= 8:
            register_secret(part)
    for _, value in urllib.parse.parse_qsl(parsed.query):
        if len(value) >= 8:
            register_secret(value)


def channel_label(url: str) -> str:
    """What may be shown or stored of a channel URL: scheme, host and a short hash to tell channels apart.

    >>> channel_label("json://user:secret@127.0.0.1:8080/hook/abcdefgh1234")
    'json://127.0.0.1:8080 #80adaaca'
    """
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname or "?"
    port = f":{parsed.port}" if parsed.port else ""
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"{parsed.scheme}://{host}{port} #{digest}"


def notification_urls(settings: MonitorSettings, env: Mapping[str, str]) -> list[str]:
    """The apprise URLs named by ``monitor.notify_env`` (comma or whitespace separated), each registered as secret."""
    raw = env.get(settings.notify_env, "")
    urls = [u for u in re.split(r"[\s,]+", raw) if u]
    for url in urls:
        register_url(url)
    return urls


def ping_url(settings: MonitorSettings, env: Mapping[str, str]) -> str | None:
    """The dead-man's-switch URL named by ``monitor.ping_env``, registered as secret; an http(s) URL or an error."""
    url = env.get(settings.ping_env, "").strip()
    if not url:
        return None
    register_url(url)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(
            f"{settings.ping_env}: the ping URL must be http(s) (a healthchecks-style URL); fix the variable",
            key=settings.ping_env,
        )
    return url


def _channels(urls: Sequence[str], apprise_config: Path | None) -> list[tuple[str, object | None]]:
    """(label, apprise plugin or None when apprise does not understand the URL) for every channel."""
    import apprise

    asset = apprise.AppriseAsset(secure_logging=True)
    channels: list[tuple[str, object | None]] = [
        (channel_label(url), apprise.Apprise.instantiate(url, asset=asset)) for url in urls
    ]
    if apprise_config is not None:
        config = apprise.AppriseConfig(asset=asset)
        if not config.add(str(apprise_config)):
            raise ConfigError(
                f"monitor.apprise_config: {apprise_config} cannot be read as an apprise config",
                key="monitor.apprise_config",
            )
        for service in config.services():
            url = str(service.url())  # type: ignore[no-untyped-call]
            register_url(url)
            channels.append((channel_label(url), service))
    return channels


def send(
    kind: NoticeKind, title: str, body: str, urls: Sequence[str], *, apprise_config: Path | None = None
) -> list[Delivery]:
    """Send one notice to every channel, one at a time; every failure is caught and recorded, never raised."""
    try:
        import apprise

        notify_type = apprise.NotifyType(_NOTIFY_TYPE[kind])
        channels = _channels(urls, apprise_config)
    except Exception as exc:  # a notifier must never fail the run, even when it cannot start
        detail = redact_cut(f"{type(exc).__name__}: {exc}", 300)
        log.warning("notification %s could not be sent: %s", kind, detail)
        return [Delivery(kind, "apprise", False, detail)]
    deliveries = []
    for label, service in channels:
        if service is None:
            deliveries.append(Delivery(kind, label, False, "apprise does not understand this URL; check its scheme"))
            continue
        heard = _Heard()
        logging.getLogger("apprise").addHandler(heard)
        try:
            ok = bool(
                service.notify(  # type: ignore[attr-defined]
                    title=title, body=body, notify_type=notify_type, body_format=apprise.NotifyFormat.MARKDOWN
                )
            )
            detail = "" if ok else heard.text() or "the service did not accept the notification"
        except Exception as exc:  # a notifier must never fail the run
            ok, detail = False, redact_cut(f"{type(exc).__name__}: {exc}", 300)
        finally:
            logging.getLogger("apprise").removeHandler(heard)
        if not ok:
            log.warning("notification %s to %s failed: %s", kind, label, detail)
        deliveries.append(Delivery(kind, label, ok, detail))
    return deliveries


def _without_credentials(url: str) -> tuple[str, str | None]:
    """``url`` with any ``user:password@`` taken out, and the HTTP Basic ``Authorization`` value they make
    (percent-decoded, as a browser sends them); urllib would put them in the Host header instead."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    pair = f"{urllib.parse.unquote(parts.username or '')}:{urllib.parse.unquote(parts.password or '')}"
    credential = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    register_secret(credential)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), credential


class _CrossHostRedirect(urllib.error.URLError):
    """A ping answered with a redirect to another host: not followed (it would take the credentials along)."""


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to the same host and port (or the same host's https); anything else ends the ping."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        here, there = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        same_host = (here.hostname or "").lower() == (there.hostname or "").lower()
        same_origin = same_host and (here.scheme, here.port) == (there.scheme, there.port)
        upgrade = same_host and (here.scheme, there.scheme) == ("http", "https") and not there.port
        if not (same_origin or upgrade):
            fp.close()
            port = f":{there.port}" if there.port else ""
            raise _CrossHostRedirect(
                f"HTTP {code} redirect to another host ({there.scheme}://{there.hostname}{port}); not followed"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameHostRedirects)


def _ping_request(url: str, event: PingEvent, message: str) -> urllib.request.Request:
    bare, credential = _without_credentials(url)
    target = bare.rstrip("/") + {"start": "/start", "fail": "/fail", "success": ""}[event]
    request = urllib.request.Request(target, data=redact(message).encode()[:10_000], method="POST")  # noqa: S310
    if credential is not None:
        request.add_header("Authorization", credential)
    return request


def ping(url: str, event: PingEvent, *, timeout: float, message: str = "") -> Delivery:
    """Ping a healthchecks-style URL (``/start``, ``/fail``, or the URL itself on success); failures are warnings.

    ``user:password@`` in the URL is sent as HTTP Basic auth; a redirect is followed only on the same host.
    """
    label = channel_label(url)
    try:
        request = _ping_request(url, event, message)  # http(s) checked by ping_url
        with _OPENER.open(request, timeout=timeout) as response:
            ok = 200 <= response.status < 300
            detail = "" if ok else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        ok, detail = False, f"HTTP {exc.code}"
    except _CrossHostRedirect as exc:
        ok, detail = False, redact_cut(str(exc.reason), 300)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        ok, detail = False, redact_cut(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}", 300)
    if not ok:
        log.warning("dead-man's-switch ping %s to %s failed: %s", event, label, detail)
    return Delivery(f"ping:{event}", label, ok, detail)
