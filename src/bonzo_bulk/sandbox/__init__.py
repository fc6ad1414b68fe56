"""The local Bonzo stand-in: hook URLs, the /api/v3 prospects API and fault switches, on SQLite.

Two strictnesses (``SandboxOptions.strictness``; docs/sandbox.md has the full table). Lenient (default)
does what is convenient where ``docs/bonzo-api.md`` is silent; strict does the least it promises:

- custom fields stored only when ``mapped_custom_fields`` maps them for the hook type (§5 mapping,
  §7 ``custom_1..5``), read as ``[{key, value}]`` (§2.4 custom fields);
- ``source``: ``webhook`` from the general hook, the type's name from the others (§2.4 ``source``, §9.7);
- tags as ``{id, name, sequence_start}``, lower-cased (§2.4 ``tags``);
- ``created_at``/``updated_at`` in whole seconds (§2.4 timestamps);
- ``assigned_user`` as ``{id, email}`` (§2.4, §3 user fields); no ``notes_count``/``external_id`` (not in §2.4);
- ``order`` not honoured (§2.2: values undocumented).

Both: no ``X-RateLimit-*`` headers unless a rate limit is set (§1 429 details), DELETE works (§2.1, for
cleanup), unknown ``lo_email`` and processing time are settings of their own (§5 unknown).

Example::

    with SandboxServer(SandboxOptions()) as srv:
        tokens = srv.seed(users=[...], hooks=[{"type": "monitorbase"}])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bonzo_bulk._lazy import lazy_getattr

if TYPE_CHECKING:
    from bonzo_bulk.sandbox.app import create_app
    from bonzo_bulk.sandbox.asgi import SandboxApp
    from bonzo_bulk.sandbox.process import SandboxProcess
    from bonzo_bulk.sandbox.server import SandboxServer
    from bonzo_bulk.sandbox.state import SandboxOptions

# Imported on first use: a run that starts its sandbox as a child process must not load FastAPI and uvicorn itself.
_LAZY = {
    "SandboxApp": "bonzo_bulk.sandbox.asgi",
    "create_app": "bonzo_bulk.sandbox.app",
    "SandboxProcess": "bonzo_bulk.sandbox.process",
    "SandboxServer": "bonzo_bulk.sandbox.server",
    "SandboxOptions": "bonzo_bulk.sandbox.state",
}

__all__ = ["SandboxApp", "SandboxOptions", "SandboxProcess", "SandboxServer", "create_app"]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
