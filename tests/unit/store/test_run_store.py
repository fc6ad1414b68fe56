"""The run store on SQLite and PostgreSQL: written as the run goes, read back field for field, safe across processes."""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from builders import (
    DROPPED,
    DUPLICATE,
    FAULTY,
    MANGLED,
    MISSING,
    SLOW,
    WRONG_OWNER,
    WRONG_TEAM,
    RunSpec,
    begin_run_of,
    build_run,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bonzo_bulk.errors import StoreError, StoreUnusable, UnknownRun
from bonzo_bulk.judge.diagnosis import diagnose
from bonzo_bulk.models import Placement, RunResult
from bonzo_bulk.store import SCHEMA_VERSION, DeletedProspect, RunStore, RunSummary

StoreAt = str | Path


def _begin(store: RunStore, result: RunResult) -> None:
    begin_run_of(store, result, {"regression": {"p95_processing_increase": 0.25}, "test_records": 30})


def _record_as_it_goes(store: RunStore, result: RunResult) -> None:
    _begin(store, result)
    for phase in result.phases:
        store.add_records(result.run_id, phase.records)
        deliveries = [o.delivery for o in phase.outcomes if o.delivery is not None]
        half = len(deliveries) // 2
        store.add_deliveries(result.run_id, phase.kind, deliveries[:half])
        store.add_deliveries(result.run_id, phase.kind, deliveries[half:])
        store.add_outcomes(result.run_id, phase.kind, phase.outcomes[:half])
        store.add_outcomes(result.run_id, phase.kind, phase.outcomes[half:])


def test_a_finished_run_reads_back_equal(store_at: StoreAt) -> None:
    result = build_run(faults=FAULTY, control=6, notes=("fault profile: mixed", "ünïcødé ✓"))
    with RunStore(store_at) as store:
        _record_as_it_goes(store, result)
        store.finish_run(result)
        assert store.load_run(result.run_id) == result
    with RunStore(store_at) as reopened:
        assert reopened.load_run(result.run_id) == result
        assert reopened.config_snapshot(result.run_id)["test_records"] == 30


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
fault_kinds = st.sampled_from([DROPPED, MISSING, WRONG_OWNER, WRONG_TEAM, MANGLED, SLOW, DUPLICATE])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.integers(min_value=1, max_value=12),
    control=st.integers(min_value=0, max_value=3),
    faults=st.dictionaries(st.integers(min_value=1, max_value=12), fault_kinds, max_size=5),
    target=st.sampled_from(["sandbox", "live"]),
    notes=st.lists(st.text(max_size=20), max_size=2),
    expected=json_values,
    actual=json_values,
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_any_run_round_trips(
    store_at: StoreAt,
    records: int,
    control: int,
    faults: dict[int, str],
    target: Any,
    notes: list[str],
    expected: Any,
    actual: Any,
    seed: int,
) -> None:
    spec = RunSpec(
        records=records,
        control=control,
        faults=faults,
        target=target,
        notes=tuple(notes),
        invalid=min(2, records - 1),
        seed=seed,
        run_id=f"run_{seed}",
    )
    result = build_run(spec)
    primary = result.phases[0]
    first = primary.outcomes[0]
    odd_check = dataclasses.replace(first.checks[0], expected=expected, actual=actual, passed=False)
    odd = dataclasses.replace(first, checks=(*first.checks, odd_check))
    judged = dict(primary.judged) | {odd_check.check: primary.judged.get(odd_check.check, 0) + 1}
    primary = dataclasses.replace(
        primary,
        outcomes=(odd, *primary.outcomes[1:]),
        failed_records=primary.failed_records + first.passed,
        judged=judged,
        diagnoses=diagnose("primary", [c for o in (odd, *primary.outcomes[1:]) for c in o.checks]),
    )
    result = dataclasses.replace(result, phases=(primary, *result.phases[1:]))
    with RunStore(store_at) as store:
        store.finish_run(result)
        store.finish_run(result)
        assert store.load_run(result.run_id) == result


def test_diagnoses_read_back_as_the_run_worded_them(store_at: StoreAt) -> None:
    """Causes and fixes name where the promise came from (here: declared in the config); the store keeps them
    as the run made them, for a full read and a figures-only one alike."""
    result = build_run(records=6, invalid=0, faults=dict.fromkeys(range(1, 7), MANGLED))
    primary = result.phases[0]
    checks = [c for o in primary.outcomes for c in o.checks]
    field = "first_name"
    worded = diagnose("primary", checks, provenance={field: "declared"}, sources={field: "first_name"})
    assert worded != primary.diagnoses and "declared in your config" in worded[0].cause
    result = dataclasses.replace(result, phases=(dataclasses.replace(primary, diagnoses=worded),))
    with RunStore(store_at) as store:
        store.finish_run(result)
        assert store.load_run(result.run_id) == result
        figures = store.load_run(result.run_id, keep=0).phases[0]
        assert (figures.diagnoses, figures.judged) == (worded, primary.judged)


def test_an_interrupted_run_can_be_inspected_and_cleaned_from_another_process(store_at: StoreAt) -> None:
    result = build_run(faults={24: DUPLICATE, 11: WRONG_OWNER})
    with RunStore(store_at) as store:
        _record_as_it_goes(store, result)
        script = (
            "import sys; from bonzo_bulk.store import RunStore\n"
            "with RunStore(sys.argv[1]) as s:\n"
            "    print(s.interrupted_runs()[0]); print(len(s.observed_prospects(s.interrupted_runs()[0])))\n"
        )
        argv = [sys.executable, "-c", script, str(store_at)]
        child = subprocess.run(argv, capture_output=True, text=True, check=True)
        assert child.stdout.split() == [result.run_id, str(28 + 1)]  # 28 valid records, one duplicated
        assert store.interrupted_runs() == [result.run_id]
        [summary] = store.list_runs()
        assert (summary.finished_at, summary.passed, summary.records) == (None, None, 30)
        with pytest.raises(StoreError, match="never finished"):
            store.load_run(result.run_id)
        with pytest.raises(StoreError, match="cannot be a baseline"):
            store.set_baseline(result.run_id)


def test_observed_prospects_carry_owner_and_deletion_marks(store_at: StoreAt) -> None:
    result = build_run(faults={11: WRONG_OWNER, 24: DUPLICATE})
    with RunStore(store_at) as store:
        _record_as_it_goes(store, result)
        prospects = {p.prospect_id: p for p in store.observed_prospects(result.run_id)}
        assert prospects[50_011].owner_user_id == 103  # record 11 meant for Bob (102) landed with Carol
        assert prospects[50_001].first_name == "TestRecord_MonitorBase_001"
        assert prospects[50_001].email == "test.monitorbase.001@bonzobuddy.test"
        assert {50_024, 90_024} <= set(prospects)
        store.mark_deleted(
            result.run_id,
            [DeletedProspect(pid, None, prospects[pid].email, prospects[pid].first_name) for pid in (50_001, 90_024)],
        )
        store.finish_run(result)
        store.finish_run(result)
        after = {p.prospect_id: p for p in store.observed_prospects(result.run_id)}
        assert len(after) == len(prospects)
        assert {pid for pid, p in after.items() if p.deleted_at is not None} == {50_001, 90_024}
        assert store.interrupted_runs() == []


def test_each_prospect_keeps_the_owner_the_judge_placed_it_with(store_at: StoreAt) -> None:
    """The cleanup table takes each prospect's owner from the outcome's placements (oldest prospect first),
    however the API listed the prospects."""
    result = build_run(records=3, invalid=0, faults={2: DUPLICATE})
    outcome = result.phases[0].outcomes[1]
    assert outcome.observation is not None
    older, newer = outcome.observation.oldest_first()
    listed = dataclasses.replace(outcome.observation, prospects=(newer, older))
    placements = (Placement(101, "alice.lo@bonzobuddy.test", 7), Placement(103, "carol.lo@bonzobuddy.test", 8))
    duplicated = dataclasses.replace(outcome, observation=listed, placements=placements)
    with RunStore(store_at) as store:
        _begin(store, result)
        store.add_outcomes(result.run_id, "primary", [duplicated])
        owners = {p.prospect_id: p.owner_user_id for p in store.observed_prospects(result.run_id)}
    assert owners == {older["id"]: 101, newer["id"]: 103}


def test_history_latest_and_one_baseline_per_integration(store_at: StoreAt) -> None:
    from datetime import timedelta

    runs = [build_run(run_id=f"mb_{i}", started_at=FAULTY_START + timedelta(hours=i)) for i in range(3)]
    other = build_run(run_id="zz_0", integration="zillow", started_at=FAULTY_START + timedelta(hours=9))
    with RunStore(store_at) as store:
        for result in [*runs, other]:
            store.finish_run(result)
        assert [s.run_id for s in store.list_runs()] == ["zz_0", "mb_2", "mb_1", "mb_0"]
        assert [s.run_id for s in store.list_runs(integration="monitorbase", limit=2)] == ["mb_2", "mb_1"]
        assert store.latest_run_id() == "zz_0"
        assert store.latest_run_id("monitorbase") == "mb_2"
        assert store.baseline_run_id("monitorbase") is None
        store.set_baseline("mb_0")
        store.set_baseline("zz_0")
        store.set_baseline("mb_1")
        assert store.baseline_run_id("monitorbase") == "mb_1"
        assert store.baseline_run_id("zillow") == "zz_0"
        assert [s.run_id for s in store.list_runs() if s.is_baseline] == ["zz_0", "mb_1"]
        summary = next(s for s in store.list_runs() if s.run_id == "mb_2")
        assert summary == RunSummary.from_result(runs[2])


FAULTY_START = build_run().started_at


def test_unknown_run_names_the_recent_ones(store_at: StoreAt) -> None:
    with RunStore(store_at) as store:
        store.finish_run(build_run(run_id="known_1"))
        with pytest.raises(UnknownRun, match=r"no run with id 'nope'; recent runs: known_1") as unknown:
            store.load_run("nope")
        assert unknown.value.exit_code == 2  # an id the user gave: bad input
        with pytest.raises(StoreError, match="nope"):
            store.add_records("nope", [])


def test_sqlite_failures_become_store_errors_naming_the_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnusable, match=r"junk\.sqlite3 is not a SQLite database bonzo-bulk can use") as unusable:
        RunStore(junk)
    assert unusable.value.exit_code == 2
    truncated = tmp_path / "truncated.sqlite3"
    RunStore(truncated).close()
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(StoreUnusable, match=r"truncated\.sqlite3 .*malformed"):
        RunStore(truncated)
    newer = tmp_path / "newer.sqlite3"
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this bonzo-bulk"):
        RunStore(newer)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open run store"):
        RunStore(blocker / "runs.sqlite3")


