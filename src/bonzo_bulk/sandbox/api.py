"""Bonzo's ``/api/v3/prospects`` routes as the sandbox serves them: list and search, create, read, replace and
delete the acting user's prospects (``On-Behalf-Of`` for a SuperUser token); PATCH is a 405, as on Bonzo."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response

from bonzo_bulk.sandbox.asgi import API_PREFIX, ApiError, SandboxApp, bearer
from bonzo_bulk.sandbox.paging import Position, Served, decode_cursor, envelope, phantoms
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
from bonzo_bulk.sandbox.rows import NewProspect, StoredProspect, UserRow
from bonzo_bulk.sandbox.state import SandboxState

router = APIRouter(prefix=API_PREFIX, tags=["bonzo api v3"])


def _state(request: Request) -> SandboxState:
    """The runtime of the app serving this request."""
    app: SandboxApp = request.app
    return app.sandbox


def acting_user(request: Request) -> UserRow:
    """The user a request acts as: the token's owner, or (superuser only) the ``On-Behalf-Of`` user."""
    state = _state(request)
    token = bearer(request.headers.get("authorization", ""))
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


@router.get(
    "/prospects",
    summary="List or search the acting user's prospects",
    responses=_API_ERRORS,
)
async def list_prospects(
    request: Request,
    search: str | None = Query(
        None, description="case-insensitive substring of names, email or phone (sandbox.search: names: names only)"
    ),
    page: str | None = Query(None, description="1-based page (not an integer -> 1)"),
    per_page: str | None = Query(None, description="page size, default 25, clamped to 1..listing.max_per_page"),
    order: str | None = Query(None, description="newest (id descending, default) or oldest (id ascending)"),
    cursor: str | None = Query(None, description="cursor styles: the opaque cursor the previous page named"),
) -> dict[str, Any]:
    state = _state(request)
    user = acting_user(request)
    listing = state.listing
    asked = max(1, _int_param(per_page, 25))
    size = min(asked, listing.max_per_page)
    # strict: `order` values are undocumented (reference §2.2), so none is honoured
    wanted = "" if state.strict else (order or "").strip().lower()
    sort: Literal["newest", "oldest"] = "oldest" if wanted == "oldest" else "newest"
    needle = (search or "").strip().lower() or None
    # A cursor this sandbox did not write reads as the first page, as Laravel's Cursor::fromEncoded gives null.
    position = decode_cursor(cursor) if cursor else Position(page=max(1, _int_param(page, 1)))
    start = Position() if listing.hostile == "repeat" else position
    rows, total = await state.run(
        state.db.list_prospects,
        user.id,
        search=needle,
        order=sort,
        limit=size + 1,
        offset=(start.page - 1) * size if start.after is None else 0,
        after=start.after,
        fields=state.search,
    )
    shown = rows[:size]
    served = Served(position, asked, size, total, len(rows) > size, shown[-1].id if shown else None)
    data = [render(row, state.users, state.teams, strict=state.strict, clock=state.clock) for row in shown]
    if listing.hostile == "endless" and (position.page > 1 or position.phantom):
        data = phantoms(position.phantom or position.page, size)
    return envelope(listing, str(request.base_url).rstrip("/") + f"{API_PREFIX}/prospects", data, served)


@router.post(
    "/prospects",
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

    return {"data": render(await state.run(create), state.users, state.teams, strict=state.strict, clock=state.clock)}


@router.get(
    "/prospects/{prospect_id}",
    summary="One prospect of the acting user",
    responses=_ONE_PROSPECT_ERRORS,
)
async def get_prospect(request: Request, prospect_id: str) -> dict[str, Any]:
    state = _state(request)
    stored = await _visible(request, prospect_id, acting_user(request))
    return {"data": render(stored, state.users, state.teams, strict=state.strict, clock=state.clock)}


@router.put(
    "/prospects/{prospect_id}",
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
    return {"data": render(updated, state.users, state.teams, strict=state.strict, clock=state.clock)}


@router.patch(
    "/prospects/{prospect_id}",
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


@router.delete(
    "/prospects/{prospect_id}",
    status_code=204,
    summary="Delete a prospect",
    responses=_ONE_PROSPECT_ERRORS,
)
async def delete_prospect(request: Request, prospect_id: str) -> Response:
    state = _state(request)
    stored = await _visible(request, prospect_id, acting_user(request))
    await state.run(state.db.delete_prospect, stored.id)
    return Response(status_code=204)
