"""Report retention: `bonzo-bulk prune` and `reports.keep_runs` after each run delete old runs' report files
(and, when asked, their store rows), never the baseline's or an unfinished run's, and say what they freed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import START, begin_run_of, build_run
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.models import RunResult
from bonzo_bulk.report.publish import publish
from bonzo_bulk.report.retention import prune
from bonzo_bulk.store import RunStore
from bonzo_bulk.store.space import human_bytes

runner = CliRunner()
IDS = [f"r20250304-1{hour}0000-aa0{hour}" for hour in range(5)]  # oldest first


def _run(index: int, **overrides: Any) -> RunResult:
    return build_run(run_id=IDS[index], started_at=START + timedelta(hours=index), records=6, **overrides)


def _write_reports(health: Path, run_id: str, size: int) -> list[Path]:
    health.mkdir(parents=True, exist_ok=True)
    files = [health / f"monitorbase_{run_id}.json", health / f"monitorbase_{run_id}.html"]
    for path in files:
        path.write_bytes(b"x" * size)
    return files


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    """A store of five finished runs (the oldest the baseline), each with a 1 kB JSON and HTML, plus a
    file prune must leave alone."""
    health = tmp_path / "reports" / "integration_health_reports"
    with RunStore(tmp_path / "reports" / "runs.sqlite3") as store:
        for index in range(5):
            result = _run(index)
            begin_run_of(store, result, {"reports": {"keep_runs": 3}})
            store.finish_run(result)
            _write_reports(health, result.run_id, 1000 + index)
        store.set_baseline(IDS[0])
    (health / "latest.json").write_text("{}")
    return tmp_path / "reports"


def _left(reports: Path) -> set[str]:
    return {p.name for p in (reports / "integration_health_reports").iterdir()}


def test_prune_keeps_the_newest_runs_and_the_baseline_and_counts_the_bytes(reports: Path) -> None:
    report = prune(reports / "runs.sqlite3", reports / "integration_health_reports", keep=2)
    assert report.kept == (IDS[4], IDS[3])
    assert [r.run_id for r in report.pruned] == [IDS[2], IDS[1]]
    assert report.protected == (IDS[0],)
    assert report.file_bytes == 2 * 1002 + 2 * 1001
    left = _left(reports)
    assert not any(IDS[1] in name or IDS[2] in name for name in left)
    assert {f"monitorbase_{IDS[0]}.html", f"monitorbase_{IDS[4]}.json", "latest.json"} <= left
    with RunStore(reports / "runs.sqlite3") as store:
        assert len(store.list_runs(limit=100)) == 5, "files only: the history stays"


def test_dry_run_deletes_nothing_and_says_what_it_would(reports: Path) -> None:
    before = _left(reports)
    result = runner.invoke(app, ["prune", "--keep", "1", "--dry-run", "--store", str(reports / "runs.sqlite3")])
    assert result.exit_code == 0, result.output
    assert _left(reports) == before
    assert f"would remove run {IDS[1]} (monitorbase): 2 file(s) and its per-record rows, 2.0 kB" in result.stdout
    assert f"kept run {IDS[0]}: a baseline or unfinished run is never pruned" in result.stdout
    assert "would remove 3 run(s): 6.0 kB of files + about " in result.stdout
    assert "of the run store would be freed" in result.stdout


def test_prune_from_store_deletes_rows_but_keeps_live_runs_not_cleaned_up(tmp_path: Path, reports: Path) -> None:
    store_path = reports / "runs.sqlite3"
    with RunStore(store_path) as store:
        live = build_run(run_id="r20250304-050000-1111", started_at=START - timedelta(hours=5), target="live")
        begin_run_of(store, live)
        store.finish_run(live)
        assert store.observed_prospects(live.run_id), "the live run needs prospects for this test"
    result = runner.invoke(app, ["prune", "--keep", "2", "--from-store", "--store", str(store_path)])
    assert result.exit_code == 0, result.output
    with RunStore(store_path) as store:
        remaining = {s.run_id for s in store.list_runs(limit=100)}
    assert remaining == {IDS[4], IDS[3], IDS[0], live.run_id}
    assert f"removed run {IDS[1]} (monitorbase): 2 file(s) and its store rows" in result.stdout
    assert f"`bonzo-bulk cleanup --run {live.run_id}` first" in result.stdout
    assert "of the run store" in result.stdout and " freed" in result.stdout


def test_bare_prune_honours_keep_runs_of_the_latest_runs_config(reports: Path) -> None:
    result = runner.invoke(app, ["prune", "--store", str(reports / "runs.sqlite3"), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["keep"] == 3
    assert [r["run_id"] for r in document["pruned"]] == [IDS[1]]
    assert document["freed_bytes"] >= 2 * 1001 and document["pruned"][0]["trimmed"]


def test_prune_refuses_keep_zero_with_the_fix(reports: Path) -> None:
    result = runner.invoke(app, ["prune", "--keep", "0", "--store", str(reports / "runs.sqlite3")])
    assert result.exit_code == 2
    assert "--keep" in result.output


def test_each_run_applies_keep_runs_and_reports_what_it_freed(tmp_path: Path, make_config: Any) -> None:
    loaded: LoadedConfig = make_config(tmp_path, reports={"keep_runs": 1})
    health = Path(loaded.config.reports_dir) / "integration_health_reports"
    store_path = Path(loaded.config.reports_dir) / "runs.sqlite3"
    older = _run(0)
    with RunStore(store_path) as store:
        begin_run_of(store, older)
        store.finish_run(older)
    old_files = _write_reports(health, older.run_id, 5000)
    newest = _run(1)
    with RunStore(store_path) as store:
        begin_run_of(store, newest)
        store.finish_run(newest)
    published = publish(newest, loaded)
    assert published.retention is not None
    assert [r.run_id for r in published.retention.pruned] == [older.run_id]
    assert published.retention.file_bytes == 10_000
    assert not any(p.exists() for p in old_files)
    assert published.dashboard.exists() and published.summary_json.exists()


def test_keep_runs_zero_keeps_every_report(tmp_path: Path, make_config: Any) -> None:
    loaded: LoadedConfig = make_config(tmp_path, reports={"keep_runs": 0})
    health = Path(loaded.config.reports_dir) / "integration_health_reports"
    old_files = _write_reports(health, IDS[0], 10)
    published = publish(_run(1), loaded)
    assert published.retention is None
    assert all(p.exists() for p in old_files)


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (999, 1000, 4_812_345, 110_000_000_000)] == [
        "999 B",
        "1.0 kB",
        "4.8 MB",
        "110.0 GB",
    ]


def test_old_runs_lose_their_per_record_rows_load_folders_and_sandboxes_but_history_stays(reports: Path) -> None:
    """Issue 24, finding 6: 2.9 GB in an afternoon (run store 2.3 GB, load reports, sandbox databases)."""
    for run_id in IDS:
        (reports / "load" / run_id).mkdir(parents=True)
        (reports / "load" / run_id / "journal.jsonl").write_bytes(b"j" * 500)
        (reports / "sandboxes").mkdir(exist_ok=True)
        (reports / "sandboxes" / f"{run_id}.sqlite3").write_bytes(b"s" * 700)
    with RunStore(reports / "runs.sqlite3") as store:
        before = store.load_run(IDS[1])
        prospects = store.observed_prospects(IDS[1])
        assert store.record_rows(IDS[1]) > 0 and prospects
    report = prune(reports / "runs.sqlite3", reports / "integration_health_reports", keep=2)
    assert [(r.run_id, r.trimmed, r.store_rows) for r in report.pruned] == [
        (IDS[2], True, False),
        (IDS[1], True, False),
    ]
    assert report.file_bytes == (2 * 1002 + 500 + 700) + (2 * 1001 + 500 + 700)  # reports, load folder, sandbox
    assert sorted(p.name for p in (reports / "load").iterdir()) == [IDS[0], IDS[3], IDS[4]]
    assert sorted(p.name for p in (reports / "sandboxes").iterdir()) == [
        f"{i}.sqlite3" for i in (IDS[0], IDS[3], IDS[4])
    ]
    with RunStore(reports / "runs.sqlite3") as store:
        assert len(store.list_runs(limit=100)) == 5, "history keeps every run"
        assert store.record_rows(IDS[1]) == 0 and store.record_rows(IDS[3]) > 0
        trimmed = store.load_run(IDS[1])
        assert trimmed.phases[0].metrics == before.phases[0].metrics, "the figures trends read stay"
        assert trimmed.phases[0].outcomes == () and any("removed by retention" in n for n in trimmed.notes)
        assert store.observed_prospects(IDS[1]) == prospects, "cleanup still finds what the run made"
    again = prune(reports / "runs.sqlite3", reports / "integration_health_reports", keep=2)
    assert [r.trimmed for r in again.pruned] == [False, False], "a trimmed run is not trimmed twice"


def test_dry_run_says_what_the_store_would_free_even_without_report_files(reports: Path) -> None:
    """Before, `prune --dry-run` said "nothing to prune" beside a 1.4 GB folder: only report files counted."""
    for path in (reports / "integration_health_reports").iterdir():
        path.unlink()
    result = runner.invoke(app, ["prune", "--keep", "2", "--dry-run", "--store", str(reports / "runs.sqlite3")])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.stdout.split())
    assert "would remove 2 run(s): 0 B of files + about " in flat and "of the run store would be freed" in flat
    assert "nothing to prune" not in flat
    with RunStore(reports / "runs.sqlite3") as store:
        assert store.record_rows(IDS[1]) > 0, "a dry run deletes nothing"


def test_interrupted_runs_are_pruned_but_never_a_run_under_way(reports: Path) -> None:
    """Interrupted runs were never pruned. An unfinished run is kept only while its process still holds the run
    (it is under way); an interrupted live run keeps its rows until cleanup removed what it sent."""
    now = datetime.now(UTC)
    newest = build_run(run_id="r20991231-000000-ffff", records=3, started_at=now)
    running = build_run(run_id="r20991231-000000-abcd", records=3, started_at=now - timedelta(hours=1))
    stale_sandbox = build_run(run_id="r20240101-000000-0001", records=3, started_at=START - timedelta(days=30))
    stale_live = build_run(
        run_id="r20240101-000000-0002", records=3, target="live", started_at=START - timedelta(days=31)
    )
    with RunStore(reports / "runs.sqlite3") as store:
        begin_run_of(store, newest)
        store.finish_run(newest)
        for run in (stale_sandbox, stale_live):
            begin_run_of(store, run)
            store.add_records(run.run_id, run.phases[0].records)
            store.mark_interrupted(run.run_id, "interrupted (SIGINT or SIGTERM) before it finished")
    with RunStore(reports / "runs.sqlite3") as under_way:  # another run, still going
        begin_run_of(under_way, running)
        under_way.add_records(running.run_id, running.phases[0].records)
        report = prune(reports / "runs.sqlite3", reports / "integration_health_reports", keep=1)
    assert running.run_id in report.protected
    pruned = {r.run_id: r for r in report.pruned}
    assert pruned[stale_sandbox.run_id].trimmed
    assert not pruned[stale_live.run_id].trimmed
    assert any(f"interrupted live run {stale_live.run_id}" in note and "cleanup --run" in note for note in report.notes)
    with RunStore(reports / "runs.sqlite3") as store:
        assert store.record_rows(stale_sandbox.run_id) == 0 and store.record_rows(stale_live.run_id) > 0
        assert store.record_rows(running.run_id) > 0


def test_stats_show_where_the_space_goes(reports: Path) -> None:
    (reports / "load" / IDS[4]).mkdir(parents=True)
    (reports / "load" / IDS[4] / "dashboard.html").write_bytes(b"d" * 4000)
    result = runner.invoke(app, ["prune", "--stats", "--json", "--store", str(reports / "runs.sqlite3")])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    places = {p["what"].split(" (")[0]: p for p in document["places"]}
    assert places["load runs"]["bytes"] == 4000 and places["load runs"]["entries"] == 1
    assert places["dashboards and JSON summaries"]["entries"] == 11
    assert next(p for p in document["places"] if p["what"].startswith("run store"))["bytes"] > 0
    tables = {t["table"]: t for t in document["tables"]}
    with RunStore(reports / "runs.sqlite3") as store:
        records = sum(store.record_rows(run_id) for run_id in IDS)
    assert tables["checks"]["rows"] > 0 and tables["records"]["bytes"] > 0
    assert records == sum(tables[t]["rows"] for t in ("checks", "outcomes", "observations", "deliveries", "records"))
    assert document["runs_by_kind"] == {"bulk": 5} and document["unfinished_runs"] == 0
    assert sum(p["bytes"] for p in document["places"]) == document["total_bytes"]
