"""`bonzo-bulk report | history | baseline`: happy paths, and bad input answered with exit 2 and the fix."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import DROPPED, FAULTY, START, WRONG_OWNER, begin_bare_run, begin_run_of, build_run
from test_dashboard import Page
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.models import RunResult
from bonzo_bulk.sandbox import SandboxServer
from bonzo_bulk.store import RunStore

runner = CliRunner(env={"COLUMNS": "200"})


def _flat(text: str) -> str:
    return " ".join(text.split())


def _store_run(store: RunStore, result: RunResult, snapshot: dict[str, Any] | None = None) -> None:
    begin_run_of(store, result, snapshot)
    store.finish_run(result)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "reports" / "runs.sqlite3"
    with RunStore(path) as store:
        _store_run(store, build_run(run_id="run_1_good", started_at=START))
        _store_run(store, build_run(run_id="run_2_good", started_at=START + timedelta(hours=1), seed=2))
        _store_run(store, build_run(run_id="run_3_bad", started_at=START + timedelta(hours=2), faults=FAULTY))
        store.set_baseline("run_1_good")
    return path


def test_report_renders_the_latest_run_with_history_and_regressions(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "health.html"
    result = runner.invoke(app, ["report", "--store", str(store_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    page = Page(out.read_text(encoding="utf-8"))
    assert "warn" in page.regression_class.split(), "regression.fail_on_regression is off: a warning"
    assert ("primary", "creation_rate") in page.regression_metrics
    assert len(page.plots["trend-rates"]["data"][0]["x"]) == 3
    assert page.failure_rows


def _systemic(page: Path) -> list[str]:
    """A dashboard's systemic findings as plain lines: each diagnosis, then the fix they share."""
    items = re.findall(r'<li class="(?:diagnosis|fix)"[^>]*>(.*?)</li>', page.read_text(encoding="utf-8"))
    return [html.unescape(re.sub(r"<[^>]+>", "", item)) for item in items]


def test_report_explains_a_failing_run_as_the_run_did(
    make_config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: SandboxServer
) -> None:
    """The diagnoses are read back as the run made them: the same checks and counts, the same causes (naming
    where the broken promise came from: the contract declared in the config) and the same fixes."""
    for name in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "SUPERUSER_WEBHOOK_URL", "BONZO_API_URL"):
        monkeypatch.delenv(name, raising=False)
    declared = {"primary": [{"to": "source", "value": "not-what-the-hook-stores"}]}
    clean = {"url": sandbox.url, "faults": {"seed": 1, "faults": []}}  # the session's sandbox, whatever was left on it
    loaded = make_config(tmp_path, sandbox.url, test_records=6, contract=declared, sandbox=clean)
    ran = runner.invoke(app, ["run", "--config", str(loaded.path), "--json"])
    assert ran.exit_code == 1, ran.output
    summary = json.loads(ran.stdout)
    [live] = summary["diagnoses"]
    assert (live["check"], live["failed"], live["judged"]) == ("source", 6, 6)
    assert "declared in your config" in live["cause"]
    reports = Path(loaded.config.reports_dir)
    out = tmp_path / "report.html"
    store = str(reports / "runs.sqlite3")
    reported = runner.invoke(app, ["report", "--store", store, "--run", summary["run_id"], "--out", str(out)])
    assert reported.exit_code == 0, reported.output
    [problem] = summary["problems"]  # the run's one finding, tracked as a new problem
    assert (problem["check"], problem["cause"], problem["change"]) == ("source", "systemic", "new")
    assert _systemic(out) == [f"{live['headline']} [new problem {problem['id']}]", f"fix: {live['fix']}"]
    published = reports / "integration_health_reports" / f"{summary['integration']}_{summary['run_id']}.html"
    assert _systemic(out) == _systemic(published)


def test_report_for_an_older_run_shows_only_runs_up_to_it(store_path: Path) -> None:
    result = runner.invoke(app, ["report", "--store", str(store_path), "--run", "run_2_good", "--last", "5"])
    assert result.exit_code == 0, result.output
    default = store_path.parent / "integration_health_reports" / "monitorbase_run_2_good.html"
    assert result.stdout.strip() == str(default)
    page = Page(default.read_text(encoding="utf-8"))
    assert page.plots["trend-rates"]["data"][0]["customdata"] == ["run_1_good", "run_2_good"]
    assert page.regression_class.split() == ["flags", "ok"]
    result = runner.invoke(app, ["report", "--store", str(store_path), "--last", "1"])
    assert result.exit_code == 0, result.output
    assert "trend-rates" not in Page(Path(result.stdout.strip()).read_text(encoding="utf-8")).plots


