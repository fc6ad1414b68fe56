"""Where a run store's space goes, and trimming old runs' per-record rows, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from pathlib import Path

from builders import START, begin_run_of, build_run

from bonzo_bulk.store import RunStore

StoreAt = str | Path


def test_trimming_a_run_keeps_its_figures_and_prospects_and_frees_its_share(store_at: StoreAt) -> None:
    old = build_run(run_id="old", records=12, started_at=START)
    new = build_run(run_id="new", records=12, seed=3)
    with RunStore(store_at) as store:
        for run in (old, new):
            begin_run_of(store, run)
            store.finish_run(run)
        usage = {table: (rows, size) for table, rows, size in store.space_usage()}
        assert usage["checks"][0] > 0 and (usage["checks"][1] or 0) > 0
        part = store.estimated_bytes(["old"], whole=False)
        whole = store.estimated_bytes(["old"], whole=True)
        assert 0 < part <= whole
        prospects = store.observed_prospects("old")
        rows = store.record_rows("old")
        assert store.trim_runs(["old"], "per-record rows removed by retention") == rows
        assert store.record_rows("old") == 0 and store.record_rows("new") > 0
        trimmed = store.load_run("old")
        assert trimmed.phases[0].metrics == old.phases[0].metrics and trimmed.phases[0].outcomes == ()
        assert trimmed.notes[-1] == "per-record rows removed by retention"
        assert store.observed_prospects("old") == prospects
        assert store.estimated_bytes(["old"], whole=False) == 0
        assert store.load_run("new") == new
