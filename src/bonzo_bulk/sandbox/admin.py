"""Sandbox-only routes under ``/__sandbox``: seeding, settings, fault profile, reset, request log, ground truth.

Bonzo has no such endpoints; they exist so tests and the CLI can set the stand-in up and read what it did.
"""

from __future__ import annotations

import random
import sqlite3
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bonzo_bulk.config.faults import FaultProfile, parse_profile
from bonzo_bulk.config.schema import (
    ProcessingDelayModel,
    SandboxHookType,
    SandboxListing,
    SearchFields,
    Strictness,
    TestUserConfig,
)
from bonzo_bulk.models import User
from bonzo_bulk.sandbox.asgi import SandboxApp
from bonzo_bulk.sandbox.db import SUPERUSER_ID
from bonzo_bulk.sandbox.prospects import parse_json
from bonzo_bulk.sandbox.rows import HookRow
from bonzo_bulk.sandbox.state import REQUEST_LOG_SIZE, SandboxState, UnknownLoEmail

router = APIRouter(prefix="/__sandbox", tags=["sandbox only (not Bonzo)"])


class SeedRouting(BaseModel):
    """The hook's routing policy, for hook types whose payload names no owner (Bonzo: a Lead Routing Policy)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"properties": {"kind": {"const": "fixed"}, "user_id": {"type": "integer"}}, "required": ["user_id"]},
                {
                    "properties": {
                        "kind": {"const": "round_robin"},
                        "user_ids": {"anyOf": [{"type": "null"}, {"type": "array", "minItems": 1}]},
                    }
                },
            ]
        },
    )

    kind: Literal["fixed", "round_robin"]
    user_id: int | None = Field(default=None, description="fixed: the owner of every lead")
    user_ids: list[int] | None = Field(default=None, description="round_robin: the assignees in turn; default all")

    @model_validator(mode="after")
    def _complete(self) -> SeedRouting:
        if self.kind == "fixed" and self.user_id is None:
            raise ValueError("routing kind 'fixed' needs user_id")
        if self.kind == "round_robin" and self.user_ids is not None and not self.user_ids:
            raise ValueError("routing kind 'round_robin': user_ids may not be empty (omit it for every user)")
        return self


class SeedHook(BaseModel):
    """A hook URL to create (or find) by (type, source); seeding a routing replaces it and restarts its round robin."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["monitorbase", "general", "zillow", "mortech", "lendingtree", "hubspot", "unbounce"]
    source: str | None = Field(default=None, min_length=1, max_length=100, description="default: the type name")
    routing: SeedRouting | None = Field(default=None, description="who gets leads when the payload names no owner")


class SeedBody(BaseModel):
    """Users (with their teams) and hooks to create; seeding the same again changes nothing."""

    model_config = ConfigDict(extra="forbid")

    users: list[TestUserConfig] = Field(default_factory=list)
    hooks: list[SeedHook] | None = Field(default=None, description="omit to get every existing hook back")


class SettingsUpdate(BaseModel):
    """Runtime settings; only the keys given change (null turns fallback user / rate limit off)."""

    model_config = ConfigDict(extra="forbid")

    processing: ProcessingDelayModel | None = None
    unknown_lo_email: UnknownLoEmail | None = None
    fallback_user_id: int | None = None
    rate_limit_per_minute: int | None = Field(default=None, ge=1)
    strictness: Strictness | None = Field(default=None, description="lenient, or strict (the reference's least)")
    mapped_custom_fields: dict[SandboxHookType, list[str]] | None = Field(
        default=None, description="strict only: per hook type, the custom fields its Mapping tab maps"
    )
    listing: SandboxListing | None = Field(
        default=None, description="how GET /prospects pages: style, max_per_page, hints, hostile"
    )
    search: SearchFields | None = Field(
        default=None, description="what GET /prospects?search= matches: all (names, email, phone) or names"
    )


class ResetBody(BaseModel):
    """What to forget: prospects (with pending intake and ground truth) or everything but the superuser."""

    model_config = ConfigDict(extra="forbid")

    scope: Literal["prospects", "all"] = "prospects"


def _app(request: Request) -> SandboxApp:
    """The sandbox app serving this request."""
    app: SandboxApp = request.app
    return app


def _unprocessable(field: str, message: str) -> JSONResponse:
    """A Laravel-style 422 naming one field."""
    return JSONResponse({"message": message, "errors": {field: [message]}}, status_code=422)


def _conflict(field: str, message: str) -> JSONResponse:
    """A 409 naming one field: the body is valid, but the sandbox's current state refuses it."""
    return JSONResponse({"message": message, "errors": {field: [message]}}, status_code=409)


_ERROR_BODY: dict[str, Any] = {
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
_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"description": "The body is not valid (Laravel-style errors per field)", **_ERROR_BODY}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Valid, but it conflicts with what the sandbox holds", **_ERROR_BODY}
}


