"""The sandbox ASGI app: Bonzo's ``/api/v3`` prospects API and hook URLs, plus the ``/__sandbox`` admin routes.

``create_app(options)`` returns a FastAPI app whose lifespan opens the SQLite state and starts the intake
queue and worker. Hook URLs and the API gate are served in front of FastAPI's router
(:class:`~bonzo_bulk.sandbox.asgi.SandboxApp`), which keeps intake fast.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bonzo_bulk.sandbox import admin, api, clock
from bonzo_bulk.sandbox.asgi import ApiError, SandboxApp
from bonzo_bulk.sandbox.intake import IntakeQueue, IntakeWorker
from bonzo_bulk.sandbox.state import SandboxOptions, SandboxState


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
        assert isinstance(app, SandboxApp)
        worker = app.worker = IntakeWorker(state)
        queue = app.queue = IntakeQueue(state, worker.written)
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
    app.include_router(api.router)
    app.include_router(admin.router)
    app.include_router(clock.router)
    return app
