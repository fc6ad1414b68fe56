"""The ``bonzo-bulk`` command line: the root app (:mod:`.app`) and one module per command group.

Every module here only parses flags, calls one library function and prints; nothing outside ``cli/``
imports it (a layering test says so), so the engine and the pytest plugin never pay for typer.
"""

from __future__ import annotations

from bonzo_bulk.cli.app import app, main, script

__all__ = ["app", "main", "script"]
