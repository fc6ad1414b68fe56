"""Both backends: migrations (versioned, once, refused when newer), concurrent writers, copying history."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from builders import DUPLICATE, MANGLED, WRONG_OWNER, begin_run_of, build_run

from bonzo_bulk.errors import ConfigError, StoreError
from bonzo_bulk.models import RunResult
from bonzo_bulk.report.rows import failure_rows
from bonzo_bulk.store import MIGRATIONS, SCHEMA_VERSION, Migration, RunStore, StoreLocation
from bonzo_bulk.store.connection import open_backend
from bonzo_bulk.store.results import UNDIAGNOSED_NOTE
from bonzo_bulk.store.schema import migrate
from bonzo_bulk.store.transfer import copy_store

StoreAt = str | Path
DEMO_STAGES = Migration(
    SCHEMA_VERSION + 1,
    "demo stages",
    """
    CREATE TABLE IF NOT EXISTS demo_stages (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, stage TEXT NOT NULL,
        users {INT} NOT NULL, p95_ms {REAL}, PRIMARY KEY (run_id, stage)
    )""",
    tables=("demo_stages",),
)


def test_a_migration_entry_adds_a_table_once_and_an_older_tool_refuses_the_store(store_at: StoreAt) -> None:
    with RunStore(store_at) as store:
        assert [m.version for m in store.applied] == [m.version for m in MIGRATIONS]
        store.finish_run(build_run(run_id="before"))
    with RunStore(store_at) as again:
        assert again.applied == []
    backend = open_backend(StoreLocation.parse(store_at))
    try:
        assert [m.summary for m in migrate(backend, (*MIGRATIONS, DEMO_STAGES))] == ["demo stages"]
        assert migrate(backend, (*MIGRATIONS, DEMO_STAGES)) == []
        backend.execute(
            "INSERT INTO demo_stages (run_id, stage, users, p95_ms) VALUES (?, ?, ?, ?)", ("before", "ramp", 50, 812.5)
        )
        [row] = backend.fetchall("SELECT users, p95_ms FROM demo_stages WHERE run_id = ?", ("before",))
        assert (row["users"], row["p95_ms"]) == (50, 812.5)
        assert backend.schema_version() == SCHEMA_VERSION + 1
    finally:
        backend.close()
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 1}, newer than this bonzo-bulk"):
        RunStore(store_at)


@pytest.mark.parametrize("had_poll_gap", [False, True])
def test_a_version_1_store_gains_poll_gap_and_keeps_its_runs(store_at: StoreAt, had_poll_gap: bool) -> None:
    old_run = build_run(run_id="old_run", records=4, invalid=0)
    backend = open_backend(StoreLocation.parse(store_at))
    try:
        migrate(backend, MIGRATIONS[:1])
        if had_poll_gap:  # stores made by the builds that put poll_gap into version 1 itself
            backend.execute(f"ALTER TABLE observations ADD COLUMN poll_gap {backend.types['REAL']}")
        backend.execute(
            "INSERT INTO runs (run_id, test_name, integration, target, started_at, dry_run, config_snapshot)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            ("old_run", "t", "monitorbase", "sandbox", old_run.started_at.isoformat(), 0, "{}"),
        )
    finally:
        backend.close()
    with RunStore(store_at) as store:
        assert [m.version for m in store.applied] == [m.version for m in MIGRATIONS[1:]]
        assert store.has_run("old_run")
        result = build_run(run_id="new_run", records=6, invalid=0)
        first = result.phases[0].outcomes[0]
        assert first.observation is not None
        observed = dataclasses.replace(first, observation=dataclasses.replace(first.observation, poll_gap=1.5))
        primary = dataclasses.replace(result.phases[0], outcomes=(observed, *result.phases[0].outcomes[1:]))
        result = dataclasses.replace(result, phases=(primary, *result.phases[1:]))
        store.finish_run(result)
        assert store.load_run("new_run") == result


def test_a_run_stored_before_diagnoses_were_kept_lists_its_failures_record_by_record(store_at: StoreAt) -> None:
    """Migration 7 leaves an older run without diagnoses and without judged counts: it is never diagnosed anew
    (that would lose the contract's provenance); its failures are all sporadic and a note says why."""
    result = build_run(records=6, invalid=0, faults=dict.fromkeys(range(1, 7), MANGLED))
    assert result.phases[0].diagnoses
    with RunStore(store_at) as store:
        store.finish_run(result)
        store.backend.execute("UPDATE phases SET judged = NULL WHERE run_id = ?", (result.run_id,))
        store.backend.execute("DELETE FROM diagnoses WHERE run_id = ?", (result.run_id,))
        older = store.load_run(result.run_id)
        figures = store.load_run(result.run_id, keep=0)
    [phase] = older.phases
    assert phase.diagnoses == () and phase.judged == result.phases[0].judged
    assert older.notes == (*result.notes, UNDIAGNOSED_NOTE)
    rows, _ = failure_rows(older, limit=None)
    assert {row.kind for row in rows} == {"sporadic"} and len(rows) == 6
    assert figures.phases[0].judged == {} and figures.phases[0].metrics == phase.metrics


def test_many_first_opens_of_a_new_store_migrate_it_once(store_at: StoreAt) -> None:
    with ThreadPoolExecutor(4) as pool:
        applied = list(pool.map(lambda _: _open_and_close(store_at), range(4)))
    assert sorted(applied) == [0, 0, 0, len(MIGRATIONS)]


def _open_and_close(store_at: StoreAt) -> int:
    with RunStore(store_at) as store:
        return len(store.applied)


def test_four_runs_and_a_monitor_write_at_once_and_nothing_is_lost(store_at: StoreAt) -> None:
    runs = [build_run(run_id=f"run_{n}", records=40, faults={3: DUPLICATE, 7: WRONG_OWNER}, seed=n) for n in range(4)]
    RunStore(store_at).close()
    done = threading.Event()
    monitor_marks: list[str] = []

    def run_writer(result: RunResult) -> None:
        with RunStore(store_at) as store:
            begin_run_of(store, result, {"test_records": 40})
            for phase in result.phases:
                store.add_records(result.run_id, phase.records)
                deliveries = [o.delivery for o in phase.outcomes if o.delivery is not None]
                for start in range(0, len(deliveries), 5):  # streamed in small batches, as the engine does
                    store.add_deliveries(result.run_id, phase.kind, deliveries[start : start + 5])
                for start in range(0, len(phase.outcomes), 5):
                    store.add_outcomes(result.run_id, phase.kind, phase.outcomes[start : start + 5])
            store.finish_run(result)

    def monitor() -> None:
        with RunStore(store_at) as store:
            beat = 0
            while not done.is_set() or beat < 3:
                beat += 1
                heartbeat = build_run(run_id=f"monitor_{beat}", records=3, invalid=0, seed=100 + beat)
                heartbeat = dataclasses.replace(
                    heartbeat, started_at=heartbeat.started_at + timedelta(days=1, seconds=beat)
                )
                store.finish_run(heartbeat)
                store.set_baseline(heartbeat.run_id)
                store.list_runs(limit=50)
                monitor_marks.append(heartbeat.run_id)

    with ThreadPoolExecutor(5) as pool:
        watcher = pool.submit(monitor)
        writers = [pool.submit(run_writer, result) for result in runs]
        for writer in writers:
            writer.result()  # a lock error surfacing to a writer would raise here
        done.set()
        watcher.result()

    with RunStore(store_at) as store:
        for result in runs:
            assert store.load_run(result.run_id) == result
            assert len(store.observed_prospects(result.run_id)) == len(
                {
                    p["id"]
                    for phase in result.phases
                    for o in phase.outcomes
                    if o.observation
                    for p in o.observation.prospects
                }
            )
        listed = {s.run_id for s in store.list_runs(limit=1000)}
        assert listed == {r.run_id for r in runs} | set(monitor_marks)
        assert store.baseline_run_id("monitorbase") == monitor_marks[-1]
        assert [s.run_id for s in store.list_runs(limit=1000) if s.is_baseline] == [monitor_marks[-1]]


@pytest.mark.parametrize("direction", ["sqlite_to_postgresql", "postgresql_to_sqlite"])
def test_copy_moves_every_run_equal_and_skips_what_the_target_has(
    direction: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    cluster = request.getfixturevalue("pg_cluster")
    sqlite_at, postgres_at = tmp_path / "local.sqlite3", cluster.new_database()
    source, target = (sqlite_at, postgres_at) if direction == "sqlite_to_postgresql" else (postgres_at, sqlite_at)
    results = [
        build_run(run_id=f"r{n}", started_at=build_run().started_at + timedelta(hours=n), seed=n) for n in range(3)
    ]
    interrupted = build_run(run_id="r_interrupted", records=6, invalid=0)
    with RunStore(source) as store:
        for result in results:
            store.finish_run(result)
        store.set_baseline("r1")
        begin_run_of(store, interrupted, {"test_records": 6})
        store.add_records(interrupted.run_id, interrupted.phases[0].records)
    with RunStore(target) as store:
        store.finish_run(results[0])
        store.set_baseline("r0")
    report = copy_store(source, target)
    assert (report.copied, report.skipped) == (["r_interrupted", "r1", "r2"], ["r0"])
    assert report.rows["records"] == 6 + 2 * len(results[1].phases[0].records)
    with RunStore(target) as store:
        for result in results:
            assert store.load_run(result.run_id) == result
        assert store.baseline_run_id("monitorbase") == "r0"  # the target's baseline wins
        assert store.interrupted_runs() == ["r_interrupted"]
        assert len(store.run_records("r_interrupted")) == 6
    assert copy_store(source, target).copied == []


def test_copy_refuses_a_missing_source_or_the_same_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--from .*nothing\.sqlite3.*no run store there"):
        copy_store(tmp_path / "nothing.sqlite3", tmp_path / "b.sqlite3")
    RunStore(tmp_path / "a.sqlite3").close()
    with pytest.raises(ConfigError, match="both name"):
        copy_store(tmp_path / "a.sqlite3", f"sqlite:///{tmp_path / 'a.sqlite3'}")


@pytest.mark.parametrize(
    ("text", "dialect", "label"),
    [
        ("reports/runs.sqlite3", "sqlite", "reports/runs.sqlite3"),
        ("sqlite:///reports/runs.sqlite3", "sqlite", "reports/runs.sqlite3"),
        ("sqlite:////tmp/runs.sqlite3", "sqlite", "/tmp/runs.sqlite3"),
        ("postgresql://ci:s3cret-pass@db.internal:5433/bonzo", "postgresql", "postgresql://ci@db.internal:5433/bonzo"),
        ("postgres://ci@[::1]/bonzo?sslmode=require", "postgresql", "postgresql://ci@[::1]/bonzo"),
    ],
)
def test_locations_parse_and_their_label_never_holds_the_password(text: str, dialect: str, label: str) -> None:
    location = StoreLocation.parse(text)
    assert (location.dialect, location.label) == (dialect, label)
    assert "s3cret" not in location.label


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mysql://u:pw-123456@h/db", r"store_url 'mysql://…': unknown store scheme 'mysql'"),
        ("postgresql://u:pw-123456@h:5432/", r"name the database"),
        ("postgresql://u@h:notaport/db", r"not a valid postgresql:// URL"),
        ("sqlite:/relative", r"sqlite:///relative/path"),
    ],
)
def test_bad_locations_are_config_errors_without_the_password(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        StoreLocation.parse(text)
    assert "pw-123456" not in str(caught.value)


def test_a_pending_cleanup_note_is_set_replaced_listed_and_cleared(store_at: StoreAt) -> None:
    """Issue 25.3: what a cleanup left pending lives in the run's notes (no new table), on either backend."""
    with RunStore(store_at) as store:
        for run_id in ("r_a", "r_b", "r_c"):
            store.finish_run(build_run(run_id=run_id, records=3, invalid=0))
        store.set_cleanup_pending("r_a", 3)
        store.set_cleanup_pending("r_c", 1)
        store.set_cleanup_pending("r_a", 2)
        assert sorted(store.pending_cleanup_runs()) == ["r_a", "r_c"]
        assert (store.cleanup_pending("r_a"), store.cleanup_pending("r_b")) == (2, 0)
        assert sum("cleanup pending" in note for note in store.run_notes("r_a")) == 1

        store.set_cleanup_pending("r_a", 0)
        assert store.pending_cleanup_runs() == ["r_c"]
        assert store.cleanup_pending("r_a") == 0
