"""Runs have a kind (bulk, load, stress, calibrate, monitor), on SQLite and PostgreSQL alike: set when the run
starts, kept by migration 8 for runs stored before it, and history, baselines and trends read one kind at a time
(issue 24, finding 3: a stress run listed as a failing bulk run and plotted in bulk trends)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from builders import begin_run_of, build_run

from bonzo_bulk.models import RunKind, RunResult
from bonzo_bulk.store import MIGRATIONS, RunStore, StoreLocation
from bonzo_bulk.store.connection import open_backend
from bonzo_bulk.store.schema import migrate

StoreAt = str | Path


def _stored(store: RunStore, result: RunResult) -> None:
    begin_run_of(store, result)
    store.finish_run(result)


def test_a_store_from_before_kinds_reads_its_runs_as_bulk_and_its_load_runs_as_load(store_at: StoreAt) -> None:
    bulk = build_run(run_id="old_bulk", records=3, invalid=0)
    stress = build_run(run_id="old_stress", records=3, invalid=0)
    backend = open_backend(StoreLocation.parse(store_at))
    try:
        migrate(backend, MIGRATIONS[:7])
        for run in (bulk, stress):
            backend.execute(
                "INSERT INTO runs (run_id, test_name, integration, target, started_at, dry_run, config_snapshot)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run.run_id, "t", "monitorbase", "sandbox", run.started_at.isoformat(), 0, "{}"),
            )
        backend.execute(
            "INSERT INTO load_runs (run_id, kind, scenario, t0, knee_rate, summary) VALUES (?, ?, ?, ?, ?, ?)",
            ("old_stress", "stress", "{}", 0.0, 400.0, "{}"),
        )
    finally:
        backend.close()
    with RunStore(store_at) as store:
        assert [m.version for m in store.applied] == [m.version for m in MIGRATIONS[7:]]
        assert store.run_kind("old_bulk") == "bulk"
        assert store.run_kind("old_stress") == "stress"
        assert [s.run_id for s in store.list_runs(kinds=("bulk",))] == ["old_bulk"]


def test_each_run_keeps_the_kind_it_started_with_and_history_lists_one_kind_at_a_time(store_at: StoreAt) -> None:
    start = build_run(run_id="r_bulk").started_at
    kinds: tuple[RunKind, ...] = ("bulk", "load", "stress", "calibrate", "monitor")
    runs = {
        kind: dataclasses.replace(
            build_run(run_id=f"r_{kind}", records=3, invalid=0),
            kind=kind,
            started_at=start + timedelta(minutes=index),
        )
        for index, kind in enumerate(kinds)
    }
    with RunStore(store_at) as store:
        for result in runs.values():
            _stored(store, result)
        assert {kind: store.run_kind(f"r_{kind}") for kind in runs} == {kind: kind for kind in runs}
        assert [s.run_id for s in store.list_runs(kinds=("bulk",))] == ["r_bulk"]
        assert [s.kind for s in store.list_runs(kinds=("load", "stress"))] == ["stress", "load"]
        assert len(store.list_runs()) == 5
        assert store.load_run("r_stress").kind == "stress"


def test_a_baseline_is_per_kind_so_a_load_run_never_replaces_the_bulk_baseline(store_at: StoreAt) -> None:
    bulk = build_run(run_id="b1", records=3, invalid=0)
    load = dataclasses.replace(build_run(run_id="l1", records=3, invalid=0), kind="load")
    with RunStore(store_at) as store:
        _stored(store, bulk)
        _stored(store, load)
        store.set_baseline("b1")
        store.set_baseline("l1")
        assert store.baseline_run_id("monitorbase") == "b1"
        assert store.baseline_run_id("monitorbase", "load") == "l1"
        assert {s.run_id for s in store.list_runs() if s.is_baseline} == {"b1", "l1"}


def test_the_kind_survives_a_copy_between_stores(store_at: StoreAt, tmp_path: Path) -> None:
    from bonzo_bulk.store.transfer import copy_store

    stress = dataclasses.replace(build_run(run_id="s1", records=3, invalid=0), kind="stress")
    with RunStore(store_at) as store:
        _stored(store, stress)
    copy_store(store_at, tmp_path / "copy.sqlite3")
    with RunStore(tmp_path / "copy.sqlite3") as copied:
        assert copied.run_kind("s1") == "stress"
        assert copied.list_runs()[0].kind == "stress"


def test_a_store_that_passed_version_8_without_it_gains_the_kind(store_at: StoreAt) -> None:
    """Migration 8 was numbered below one appended beside it (9): a store already at 9 skipped it by number.
    The migration is found missing by its column and applied; its runs are bulk, its load runs load."""
    bulk = build_run(run_id="b", records=3, invalid=0)
    with RunStore(store_at) as store:
        _stored(store, bulk)
        store.backend.execute("DROP INDEX runs_by_kind")
        store.backend.execute("ALTER TABLE runs DROP COLUMN kind")
        assert "kind" not in store.backend.columns("runs")
    with RunStore(store_at) as store:
        assert [m.version for m in store.applied] == [8]
        assert store.run_kind("b") == "bulk" and store.list_runs(kinds=("bulk",))[0].run_id == "b"
    with RunStore(store_at) as again:
        assert again.applied == []
