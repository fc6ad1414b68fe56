"""The connection to a run store: the backend a location names, its errors mapped to a :class:`StoreError`
naming the store, a write that hit a lock retried, and (for a run's store, :meth:`StoreConnection.keep_journal`)
the writes it cannot take journaled instead of failing the run, with back-off and replay when it answers again
(:mod:`bonzo_bulk.store.journal`). :class:`~bonzo_bulk.store.interface.RunStore` builds the store's operations on it.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from bonzo_bulk.config.store_location import DEFAULT_STORE_PATH, StoreLocation
from bonzo_bulk.errors import StoreError
from bonzo_bulk.secrets import redact
from bonzo_bulk.store.backend import Backend
from bonzo_bulk.store.journal import Entry, Journal
from bonzo_bulk.store.schema import Migration, migrate

T = TypeVar("T")

WRITE_ATTEMPTS = 5
"""A write that hit a deadlock or a lock timeout is tried again this often before it is reported."""
RETRY_DELAYS = (1.0, 2.0, 4.0)
"""While the store fails, the seconds before each next try (the last one repeats): a server back within a few
seconds is picked up by the next write after it."""

log = logging.getLogger("bonzo_bulk.store")


def open_backend(location: StoreLocation) -> Backend:
    """Connect to the backend a location names (the PostgreSQL driver is imported only when needed)."""
    if location.dialect == "postgresql":
        from bonzo_bulk.store.postgres import PostgresBackend

        return PostgresBackend(location)
    from bonzo_bulk.store.sqlite import SqliteBackend

    assert location.path is not None
    return SqliteBackend(location.path)


class StoreConnection(ABC):
    """An open run store: the backend, error mapping, retried and journaled writes (see the module's text)."""

    def __init__(
        self, location: str | Path | StoreLocation = DEFAULT_STORE_PATH, *, backend: Backend | None = None
    ) -> None:
        self.location = location if isinstance(location, StoreLocation) else StoreLocation.parse(location)
        self.label = self.location.label
        """Where the store is, safe to print (a path, or the URL without its password)."""
        self._db = backend if backend is not None else open_backend(self.location)
        self._streamed: set[tuple[str, str]] = set()
        """(run, phase) whose outcomes this store took as the run went."""
        self._journal: Journal | None = None
        self._failing_since: float | None = None
        """When the store started failing (monotonic), None while it answers."""
        self._tries = 0
        self._next_try = 0.0
        try:
            with self._op("prepare the schema"):
                self.applied: list[Migration] = migrate(self._db)
                """The migrations this open applied (empty when the schema was current)."""
        except BaseException:
            self._db.close()
            raise

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None for a PostgreSQL store."""
        return self.location.path

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the data stays); what waits in the journal is tried once more, else it stays
        there for ``cleanup --run`` or ``report --run`` to replay."""
        try:
            if self.journal_pending and not self.replay_journal(now=True):
                log.warning(
                    "run store %s: writes of this run are still in %s (replayed by `bonzo-bulk cleanup --run` or "
                    "`bonzo-bulk report --run` once the store answers)",
                    self.label,
                    self.journal,
                )
        finally:
            self._db.close()

    @property
    def backend(self) -> Backend:
        """The open backend, for the store's own tools (``transfer``); everything else uses the methods."""
        return self._db

    def operation(self, what: str) -> AbstractContextManager[None]:
        """Map the backend's errors inside the block to a StoreError naming the store and ``what`` failed."""
        return self._op(what)

    @contextmanager
    def _op(self, what: str) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except Exception as exc:
            if not self._db.is_error(exc):
                raise
            raise StoreError(f"run store {self.label}: could not {what}: {redact(str(exc).strip())}") from exc

    def _write(self, what: str, body: Callable[[Backend], T]) -> T:
        """Run ``body`` in one transaction; a deadlock or lock timeout is retried, never shown to the user (once
        while the store is failing and its writes go to the journal: a lock held for minutes costs one wait a try)."""
        attempts = 1 if self.failing else WRITE_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                with self._op(what), self._db.transaction():
                    return body(self._db)
            except StoreError as exc:
                if attempt == attempts or not self._db.is_transient(exc.__cause__ or exc):
                    raise
            time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    def keep_journal(self, path: Path) -> None:
        """From now on, a run write the store cannot take (records, deliveries, outcomes, progress, notes, the
        result) goes to the journal at ``path`` instead of failing the run, and is replayed when the store answers
        (:mod:`bonzo_bulk.store.journal`)."""
        self._journal = Journal(path)

    @property
    def journal(self) -> Path | None:
        """The journal file this store keeps, if any."""
        return self._journal.path if self._journal is not None else None

    @property
    def journal_pending(self) -> bool:
        """Whether writes wait in the journal (the store failed and has not taken them yet)."""
        return self._journal is not None and self._journal.pending

    @property
    def failing(self) -> bool:
        """Whether the store's last write failed (its writes go to the journal until one succeeds)."""
        return self._failing_since is not None

    def _journaled(self, entry: Entry, write: Callable[[], None]) -> None:
        """``write`` now, or into the journal while the store fails (earlier journaled entries go first)."""
        journal = self._journal
        if journal is None:
            write()
            return
        if (journal.pending or self.failing) and not self.replay_journal():
            journal.append(entry)
            return
        try:
            write()
        except StoreError as exc:
            self._failed(exc)
            journal.append(entry)

    def _failed(self, exc: StoreError) -> None:
        """Note a failed write: the first of an outage is logged once, saying what the run waits for."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
            self._tries = 0
            log.warning(
                "%s; the run goes on: what it writes is kept in %s and replayed when the store answers again "
                "(tried again after %s s, then every %g s)",
                exc,
                self._journal.path if self._journal is not None else "memory",
                ", ".join(f"{d:g}" for d in RETRY_DELAYS),
                RETRY_DELAYS[-1],
            )
        self._next_try = now + RETRY_DELAYS[min(self._tries, len(RETRY_DELAYS) - 1)]
        self._tries += 1

    def replay_journal(self, *, now: bool = False) -> bool:
        """Write the journal's entries into the store, in order (one try, unless the back-off has not run out;
        ``now`` tries at once); True when nothing is left in it. A replayed entry leaves the file."""
        journal = self._journal
        if journal is None or (not journal.pending and not self.failing):
            return True
        if not now and self.failing and time.monotonic() < self._next_try:
            return False
        replayed, done = 0, 0
        try:
            if self.failing:
                with self._op("reconnect"):
                    self._db.reconnect()
            for offset, entry in journal.entries():
                self._apply(entry)
                replayed, done = replayed + 1, offset
        except StoreError as exc:
            journal.drop_before(done)
            self._failed(exc)
            return False
        journal.path.unlink(missing_ok=True)
        if self._failing_since is not None:
            log.warning(
                "run store %s answers again after %.0f s: %d journaled batch(es) written into it",
                self.label,
                time.monotonic() - self._failing_since,
                replayed,
            )
        self._failing_since = None
        return True

    @abstractmethod
    def _apply(self, entry: Entry) -> None:
        """Write one journaled entry as the call that made it would have (the store's operations know how)."""
