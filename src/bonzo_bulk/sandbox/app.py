"""The sandbox ASGI app: Bonzo's ``/api/v3`` prospects API and hook URLs, plus the ``/__sandbox`` admin routes.

``create_app(options)`` returns a FastAPI app whose lifespan opens the SQLite state and starts the intake
queue and worker. Hook URLs and the API gate (injected API faults, per-token rate limits) are served in
front of FastAPI's router, which keeps intake fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from bonzo_bulk.config.faults import Api429BurstFault
from bonzo_bulk.sandbox import admin
from bonzo_bulk.sandbox.db import NewProspect, StoredProspect, TruthEntry, UserRow, utc_stamp
from bonzo_bulk.sandbox.hooktypes import HOOK_TYPES
from bonzo_bulk.sandbox.intake import (
    HOOK_PREFIX,
    IntakeQueue,
    IntakeWorker,
    handle_hook,
)
from bonzo_bulk.sandbox.intake import respond as raw_respond
from bonzo_bulk.sandbox.prospects import (
    FieldErrors,
    api_fields,
    as_id,
    attach_tag_ids,
    new_doc,
    parse_json,
    render,
    search_text,
)
from bonzo_bulk.sandbox.state import SandboxOptions, SandboxState

API_PREFIX = "/api/v3"
ORDERS = ("newest", "oldest")


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


def _bearer(authorization: str) -> str | None:
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
                if extra_headers:
                    message = {**message, "headers": [*message.get("headers", []), *extra_headers]}
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
        token = _bearer(_header(scope, b"authorization"))
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


def _state(request: Request) -> SandboxState:
    """The runtime of the app serving this request."""
    app: SandboxApp = request.app
    return app.sandbox


def acting_user(request: Request) -> UserRow:
    """The user a request acts as: the token's owner, or (superuser only) the ``On-Behalf-Of`` user."""
    state = _state(request)
    token = _bearer(request.headers.get("authorization", ""))
    user = state.users_by_token.get(token) if token else None
    if user is None:
        raise ApiError(401, "Unauthenticated.")
    target = request.headers.get("on-behalf-of", "").strip()
    if not target:
        return user
    if not user.is_superuser:
        raise ApiError(403, "This action is unauthorized. On-Behalf-Of needs a SuperUser token.")
    found: UserRow | None
    if target.lower().startswith("ex:"):
        found = state.users_by_external.get(target[3:].strip())
    elif "@" in target:
        found = state.users_by_email.get(target.lower())
    else:
        user_id = as_id(target)
        found = state.users.get(user_id) if user_id is not None else None
    if found is None:
        message = f"On-Behalf-Of: no user matches {target!r}; give a Bonzo user id, an email or ex:<external id>."
        raise ApiError(422, message, {"On-Behalf-Of": [message]})
    return found


def _int_param(raw: str | None, default: int) -> int:
    """Laravel-lenient integer query parameter: anything that is not an integer gives the default."""
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


async def _json_body(request: Request) -> Any:
    """The request's JSON body (None when empty); not JSON is a 422."""
    raw = await request.body()
    try:
        return parse_json(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(
            422, "The request body is not valid JSON.", {"body": ["The request body must be valid JSON."]}
        ) from exc


async def _visible(request: Request, prospect_id: str, user: UserRow) -> StoredProspect:
    """The prospect if the acting user owns it; 404 otherwise (as for an unknown id)."""
    state = _state(request)
    number = as_id(prospect_id)
    stored = await state.run(state.db.get_prospect, number) if number is not None else None
    if stored is None or stored.user_id != user.id:
        raise ApiError(404, "No query results for model [App\\Models\\Prospect].")
    return stored


_TEXT = {"anyOf": [{"type": "string"}, {"type": "number"}]}
_TEXT_NAMES = (
    "last_name", "address", "unit_number", "city", "state", "zip", "prospect_state", "prospect_zip",
    "external_id", "email_type", "phone_type", "marital_status", "source",
)  # fmt: skip
_PROSPECT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["first_name"],
                    "anyOf": [{"required": ["email"]}, {"required": ["phone"]}],
                    "description": "first_name and email or phone are required; unknown keys are ignored",
                    "properties": {
                        **dict.fromkeys(_TEXT_NAMES, _TEXT),
                        "first_name": {"type": "string", "pattern": "\\S"},
                        "email": {"type": "string", "pattern": "^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$"},
                        "phone": {"type": "string", "pattern": "^\\D*(?:1\\D*)?(?:\\d\\D*){10}$"},
                        "birthday": {"type": "string", "pattern": "^\\s*\\d{4}-\\d{2}-\\d{2}\\s*$"},
                        "tags": {"anyOf": [{"type": "string"}, {"type": "array", "items": _TEXT}]},
                        "custom_fields": {"type": "object"},
                        "mortgage": {"type": "object"},
                    },
                }
            }
        },
    }
}  # fmt: skip
_ERROR = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["message"],
                "properties": {"message": {"type": "string"}, "errors": {"type": "object"}},
            }
        }
    }
}
_API_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or a wrong Bearer token", **_ERROR},
    403: {"description": "The token may not act On-Behalf-Of that user", **_ERROR},
    422: {"description": "Invalid data, or an unknown On-Behalf-Of user", **_ERROR},
    429: {"description": "Rate limited; Retry-After says when to try again", **_ERROR},
}
_ONE_PROSPECT_ERRORS: dict[int | str, dict[str, Any]] = {
    **_API_ERRORS,
    404: {"description": "No such prospect for the acting user", **_ERROR},
}


