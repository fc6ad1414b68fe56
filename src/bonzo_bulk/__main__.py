"""``python -m bonzo_bulk`` runs the command line."""

from __future__ import annotations

from bonzo_bulk.cli import main

main()
