"""The ``serve`` application: FastAPI over the run store, read-only but for one guarded change.

Example::

    app = create_app(StoreLocation.parse("reports/runs.sqlite3"), Access(token=None))
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from bonzo_bulk.errors import StoreError
from bonzo_bulk.serve import api, pages
from bonzo_bulk.serve.access import Access
from bonzo_bulk.serve.guard import SignInNeeded
from bonzo_bulk.serve.state import ServeState
from bonzo_bulk.store import StoreLocation

_MACHINE_PATHS = ("/api/", "/metrics")


def _for_machines(request: Request) -> bool:
    return request.url.path.startswith(_MACHINE_PATHS) or "text/html" not in request.headers.get("accept", "")


def _sign_in(request: Request, exc: Exception) -> Response:
    if _for_machines(request):
        body = {"detail": "this server needs its token: send 'Authorization: Bearer <BONZO_BULK_SERVE_TOKEN>'"}
        response = api.json_response(body, 401)
        response.headers["www-authenticate"] = "Bearer"
        return response
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


def _unknown_run(request: Request, exc: Exception) -> Response:
    text = f"no run {exc.args[0]!r} in this store; the index (/) lists the latest of each integration"
    if _for_machines(request):
        return api.json_response({"detail": text}, 404)
    return pages.message(request, "No such run", text, 404)


def _store_failed(request: Request, exc: Exception) -> Response:
    text = f"the run store could not be read: {exc}"
    if _for_machines(request):
        return api.json_response({"detail": text}, 503)
    return pages.message(request, "Store unavailable", text, 503)


def create_app(location: StoreLocation, access: Access) -> FastAPI:
    """The app serving the store at ``location`` under ``access``."""
    app = FastAPI(title="bonzo-bulk serve", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.serve = ServeState(location, access)
    for router in (pages.public, api.public, pages.guarded, api.guarded):
        app.include_router(router)
    app.add_exception_handler(SignInNeeded, _sign_in)
    app.add_exception_handler(pages.UnknownRun, _unknown_run)
    app.add_exception_handler(StoreError, _store_failed)
    return app