def _add_api_routes(app: SandboxApp) -> None:
    """Register the ``/api/v3/prospects`` routes."""
    tags: list[str | Any] = ["bonzo api v3"]

    @app.get(
        f"{API_PREFIX}/prospects",
        tags=tags,
        summary="List or search the acting user's prospects",
        responses=_API_ERRORS,
    )
    async def list_prospects(
        request: Request,
        search: str | None = Query(None, description="case-insensitive substring of names, email or phone"),
        page: str | None = Query(None, description="1-based page (not an integer -> 1)"),
        per_page: str | None = Query(None, description="page size, default 25, clamped to 1..max_per_page"),
        order: str | None = Query(None, description="newest (id descending, default) or oldest (id ascending)"),
    ) -> dict[str, Any]:
        state = _state(request)
        user = acting_user(request)
        page_no = max(1, _int_param(page, 1))
        size = min(max(1, _int_param(per_page, 25)), state.options.max_per_page)
        # strict: `order` values are undocumented (reference §2.2), so none is honoured
        wanted = "" if state.strict else (order or "").strip().lower()
        sort: Literal["newest", "oldest"] = "oldest" if wanted == "oldest" else "newest"
        needle = (search or "").strip().lower() or None
        rows, total = await state.run(
            state.db.list_prospects, user.id, search=needle, order=sort, limit=size, offset=(page_no - 1) * size
        )
        last_page = max(1, math.ceil(total / size))
        path = str(request.base_url).rstrip("/") + f"{API_PREFIX}/prospects"
        first_item = (page_no - 1) * size + 1 if rows else None
        return {
            "data": [render(row, state.users, state.teams, strict=state.strict) for row in rows],
            "links": {
                "first": f"{path}?page=1",
                "last": f"{path}?page={last_page}",
                "prev": f"{path}?page={page_no - 1}" if page_no > 1 else None,
                "next": f"{path}?page={page_no + 1}" if page_no < last_page else None,
            },
            "meta": {
                "current_page": page_no,
                "from": first_item,
                "last_page": last_page,
                "path": path,
                "per_page": size,
                "to": first_item + len(rows) - 1 if first_item else None,
                "total": total,
            },
        }

    @app.post(
        f"{API_PREFIX}/prospects",
        tags=tags,
        status_code=201,
        openapi_extra=_PROSPECT_BODY,
        summary="Create a prospect",
        responses=_API_ERRORS,
    )
    async def create_prospect(request: Request) -> dict[str, Any]:
        state = _state(request)
        user = acting_user(request)
        try:
            fields = api_fields(await _json_body(request))
        except FieldErrors as exc:
            raise ApiError(422, "The given data was invalid.", exc.errors) from exc
        fields["source"] = fields["source"] or "api"
        db = state.db

        def create() -> StoredProspect:
            with db.transaction():
                doc = attach_tag_ids(db, new_doc(fields))
                (prospect_id,) = db.insert_prospects([NewProspect(user.id, user.team_id, doc, search_text(doc))])
            stored = db.get_prospect(prospect_id)
            assert stored is not None
            return stored

        return {"data": render(await state.run(create), state.users, state.teams, strict=state.strict)}

    @app.get(
        f"{API_PREFIX}/prospects/{{prospect_id}}",
        tags=tags,
        summary="One prospect of the acting user",
        responses=_ONE_PROSPECT_ERRORS,
    )
    async def get_prospect(request: Request, prospect_id: str) -> dict[str, Any]:
        state = _state(request)
        stored = await _visible(request, prospect_id, acting_user(request))
        return {"data": render(stored, state.users, state.teams, strict=state.strict)}

    @app.put(
        f"{API_PREFIX}/prospects/{{prospect_id}}",
        tags=tags,
        openapi_extra=_PROSPECT_BODY,
        summary="Replace a prospect",
        responses=_ONE_PROSPECT_ERRORS,
    )
    async def replace_prospect(request: Request, prospect_id: str) -> dict[str, Any]:
        state = _state(request)
        stored = await _visible(request, prospect_id, acting_user(request))
        try:
            fields = api_fields(await _json_body(request))
        except FieldErrors as exc:
            raise ApiError(422, "The given data was invalid.", exc.errors) from exc
        fields["source"] = fields["source"] or stored.doc.get("source")
        db = state.db

        def replace() -> StoredProspect | None:
            with db.transaction():
                doc = attach_tag_ids(db, new_doc(fields))
            return db.replace_prospect(stored.id, doc, search_text(doc))

        updated = await state.run(replace)
        if updated is None:
            raise ApiError(404, "No query results for model [App\\Models\\Prospect].")
        return {"data": render(updated, state.users, state.teams, strict=state.strict)}

    @app.patch(
        f"{API_PREFIX}/prospects/{{prospect_id}}",
        tags=tags,
        summary="Not supported (405), as on Bonzo",
        status_code=405,
        include_in_schema=False,
        responses={
            405: {
                "description": "PATCH is not supported; Allow lists the methods that are",
                "headers": {"Allow": {"schema": {"type": "string"}, "description": "GET, HEAD, PUT, DELETE"}},
                **_ERROR,
            }
        },
    )
    async def patch_prospect(prospect_id: str) -> Response:
        raise ApiError(
            405,
            "The PATCH method is not supported for route api/v3/prospects/{prospect}. "
            "Supported methods: GET, HEAD, PUT, DELETE.",
            allow="GET, HEAD, PUT, DELETE",
        )

    @app.delete(
        f"{API_PREFIX}/prospects/{{prospect_id}}",
        tags=tags,
        status_code=204,
        summary="Delete a prospect",
        responses=_ONE_PROSPECT_ERRORS,
    )
    async def delete_prospect(request: Request, prospect_id: str) -> Response:
        state = _state(request)
        stored = await _visible(request, prospect_id, acting_user(request))
        await state.run(state.db.delete_prospect, stored.id)
        return Response(status_code=204)


