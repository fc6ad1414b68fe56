"""The local Bonzo stand-in: hook URLs, the /api/v3 prospects API and fault switches, on SQLite.

Example::

    with SandboxServer(SandboxOptions()) as srv:
        tokens = srv.seed(users=[...], hooks=[{"type": "monitorbase"}])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bonzo_bulk.sandbox.app import SandboxApp, create_app
    from bonzo_bulk.sandbox.process import SandboxProcess
    from bonzo_bulk.sandbox.server import SandboxServer
    from bonzo_bulk.sandbox.state import SandboxOptions

# Imported on first use: a run that starts its sandbox as a child process must not load FastAPI and uvicorn itself.
_LAZY = {
    "SandboxApp": "bonzo_bulk.sandbox.app",
    "create_app": "bonzo_bulk.sandbox.app",
    "SandboxProcess": "bonzo_bulk.sandbox.process",
    "SandboxServer": "bonzo_bulk.sandbox.server",
    "SandboxOptions": "bonzo_bulk.sandbox.state",
}

__all__ = ["SandboxApp", "SandboxOptions", "SandboxProcess", "SandboxServer", "create_app"]


def __getattr__(name: str) -> Any:
    """Import a public name's module the first time the name is used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bonzo_bulk.sandbox' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