def _inlined(schema: Any, defs: dict[str, Any]) -> Any:
    """A JSON schema with its ``$defs`` references replaced by the definitions (OpenAPI has no ``$defs``)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inlined(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inlined(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inlined(v, defs) for v in schema]
    return schema


def _fault_profile_body() -> dict[str, Any]:
    """The PUT /faults body as OpenAPI: the fault profile model itself (an empty body clears the faults)."""
    schema = FaultProfile.model_json_schema()
    return {
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": _inlined(schema, schema.get("$defs", {}))}},
        }
    }


def _hook_json(request: Request, hook: HookRow) -> dict[str, Any]:
    """A hook as the admin routes show it, with its full URL on this server (and its routing, when set)."""
    base = str(request.base_url).rstrip("/")
    shown: dict[str, Any] = {
        "type": hook.type,
        "source": hook.source,
        "hash": hook.hash,
        "url": f"{base}/api/webhook/{hook.hash}",
    }
    if hook.routing is not None:
        shown["routing"] = hook.routing
    return shown


def _routing_conflict(state: SandboxState, hooks: list[SeedHook]) -> JSONResponse | None:
    """A 409 when a hook's routing names a user that is not seeded (or is the superuser)."""
    for index, hook in enumerate(hooks):
        if hook.routing is None:
            continue
        wanted = [hook.routing.user_id] if hook.routing.kind == "fixed" else hook.routing.user_ids or []
        for user_id in wanted:
            user = state.users.get(user_id) if user_id is not None else None
            if user is None or user.is_superuser:
                return _conflict(
                    f"hooks[{index}].routing", f"user id {user_id} is not a seeded user; seed it under users first"
                )
    return None


def _settings(state: SandboxState) -> dict[str, Any]:
    """The runtime settings as JSON."""
    return {
        "processing": state.processing.model_dump(),
        "unknown_lo_email": state.unknown_lo_email,
        "fallback_user_id": state.fallback_user_id,
        "rate_limit_per_minute": state.rate_limit_per_minute,
        "listing": state.listing.model_dump(mode="json"),
        "search": state.search,
        "strictness": state.strictness,
        "mapped_custom_fields": state.mapped_custom_fields,
    }


def _seed_conflict(state: SandboxState, users: list[TestUserConfig]) -> JSONResponse | None:
    """A 409 when a seeded user would take the superuser's id or another user's email / external id."""
    seen_emails: dict[str, int] = {}
    seen_external: dict[str, int] = {}
    for index, user in enumerate(users):
        where = f"users[{index}]"
        if user.user_id == SUPERUSER_ID:
            return _conflict(f"{where}.user_id", f"user_id {SUPERUSER_ID} is the sandbox superuser's; pick another")
        email = user.email.lower()
        holder = state.users_by_email.get(email)
        if seen_emails.get(email, user.user_id) != user.user_id or (holder and holder.id != user.user_id):
            return _conflict(f"{where}.email", f"{user.email!r} already belongs to another user id; emails are unique")
        seen_emails[email] = user.user_id
        if user.external_id:
            other = state.users_by_external.get(user.external_id)
            if seen_external.get(user.external_id, user.user_id) != user.user_id or (
                other and other.id != user.user_id
            ):
                return _conflict(f"{where}.external_id", f"{user.external_id!r} already belongs to another user")
            seen_external[user.external_id] = user.user_id
    return None


@router.post(
    "/seed",
    summary="Create users, teams and hooks; returns the sandbox's tokens and hook URLs",
    responses={**_INVALID, **_CONFLICT},
)
async def seed(request: Request, body: SeedBody) -> Any:
    """Create users, teams and hooks; idempotent, so a run can always seed."""
    state = _app(request).sandbox
    conflict = _seed_conflict(state, body.users)
    if conflict is not None:
        return conflict
    users = [User(u.name, u.email, u.user_id, u.team_id, u.external_id) for u in body.users]
    team_names: dict[int, str | None] = {}
    for u in body.users:
        if u.team_name is not None or u.team_id not in team_names:
            team_names[u.team_id] = u.team_name
    db = state.db
    try:
        await state.run(db.seed_users, users, team_names)
    except sqlite3.IntegrityError as exc:
        return _conflict("users", f"seeding conflicts with existing users ({exc}); reset with scope 'all' first")
    await state.refresh()
    conflict = _routing_conflict(state, body.hooks or [])
    if conflict is not None:
        return conflict
    hooks = []
    for h in body.hooks or []:
        routing = h.routing.model_dump(exclude_none=True) if h.routing is not None else None
        hook = await state.run(db.ensure_hook, h.type, (h.source or h.type).strip().lower(), routing)
        if routing is not None:
            state.round_robin.pop(hook.hash, None)
        hooks.append(hook)
    await state.refresh()
    listed = hooks if body.hooks is not None else list(state.hooks.values())
    superuser = state.superuser
    assert superuser is not None
    return {
        "superuser_token": superuser.token,
        "user_tokens": {str(u.id): u.token for u in state.users.values() if not u.is_superuser},
        "hooks": [_hook_json(request, h) for h in listed],
    }