def _add_error_handlers(app: SandboxApp) -> None:
    """Answer every error in Laravel's JSON shape (``{"message", "errors"?}``), never FastAPI's ``detail``."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers or None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "Error"
        return JSONResponse({"message": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors: dict[str, list[str]] = {}
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
            errors.setdefault(".".join(loc) or "body", []).append(str(err.get("msg", "is invalid")))
        return JSONResponse({"message": "The given data was invalid.", "errors": errors}, status_code=422)


def create_app(options: SandboxOptions | None = None) -> SandboxApp:
    """The sandbox as an ASGI app; its lifespan must run (uvicorn does; tests use ``app.router.lifespan_context``).

    Example: ``app = create_app(SandboxOptions(db_path="sandbox.sqlite3"))``.
    """
    state = SandboxState(options or SandboxOptions())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await state.open()
        except Exception as exc:
            state.startup_error = exc
            await state.close()
            raise
        sandbox_app: SandboxApp = app  # type: ignore[assignment]
        worker = sandbox_app.worker = IntakeWorker(state)
        queue = sandbox_app.queue = IntakeQueue(state, worker.written)
        tasks = [asyncio.create_task(queue.run()), asyncio.create_task(worker.run())]
        try:
            yield
        finally:
            state.stopping.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await queue.flush()
            await state.close()

    app = SandboxApp(
        title="bonzo-bulk sandbox (a local stand-in for Bonzo)",
        description=(
            "Bonzo's /api/v3 prospects API and hook URLs as bonzo-bulk understands them, plus sandbox-only "
            "/__sandbox routes (seeding, faults, ground truth). Not Bonzo."
        ),
        version="1",
        lifespan=lifespan,
    )
    app.sandbox = state
    _add_error_handlers(app)
    _add_api_routes(app)
    app.include_router(admin.router)
    return app