def test_report_uses_the_runs_own_tolerances(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    with RunStore(path) as store:
        _store_run(store, build_run(run_id="base", started_at=START))
        store.set_baseline("base")
        lenient = {"regression": {"accuracy_drop": 0.5, "p95_processing_increase": 5}}
        worse = build_run(run_id="later", started_at=START + timedelta(hours=1), faults={3: DROPPED, 4: WRONG_OWNER})
        _store_run(store, worse, lenient)
    result = runner.invoke(app, ["report", "--store", str(path), "--out", str(tmp_path / "h.html")])
    assert result.exit_code == 0, result.output
    assert Page((tmp_path / "h.html").read_text(encoding="utf-8")).regression_metrics == []


def test_unknown_run_exits_2_and_lists_recent_runs(store_path: Path) -> None:
    result = runner.invoke(app, ["report", "--store", str(store_path), "--run", "run_9_nope"])
    assert result.exit_code == 2
    message = _flat(result.stderr)
    assert "--run 'run_9_nope'" in message
    assert "recent runs: run_3_bad, run_2_good, run_1_good" in message
    assert "bonzo-bulk history" in message


def test_missing_store_and_bad_numbers_exit_2_naming_the_flag(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.sqlite3"
    result = runner.invoke(app, ["report", "--store", str(missing)])
    assert result.exit_code == 2
    assert "--store" in result.stderr and "nowhere.sqlite3" in _flat(result.stderr)
    assert "bonzo-bulk run" in _flat(result.stderr)
    assert not missing.exists(), "reading commands never create a store"
    result = runner.invoke(app, ["report", "--store", str(missing), "--last", "0"])
    assert result.exit_code == 2
    assert "--last 0: must be at least 1" in _flat(result.stderr)
    result = runner.invoke(app, ["history", "--store", str(missing), "--limit", "-3"])
    assert result.exit_code == 2
    assert "--limit -3: must be at least 1" in _flat(result.stderr)


def test_an_interrupted_run_cannot_be_reported_but_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    with RunStore(path) as store:
        begin_bare_run(store, "cut_short", START)
    result = runner.invoke(app, ["report", "--store", str(path)])
    assert result.exit_code == 2
    assert "never finished" in _flat(result.stderr)
    listed = runner.invoke(app, ["history", "--store", str(path), "--json"])
    [row] = json.loads(listed.stdout)
    assert (row["run_id"], row["finished_at"], row["passed"]) == ("cut_short", None, None)


def test_history_table_and_json(store_path: Path) -> None:
    table = runner.invoke(app, ["history", "--store", str(store_path)])
    assert table.exit_code == 0, table.output
    for run_id in ("run_1_good", "run_2_good", "run_3_bad"):
        assert run_id in table.stdout
    assert "FAIL" in table.stdout and "PASS" in table.stdout
    as_json = runner.invoke(app, ["history", "--store", str(store_path), "--json", "--limit", "2"])
    rows = json.loads(as_json.stdout)
    assert [r["run_id"] for r in rows] == ["run_3_bad", "run_2_good"]
    assert rows[0]["passed"] is False and rows[0]["records"] == 30
    assert rows[0]["creation_rate"] == pytest.approx(26 / 27), "created of the 27 delivered"
    other = runner.invoke(app, ["history", "--store", str(store_path), "--json", "--integration", "zillow"])
    assert json.loads(other.stdout) == []


def test_baseline_set_and_show(store_path: Path) -> None:
    shown = runner.invoke(app, ["baseline", "show", "--store", str(store_path)])
    assert shown.exit_code == 0
    assert "run_1_good" in shown.stdout
    changed = runner.invoke(app, ["baseline", "set", "run_2_good", "--store", str(store_path)])
    assert changed.exit_code == 0, changed.output
    assert "baseline for monitorbase: run_2_good" in changed.stdout
    with RunStore(store_path) as store:
        assert store.baseline_run_id("monitorbase") == "run_2_good"
    none = runner.invoke(app, ["baseline", "show", "--store", str(store_path), "--integration", "zillow"])
    assert none.exit_code == 0
    assert "no baseline set for zillow" in none.stdout
    unknown = runner.invoke(app, ["baseline", "set", "nope", "--store", str(store_path)])
    assert unknown.exit_code == 2
    assert "RUN_ID 'nope'" in _flat(unknown.stderr) and "run_3_bad" in unknown.stderr


def test_report_self_contained_writes_one_file_and_default_shares_plotly(store_path: Path, tmp_path: Path) -> None:
    from plotly.offline import get_plotlyjs

    from bonzo_bulk.report.dashboard import plotly_asset_name

    alone = tmp_path / "share" / "health.html"
    result = runner.invoke(app, ["report", "--store", str(store_path), "--out", str(alone), "--self-contained"])
    assert result.exit_code == 0, result.output
    assert Page(alone.read_text(encoding="utf-8")).external_scripts == []
    assert get_plotlyjs()[:400] in alone.read_text(encoding="utf-8")
    assert sorted(p.name for p in alone.parent.iterdir()) == ["health.html"]
    shared = tmp_path / "shared" / "health.html"
    result = runner.invoke(app, ["report", "--store", str(store_path), "--out", str(shared)])
    assert result.exit_code == 0, result.output
    assert Page(shared.read_text(encoding="utf-8")).external_scripts == [f"assets/{plotly_asset_name()}"]
    assert (shared.parent / "assets" / plotly_asset_name()).is_file()
