"""Keep secrets out of every string the tool writes: output, logs, reports, exceptions, files.

Secrets (API keys, hook URL hashes) are registered once, where they enter (config loading), and
:func:`redact` replaces every registered value in a string. A logging filter applies it to every
record, so a secret cannot leak through a log line either.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import parse_qsl, urlsplit

_HOOK_HASH = re.compile(r"(/api/webhook/)([0-9A-Za-z]{6,})")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}")
_MASK = "***"

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | int | float | None) -> None:
    """Remember ``value`` so that :func:`redact` hides it everywhere (short values are ignored).

    A number counts too (an unquoted numeric API key in YAML): its text is what would leak.
    """
    if value is None or isinstance(value, bool):
        return
    text = value if isinstance(value, str) else str(value)
    if len(text) >= 6:
        with _lock:
            _secrets.add(text)


_TOKEN_PART = re.compile(r"^[A-Za-z0-9_\-.~]{16,}$")


def register_secret_parts(value: str | int | float | None) -> None:
    """Register a secret and each part of it that is a secret on its own.

    A hook URL's hash is as secret as the URL (a webhook may echo it back alone: "hook <hash> is
    paused"), so every token-like path segment, query value and password of a URL is registered too.

    >>> register_secret_parts("https://hooks.example/api/webhook/0123456789abcdef0123?key=zyxwvutsrq9876543210")
    >>> redact("hook 0123456789abcdef0123 is paused; key zyxwvutsrq9876543210")
    'hook *** is paused; key ***'
    """
    register_secret(value)
    if not isinstance(value, str) or "://" not in value:
        return
    try:
        parts = urlsplit(value.strip())
    except ValueError:  # not a URL (an unclosed '['): the whole value, registered above, is all there is
        return
    try:
        password = parts.password
    except ValueError:
        password = None
    register_secret(password)
    for segment in parts.path.split("/"):
        if _TOKEN_PART.match(segment):
            register_secret(segment)
    for _, query_value in parse_qsl(parts.query, keep_blank_values=False):
        if _TOKEN_PART.match(query_value):
            register_secret(query_value)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret, hook hash and bearer token masked.

    >>> redact("POST http://127.0.0.1:9/api/webhook/0123456789abcdef0123456789abcdef")
    'POST http://127.0.0.1:9/api/webhook/***'
    """
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, _MASK)
    text = _HOOK_HASH.sub(lambda m: m.group(1) + _MASK, text)
    return _BEARER.sub(lambda m: m.group(1) + _MASK, text)


def redact_url(url: str) -> str:
    """A URL safe to print: hook hashes, registered secrets and any password or query token masked."""
    text = redact(url)
    text = re.sub(r"//([^/@:]+):([^/@]+)@", rf"//\1:{_MASK}@", text)
    return re.sub(r"(?i)([?&](?:token|key|api_key|apikey|secret|code)=)[^&#]+", rf"\1{_MASK}", text)


class RedactingFilter(logging.Filter):
    """Logging filter that redacts the formatted message of every record passing through."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Attach :class:`RedactingFilter` to ``logger`` (the root by default) and its handlers, once."""
    target = logger or logging.getLogger()
    for holder in [target, *target.handlers]:
        if not any(isinstance(f, RedactingFilter) for f in holder.filters):
            holder.addFilter(RedactingFilter())