def test_sqlite_store_uses_wal_and_a_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "runs.sqlite3"
    RunStore(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_run_is_in_progress_while_the_store_that_began_it_is_open(store_at: StoreAt) -> None:
    """Issue 25.4: cleanup must tell a run in flight from one whose process died; both are unfinished."""
    result = build_run(run_id="r20260101-000000-abcd")
    running = RunStore(store_at)
    try:
        begin_run_of(running, result)
        with RunStore(store_at) as other:
            assert other.interrupted_runs() == [result.run_id]
            assert other.running_runs() == [result.run_id]
    finally:
        running.close()
    with RunStore(store_at) as other:
        assert other.interrupted_runs() == [result.run_id], "it never finished"
        assert other.running_runs() == [], "the process that ran it let go: it is not running"


def test_a_deletion_of_a_prospect_the_run_never_saw_is_recorded_under_its_record(store_at: StoreAt) -> None:
    """Issue 24.5: a run stopped before settling has no prospect rows; cleanup's deletions must still be kept."""
    result = build_run(records=3, invalid=0)
    with RunStore(store_at) as store:
        _begin(store, result)
        store.add_records(result.run_id, result.phases[0].records)
        assert store.observed_prospects(result.run_id) == []
        [first, *_] = store.run_records(result.run_id)
        store.mark_deleted(result.run_id, [DeletedProspect("777", 101, first.email.upper(), first.first_name)])
        [gone] = store.observed_prospects(result.run_id)
        ledger_name = store.backend.fetchone("SELECT record_name, phase FROM prospects WHERE prospect_id = '777'")
    assert (gone.prospect_id, gone.owner_user_id, gone.phase) == (777, 101, first.phase)
    assert gone.deleted_at is not None
    assert ledger_name is not None and ledger_name["record_name"] == first.name
