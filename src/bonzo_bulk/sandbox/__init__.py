"""The local Bonzo stand-in: hook URLs, the /api/v3 prospects API and fault switches, on SQLite.

Example::

    with SandboxServer(SandboxOptions()) as srv:
        tokens = srv.seed(users=[...], hooks=[{"type": "monitorbase"}])
"""

from __future__ import annotations

from bonzo_bulk.sandbox.app import SandboxApp, create_app
from bonzo_bulk.sandbox.server import SandboxServer
from bonzo_bulk.sandbox.state import SandboxOptions

__all__ = ["SandboxApp", "SandboxOptions", "SandboxServer", "create_app"]
