"""Hook URLs: parse and map each hook type's payload, answer fast, queue the lead, create it later in a worker.

How each hook type reads and maps a lead is in :mod:`bonzo_bulk.sandbox.hooktypes`.

Accepted leads are written to SQLite in group commits (one transaction per burst of requests, no fsync)
before the 200 goes out, so a restart resumes the queue. The worker creates each prospect once its
processing time (the seeded delay model, or a ``late`` fault) has come — at most ``capacity`` leads per
second when the sandbox has one, so that beyond it the queue, and every lead's lag, grows as in a real system.
It creates the due leads in one transaction per :data:`WORKER_TICK` at most, so a lead appears up to that much
after its processing time.
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

from bonzo_bulk.config.faults import Intake5xxFault, IntakeHangFault, ResetFault
from bonzo_bulk.sandbox.bodies import BodyError
from bonzo_bulk.sandbox.db import Database
from bonzo_bulk.sandbox.faults import apply_processing_faults, plan_record_faults
from bonzo_bulk.sandbox.hooktypes import HOOK_KINDS, map_lead
from bonzo_bulk.sandbox.owners import DropLead
from bonzo_bulk.sandbox.prospects import FieldErrors, attach_all_tag_ids, new_doc, scalar, search_text
from bonzo_bulk.sandbox.rows import IntakeRow, NewIntake, NewProspect, TruthEntry, UserRow, utc_stamp
from bonzo_bulk.sandbox.state import SandboxState

log = logging.getLogger("bonzo_bulk.sandbox")

HOOK_PREFIX = "/api/webhook/"
MAX_BODY_BYTES = 1_048_576
WORKER_BATCH = 500
WORKER_TICK = 0.02
"""Seconds between the worker's batches at the least: under a stream of leads (20,000 in a minute at 10k +
10k) it creates a tick's due leads in one transaction instead of one per lead, each at most this late."""
_HASH = re.compile(r"^[0-9a-f]{32}$")


_ACCEPTED = json.dumps({"status": "accepted"}, separators=(",", ":")).encode()
"""The body of every accepted lead's answer, encoded once."""


async def respond(send: Send, status: int, body: Any, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Send one JSON response over raw ASGI."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    await _send(send, status, payload, headers)


async def _send(send: Send, status: int, payload: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Send ``payload`` (JSON bytes) as one response over raw ASGI."""
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


async def accepted(send: Send) -> None:
    """``200 {"status":"accepted"}``: the answer to a lead taken in (or dropped as Bonzo drops it)."""
    await _send(send, 200, _ACCEPTED)


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

    def __init__(self, state: SandboxState, on_written: Callable[[float], None]) -> None:
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
            self._on_written(min(row.due_at for row in rows))


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
    kind = HOOK_KINDS[hook.type]
    try:
        payload = kind.parse(body)
    except BodyError as exc:
        await respond(send, 422, {"errors": {exc.field: [exc.message]}})
        return
    raw_record, raw_email = kind.identify(payload)
    record = scalar(raw_record) or ""
    email = (scalar(raw_email) or "").lower()
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
        owner, fields = map_lead(state, hook, payload)
    except FieldErrors as exc:
        await respond(send, 422, {"errors": exc.errors})
        return
    except DropLead:
        await accepted(send)
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
    await accepted(send)


class Capacity:
    """The sandbox's processing capacity as a queue: the worker takes ``1 / leads_per_second`` s per lead, in
    order, so a lead is created at ``max(worker free, lead due) + 1 / rate`` — on a virtual clock that a busy
    machine slowing the worker's loop does not change."""

    def __init__(self, leads_per_second: float) -> None:
        self.rate = leads_per_second
        self.free_at = 0.0

    def finish(self, due_at: float) -> float:
        """When a lead due at ``due_at`` would be done, were it the next one."""
        return max(self.free_at, due_at) + 1.0 / self.rate


def process_due(
    db: Database,
    now: float,
    users: Mapping[int, UserRow],
    teams: Mapping[int, str],
    capacity: Capacity | None = None,
) -> tuple[int, float | None]:
    """Create the prospects of the due leads (faults applied) in one transaction; runs on the database thread.

    Without a capacity every due lead is created, stamped as it is inserted; with one, only those the queue has
    finished by ``now``, each stamped its finish time. Returns how many were created and when the next
    one can be.
    """
    rows: list[IntakeRow] = db.due_intake(now, WORKER_BATCH)
    # Stamped on the database thread, just before the insert: no listing can run between the stamp and the
    # row, so a prospect is never created (by its stamp) before a listing that could not yet see it.
    stamps = [time.time()] * len(rows)
    if capacity is not None:
        kept = 0
        for index, row in enumerate(rows):
            finish = capacity.finish(row.due_at)
            if finish > now:
                break
            capacity.free_at = stamps[index] = finish
            kept += 1
        rows, stamps = rows[:kept], stamps[:kept]
    if rows:
        with db.transaction():
            truth: list[TruthEntry] = []
            outcomes = [
                apply_processing_faults(row, new_doc(row.fields), users, teams, utc_stamp(at))
                for row, at in zip(rows, stamps, strict=True)
            ]
            attach_all_tag_ids(db, [doc for outcome in outcomes for doc in outcome.docs])
            for outcome, at in zip(outcomes, stamps, strict=True):
                ids = db.insert_prospects(
                    [NewProspect(outcome.user_id, outcome.team_id, doc, search_text(doc)) for doc in outcome.docs],
                    now=at,
                )
                for entry in outcome.truth:
                    if entry.fault != "drop":
                        entry.detail["prospect_ids"] = ids
                truth.extend(outcome.truth)
            db.remove_intake([row.id for row in rows])
            db.add_truth(truth)
    next_due = db.next_due()
    if capacity is not None and next_due is not None:
        next_due = capacity.finish(next_due)
    return len(rows), next_due


class IntakeWorker:
    """Background task: sleeps until the next lead is due (or an earlier one arrives), then processes a batch,
    never faster than the sandbox's capacity, and at most one batch per :data:`WORKER_TICK`."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self.wake = asyncio.Event()
        self._next_look: float | None = None
        """When the sleeping worker looks next (None: it waits for a lead, or is processing a batch)."""

    def written(self, earliest_due: float) -> None:
        """Leads were queued: wake the worker only if one is due before it would look anyway."""
        if self._next_look is None or earliest_due < self._next_look:
            self.wake.set()

    async def run(self) -> None:
        """Process due leads until cancelled."""
        state = self._state
        capacity = Capacity(state.capacity) if state.capacity is not None else None
        while True:
            self._next_look = None
            self.wake.clear()
            started = time.time()
            try:
                processed, next_due = await state.run(
                    process_due, state.db, started, state.users, state.teams, capacity
                )
            except Exception:
                log.exception("sandbox: the intake worker failed on a batch; retrying in 1 s")
                processed, next_due = 0, time.time() + 1.0
            if processed >= WORKER_BATCH:
                continue
            if next_due is not None:
                self._next_look = max(next_due, started + WORKER_TICK)
            timeout = None if self._next_look is None else max(0.0, self._next_look - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)
            # Woken by a lead due sooner: still one batch per tick, so a stream costs one transaction a tick.
            await asyncio.sleep(max(0.0, started + WORKER_TICK - time.time()))
