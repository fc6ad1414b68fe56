"""The sandbox's ASGI front: hook URLs and the API gate (injected API faults, per-token rate limits) are
served before FastAPI's router, which keeps intake fast; :class:`ApiError` is an error answer in Bonzo's shape.
"""

from __future__ import annotations

import math
import time
from typing import Any

from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from bonzo_bulk.config.faults import Api429BurstFault
from bonzo_bulk.sandbox.clock import date_header
from bonzo_bulk.sandbox.hooktypes import HOOK_TYPES
from bonzo_bulk.sandbox.intake import HOOK_PREFIX, IntakeQueue, IntakeWorker, handle_hook
from bonzo_bulk.sandbox.intake import respond as raw_respond
from bonzo_bulk.sandbox.rows import TruthEntry, utc_stamp
from bonzo_bulk.sandbox.state import SandboxState

API_PREFIX = "/api/v3"


class ApiError(Exception):
    """An error answer in Bonzo's (Laravel's) JSON shape."""

    def __init__(self, status: int, message: str, errors: dict[str, list[str]] | None = None, **headers: str) -> None:
        self.status = status
        self.body: dict[str, Any] = {"message": message}
        if errors is not None:
            self.body["errors"] = errors
        self.headers = {k.replace("_", "-"): v for k, v in headers.items()}
        super().__init__(message)


def _header(scope: Scope, name: bytes) -> str:
    """One request header from a raw ASGI scope ('' when absent)."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def bearer(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class SandboxApp(FastAPI):
    """FastAPI plus the sandbox runtime; hook URLs and the API gate run before the router."""

    sandbox: SandboxState
    queue: IntakeQueue
    worker: IntakeWorker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        state = self.sandbox
        if not state.running:
            await raw_respond(send, 503, {"message": "The sandbox is not running: its lifespan has not started."})
            return
        started = time.time()
        status: list[int | None] = [None]
        extra_headers: list[tuple[bytes, bytes]] = []
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None:
            scope["sandbox.transport"] = transport

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"date"]
                message = {**message, "headers": [*headers, *extra_headers, date_header(state.clock)]}
            await send(message)

        path = scope["path"]
        try:
            if path.startswith(HOOK_PREFIX):
                await handle_hook(state, self.queue, scope, receive, logged_send)
            elif not path.startswith(API_PREFIX + "/") or await self._api_gate(scope, logged_send, extra_headers):
                await super().__call__(scope, receive, logged_send)
        finally:
            state.log_request(scope["method"], path, status[0], started, "" if status[0] else "no answer")

    async def _api_gate(self, scope: Scope, send: Send, extra_headers: list[tuple[bytes, bytes]]) -> bool:
        """Injected API faults, then the per-token rate limit; False when the request was answered here."""
        state = self.sandbox
        number = state.api_requests
        state.api_requests += 1
        for fault in state.profile.api_faults():
            if not fault.hits(number, state.profile.seed):
                continue
            detail: dict[str, Any] = {"method": scope["method"], "path": scope["path"], "request_number": number}
            if isinstance(fault, Api429BurstFault):
                detail.update(status=429, retry_after=fault.retry_after)
                await self.queue.put(None, [TruthEntry(fault.kind, None, None, None, detail, utc_stamp())])
                await raw_respond(
                    send, 429, {"message": "Too Many Attempts."}, [(b"retry-after", str(fault.retry_after).encode())]
                )
            else:
                detail["status"] = fault.status
                await self.queue.put(None, [TruthEntry(fault.kind, None, None, None, detail, utc_stamp())])
                await raw_respond(send, fault.status, {"message": "Server Error"})
            return False
        limit = state.rate_limit_per_minute
        token = bearer(_header(scope, b"authorization"))
        if limit is None or token is None or token not in state.users_by_token:
            return True
        allowed, remaining, reset_in = state.rate_limiter.hit(token, limit, time.time())
        limit_headers = [
            (b"x-ratelimit-limit", str(limit).encode()),
            (b"x-ratelimit-remaining", str(remaining).encode()),
        ]
        if not allowed:
            retry = [
                (b"retry-after", str(reset_in).encode()),
                (b"x-ratelimit-reset", str(math.ceil(time.time()) + reset_in).encode()),
            ]
            await raw_respond(send, 429, {"message": "Too Many Attempts."}, [*limit_headers, *retry])
            return False
        extra_headers.extend(limit_headers)
        return True

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document plus the hook URL route, which is served before the router."""
        if self.openapi_schema is None:
            schema = super().openapi()
            schema["paths"]["/api/webhook/{hook_hash}"] = {
                "post": {
                    "tags": ["hook urls"],
                    "summary": "Receive a lead on a hook URL (200 fast; the prospect is created asynchronously)",
                    "description": (
                        f"Hook types: {', '.join(HOOK_TYPES)}. monitorbase routes by lo_email, general by user_id, "
                        "zillow by recipient.emailAddress, mortech by ProspectLoanOfficerEmail, hubspot by "
                        "hubspot_owner_id (a user's external id); lendingtree and unbounce by the hook's "
                        "seeded routing. "
                        "422 {errors: {field: [messages]}} for a payload Bonzo refuses; 404 for an unknown hash."
                    ),
                    "parameters": [
                        {
                            "name": "hook_hash",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                        }
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {
                        "200": {"description": "accepted"},
                        "404": {"description": "unknown hook"},
                        "422": {"description": "refused"},
                    },
                }
            }
            self.openapi_schema = schema
        return self.openapi_schema
