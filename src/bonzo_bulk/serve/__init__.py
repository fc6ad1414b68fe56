"""``bonzo-bulk serve``: the team's integration health pages over the run store, runs in flight, and metrics.

Modules, one concept each:

- ``server``  check the exposure and the store, then run uvicorn (foreground, or :class:`ServeServer` on a thread)
- ``app``     the FastAPI app: routers, and how a refusal, an unknown run or a store failure answer
- ``pages``   the HTML pages: ``/``, ``/runs/{id}`` (+ dashboard, downloads, baseline), ``/live``, login
- ``api``     the JSON behind each page, the live stream (server-sent events), ``/metrics``, ``/healthz``
- ``views``   what each page shows, read from the store
- ``access``  the token, sessions and CSRF: safe by default
- ``guard``   the checks every route shares
- ``state``   what a server's requests share (store location, access, rendered dashboards, metrics)
- ``render``  the templates, sparklines, redaction
"""
