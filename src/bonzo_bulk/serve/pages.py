"""The HTML pages: ``/`` (every integration's health), ``/runs/{id}`` (a run, its failing records, its downloads
and dashboard), ``/live`` (runs in flight), the login form and the one state change (marking a baseline)."""

from __future__ import annotations

from tempfile import SpooledTemporaryFile
from typing import Any, Literal, TextIO, cast
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from bonzo_bulk.errors import StoreError
from bonzo_bulk.models import PhaseKind
from bonzo_bulk.report.export import write_ledger
from bonzo_bulk.serve.access import CSRF_FIELD, SESSION_COOKIE, SESSION_SECONDS, TOKEN_ENV
from bonzo_bulk.serve.guard import change_refused, require_reader, serve_state, session_of, signed_in
from bonzo_bulk.serve.render import age_text, page, sparkline, verdict_dots
from bonzo_bulk.serve.views import LIVE_WINDOW, TREND_RUNS, failing_page, live_document, live_runs, overview
from bonzo_bulk.store import RunStore, RunSummary

guarded = APIRouter(dependencies=[Depends(require_reader)])
public = APIRouter()
SPOOL_BYTES = 8 * 1024 * 1024


class UnknownRun(LookupError):
    """No run with this id in the store (404)."""


def _base(request: Request, here: str) -> dict[str, Any]:
    return {"here": here, "signed_in": signed_in(request)}


def _html(template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return HTMLResponse(page(template, context), status_code=status)


def message(request: Request, heading: str, text: str, status: int, back: str = "/") -> HTMLResponse:
    """A page that says one thing (an error, a refusal)."""
    context = {**_base(request, ""), "heading": heading, "message": text, "back": back}
    return _html("message.html.j2", context, status)


def _p95_text(value: float | None) -> str:
    return "—" if value is None else age_text(value / 1000) if value >= 120_000 else f"{value / 1000:.2f} s"


@guarded.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    """Every integration x target with its latest verdict, age, pass rate and trends."""
    with serve_state(request).store() as store:
        groups, label = overview(store), store.label
    rows = [
        {
            "health": g,
            "verdicts": verdict_dots([p.passed for p in g.trend]),
            "p95": sparkline([p.p95_processing_ms for p in g.trend]),
            "latest_p95": _p95_text(g.trend[-1].p95_processing_ms if g.trend else None),
        }
        for g in groups
    ]
    return _html(
        "index.html.j2", {**_base(request, "index"), "groups": rows, "store_label": label, "trend_runs": TREND_RUNS}
    )


def run_summary(store: RunStore, run_id: str) -> RunSummary:
    """The run's summary row, or UnknownRun."""
    summary = store.summary(run_id)
    if summary is None:
        raise UnknownRun(run_id)
    return summary


@guarded.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(
    request: Request, run_id: str, phase: PhaseKind = "primary", page_number: int = Query(1, alias="page", ge=1)
) -> HTMLResponse:
    """A run: its facts, downloads, the baseline button, its failing records a page at a time, its dashboard."""
    state = serve_state(request)
    with state.store() as store:
        summary = run_summary(store, run_id)
        finished = summary.finished_at is not None
        phases = store.phase_kinds(run_id) if finished else []
        shown: PhaseKind = phase if phase in phases else (phases[0] if phases else "primary")
        failing = failing_page(store, run_id, shown, page_number) if finished else None
    verdict = "unfinished" if summary.passed is None else "passed" if summary.passed else "failed"
    context = {
        **_base(request, "run"),
        "summary": summary,
        "verdict": verdict,
        "finished": finished,
        "phases": phases,
        "failing": failing,
        "p95": _p95_text(summary.p95_processing_ms),
        "csrf": state.access.csrf_for(session_of(request)),
        "changes_allowed": state.access.guarded,
    }
    return _html("run.html.j2", context)


@guarded.get("/runs/{run_id}/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, run_id: str) -> HTMLResponse:
    """The run's health dashboard, rendered from the store (the same figures as the file dashboard)."""
    state = serve_state(request)
    with state.store() as store:
        run_summary(store, run_id)
    try:
        return HTMLResponse(state.dashboard(run_id))
    except StoreError as exc:
        return message(request, "No dashboard yet", str(exc), 404, back=f"/runs/{run_id}")


@guarded.get("/runs/{run_id}/export.{fmt}")
def download(request: Request, run_id: str, fmt: Literal["jsonl", "csv"]) -> Response:
    """The run's whole ledger as ``bonzo-bulk export`` writes it (JSON lines or CSV), as a download."""
    spool = SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+", encoding="utf-8", newline="")  # noqa: SIM115
    try:
        with serve_state(request).store() as store:
            run_summary(store, run_id)
            with store.operation(f"export run {run_id}"):
                write_ledger(store.backend, run_id, fmt, cast(TextIO, spool))
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    kind = "application/x-ndjson" if fmt == "jsonl" else "text/csv"
    return StreamingResponse(
        iter(lambda: spool.read(65536), ""),
        media_type=f"{kind}; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{run_id}.{fmt}"'},
        background=BackgroundTask(spool.close),
    )


@guarded.get("/live", response_class=HTMLResponse)
def live(request: Request) -> HTMLResponse:
    """Runs in flight as funnels, updated by server-sent events (``/api/live/stream``)."""
    with serve_state(request).store() as store:
        initial = jsonable_encoder(live_document(live_runs(store)))
    context = {**_base(request, "live"), "initial": initial, "window_minutes": int(LIVE_WINDOW.total_seconds() // 60)}
    return _html("live.html.j2", context)


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", "replace")
    return {key: values[0] for key, values in parse_qs(body).items()}


@guarded.post("/runs/{run_id}/baseline")
async def make_baseline(request: Request, run_id: str) -> Response:
    """The one state change: mark a finished run its integration's baseline (token and CSRF field needed)."""
    refused = change_refused(request, (await _form(request)).get(CSRF_FIELD))
    if refused is not None:
        return message(request, "Not changed", refused, 403, back=f"/runs/{run_id}")
    with serve_state(request).store() as store:
        run_summary(store, run_id)
        store.set_baseline(run_id)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


def _next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


@public.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next_path: str = Query("/", alias="next")) -> Response:
    """The login form (a server without a token needs none)."""
    if not serve_state(request).access.guarded:
        return RedirectResponse("/", status_code=303)
    context = {**_base(request, "login"), "next": _next(next_path), "error": None, "token_env": TOKEN_ENV}
    return _html("login.html.j2", context)


@public.post("/login")
async def login(request: Request) -> Response:
    """Check the token typed in; on success a session cookie (no token in it) and back to where the user was."""
    access = serve_state(request).access
    form = await _form(request)
    target = _next(form.get("next"))
    if not access.token_ok(form.get("token", "")):
        context = {
            **_base(request, "login"),
            "next": target,
            "error": "That is not this server's token.",
            "token_env": TOKEN_ENV,
        }
        return _html("login.html.j2", context, 401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        access.new_session(),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@public.post("/logout")
def logout() -> Response:
    """Forget the session."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
