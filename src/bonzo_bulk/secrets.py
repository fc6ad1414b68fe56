"""Keep secrets out of every string the tool writes: output, logs, reports, exceptions, files.

Secrets (API keys, hook URL hashes) are registered once, where they enter (config loading), and
:func:`redact` replaces every registered value in a string. A logging filter applies it to every
record, so a secret cannot leak through a log line either.
"""

from __future__ import annotations

import logging
import re
import threading

_HOOK_HASH = re.compile(r"(/api/webhook/)([0-9A-Za-z]{6,})")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}")
_MASK = "***"

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that :func:`redact` hides it everywhere (short values are ignored)."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


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
