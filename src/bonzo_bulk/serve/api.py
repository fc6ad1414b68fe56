"""The JSON behind every page (``/api/...``), the live stream (server-sent events), ``/metrics`` for Prometheus,
``/healthz``, and the baseline change for scripts (bearer token)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from functools import cache
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response, StreamingResponse
from plotly.offline import get_plotlyjs
from prometheus_client import CONTENT_TYPE_LATEST

from bonzo_bulk.models import PhaseKind
from bonzo_bulk.report.dashboard import plotly_asset_name
from bonzo_bulk.report.metrics import exposition, registry_of
from bonzo_bulk.secrets import redact
from bonzo_bulk.serve.access import CSRF_HEADER
from bonzo_bulk.serve.guard import change_refused, require_reader, serve_state
from bonzo_bulk.serve.pages import run_summary
from bonzo_bulk.serve.state import ServeState
from bonzo_bulk.serve.views import failing_page, live_document, live_runs, overview

guarded = APIRouter(dependencies=[Depends(require_reader)])
public = APIRouter()
LIVE_TICK = 0.5
"""Seconds between two reads of the store by a live stream; an event goes out at least once a second."""


def json_response(data: Any, status: int = 200) -> Response:
    """JSON, every registered secret masked."""
    text = json.dumps(jsonable_encoder(data), ensure_ascii=False, separators=(",", ":"))
    return Response(redact(text), status_code=status, media_type="application/json")


@guarded.get("/api/overview")
def api_overview(request: Request) -> Response:
    """Every integration x target's health (what ``/`` shows)."""
    with serve_state(request).store() as store:
        return json_response({"groups": overview(store)})


@guarded.get("/api/runs/{run_id}")
def api_run(request: Request, run_id: str) -> Response:
    """A run's summary, its phases and its last progress (what ``/runs/{id}`` shows)."""
    with serve_state(request).store() as store:
        summary = run_summary(store, run_id)
        phases = store.phase_kinds(run_id) if summary.finished_at else []
        progress = store.progress_of(run_id)
    return json_response({"summary": summary, "phases": phases, "progress": progress})


@guarded.get("/api/runs/{run_id}/failures")
def api_failures(
    request: Request, run_id: str, phase: PhaseKind = "primary", page_number: int = Query(1, alias="page", ge=1)
) -> Response:
    """One page of a phase's failing records from the ledger."""
    with serve_state(request).store() as store:
        run_summary(store, run_id)
        return json_response(failing_page(store, run_id, phase, page_number))


@guarded.post("/api/runs/{run_id}/baseline")
def api_baseline(request: Request, run_id: str) -> Response:
    """Mark a finished run its integration's baseline (bearer token, or a session with the CSRF header)."""
    refused = change_refused(request, request.headers.get(CSRF_HEADER))
    if refused is not None:
        return json_response({"detail": refused}, 403)
    with serve_state(request).store() as store:
        run_summary(store, run_id)
        store.set_baseline(run_id)
        return json_response({"baseline": run_id, "summary": store.summary(run_id)})


def _live(state: ServeState) -> str:
    with state.store() as store:
        return json.dumps(jsonable_encoder(live_document(live_runs(store))), separators=(",", ":"))


@guarded.get("/api/live")
def api_live(request: Request) -> Response:
    """The runs in flight (what ``/live`` draws)."""
    with serve_state(request).store() as store:
        return json_response(live_document(live_runs(store)))


@guarded.get("/api/live/stream")
async def live_stream(request: Request) -> StreamingResponse:
    """Server-sent events: the runs in flight, whenever they change and at least once a second."""
    state = serve_state(request)

    async def events() -> AsyncIterator[str]:
        last, sent_at = "", 0.0
        while not await request.is_disconnected():
            document = await anyio.to_thread.run_sync(_live, state)
            if document != last or time.monotonic() - sent_at >= 1.0:
                last, sent_at = document, time.monotonic()
                yield f"data: {redact(document)}\n\n"
            await asyncio.sleep(LIVE_TICK)

    headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


@guarded.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus exposition of each integration x target's latest finished run."""
    registry = registry_of(serve_state(request).latest_figures)
    return Response(exposition(registry), media_type=CONTENT_TYPE_LATEST)


@public.get("/healthz")
def healthz(request: Request) -> Response:
    """Whether the server can read its store (503 when it cannot)."""
    try:
        with serve_state(request).store() as store:
            store.latest_run_id()
    except Exception as exc:  # any failure to read the store makes the server unhealthy, said in one line
        return json_response({"status": "unhealthy", "detail": str(exc)}, 503)
    return json_response({"status": "ok"})


@cache
def _plotly() -> bytes:
    script: str = get_plotlyjs()
    return script.encode()


@public.get("/assets/{name}")
def asset(name: str) -> Response:
    """plotly.js for the dashboards (versioned name, cached by the browser for a year)."""
    if name != plotly_asset_name():
        return json_response({"detail": f"no asset {name!r}"}, 404)
    headers = {"cache-control": "public, max-age=31536000, immutable"}
    return Response(_plotly(), media_type="application/javascript", headers=headers)
