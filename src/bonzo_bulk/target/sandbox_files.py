"""Where the local sandbox keeps its state: one database per run, so concurrent runs never share one."""

from __future__ import annotations

from pathlib import Path

from bonzo_bulk.config.loader import LoadedConfig

SANDBOX_DIR = "sandboxes"
"""Under the reports folder: one sandbox database per run (``<run id>.sqlite3``)."""


def sandbox_dbs(loaded: LoadedConfig) -> list[Path]:
    """Every per-run sandbox database under the reports folder, oldest first (and a legacy shared one)."""
    reports = Path(loaded.config.reports_dir)
    found = sorted((reports / SANDBOX_DIR).glob("*.sqlite3"), key=lambda p: p.stat().st_mtime)
    legacy = reports / "sandbox.sqlite3"
    return [legacy, *found] if legacy.is_file() else found


def sandbox_db_for(loaded: LoadedConfig, run_id: str, *, new_run: bool) -> Path:
    """The database of run ``run_id``'s sandbox; a command that sends nothing (cleanup, prospects) gets
    that run's if it exists, else the latest run's, so it sees what the runs made."""
    path = Path(loaded.config.reports_dir) / SANDBOX_DIR / f"{run_id}.sqlite3"
    if new_run or path.is_file():
        return path
    existing = sandbox_dbs(loaded)
    return existing[-1] if existing else path
