"""Keep secrets out of every string the tool writes: output, logs, reports, exceptions, files.

Secrets (API keys, hook URL hashes) are registered once, where they enter (config loading), and
:func:`redact` replaces every registered value in a string. A logging filter applies it to every
record, so a secret cannot leak through a log line either.

A secret is registered in every shape a server may echo it in: as given, percent-encoded and
percent-decoded, base64 (plain and URL-safe), JSON-escaped; a URL with ``user:password@`` also
registers the HTTP Basic credential built from it. Text is redacted first and cut second, always
through :func:`redact_cut`, so a cut can never leave part of a secret behind.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from urllib.parse import SplitResult, quote, quote_plus, unquote, unquote_plus, urlsplit

_HOOK_HASH = re.compile(r"(/api/webhook/)([0-9A-Za-z]{6,})")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}")
_BASIC = re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/]{8,}={0,2}")
_MASK = "***"
_MIN_SECRET = 6
"""Shorter values are not registered: masking them would mask ordinary words."""
_MIN_TAIL = 4
"""A cut text ending in this many or more characters of a secret's beginning has that ending masked."""
_SECRET_KEY = re.compile(r"(?i)(token|key|secret|code|pass|pwd|auth|sig|session|credential)")

_lock = threading.Lock()
_secrets: set[str] = set()
_ordered: list[str] = []
"""The registered shapes, longest first (a longer one may hold a shorter one); rebuilt on each registration."""


def _remember(shapes: set[str]) -> None:
    global _ordered
    with _lock:
        if not shapes <= _secrets:
            _secrets.update(shapes)
            _ordered = sorted(_secrets, key=len, reverse=True)


def register_secret(value: str | int | float | None) -> None:
    """Remember ``value`` so that :func:`redact` hides it everywhere (short values are ignored).

    A number counts too (an unquoted numeric API key in YAML): its text is what would leak.
    """
    if value is None or isinstance(value, bool):
        return
    text = value if isinstance(value, str) else str(value)
    if len(text) < _MIN_SECRET:
        return
    _remember({shape for shape in _shapes(text) if len(shape) >= _MIN_SECRET})


def _shapes(text: str) -> set[str]:
    """``text`` and each form a server may echo it back in.

    >>> sorted(_shapes("p@ss/w0rd"))
    ['cEBzcy93MHJk', 'p%40ss%2Fw0rd', 'p%40ss/w0rd', 'p@ss/w0rd', 'p@ss\\\\/w0rd']
    """
    shapes = {text, unquote(text), unquote_plus(text), quote(text, safe=""), quote(text), quote_plus(text, safe="")}
    for plain in (text, unquote(text)):
        shapes.update(_base64_shapes(plain))
        escaped = json.dumps(plain, ensure_ascii=False)[1:-1]
        shapes.update((escaped, escaped.replace("/", "\\/")))
    return shapes


def _base64_shapes(text: str) -> set[str]:
    """The base64 of ``text``, plain and URL-safe, without padding (so the padded form is caught too)."""
    raw = text.encode()
    return {base64.b64encode(raw).decode().rstrip("="), base64.urlsafe_b64encode(raw).decode().rstrip("=")}


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
    _register_credentials(*_userinfo(parts))
    for segment in parts.path.split("/"):
        if _TOKEN_PART.match(segment):
            register_secret(segment)
    for pair in parts.query.split("&"):
        name, _, written = pair.partition("=")
        value = unquote(written)  # as written ('+' kept, as a base64 token means it), the shapes add the rest
        if value and (_TOKEN_PART.match(value) or _QUERY_TOKEN.match(value) or _SECRET_KEY.search(unquote(name))):
            register_secret(written)


_QUERY_TOKEN = re.compile(r"^[A-Za-z0-9+/_\-]{12,}={0,2}$")
"""A query value shaped like a (base64) token: long enough and nothing but token characters."""


def _userinfo(parts: SplitResult) -> tuple[str | None, str | None]:
    try:
        return parts.username, parts.password
    except ValueError:
        return None, None


def _register_credentials(user: str | None, password: str | None) -> None:
    """A URL's password, and the HTTP Basic credential a client builds from ``user:password`` (percent-decoded,
    as a client sends it, and as written)."""
    register_secret(password)
    if password is None:
        return
    name = user or ""
    for pair in {f"{unquote(name)}:{unquote(password)}", f"{name}:{password}"}:
        _remember(_base64_shapes(pair))


def redact(text: str) -> str:
    """Return ``text`` with every registered secret, hook hash and bearer token masked.

    >>> redact("POST http://127.0.0.1:9/api/webhook/0123456789abcdef0123456789abcdef")
    'POST http://127.0.0.1:9/api/webhook/***'
    """
    for secret in _ordered:  # a list is replaced, never changed in place: safe to walk without the lock
        if secret in text:
            text = text.replace(secret, _MASK)
    text = _HOOK_HASH.sub(lambda m: m.group(1) + _MASK, text)
    text = _BASIC.sub(lambda m: m.group(1) + _MASK, text)
    return _BEARER.sub(lambda m: m.group(1) + _MASK, text)


def redact_cut(text: str, limit: int, *, mark: str = "…", clipped: bool = False) -> str:
    """``text`` redacted, then cut to at most ``limit`` characters (the last one ``mark`` when cut).

    The one place text that may carry a secret is shortened: redacting first means a cut can never
    leave the first characters of a secret behind. ``clipped`` says ``text`` was already cut by
    someone else (a body read only so far): then an ending that is the beginning of a secret is
    masked too.

    >>> register_secret("k3y-0123456789abcdef")
    >>> redact_cut("error: key k3y-0123456789abcdef refused", 20)
    'error: key *** refu…'
    >>> redact_cut("the key is k3y-0123", 40, clipped=True)
    'the key is ***'
    """
    text = redact(text)
    if clipped:
        text = _mask_tail(text)
    if len(text) <= limit:
        return text
    return text[: max(limit - len(mark), 0)] + mark


def _mask_tail(text: str) -> str:
    """Mask the end of ``text`` if it is the first :data:`_MIN_TAIL` or more characters of a secret."""
    cut = len(text)
    for secret in _ordered:
        for size in range(min(len(secret) - 1, len(text)), _MIN_TAIL - 1, -1):
            if text.endswith(secret[:size]):
                cut = min(cut, len(text) - size)
                break
    return text if cut == len(text) else text[:cut] + _MASK


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