@router.get("/state", summary="Users, teams, hooks, settings and counts")
async def get_state(request: Request) -> dict[str, Any]:
    """What the sandbox holds, for humans and for tests."""
    state = _app(request).sandbox
    db = state.db
    prospects, pending = await state.run(lambda: (db.prospect_count(), db.pending_count()))
    superuser = state.superuser
    assert superuser is not None
    return {
        "superuser": {"id": superuser.id, "name": superuser.name, "email": superuser.email},
        "users": [
            {"id": u.id, "name": u.name, "email": u.email, "team_id": u.team_id, "external_id": u.external_id}
            for u in state.users.values()
            if not u.is_superuser
        ],
        "teams": [{"id": tid, "name": name} for tid, name in state.teams.items()],
        "hooks": [_hook_json(request, h) for h in state.hooks.values()],
        "prospects": prospects,
        "pending": pending,
        "settings": _settings(state),
        "api_requests": state.api_requests,
    }


@router.get("/faults", summary="The current fault profile")
async def get_faults(request: Request) -> dict[str, Any]:
    """The fault profile in force."""
    return _app(request).sandbox.profile.model_dump(mode="json", exclude_none=True)


@router.put(
    "/faults",
    summary="Replace the fault profile (its counters start again)",
    responses=_INVALID,
    openapi_extra=_fault_profile_body(),
)
async def put_faults(request: Request) -> Any:
    """Replace the fault profile; a bad one is a 422 naming the key."""
    state = _app(request).sandbox
    raw = await request.body()
    try:
        data = parse_json(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError):
        return _unprocessable("body", "The fault profile must be JSON: {'seed': int, 'faults': [{'kind': ...}, ...]}.")
    try:
        profile = parse_profile(data, default_seed=state.options.seed)
    except ValueError as exc:
        return _unprocessable("faults", str(exc))
    state.set_profile(profile)
    return profile.model_dump(mode="json", exclude_none=True)


@router.get("/settings", summary="Processing delay, unknown lo_email policy, fallback user, rate limit, strictness")
async def get_settings(request: Request) -> dict[str, Any]:
    """The runtime settings."""
    return _settings(_app(request).sandbox)


@router.put("/settings", summary="Change runtime settings", responses={**_INVALID, **_CONFLICT})
async def put_settings(request: Request, body: SettingsUpdate) -> Any:
    """Change the runtime settings a run depends on."""
    state = _app(request).sandbox
    given = body.model_fields_set
    if "fallback_user_id" in given and body.fallback_user_id is not None:
        user = state.users.get(body.fallback_user_id)
        if user is None or user.is_superuser:
            return _conflict("fallback_user_id", f"{body.fallback_user_id} is not a seeded user id; seed it first")
    if body.processing is not None:
        state.processing = body.processing
    if body.unknown_lo_email is not None:
        state.unknown_lo_email = body.unknown_lo_email
    if "fallback_user_id" in given:
        state.fallback_user_id = body.fallback_user_id
    if "rate_limit_per_minute" in given:
        state.rate_limit_per_minute = body.rate_limit_per_minute
    if body.strictness is not None:
        state.strictness = body.strictness
    if body.mapped_custom_fields is not None:
        state.mapped_custom_fields = {k: list(v) for k, v in body.mapped_custom_fields.items()}
    if body.listing is not None:
        state.listing = body.listing
    if body.search is not None:
        state.search = body.search
    return _settings(state)


@router.post("/reset", summary="Forget prospects, pending intake and ground truth (scope all: users and hooks too)")
async def reset(request: Request, body: ResetBody | None = None) -> dict[str, Any]:
    """Start clean between runs or tests."""
    app = _app(request)
    state = app.sandbox
    scope = body.scope if body is not None else "prospects"
    await app.queue.flush()
    await state.run(state.db.reset, scope)
    state.set_profile(state.profile)
    state.delay_rng = random.Random(state.options.seed)
    state.rate_limiter = type(state.rate_limiter)()
    await state.refresh()
    return {"reset": scope}


@router.get("/requests", summary="The last requests received (hook hashes masked)")
async def requests_log(
    request: Request, limit: int = Query(100, ge=1, le=REQUEST_LOG_SIZE, description="how many, newest last")
) -> dict[str, Any]:
    """The request log, so tests and people can see what reached the sandbox."""
    log = _app(request).sandbox.request_log
    return {"requests": list(log)[-limit:]}


@router.get("/ground-truth", summary="Every fault actually applied, one entry per (record, fault)")
async def ground_truth(request: Request) -> dict[str, Any]:
    """Every fault applied, so a verdict can be compared with the truth."""
    state = _app(request).sandbox
    return {"faults": await state.run(state.db.truth)}


@router.get("/pending", summary="How many accepted leads wait for the worker")
async def pending(request: Request) -> dict[str, int]:
    """The worker's backlog, so callers can wait for it to drain."""
    state = _app(request).sandbox
    return {"pending": await state.run(state.db.pending_count)}
