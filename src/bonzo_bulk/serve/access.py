"""Who may read and who may change: ``serve`` is safe by default.

It binds 127.0.0.1; on any other interface it refuses to start without ``BONZO_BULK_SERVE_TOKEN``. With a token,
every page and API call needs it: as a bearer token (``Authorization: Bearer …``, for scripts and Prometheus), or
as a session cookie the login form gives a browser. The cookie holds no token: it is an HMAC of its issue time under
the token, so several servers sharing a token accept each other's sessions. A state change (marking a baseline)
always needs the token: without one configured it is refused; with a cookie it also needs the CSRF field, an HMAC of
the session that only pages of this server carry.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from dataclasses import dataclass

from bonzo_bulk.errors import ConfigError
from bonzo_bulk.secrets import register_secret

TOKEN_ENV = "BONZO_BULK_SERVE_TOKEN"  # noqa: S105 - the variable's name, not a token
MIN_TOKEN_LENGTH = 16
SESSION_COOKIE = "bonzo_bulk_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_SECONDS = 12 * 3600
TOKEN_HINT = "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"  # noqa: S105 - how to make one


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse (ConfigError, exit 2) to serve beyond loopback without a token, or with a token too short to hold."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"{TOKEN_ENV}: {len(token)} characters is too short to guard the store; use at least "
            f"{MIN_TOKEN_LENGTH} random characters, {TOKEN_HINT}",
            key=TOKEN_ENV,
        )
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"--host {host!r}: serving beyond this machine needs {TOKEN_ENV} set (a bearer token of at least "
            f"{MIN_TOKEN_LENGTH} characters; the browser logs in with it once), {TOKEN_HINT}; or keep the default "
            "--host 127.0.0.1",
            key="--host",
        )


def _mac(token: str, message: str) -> str:
    return hmac.new(token.encode(), message.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Access:
    """The server's token (None: open to this machine, no state changes) and what it grants."""

    token: str | None

    def __post_init__(self) -> None:
        register_secret(self.token)

    @property
    def guarded(self) -> bool:
        """Whether reading needs the token."""
        return self.token is not None

    def bearer_ok(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries the token."""
        if self.token is None or not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token.encode())

    def token_ok(self, offered: str) -> bool:
        """Whether a token typed into the login form is the server's."""
        return self.token is not None and hmac.compare_digest(offered.strip().encode(), self.token.encode())

    def new_session(self, now: float | None = None) -> str:
        """A session cookie's value: its issue time and its HMAC under the token (no token in it)."""
        assert self.token is not None
        issued = int(time.time() if now is None else now)
        return f"{issued}.{_mac(self.token, f'session:{issued}')}"

    def session_ok(self, value: str | None, now: float | None = None) -> bool:
        """Whether a session cookie was issued under this token and is younger than 12 hours."""
        if self.token is None or not value:
            return False
        issued, _, mac = value.partition(".")
        if not issued.isdigit():
            return False
        age = (time.time() if now is None else now) - int(issued)
        fresh = 0 <= age < SESSION_SECONDS
        return fresh and hmac.compare_digest(mac.encode(), _mac(self.token, f"session:{issued}").encode())

    def csrf_for(self, session: str | None) -> str:
        """The CSRF field a page of this session carries (empty without a session)."""
        if self.token is None or not session:
            return ""
        return _mac(self.token, f"csrf:{session}")

    def may_read(self, authorization: str | None, session: str | None) -> bool:
        """Reading: open without a token; with one, the bearer token or a valid session."""
        return not self.guarded or self.bearer_ok(authorization) or self.session_ok(session)

    def may_change(self, authorization: str | None, session: str | None, csrf: str | None) -> str | None:
        """Why a state change is refused (None: allowed): it needs the token, and with a cookie its CSRF field."""
        if self.token is None:
            return f"changes are off: start serve with {TOKEN_ENV} set to allow them (bearer token or login)"
        if self.bearer_ok(authorization):
            return None
        if not self.session_ok(session):
            return "log in first (or send the token as 'Authorization: Bearer …')"
        if not csrf or not hmac.compare_digest(csrf.encode(), self.csrf_for(session).encode()):
            return "the form's CSRF field is missing or wrong: reload the page and try again"
        return None
