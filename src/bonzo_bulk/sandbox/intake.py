"""Hook URLs: parse and map each hook type's payload, answer fast, queue the lead, create it later in a worker.

Accepted leads are written to SQLite in group commits (one transaction per burst of requests, no fsync)
before the 200 goes out, so a restart resumes the queue. The worker creates each prospect once its
processing time (the seeded delay model, or a ``late`` fault) has come.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from starlette.types import Receive, Scope, Send

from bonzo_bulk.sandbox.db import Database, HookRow, IntakeRow, NewIntake, NewProspect, TruthEntry, UserRow, utc_stamp
from bonzo_bulk.sandbox.faults import (
    Intake5xxFault,
    IntakeHangFault,
    ResetFault,
    apply_processing_faults,
    plan_record_faults,
)
from bonzo_bulk.sandbox.prospects import (
    FieldErrors,
    as_id,
    attach_tag_ids,
    clean_email,
    clean_tags,
    e164,
    new_doc,
    parse_json,
    search_text,
    text,
)
from bonzo_bulk.sandbox.state import SandboxState

log = logging.getLogger("bonzo_bulk.sandbox")

HOOK_PREFIX = "/api/webhook/"
MAX_BODY_BYTES = 1_048_576
WORKER_BATCH = 500
_HASH = re.compile(r"^[0-9a-f]{32}$")

MONITORBASE_CUSTOM = ("custom_1", "custom_2", "custom_3", "custom_4", "custom_5")
"""Monitorbase ``custom_N`` keys, stored under the same names in ``custom_fields``."""
MONITORBASE_ALERT_FIELDS = {
    "type": "alert_type",
    "alert_intel": "alert_intel",
    "alert_intel_category": "alert_intel_category",
    "alert_id": "alert_id",
    "alert_date": "alert_date",
    "loan_id": "loan_id",
}
"""Monitorbase alert keys -> ``custom_fields`` keys (``loan_number`` fills ``loan_id`` when it is absent)."""
MONITORBASE_PHONES = (("cell_phone", "mobile"), ("home_phone", "home"), ("work_phone", "work"), ("phone", "mobile"))
"""Where the prospect's phone comes from, first non-empty wins, with the ``phone_type`` it gets."""


class DropLead(Exception):
    """The lead is accepted (200) and never created: an unknown lo_email under the ``drop`` policy."""


def _contact(
    errors: dict[str, list[str]], email_raw: str | None, phone_raw: str | None
) -> tuple[str | None, str | None]:
    """Normalised (email, phone); a field error when neither was sent, or neither survives normalisation."""
    email, phone = clean_email(email_raw), e164(phone_raw)
    if not email_raw and not phone_raw:
        errors.setdefault("email", []).append("The email field is required when phone is not present.")
        errors.setdefault("phone", []).append("The phone field is required when email is not present.")
    elif not email and not phone:
        if email_raw:
            errors.setdefault("email", []).append("The email must be a valid email address.")
        if phone_raw:
            errors.setdefault("phone", []).append("The phone format is invalid.")
    return email, phone


def _scalar(value: Any) -> str | None:
    """A non-empty stripped string of a scalar payload value (objects and lists give None)."""
    if value is None or isinstance(value, dict | list):
        return None
    cleaned = str(value).strip()
    return cleaned or None


def _resolve_lo(state: SandboxState, payload: Mapping[str, Any], errors: dict[str, list[str]]) -> UserRow | None:
    """The owner by ``lo_email`` (case-insensitive), else the unknown-lo_email policy: reject, fallback or drop."""
    lo_email = _scalar(payload.get("lo_email"))
    user = state.users_by_email.get(lo_email.lower()) if lo_email else None
    if user is not None and not user.is_superuser:
        return user
    policy = state.unknown_lo_email
    if policy == "drop":
        raise DropLead
    if policy == "fallback" and state.fallback_user_id in state.users:
        return state.users[state.fallback_user_id]
    if lo_email is None:
        errors.setdefault("lo_email", []).append("The lo email field is required.")
    else:
        reason = " and no fallback user is set" if policy == "fallback" else ""
        errors.setdefault("lo_email", []).append(f"The selected lo email is invalid (no Bonzo user{reason}).")
    return None


