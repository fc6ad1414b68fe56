"""Load and stress runs apart from bulk runs (issue 24, finding 3): `history` lists each kind in its own table
with its own verdict, bulk trends and regressions never read a load run, and `report` of a load run renders
the load dashboard, never a bulk health page."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from builders import FAULTY, START, begin_run_of, build_run
from test_dashboard import Page
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.config.schema import RegressionSettings
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.load.child import JournalRow
from bonzo_bulk.load.knee import judge_step
from bonzo_bulk.load.outcome import LoadOutcome, summarize
from bonzo_bulk.load.results import LoadStore, summary_document
from bonzo_bulk.load.scenario import StressScenario
from bonzo_bulk.load.schedule import build_schedule
from bonzo_bulk.load.stats import join
from bonzo_bulk.models import Observation, RunResult
from bonzo_bulk.report.history_regression import comparable_runs
from bonzo_bulk.report.stored import report
from bonzo_bulk.store import RunStore, RunSummary

runner = CliRunner(env={"COLUMNS": "200"})
T0 = 1_800_000_000.0


def _stress(run: RunResult, *, first_broke: bool = False) -> LoadOutcome:
    """A stress run of two sustained steps (every lead sent, answered and created half a second later), or
    with ``first_broke`` one whose first step broke."""
    scenario = StressScenario(start_rate=5, max_rate=6.25, step_duration=2)
    schedule = build_schedule(scenario.stages())
    names = [f"R{i}" for i in range(len(schedule.offsets))]
    rows = [JournalRow(i, T0 + o, T0 + o, T0 + o + 0.01, 200, None) for i, o in enumerate(schedule.offsets)]
    observations = {
        name: Observation(
            name,
            ({"id": i, "created_at": datetime.fromtimestamp(T0 + o + 0.5, UTC).isoformat()},),
            (101,),
            datetime.fromtimestamp(T0 + o + 1, UTC),
            1,
        )
        for i, (name, o) in enumerate(zip(names, schedule.offsets, strict=True))
    }
    arrivals = join(rows, names, schedule.offsets, observations)
    steps = [judge_step(s, arrivals, T0, scenario.breaking, patience_spent=True) for s in schedule.stages]
    if first_broke:
        steps[0] = dataclasses.replace(steps[0], broken=True, reasons=("error rate 5.0% > 1.0%",))
    return summarize(
        kind="stress",
        scenario=scenario,
        run=run,
        schedule=schedule,
        rows=rows,
        names=names,
        t0=T0,
        steps=steps,
        stop_reason=None,
        interrupted=False,
        api_requests=4,
        notes=[],
        observations=observations,
        lags={},
        failed=[],
    )


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return kinds_store(tmp_path / "reports" / "runs.sqlite3")


def kinds_store(path: Path) -> Path:
    """Three bulk runs, then a stress run whose leads fail the bulk thresholds but whose load verdict passes (the
    store README.md's `history` quotes)."""
    stress_run = dataclasses.replace(
        build_run(run_id="run_4_stress", started_at=START + timedelta(hours=3), faults=FAULTY), kind="stress"
    )
    assert not stress_run.passed
    with RunStore(path) as store:
        for index, run_id in enumerate(("run_1_bulk", "run_2_bulk", "run_3_bulk")):
            bulk = build_run(run_id=run_id, started_at=START + timedelta(hours=index), seed=index)
            begin_run_of(store, bulk)
            store.finish_run(bulk)
        begin_run_of(store, stress_run)
        store.finish_run(stress_run)
        outcome = _stress(stress_run)
        assert outcome.passed
        LoadStore(store).save(outcome)
    return path


def test_history_lists_each_kind_in_its_own_table_with_its_own_verdict(store_path: Path) -> None:
    result = runner.invoke(app, ["history", "--store", str(store_path)])
    assert result.exit_code == 0, result.output
    bulk_part, stress_part = result.stdout.split("stress runs of")
    assert "bulk runs of monitorbase" in bulk_part and "run_4_stress" not in bulk_part
    assert "run_4_stress" in stress_part and "PASS" in stress_part and "FAIL" not in stress_part
    assert "knee/s" in stress_part
    only = runner.invoke(app, ["history", "--store", str(store_path), "--kind", "stress", "--json"])
    assert only.exit_code == 0, only.output
    assert [(r["run_id"], r["kind"], r["passed"]) for r in json.loads(only.stdout)] == [
        ("run_4_stress", "stress", True)
    ]
    bad = runner.invoke(app, ["history", "--store", str(store_path), "--kind", "soak"])
    assert bad.exit_code == 2
    assert "--kind 'soak'" in bad.stderr and "bulk, load, stress, calibrate, monitor" in " ".join(bad.stderr.split())


def test_report_of_a_load_run_renders_the_load_dashboard(store_path: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "--store", str(store_path)])  # the latest run: the stress run
    assert result.exit_code == 0, result.output
    page = tmp_path / "reports" / "load" / "run_4_stress" / "dashboard.html"
    assert result.stdout.strip() == f"stress run run_4_stress: {page}"
    assert 'id="plot-rate"' in page.read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="is a stress run, not a bulk run: its report is the load dashboard"):
        report(store_path, run_id="run_4_stress", last=5, out=tmp_path / "x.html")


def test_bulk_trends_never_plot_a_load_run(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "health.html"
    result = runner.invoke(app, ["report", "--store", str(store_path), "--run", "run_3_bulk", "--out", str(out)])
    assert result.exit_code == 0, result.output
    trend = Page(out.read_text(encoding="utf-8")).plots["trend-rates"]["data"][0]["x"]
    assert len(trend) == 3


def test_regressions_compare_a_run_only_with_runs_of_its_kind(store_path: Path) -> None:
    with RunStore(store_path) as store:
        runs = store.list_runs()
    bulk = next(r for r in runs if r.run_id == "run_3_bulk")
    passed_stress = dataclasses.replace(next(r for r in runs if r.kind == "stress"), started_at=bulk.started_at)
    history: list[RunSummary] = [*runs, passed_stress]
    later = dataclasses.replace(bulk, run_id="run_5_bulk", started_at=bulk.started_at + timedelta(hours=9))
    compared = comparable_runs(later, history, limit=RegressionSettings().history_runs)
    assert {r.kind for r in compared} == {"bulk"} and "run_4_stress" not in {r.run_id for r in compared}


def test_the_stress_json_never_contradicts_itself() -> None:
    """Issue 24, finding 7: `knee_rate: 400` beside `knee_reached: false`, and a PASS beside a knee below the
    first step."""
    unbroken = summary_document(_stress(build_run(run_id="s_ok")))
    assert (unbroken["knee_reached"], unbroken["knee_rate"], unbroken["sustained_up_to"]) == (False, None, 6.25)
    assert unbroken["knee"] == "no knee up to 6.25 leads/s: every step run was sustained" and unbroken["passed"]
    first = _stress(build_run(run_id="s_first"), first_broke=True)
    document = summary_document(first)
    assert (document["knee_reached"], document["knee_rate"], document["sustained_up_to"]) == (True, None, None)
    assert document["knee"].startswith("knee below the first step (5 leads/s)")
    assert not document["passed"] and first.exit_code == 1
    assert [t["name"] for t in document["thresholds"] if not t["passed"]] == ["first_step_sustained"]
