"""The checks every route shares: the server's state, whether the caller may read, and why a change is refused."""

from __future__ import annotations

from typing import cast

from fastapi import Request

from bonzo_bulk.serve.access import SESSION_COOKIE
from bonzo_bulk.serve.state import ServeState


class SignInNeeded(Exception):
    """The server holds a token and the request carries neither it nor a valid session."""


def serve_state(request: Request) -> ServeState:
    """The state of the server this request reached."""
    return cast(ServeState, request.app.state.serve)


def session_of(request: Request) -> str | None:
    """The request's session cookie, if any."""
    return request.cookies.get(SESSION_COOKIE)


def require_reader(request: Request) -> None:
    """A dependency of every guarded route: the bearer token or a valid session, when the server has a token."""
    access = serve_state(request).access
    if not access.may_read(request.headers.get("authorization"), session_of(request)):
        raise SignInNeeded(request.url.path)


def change_refused(request: Request, csrf: str | None) -> str | None:
    """Why this request may not change anything (None: it may)."""
    access = serve_state(request).access
    return access.may_change(request.headers.get("authorization"), session_of(request), csrf)


def signed_in(request: Request) -> bool:
    """Whether the page is shown to a logged-in browser (it then offers to log out)."""
    access = serve_state(request).access
    return access.guarded and access.session_ok(session_of(request))