def map_monitorbase(state: SandboxState, hook: HookRow, payload: Mapping[str, Any]) -> tuple[UserRow, dict[str, Any]]:
    """Monitorbase alert -> (owner by lo_email, prospect fields); raises FieldErrors or DropLead."""
    errors: dict[str, list[str]] = {}
    fields: dict[str, Any] = {"source": hook.source}
    for name in ("first_name", "last_name", "address", "city", "state", "zip"):
        fields[name] = text(payload.get(name), name, errors)
    email_raw = text(payload.get("email"), "email", errors)
    phone_raw, phone_type = None, None
    for key, kind in MONITORBASE_PHONES:
        phone_raw = text(payload.get(key), key, errors)
        if phone_raw:
            phone_type = kind
            break
    fields["email"], fields["phone"] = _contact(errors, email_raw, phone_raw)
    fields["phone_type"] = phone_type if fields["phone"] else None
    custom: dict[str, Any] = {}
    for key in MONITORBASE_CUSTOM:
        value = _scalar(payload.get(key))
        if value is not None:
            custom[key] = value
    for key, target in MONITORBASE_ALERT_FIELDS.items():
        value = _scalar(payload.get(key))
        if value is None and key == "loan_id":
            value = _scalar(payload.get("loan_number"))
        if value is not None:
            custom[target] = value
    fields["custom_fields"] = custom
    fields["tags"] = clean_tags(payload.get("tags"), errors)
    if not fields["first_name"] and "first_name" not in errors:
        errors["first_name"] = ["The first name field is required."]
    owner = _resolve_lo(state, payload, errors) if not errors else None
    if errors or owner is None:
        raise FieldErrors(errors)
    return owner, fields


def map_general(state: SandboxState, hook: HookRow, payload: Mapping[str, Any]) -> tuple[UserRow, dict[str, Any]]:
    """Bonzo general hook -> (owner by user_id, prospect fields); ``custom_<Name>`` -> ``custom_fields[Name]``."""
    errors: dict[str, list[str]] = {}
    fields: dict[str, Any] = {"source": hook.source}
    for name in ("first_name", "last_name", "address", "unit_number", "city", "marital_status", "external_id"):
        fields[name] = text(payload.get(name), name, errors)
    fields["state"] = text(payload.get("state", payload.get("prospect_state")), "state", errors)
    fields["zip"] = text(payload.get("zip", payload.get("prospect_zip")), "zip", errors)
    birthday = text(payload.get("birthday"), "birthday", errors)
    fields["birthday"] = birthday if birthday and re.fullmatch(r"\d{4}-\d{2}-\d{2}", birthday) else None
    email_raw = text(payload.get("email"), "email", errors)
    phone_raw = text(payload.get("phone"), "phone", errors)
    fields["email"], fields["phone"] = _contact(errors, email_raw, phone_raw)
    notes = payload.get("notes")
    fields["notes_count"] = len([n for n in notes if n]) if isinstance(notes, list) else int(bool(_scalar(notes)))
    fields["tags"] = clean_tags(payload.get("tags"), errors)
    fields["custom_fields"] = {
        key[7:]: _scalar(value)
        for key, value in payload.items()
        if key.startswith("custom_") and len(key) > 7 and _scalar(value) is not None
    }
    if not fields["first_name"] and "first_name" not in errors:
        errors["first_name"] = ["The first name field is required."]
    raw_id = payload.get("user_id")
    owner: UserRow | None = None
    if raw_id is None or raw_id == "":
        errors.setdefault("user_id", []).append("The user id field is required.")
    else:
        user_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None
        if isinstance(raw_id, str):
            user_id = as_id(raw_id.strip())
        owner = state.users.get(user_id) if user_id is not None else None
        if owner is None or owner.is_superuser:
            errors.setdefault("user_id", []).append("The selected user id is invalid.")
    if errors or owner is None:
        raise FieldErrors(errors)
    return owner, fields


