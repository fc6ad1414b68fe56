"""The pytest plugin (``pytest11`` entry point): options, markers and the session-scoped bulk run."""

from __future__ import annotations
