"""A run stopped by SIGINT or SIGTERM: what it sent is recorded, the run marked, the cleanup command named (and,
for a run stopped after it finished, while its reports were written, the command that writes them)."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Iterator

from bonzo_bulk._http import signalled
from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.errors import Interrupted, StoreError
from bonzo_bulk.store import RunStore, StoreLocation


def cleanup_command(loaded: LoadedConfig, run_id: str) -> str:
    """The exact command that removes what a run sent (its config, reports folder and store included; a PostgreSQL
    URL without its password, which PGPASSWORD gives)."""
    words = ["bonzo-bulk", "cleanup", "--run", run_id, "--yes"]
    if loaded.path is not None:
        words += ["--config", str(loaded.path)]
    if loaded.config.reports_dir != "reports":
        words += ["--reports-dir", loaded.config.reports_dir]
    named = loaded.config.store_url or loaded.config.run_store
    if named is not None:
        words += ["--store-url", StoreLocation.parse(named).label]
    return shlex.join(words)


@contextlib.contextmanager
def recording_interrupts(loaded: LoadedConfig, run_id: str, store: RunStore) -> Iterator[None]:
    """Turn SIGINT / SIGTERM during a run into :class:`Interrupted`, after marking the run in the store.

    The message names the run, what was recorded and the exact cleanup command: records a run sent
    may still be on their way into Bonzo, so cleanup is offered, never assumed.
    """
    try:
        yield
    except (KeyboardInterrupt, asyncio.CancelledError) as exc:
        if isinstance(exc, asyncio.CancelledError) and signalled() is None:
            # Cancelled by its caller (a monitor's time bound, say), not by a user: note it, let it propagate.
            try:
                if store.has_run(run_id):
                    store.mark_interrupted(run_id, "stopped before it finished (cancelled by its caller)")
            except StoreError:
                store.note_run(run_id, "stopped before it finished (cancelled by its caller)")
            raise
        note = "interrupted (SIGINT or SIGTERM) before it finished"
        try:
            if not store.has_run(run_id):
                raise Interrupted(f"run {run_id} stopped before it sent anything; nothing to clean up") from exc
            summary = store.summary(run_id)
            if summary is not None and summary.finished_at is not None:
                raise _interrupted_publishing(loaded, run_id, store, passed=summary.passed) from exc
            recorded = f"{store.mark_interrupted(run_id, note)} deliveries are recorded and "
            where = f"the run store {store.label}"
        except StoreError:  # the store fails: the note waits in the run's journal with what it could not take
            store.note_run(run_id, note)
            recorded, where = "", f"its journal {store.journal} (the run store {store.label} fails)"
        raise Interrupted(
            f"run {run_id} stopped; {recorded}the run is marked interrupted in {where}. Records it sent may "
            f"still appear in Bonzo; remove them with: {cleanup_command(loaded, run_id)}  (again later, or with "
            "--wait, if some are still on their way)",
            run_id=run_id,
        ) from exc


def report_command(store: RunStore, run_id: str) -> str:
    """The exact command that writes a stored run's reports (its dashboard) again, naming its store (a
    PostgreSQL store by its label, without a password: libpq takes it from ``PGPASSWORD`` or ``~/.pgpass``)."""
    return shlex.join(["bonzo-bulk", "report", "--run", run_id, "--store", str(store.path or store.label)])


def _interrupted_publishing(loaded: LoadedConfig, run_id: str, store: RunStore, *, passed: bool | None) -> Interrupted:
    """A run interrupted after it finished (while its reports were written): its stored verdict stands, the note
    says what was cut short and the command that writes the reports again."""
    verdict = "passed" if passed else "failed"
    store.mark_interrupted(
        run_id,
        f"finished ({verdict}), then interrupted (SIGINT or SIGTERM) while its reports were written: "
        f"`{report_command(store, run_id)}` writes them",
    )
    return Interrupted(
        f"run {run_id} finished and {verdict} (recorded in the run store {store.path}); it was interrupted while its "
        f"reports were written: `{report_command(store, run_id)}` writes them again. What it created in Bonzo "
        f"stays until: {cleanup_command(loaded, run_id)}",
        run_id=run_id,
    )