MAPPERS: dict[str, Callable[[SandboxState, HookRow, Mapping[str, Any]], tuple[UserRow, dict[str, Any]]]] = {
    "monitorbase": map_monitorbase,
    "general": map_general,
}
HOOK_TYPES = tuple(MAPPERS)


async def respond(send: Send, status: int, body: Any, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Send one JSON response over raw ASGI."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodyTooLarge(Exception):
    """The request body is over :data:`MAX_BODY_BYTES`."""


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client went away first."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _reset(scope: Scope) -> None:
    """Close the connection without an answer (RST via SO_LINGER 0); in-process, raise ConnectionResetError."""
    transport = scope.get("sandbox.transport")
    if transport is None:
        raise ConnectionResetError("sandbox fault 'reset': connection closed without an answer")
    sock = transport.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    await asyncio.sleep(0)


def _intake_fault(state: SandboxState, record: str, email: str, hook_type: str) -> TruthEntry | None:
    """The first intake fault (5xx, hang, reset) this POST of the record runs into, counted per record."""
    profile = state.profile
    for index, fault in profile.record_faults():
        if not isinstance(fault, Intake5xxFault | IntakeHangFault | ResetFault):
            continue
        if not fault.selects(profile.seed, record, email, hook_type):
            continue
        key = (index, f"{record}\x00{email}")
        seen = state.intake_counters.get(key, 0)
        if fault.times is not None and seen >= fault.times:
            continue
        state.intake_counters[key] = seen + 1
        detail: dict[str, Any] = {}
        if isinstance(fault, Intake5xxFault):
            detail["status"] = fault.status
        elif isinstance(fault, IntakeHangFault):
            detail["seconds"] = fault.seconds
        return TruthEntry(
            fault.kind, record, email, hook_type, detail, utc_stamp(), f"{index}|{record}|{email}|{hook_type}"
        )
    return None


class IntakeQueue:
    """Group commit: leads (and their ground truth) accepted in a burst go to SQLite in one transaction."""

    def __init__(self, state: SandboxState, on_written: Callable[[], None]) -> None:
        self._state = state
        self._on_written = on_written
        self._items: list[tuple[NewIntake | None, list[TruthEntry], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()

    async def put(self, row: NewIntake | None, truth: list[TruthEntry]) -> None:
        """Queue one lead and/or truth entries; returns once they are committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._items.append((row, truth, future))
        self._wake.set()
        await future

    async def run(self) -> None:
        """Write whatever has queued up since the last write, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Commit the queued items now."""
        batch, self._items = self._items, []
        if not batch:
            return
        rows = [row for row, _, _ in batch if row is not None]
        truth = [entry for _, entries, _ in batch for entry in entries]
        db = self._state.db

        def write() -> None:
            with db.transaction():
                if rows:
                    db.add_intake(rows)
                if truth:
                    db.add_truth(truth)

        try:
            await self._state.run(write)
        except Exception as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for _, _, future in batch:
            if not future.done():
                future.set_result(None)
        if rows:
            self._on_written()


async def handle_hook(state: SandboxState, queue: IntakeQueue, scope: Scope, receive: Receive, send: Send) -> None:
    """``POST /api/webhook/{hash}``: validate, maybe inject an intake fault, queue the lead, answer 200."""
    hook_hash = scope["path"][len(HOOK_PREFIX) :]
    hook = state.hooks.get(hook_hash) if _HASH.match(hook_hash) else None
    if hook is None:
        await respond(send, 404, {"message": "Not Found"})
        return
    if scope["method"] != "POST":
        message = (
            f"The {scope['method']} method is not supported for route api/webhook/{{hash}}. Supported methods: POST."
        )
        await respond(send, 405, {"message": message}, [(b"allow", b"POST")])
        return
    try:
        body = await _read_body(receive)
    except BodyTooLarge:
        await respond(send, 413, {"errors": {"body": [f"The payload may not be larger than {MAX_BODY_BYTES} bytes."]}})
        return
    if body is None:
        return
    try:
        payload = parse_json(body)
    except (ValueError, UnicodeDecodeError):
        await respond(send, 422, {"errors": {"body": ["The payload must be valid JSON."]}})
        return
    if not isinstance(payload, dict):
        await respond(send, 422, {"errors": {"body": ["The payload must be a JSON object."]}})
        return
    record = _scalar(payload.get("first_name")) or ""
    email = (_scalar(payload.get("email")) or "").lower()
    fault = _intake_fault(state, record, email, hook.type)
    if fault is not None:
        await queue.put(None, [fault])
        if fault.fault == "intake_5xx":
            await respond(send, int(fault.detail["status"]), {"message": "Service Unavailable (sandbox fault)"})
            return
        if fault.fault == "intake_hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.stopping.wait(), float(fault.detail["seconds"]))
            await respond(send, 504, {"message": "Gateway Timeout (sandbox fault)"})
            return
        await _reset(scope)
        return
    try:
        owner, fields = MAPPERS[hook.type](state, hook, payload)
    except FieldErrors as exc:
        await respond(send, 422, {"errors": exc.errors})
        return
    except DropLead:
        await respond(send, 200, {"status": "accepted"})
        return
    now = time.time()
    email = fields.get("email") or email
    planned = plan_record_faults(state.profile, record, email, hook.type)
    late = next((p for p in planned if p["kind"] == "late"), None)
    delay = float(late["delay_seconds"]) if late else state.processing_delay()
    truth = []
    if late:
        truth.append(
            TruthEntry(
                "late",
                record,
                email,
                hook.type,
                {"delay_seconds": delay},
                utc_stamp(now),
                f"{late['index']}|{record}|{email}|{hook.type}",
            )
        )
    row = NewIntake(hook.type, owner.id, record, email, fields, planned, now, now + delay)
    try:
        await queue.put(row, truth)
    except Exception:
        log.exception("sandbox: could not store a lead from hook type %s", hook.type)
        await respond(send, 503, {"message": "The sandbox could not store the lead; see its log."})
        return
    await respond(send, 200, {"status": "accepted"})


def process_due(
    db: Database, now: float, users: Mapping[int, UserRow], teams: Mapping[int, str]
) -> tuple[int, float | None]:
    """Create the prospects of every due lead (faults applied) in one transaction; runs on the database thread."""
    rows: list[IntakeRow] = db.due_intake(now, WORKER_BATCH)
    if rows:
        stamp = utc_stamp(now)
        with db.transaction():
            truth: list[TruthEntry] = []
            for row in rows:
                outcome = apply_processing_faults(row, new_doc(row.fields), users, teams, stamp)
                docs = [attach_tag_ids(db, doc) for doc in outcome.docs]
                ids = db.insert_prospects(
                    [NewProspect(outcome.user_id, outcome.team_id, doc, search_text(doc)) for doc in docs], now=now
                )
                for entry in outcome.truth:
                    if entry.fault != "drop":
                        entry.detail["prospect_ids"] = ids
                truth.extend(outcome.truth)
            db.remove_intake([row.id for row in rows])
            db.add_truth(truth)
    return len(rows), db.next_due()


class IntakeWorker:
    """Background task: sleeps until the next lead is due (or a new one arrives), then processes a batch."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self.wake = asyncio.Event()

    async def run(self) -> None:
        """Process due leads until cancelled."""
        state = self._state
        while True:
            self.wake.clear()
            try:
                processed, next_due = await state.run(process_due, state.db, time.time(), state.users, state.teams)
            except Exception:
                log.exception("sandbox: the intake worker failed on a batch; retrying in 1 s")
                processed, next_due = 0, time.time() + 1.0
            if processed >= WORKER_BATCH:
                continue
            timeout = None if next_due is None else max(0.0, next_due - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)
