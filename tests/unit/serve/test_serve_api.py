"""``bonzo-bulk serve`` over HTTP on a loopback port: what each page and API call answers from the store, who may
read and change, and that nothing it returns carries a secret."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from builders import DROPPED, FAULTY, MISSING, RunSpec, begin_run_of, build_run
from prometheus_client.parser import text_string_to_metric_families
from test_monitor_loop import FAULTS
from test_problems_drill import drill_config
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.models import RunResult
from bonzo_bulk.report.export import export_run
from bonzo_bulk.secrets import register_secret
from bonzo_bulk.serve.access import Access, check_exposure
from bonzo_bulk.serve.server import ServeServer
from bonzo_bulk.serve.views import group_health
from bonzo_bulk.store import RunStore, RunSummary

TOKEN = "serve-token-0123456789abcdef"
CANARY = "canary-ServeSekret-5d21"
NOW = datetime.now(UTC)
GOOD = build_run(RunSpec(records=20, run_id="r-good", started_at=NOW - timedelta(hours=1)))
BAD = build_run(
    RunSpec(
        records=120,
        faults={**FAULTY, **dict.fromkeys(range(40, 100), DROPPED), 101: MISSING},
        integration="zillow",
        run_id="r-bad",
        started_at=NOW - timedelta(minutes=30),
        error_text=f"upstream said {CANARY}",
    )
)


def _store(path: Path, *runs: RunResult) -> Path:
    with RunStore(path) as store:
        for result in runs:
            begin_run_of(store, result)
            store.finish_run(result)
    return path


@pytest.fixture(scope="module")
def store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    register_secret(CANARY)
    return _store(tmp_path_factory.mktemp("serve") / "runs.sqlite3", GOOD, BAD)


@pytest.fixture(scope="module")
def open_server(store_file: Path) -> Iterator[httpx.Client]:
    with ServeServer(str(store_file)) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def guarded_server(store_file: Path) -> Iterator[httpx.Client]:
    with ServeServer(str(store_file), token=TOKEN) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def test_the_overview_says_each_integrations_latest_verdict(open_server: httpx.Client) -> None:
    groups = {g["integration"]: g for g in open_server.get("/api/overview").json()["groups"]}
    assert set(groups) == {"monitorbase", "zillow"}
    assert (groups["monitorbase"]["verdict"], groups["zillow"]["verdict"]) == ("passed", "failed")
    assert groups["zillow"]["latest_run_id"] == "r-bad" and groups["zillow"]["pass_rate"] == 0.0
    page = open_server.get("/").text
    assert re.search(r'data-integration="zillow".*?badge verdict failed', page, re.S)


def _summary(run_id: str, started: datetime) -> RunSummary:
    return RunSummary.from_result(build_run(RunSpec(run_id=run_id, started_at=started)))


def test_a_group_is_stale_when_its_last_run_is_older_than_twice_its_usual_gap() -> None:
    hourly = [_summary(f"r{i}", NOW - timedelta(hours=i)) for i in range(1, 6)]
    fresh = group_health(hourly, NOW)
    assert fresh.expected_interval_seconds == 3600 and not fresh.stale
    assert group_health(hourly, NOW + timedelta(hours=2)).stale
    assert group_health(hourly[:2], NOW + timedelta(days=3)).expected_interval_seconds is None  # too few to say


def test_failing_records_come_a_page_at_a_time_from_the_ledger(open_server: httpx.Client) -> None:
    primary = BAD.primary
    assert primary is not None and primary.failed_records > 50
    first = open_server.get("/api/runs/r-bad/failures", params={"page": 1}).json()
    second = open_server.get("/api/runs/r-bad/failures", params={"page": 2}).json()
    assert first["failed_records"] == primary.failed_records
    assert first["pages"] == second["pages"] == -(-primary.failed_records // 50) >= 2
    first_records = {row["record"] for row in first["rows"]}
    second_records = {row["record"] for row in second["rows"]}
    assert len(first_records) == 50 and first_records.isdisjoint(second_records)
    page = open_server.get("/runs/r-bad", params={"page": 2}).text
    assert f"page 2 of {first['pages']}" in page


def test_the_downloads_are_what_export_writes(open_server: httpx.Client, store_file: Path, tmp_path: Path) -> None:
    for fmt in ("jsonl", "csv"):
        out = tmp_path / f"ledger.{fmt}"
        export_run(store_file, "r-bad", fmt, out)
        response = open_server.get(f"/runs/r-bad/export.{fmt}")
        assert response.status_code == 200
        assert response.headers["content-disposition"] == f'attachment; filename="r-bad.{fmt}"'
        assert response.text == out.read_text(encoding="utf-8")


def test_the_run_page_embeds_the_dashboard_drawn_from_the_store(open_server: httpx.Client) -> None:
    page = open_server.get("/runs/r-good").text
    assert 'src="/runs/r-good/dashboard"' in page
    dashboard = open_server.get("/runs/r-good/dashboard").text
    assert "r-good" in dashboard and 'src="/assets/plotly-' in dashboard
    script = re.search(r'src="(/assets/plotly-[^"]+)"', dashboard)
    assert script is not None
    asset = open_server.get(script.group(1))
    assert asset.status_code == 200 and asset.headers["content-type"].startswith("application/javascript")


def test_metrics_describe_each_groups_latest_run(open_server: httpx.Client) -> None:
    text = open_server.get("/metrics").text
    passed = {
        s.labels["integration"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "bonzo_bulk_run_passed"
    }
    assert passed == {"monitorbase": 1.0, "zillow": 0.0}
    assert "r-bad" not in text and "r-good" not in text


def test_unknown_runs_are_404_naming_the_id(open_server: httpx.Client) -> None:
    response = open_server.get("/api/runs/no-such-run")
    assert response.status_code == 404 and "'no-such-run'" in response.json()["detail"]
    assert open_server.get("/runs/no-such-run", headers={"accept": "text/html"}).status_code == 404


def test_nothing_served_carries_a_secret(open_server: httpx.Client) -> None:
    paths = [
        "/",
        "/api/overview",
        "/runs/r-bad",
        "/runs/r-bad/dashboard",
        "/api/runs/r-bad",
        "/api/runs/r-bad/failures",
        "/runs/r-bad/export.jsonl",
        "/runs/r-bad/export.csv",
        "/metrics",
        "/live",
        "/api/live",
    ]
    bodies = {path: open_server.get(path).text for path in paths}
    assert "upstream said ***" in bodies["/runs/r-bad/export.jsonl"]  # the text is there, the secret masked
    assert [path for path, body in bodies.items() if CANARY in body] == []


def test_a_change_needs_the_token_even_on_loopback(open_server: httpx.Client) -> None:
    refused = open_server.post("/api/runs/r-good/baseline")
    assert refused.status_code == 403 and "BONZO_BULK_SERVE_TOKEN" in refused.json()["detail"]
    form = open_server.post("/runs/r-good/baseline", data={"csrf_token": ""}, headers={"accept": "text/html"})
    assert form.status_code == 403 and "BONZO_BULK_SERVE_TOKEN" in form.text
    page = open_server.get("/runs/r-good").text
    assert 'id="changes-off"' in page and 'id="make-baseline"' not in page


def test_an_unfinished_run_has_a_page_but_no_dashboard(tmp_path: Path) -> None:
    store_file = _store(tmp_path / "runs.sqlite3", GOOD)
    with RunStore(store_file) as store:
        begin_run_of(store, build_run(RunSpec(run_id="r-running", integration="hubspot")))
    with ServeServer(str(store_file)) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        page = client.get("/runs/r-running")
        assert page.status_code == 200 and "has not finished" in page.text and "failing-table" not in page.text
        assert client.get("/runs/r-running/dashboard").status_code == 404
        assert client.get("/api/runs/r-running").json()["phases"] == []
        groups = {g["integration"]: g for g in client.get("/api/overview").json()["groups"]}
        assert groups["hubspot"]["verdict"] == "unfinished"
        assert "hubspot" not in client.get("/metrics").text  # metrics describe finished runs only


def _cookie(session: str) -> dict[str, str]:
    return {"cookie": f"bonzo_bulk_session={session}"}


def test_with_a_token_reading_needs_it_as_bearer_or_session(guarded_server: httpx.Client) -> None:
    assert guarded_server.get("/healthz").json() == {"status": "ok"}
    bare = guarded_server.get("/api/overview")
    assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
    assert guarded_server.get("/metrics").status_code == 401
    redirected = guarded_server.get("/runs/r-good", headers={"accept": "text/html"})
    assert redirected.status_code == 303 and redirected.headers["location"] == "/login?next=/runs/r-good"
    bearer = {"authorization": f"Bearer {TOKEN}"}
    assert guarded_server.get("/api/overview", headers=bearer).status_code == 200
    wrong_bearer = {"authorization": "Bearer wrong-token-0000000"}
    assert guarded_server.get("/api/overview", headers=wrong_bearer).status_code == 401
    wrong = guarded_server.post("/login", data={"token": "nope", "next": "/"})
    assert wrong.status_code == 401 and "bonzo_bulk_session" not in wrong.cookies
    login = guarded_server.post("/login", data={"token": TOKEN, "next": "/live"})
    guarded_server.cookies.clear()
    assert login.status_code == 303 and login.headers["location"] == "/live"
    session = login.cookies["bonzo_bulk_session"]
    assert TOKEN not in session
    assert guarded_server.get("/api/overview", headers=_cookie(session)).status_code == 200
    assert TOKEN not in guarded_server.get("/", headers=bearer).text


def test_with_a_token_a_change_needs_the_bearer_or_a_session_and_its_csrf_field(
    guarded_server: httpx.Client, store_file: Path
) -> None:
    session = guarded_server.post("/login", data={"token": TOKEN}).cookies["bonzo_bulk_session"]
    guarded_server.cookies.clear()
    assert guarded_server.post("/api/runs/r-good/baseline").status_code == 401
    no_csrf = guarded_server.post("/api/runs/r-good/baseline", headers=_cookie(session))
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["detail"]
    csrf = Access(TOKEN).csrf_for(session)
    made = guarded_server.post("/api/runs/r-good/baseline", headers={**_cookie(session), "x-csrf-token": csrf})
    assert made.status_code == 200 and made.json()["summary"]["is_baseline"] is True
    bearer = {"authorization": f"Bearer {TOKEN}"}
    assert guarded_server.post("/api/runs/r-bad/baseline", headers=bearer).status_code == 200
    with RunStore(store_file) as store:
        assert store.baseline_run_id("zillow") == "r-bad"
        assert store.baseline_run_id("monitorbase") == "r-good"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])  # noqa: S104 - refused: that is the test
def test_beyond_loopback_it_refuses_to_start_without_a_token(host: str, store_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"--host .* needs BONZO_BULK_SERVE_TOKEN"):
        check_exposure(host, None)
    result = CliRunner(env={"COLUMNS": "200", "BONZO_BULK_SERVE_TOKEN": ""}).invoke(
        app, ["serve", "--host", host, "--port", "0", "--store-url", str(store_file)]
    )
    assert result.exit_code == 2
    assert f"--host '{host}': serving beyond this machine needs BONZO_BULK_SERVE_TOKEN" in result.output
    check_exposure(host, TOKEN)  # with a token it may
    check_exposure("127.0.0.1", None)
    check_exposure("localhost", None)


def test_a_short_token_is_refused_without_showing_it(store_file: Path) -> None:
    result = CliRunner(env={"COLUMNS": "200", "BONZO_BULK_SERVE_TOKEN": "tiny-sekret"}).invoke(
        app, ["serve", "--port", "0", "--store-url", str(store_file)]
    )
    assert result.exit_code == 2 and "11 characters is too short" in result.output
    assert "tiny-sekret" not in result.output


def test_a_missing_store_is_refused_naming_the_flag(tmp_path: Path) -> None:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["serve", "--port", "0", "--store-url", str(tmp_path / "nothing.sqlite3")]
    )
    assert result.exit_code == 2 and "no run store there" in result.output
    assert not (tmp_path / "nothing.sqlite3").exists()


def test_ctrl_c_stops_the_server_and_says_so(store_file: Path) -> None:
    """Ctrl-C is how serve is stopped: it says it stopped, not that a run was interrupted."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bonzo_bulk", "serve", "--port", "0", "--store-url", str(store_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "Ctrl-C stops it" in first, first
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "bonzo-bulk serve: stopped" in rest
    assert "interrupted" not in rest and "nothing of a run was sent" not in rest
    assert process.returncode == 0


def test_a_run_with_a_fault_opens_a_problem_the_index_shows_until_it_is_resolved(
    tmp_path: Path, users: list[dict[str, object]]
) -> None:
    reports = tmp_path / "reports"
    config = drill_config(tmp_path, users)
    runner = CliRunner()
    ran = runner.invoke(app, ["run", "--config", str(config), "--faults", str(FAULTS), "--reports-dir", str(reports)])
    assert ran.exit_code == 1, ran.output
    listed = runner.invoke(app, ["problems", "--json", "--reports-dir", str(reports)])
    assert listed.exit_code == 0, listed.output
    problems = [(p["id"], p["title"]) for p in json.loads(listed.stdout)]
    assert problems, "the fault opened no problem"
    with ServeServer(str(reports / "runs.sqlite3")) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        (group,) = client.get("/api/overview").json()["groups"]
        shown = [(p["problem_id"], p["title"]) for p in group["problems"]]
        assert shown == problems
        assert {p["state"] for p in group["problems"]} == {"open"}
        assert all(p["last_run_id"] == group["latest_run_id"] for p in group["problems"])
        page = client.get("/").text
        row = re.search(r'<tr data-integration="monitorbase".*?</tr>', page, re.S)
        assert row is not None, page
        for problem_id, title in problems:
            assert f'data-problem="{problem_id}"' in row.group(0)
            assert html.escape(title) in row.group(0)
            assert f'href="/runs/{group["latest_run_id"]}"' in row.group(0)
        for problem_id, _ in problems:
            resolved = runner.invoke(app, ["problems", "resolve", problem_id, "--reports-dir", str(reports)])
            assert resolved.exit_code == 0, resolved.output
        (group,) = client.get("/api/overview").json()["groups"]
        assert group["problems"] == []
        assert "data-problem=" not in client.get("/").text
