"""The run store's one interface: every writer and reader of run history goes through :class:`RunStore`.

It is written as the run goes (``begin_run`` -> ``add_*`` in batches -> ``finish_run``), so an
interrupted run can still be inspected and its prospects cleaned up from another process; the
same calls work on a SQLite file or a PostgreSQL database (the location picks the backend)::

    with RunStore("reports/runs.sqlite3") as store:      # or "postgresql://ci@db:5432/bonzo"
        store.begin_run(run_id=..., test_name=..., ...)
        store.add_records(run_id, records)       # before sending
        store.add_deliveries(run_id, phase, results)
        store.add_outcomes(run_id, phase, outcomes)   # as records are judged
        store.finish_run(result)

Each method maps the backend's errors to a :class:`StoreError` naming the store, and retries a write that
hit a lock; a run's store (:meth:`RunStore.keep_journal`) journals the writes it cannot take instead of failing
the run, reconnects with back-off and replays them when it answers again (:mod:`bonzo_bulk.store.journal`); the
SQL lives with its concept: ``ledger`` (each record), ``results`` (a finished run), ``history`` (summaries,
baselines) and ``prospects`` (what cleanup reads and marks).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

from bonzo_bulk.config.store_location import DEFAULT_STORE_PATH, StoreLocation
from bonzo_bulk.errors import StoreError, UnknownRun
from bonzo_bulk.models import (
    KEEP_ALL,
    DeliveryResult,
    PhaseKind,
    PlannedRecord,
    RecordOutcome,
    RunKind,
    RunResult,
    Target,
)
from bonzo_bulk.secrets import redact
from bonzo_bulk.store import codec, health, history, ledger, problems, progress, prospects, results, space
from bonzo_bulk.store.backend import Backend, Row
from bonzo_bulk.store.journal import Entry, Journal, journal_path
from bonzo_bulk.store.progress import RunProgress
from bonzo_bulk.store.rows import (
    DeletedProspect,
    ProblemChanges,
    ProblemEvent,
    ProblemRow,
    ProblemSeen,
    RunSummary,
    StoredProspect,
    StoredRecord,
)
from bonzo_bulk.store.schema import Migration, migrate

T = TypeVar("T")

PENDING_NOTE = "cleanup pending: "
"""The note a run carries while its cleanup left records unaccounted for (delivered, not found, not deleted)."""
PENDING_COMMAND = "`bonzo-bulk cleanup --pending --yes` removes them"

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


def replay_journal(location: str | Path | StoreLocation, reports_dir: str | Path, run_id: str) -> bool | None:
    """Write what run ``run_id`` left in its journal (``<reports dir>/journal/<run id>.jsonl``) into the store, for
    ``cleanup --run`` and ``report --run`` after a run that ended with the store failing: None when there was no
    journal, True when it was replayed, False when the store still cannot take it (the journal stays)."""
    path = journal_path(reports_dir, run_id)
    if not Journal(path).pending:
        return None
    with RunStore(location) as store:
        store.keep_journal(path)
        done = store.replay_journal(now=True)
    if done:
        log.warning("run %s: the writes its run store could not take (%s) are now in %s", run_id, path, store.label)
    return done


class RunStore:
    """The run store on SQLite or PostgreSQL; safe to open from several runs, a monitor and readers at once.

    ``location`` is a SQLite path (``Path``, ``"runs.sqlite3"``, ``"sqlite:///runs.sqlite3"``) or a
    ``postgresql://user@host:port/db`` URL; the schema is migrated on first use.
    """

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

    def __enter__(self) -> RunStore:
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

    def _require_run(self, run_id: str) -> Row:
        row = self._db.fetchone("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if row is None:
            recent = ", ".join(self._recent_ids()) or "none"
            raise UnknownRun(
                f"run store {self.label}: no run with id {run_id!r}; recent runs: {recent} "
                "(`bonzo-bulk history` lists them)"
            )
        return row

    def _recent_ids(self, limit: int = 10) -> list[str]:
        rows = self._db.fetchall("SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?", (limit,))
        return [str(r["run_id"]) for r in rows]

    def begin_run(
        self,
        *,
        run_id: str,
        test_name: str,
        integration: str,
        config_path: str | None,
        target: Target,
        started_at: datetime,
        dry_run: bool,
        config_snapshot: Mapping[str, Any],
        kind: RunKind = "bulk",
    ) -> None:
        """Record that a run of ``kind`` started (its config snapshot must already be free of secrets)."""
        self._write(
            f"begin run {run_id}",
            lambda db: db.execute(
                "INSERT INTO runs (run_id, test_name, integration, config_path, target, started_at, dry_run,"
                " config_snapshot, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET test_name = excluded.test_name,"
                " integration = excluded.integration, config_path = excluded.config_path,"
                " target = excluded.target, started_at = excluded.started_at, dry_run = excluded.dry_run,"
                " config_snapshot = excluded.config_snapshot, kind = excluded.kind",
                (
                    run_id,
                    test_name,
                    integration,
                    config_path,
                    target,
                    started_at.isoformat(),
                    int(dry_run),
                    codec.dumps(config_snapshot),
                    kind,
                ),
            ),
        )
        with self._op(f"mark run {run_id} in progress"):
            self._db.hold_run(run_id)

    def check_before_sending(self, *, records: int) -> None:
        """Refuse (:class:`~bonzo_bulk.errors.StoreUnusable`, exit 2) a store that cannot take a run of ``records``
        records: damaged (``PRAGMA quick_check``), short of free space, or not writable (:mod:`.health`)."""
        with self._op("check the store before sending"):
            health.check_store(self._db, records=records)

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

    def _apply(self, entry: Entry) -> None:
        """Write one journaled entry as the call that made it would have."""
        run_id, phase = entry.run_id, cast(PhaseKind, entry.phase)
        if entry.op == "records":
            self._add_records(run_id, entry.items)
        elif entry.op == "deliveries":
            self._add_deliveries(run_id, phase, entry.items)
        elif entry.op == "outcomes":
            self._add_outcomes(run_id, phase, entry.items)
        elif entry.op == "progress":
            self._save_progress(entry.items[0])
        elif entry.op == "note":
            self._add_note(run_id, entry.items[0])
        else:
            streamed = {(run_id, p) for p in (entry.phase or "").split(",") if p}
            self._finish_run(entry.items[0], streamed)

    def add_records(self, run_id: str, records: Sequence[PlannedRecord]) -> None:
        """Store planned records (call before sending, so an interrupted run is still traceable)."""
        self._journaled(Entry("records", run_id, None, records), lambda: self._add_records(run_id, records))

    def _add_records(self, run_id: str, records: Sequence[PlannedRecord]) -> None:
        def add(db: Backend) -> None:
            self._require_run(run_id)
            ledger.write_records(db, run_id, records, ledger.next_seq(db, "records", run_id))

        self._write(f"add {len(records)} records to run {run_id}", add)

    def add_deliveries(self, run_id: str, phase: PhaseKind, deliveries: Sequence[DeliveryResult]) -> None:
        """Store a batch of delivery results for one phase (may be called many times)."""
        self._journaled(
            Entry("deliveries", run_id, phase, deliveries), lambda: self._add_deliveries(run_id, phase, deliveries)
        )

    def _add_deliveries(self, run_id: str, phase: PhaseKind, deliveries: Sequence[DeliveryResult]) -> None:
        def add(db: Backend) -> None:
            self._require_run(run_id)
            ledger.write_deliveries(db, run_id, phase, deliveries)

        self._write(f"add {len(deliveries)} deliveries to run {run_id}", add)

    def add_outcomes(self, run_id: str, phase: PhaseKind, outcomes: Sequence[RecordOutcome]) -> None:
        """Store a batch of judged records: each outcome, its checks and what Bonzo showed of it."""
        self._journaled(Entry("outcomes", run_id, phase, outcomes), lambda: self._add_outcomes(run_id, phase, outcomes))
        self._streamed.add((run_id, phase))

    def _add_outcomes(self, run_id: str, phase: PhaseKind, outcomes: Sequence[RecordOutcome]) -> None:
        def add(db: Backend) -> None:
            self._require_run(run_id)
            ledger.write_outcomes(db, run_id, phase, outcomes)

        self._write(f"add {len(outcomes)} outcomes to run {run_id}", add)

    def ledger(self, run_id: str, phase: PhaseKind) -> Iterator[list[tuple[PlannedRecord, DeliveryResult | None]]]:
        """A phase's planned records with their deliveries, in planning order, a batch at a time (what waits in the
        journal is written first: a StoreError when the store still cannot take it)."""
        if not self.replay_journal(now=True):
            raise StoreError(
                f"run store {self.label} still fails: the records of run {run_id} waiting in {self.journal} "
                "could not be written, so they cannot be read back"
            )
        with self._op(f"read the records of run {run_id}"):
            yield from ledger.iter_ledger(self._db, run_id, phase)

    def deliveries(self, run_id: str, phase: PhaseKind) -> Iterator[list[DeliveryResult]]:
        """A phase's deliveries, in the order of its records' planning, a batch at a time."""
        with self._op(f"read the deliveries of run {run_id}"):
            yield from ledger.iter_deliveries(self._db, run_id, phase)

    def outcomes(
        self, run_id: str, phase: PhaseKind, *, failed_only: bool = False, limit: int | None = None, offset: int = 0
    ) -> Iterator[RecordOutcome]:
        """Every stored outcome of a phase (or only the failed ones, at most ``limit`` after the first ``offset``),
        in judging order."""
        with self._op(f"read the outcomes of run {run_id}"):
            yield from ledger.read_outcomes(
                self._db, run_id, phase, failed_only=failed_only, limit=limit, offset=offset
            )

    def count_outcomes(self, run_id: str, phase: PhaseKind, *, failed_only: bool = False) -> int:
        """How many outcomes a phase stored (or how many failed)."""
        with self._op(f"count the outcomes of run {run_id}"):
            return ledger.count_outcomes(self._db, run_id, phase, failed_only=failed_only)

    def delivery_latencies(self, run_id: str, phase: PhaseKind) -> list[float]:
        """Each answered delivery's latency (ms), for distributions."""
        with self._op(f"read the delivery latencies of run {run_id}"):
            return ledger.delivery_latencies(self._db, run_id, phase)

    def processing_seconds(self, run_id: str, phase: PhaseKind) -> dict[str, float]:
        """Each judged record's processing time (seconds) by record name, for distributions and lag."""
        with self._op(f"read the processing times of run {run_id}"):
            return ledger.processing_seconds(self._db, run_id, phase)

    def finish_run(self, result: RunResult) -> None:
        """Store a run's final result: each phase's figures, stray checks and diagnoses, the run's headline
        (idempotent).

        Outcomes this store took with :meth:`add_outcomes` as the run went stay as written; a phase whose
        outcomes were not streamed here (a result made in memory) is rewritten whole from its complete
        ``outcomes`` (prospects keep their deletion marks).
        """
        streamed = ",".join(phase for run_id, phase in sorted(self._streamed) if run_id == result.run_id)
        self._journaled(
            Entry("finish", result.run_id, streamed, [result]), lambda: self._finish_run(result, self._streamed)
        )

    def _finish_run(self, result: RunResult, streamed: set[tuple[str, str]]) -> None:
        self._write(f"finish run {result.run_id}", lambda db: results.write_result(db, result, streamed))

    def load_run(self, run_id: str, *, keep: int = KEEP_ALL) -> RunResult:
        """Read back a finished run as it was stored: each phase's figures and diagnoses, and its outcomes — all
        of them when the phase has at most ``keep`` records, else its failed ones up to ``keep`` (the rest:
        :meth:`outcomes`)."""
        with self._op(f"load run {run_id}"):
            run = self._require_run(run_id)
            if run["finished_at"] is None:
                raise StoreError(
                    f"run {run_id} in {self.label} never finished (interrupted?); its prospects are listed by"
                    " `observed_prospects` and can still be cleaned up, but there is no result to report"
                )
            return results.read_result(self._db, run, keep)

    def config_snapshot(self, run_id: str) -> dict[str, Any]:
        """The secret-free config snapshot a run was started with."""
        with self._op(f"read the config of run {run_id}"):
            snapshot: dict[str, Any] = json.loads(self._require_run(run_id)["config_snapshot"])
            return snapshot

    def list_runs(
        self,
        *,
        integration: str | None = None,
        limit: int = 20,
        kinds: Sequence[RunKind] | None = None,
        target: str | None = None,
    ) -> list[RunSummary]:
        """The most recent runs first, optionally of one integration, only of some kinds, and of one target."""
        with self._op("list runs"):
            return history.list_runs(self._db, integration=integration, limit=limit, kinds=kinds, target=target)

    def run_kind(self, run_id: str) -> RunKind:
        """The mode that opened a run (bulk, load, stress, calibrate, monitor)."""
        with self._op(f"read the kind of run {run_id}"):
            kind: RunKind = self._require_run(run_id)["kind"]
            return kind

    def summary(self, run_id: str) -> RunSummary | None:
        """One run's summary row (finished or not), or None when the store does not know it."""
        with self._op(f"read run {run_id}"):
            return history.summary(self._db, run_id)

    def phase_kinds(self, run_id: str) -> list[PhaseKind]:
        """The phases a finished run stored, in order (without reading their figures)."""
        with self._op(f"read the phases of run {run_id}"):
            rows = self._db.fetchall("SELECT phase FROM phases WHERE run_id = ? ORDER BY seq", (run_id,))
            return [cast(PhaseKind, row["phase"]) for row in rows]

    def groups(self) -> list[tuple[str, str]]:
        """Every (integration, target) the store holds runs of, sorted."""
        with self._op("list integrations and targets"):
            return history.groups(self._db)

    def latest_finished(self) -> list[str]:
        """The latest finished run of each (integration, target): what ``/metrics`` describes."""
        with self._op("find the latest runs"):
            return history.latest_finished(self._db)

    def save_progress(self, state: RunProgress) -> None:
        """Write a run's funnel so far (replacing the previous one)."""
        self._journaled(Entry("progress", state.run_id, None, [state]), lambda: self._save_progress(state))

    def _save_progress(self, state: RunProgress) -> None:
        self._write(f"save the progress of run {state.run_id}", lambda db: progress.write(db, state))

    def progress_since(self, since: datetime) -> list[RunProgress]:
        """Every run whose progress was written at or after ``since`` (UTC), newest first."""
        with self._op("read runs in flight"):
            return progress.read_since(self._db, since)

    def progress_of(self, run_id: str) -> RunProgress | None:
        """One run's latest progress, if it wrote any."""
        with self._op(f"read the progress of run {run_id}"):
            return progress.read_one(self._db, run_id)

    def has_run(self, run_id: str) -> bool:
        """Whether the store knows a run with this id (finished or not)."""
        with self._op(f"look up run {run_id}"):
            return self._db.fetchone("SELECT 1 AS found FROM runs WHERE run_id = ?", (run_id,)) is not None

    def latest_run_id(self, integration: str | None = None) -> str | None:
        """The id of the most recently started run (of one integration, if given)."""
        runs = self.list_runs(integration=integration, limit=1)
        return runs[0].run_id if runs else None

    def set_baseline(self, run_id: str) -> None:
        """Make a finished run the baseline of its integration's runs of its kind (replacing the previous one)."""

        def mark(db: Backend) -> None:
            run = self._require_run(run_id)
            if run["finished_at"] is None:
                raise StoreError(f"run {run_id} never finished, so it cannot be a baseline; pick a finished run")
            history.mark_baseline(db, run_id, run["integration"], run["kind"])

        self._write(f"set run {run_id} as baseline", mark)

    def baseline_run_id(self, integration: str, kind: RunKind = "bulk") -> str | None:
        """The baseline of an integration's runs of one kind, if one was set."""
        with self._op(f"read the baseline of {integration}"):
            return history.baseline_run_id(self._db, integration, kind)

    def webhook_concurrency(self, run_ids: Sequence[str]) -> dict[str, int | None]:
        """Each known run's webhook concurrency from its config snapshot (None where it does not say)."""
        with self._op("read the webhook concurrency of runs"):
            return history.webhook_concurrency(self._db, run_ids)

    def interrupted_runs(self) -> list[str]:
        """Ids of runs that began but never finished, most recent first."""
        with self._op("list interrupted runs"):
            return history.interrupted_runs(self._db)

    def running_runs(self) -> list[str]:
        """Ids of unfinished runs whose process is still alive (it holds the run's in-progress lock), most
        recent first; an unfinished run whose process died (interrupted, killed) is not among them."""
        with self._op("list runs in progress"):
            return [run_id for run_id in history.interrupted_runs(self._db) if self._db.run_is_held(run_id)]

    def observed_prospects(self, run_id: str) -> list[StoredProspect]:
        """Every prospect the run's records became (deleted ones carry ``deleted_at``)."""
        with self._op(f"list the prospects of run {run_id}"):
            self._require_run(run_id)
            return prospects.observed_prospects(self._db, run_id)

    def run_records(self, run_id: str) -> list[StoredRecord]:
        """The records a run planned, finished or not, in the order they were stored."""
        with self._op(f"list the records of run {run_id}"):
            self._require_run(run_id)
            return prospects.run_records(self._db, run_id)

    def accepted_records(self, run_id: str) -> set[str]:
        """Names of the run's records the webhook accepted and that should become prospects (not 'drop' cases)."""
        with self._op(f"list the accepted records of run {run_id}"):
            return prospects.accepted_records(self._db, run_id)

    def unanswered_records(self, run_id: str) -> set[str]:
        """Names of the run's records with no delivery recorded that should become prospects (not 'drop' cases)."""
        with self._op(f"list the unanswered records of run {run_id}"):
            return prospects.unanswered_records(self._db, run_id)

    def mark_deleted(self, run_id: str, deleted: Sequence[DeletedProspect]) -> None:
        """Note that cleanup deleted these prospects (now, UTC), also those the run never saw."""
        now = datetime.now(UTC)

        def mark(db: Backend) -> None:
            self._require_run(run_id)
            prospects.mark_deleted(db, run_id, deleted, now)

        self._write(f"mark {len(deleted)} prospects of run {run_id} deleted", mark)

    def delete_runs(self, run_ids: Sequence[str]) -> None:
        """Remove runs and every row stored with them, then give the space back where the backend can."""

        def delete(db: Backend) -> None:
            db.executemany("DELETE FROM runs WHERE run_id = ?", [(run_id,) for run_id in run_ids])

        self._write(f"delete {len(run_ids)} run(s)", delete)
        with self._op("compact the store after deleting runs"):
            self._db.compact()

    def space_usage(self) -> list[tuple[str, int, int | None]]:
        """Each table: its rows and bytes on disk (None when the backend cannot say), largest first."""
        with self._op("measure the store"):
            return space.usage(self._db)

    def estimated_bytes(self, run_ids: Sequence[str], *, whole: bool) -> int:
        """About how many bytes these runs take: all their rows (``whole``), else their per-record rows."""
        tables = space.RUN_TABLES if whole else space.PER_RECORD_TABLES
        with self._op(f"measure {len(run_ids)} run(s)"):
            return space.estimated_bytes(self._db, run_ids, tables)

    def record_rows(self, run_id: str) -> int:
        """How many per-record rows a run still has (0 once retention trimmed it)."""
        with self._op(f"count the rows of run {run_id}"):
            return sum(space.rows_of(self._db, table, [run_id]) for table in space.PER_RECORD_TABLES)

    def trim_runs(self, run_ids: Sequence[str], note: str) -> int:
        """Delete these runs' per-record rows, keeping their summaries, figures, diagnoses and prospects (so history,
        trends and cleanup still work); each run gets ``note``. Then give the space back; the rows deleted."""

        def trim(db: Backend) -> int:
            for run_id in run_ids:
                row = self._require_run(run_id)
                notes = [*json.loads(row["notes"] or "[]"), note]
                db.execute("UPDATE runs SET notes = ? WHERE run_id = ?", (json.dumps(notes), run_id))
            return space.trim(db, run_ids)

        deleted = self._write(f"trim {len(run_ids)} run(s)", trim)
        with self._op("compact the store after trimming runs"):
            self._db.compact()
        return deleted

    def mark_interrupted(self, run_id: str, note: str) -> int:
        """Note in an unfinished run that it was interrupted (it stays unfinished); its deliveries so far."""

        def mark(db: Backend) -> int:
            row = self._require_run(run_id)
            notes = [*json.loads(row["notes"] or "[]"), note]
            db.execute("UPDATE runs SET notes = ? WHERE run_id = ?", (json.dumps(notes), run_id))
            return ledger.count_rows(db, "deliveries", run_id)

        return self._write(f"mark run {run_id} interrupted", mark)

    def note_run(self, run_id: str, note: str) -> None:
        """Add a note to a run (journaled while the store fails: a run that could not finish is marked so)."""
        self._journaled(Entry("note", run_id, None, [note]), lambda: self._add_note(run_id, note))

    def _add_note(self, run_id: str, note: str) -> None:
        def mark(db: Backend) -> None:
            row = self._require_run(run_id)
            notes = [*json.loads(row["notes"] or "[]"), note]
            db.execute("UPDATE runs SET notes = ? WHERE run_id = ?", (json.dumps(notes), run_id))

        self._write(f"note run {run_id}", mark)

    def set_cleanup_pending(self, run_id: str, count: int) -> None:
        """Note in a run how many of its delivered records cleanup could not account for yet (0 clears the note):
        the records themselves are the run's accepted records that no cleanup recorded as deleted."""

        def mark(db: Backend) -> None:
            row = self._require_run(run_id)
            notes = [n for n in json.loads(row["notes"] or "[]") if not str(n).startswith(PENDING_NOTE)]
            if count:
                notes.append(f"{PENDING_NOTE}{count} record(s) delivered but not found yet; {PENDING_COMMAND}")
            db.execute("UPDATE runs SET notes = ? WHERE run_id = ?", (json.dumps(notes), run_id))

        self._write(f"note the pending cleanup of run {run_id}", mark)

    def cleanup_pending(self, run_id: str) -> int:
        """How many records of the run its last cleanup left pending (0: none, or never cleaned up)."""
        for note in self.run_notes(run_id) if self.has_run(run_id) else []:
            if note.startswith(PENDING_NOTE):
                return int(note[len(PENDING_NOTE) :].split(" ", 1)[0])
        return 0

    def pending_cleanup_runs(self) -> list[str]:
        """Ids of the runs whose cleanup left records pending, oldest first."""
        with self._op("list runs with a pending cleanup"):
            rows = self._db.fetchall(
                "SELECT run_id, notes FROM runs WHERE notes LIKE ? ORDER BY started_at", (f"%{PENDING_NOTE}%",)
            )
        return [str(r["run_id"]) for r in rows if any(str(n).startswith(PENDING_NOTE) for n in json.loads(r["notes"]))]

    def run_notes(self, run_id: str) -> list[str]:
        """The notes of a run (an interrupted run says so here)."""
        with self._op(f"read the notes of run {run_id}"):
            return [str(n) for n in json.loads(self._require_run(run_id)["notes"] or "[]")]

    def update_problems(
        self, integration: str, target: str, change: Callable[[list[ProblemRow]], ProblemChanges]
    ) -> ProblemChanges:
        """Apply ``change`` to one integration and target's problems in one transaction, no other tracker of the
        same scope between the read and the write (so two monitors never open the same problem twice)."""

        def apply(db: Backend) -> ProblemChanges:
            problems.lock_scope(db, integration, target)
            changes = change(problems.read(db, integration=integration, target=target))
            problems.write(db, changes.problems)
            problems.add_seen(db, changes.seen)
            problems.add_events(db, changes.events)
            return changes

        return self._write(f"track the problems of {integration} ({target})", apply)

    def change_problem(self, problem_id: str, change: Callable[[ProblemRow], ProblemChanges]) -> ProblemChanges:
        """Apply a person's change (acknowledge, mute, resolve ...) to one problem in one transaction."""

        def apply(db: Backend) -> ProblemChanges:
            found = problems.read_one(db, problem_id)
            if found is None:
                raise StoreError(
                    f"run store {self.label}: no problem {problem_id!r}; `bonzo-bulk problems --all` lists them"
                )
            problems.lock_scope(db, found.integration, found.target)
            changes = change(problems.read_one(db, problem_id) or found)
            problems.write(db, changes.problems)
            problems.add_events(db, changes.events)
            return changes

        return self._write(f"change problem {problem_id}", apply)

    def problems(self, *, integration: str | None = None, target: str | None = None) -> list[ProblemRow]:
        """Every stored problem (of one integration and target, when given), the most recently seen first."""
        with self._op("list problems"):
            return problems.read(self._db, integration=integration, target=target)

    def problem(self, problem_id: str) -> ProblemRow | None:
        """One problem by its full id, or None."""
        with self._op(f"read problem {problem_id}"):
            return problems.read_one(self._db, problem_id)

    def problem_ids(self, prefix: str) -> list[str]:
        """The problem ids that start with ``prefix``."""
        with self._op("look up problem ids"):
            return problems.ids_like(self._db, prefix)

    def problems_of_run(self, run_id: str) -> list[ProblemRow]:
        """The problems a run appeared in, as they stand now."""
        with self._op(f"read the problems of run {run_id}"):
            found = [problems.read_one(self._db, pid) for pid in problems.ids_seen_in(self._db, run_id)]
        return [p for p in found if p is not None]

    def problem_history(self, problem_id: str, *, limit: int = 20) -> tuple[list[ProblemSeen], list[ProblemEvent]]:
        """The latest runs a problem appeared in and its latest events, newest first."""
        with self._op(f"read the history of problem {problem_id}"):
            return (
                problems.read_seen(self._db, problem_id, limit=limit),
                problems.read_events(self._db, problem_id, limit=limit),
            )
