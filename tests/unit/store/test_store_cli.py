"""The history readers and `bonzo-bulk store` on either backend; a store that is down or refuses us exits 2."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import START, begin_run_of, build_run
from pgcluster import PgCluster, free_port
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.sandbox import SandboxServer
from bonzo_bulk.store import SCHEMA_VERSION, RunStore

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})
StoreAt = str | Path


def _fill(store_at: StoreAt, count: int = 3) -> list[str]:
    ids = []
    with RunStore(store_at) as store:
        for n in range(count):
            result = build_run(run_id=f"run_{n}", started_at=START + timedelta(hours=n), seed=n)
            begin_run_of(store, result, {"test_records": 30})
            store.finish_run(result)
            ids.append(result.run_id)
    return ids


def test_history_baseline_and_report_read_the_store_named_by_the_environment(store_at: StoreAt, tmp_path: Path) -> None:
    ids = _fill(store_at)
    env = {"BONZO_BULK_STORE_URL": str(store_at)}
    listed = runner.invoke(app, ["history", "--json", "--limit", "2"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [run["run_id"] for run in json.loads(listed.stdout)] == ids[::-1][:2]
    marked = runner.invoke(app, ["baseline", "set", "run_0"], env=env)
    assert marked.exit_code == 0, marked.output
    assert "baseline for monitorbase: run_0" in marked.stdout
    page = tmp_path / "health.html"
    shown = runner.invoke(app, ["report", "--last", "2", "--out", str(page)], env=env)
    assert shown.exit_code == 0, shown.output
    assert "run_2" in page.read_text(encoding="utf-8")


def test_store_migrate_then_copy_local_history_to_postgres(tmp_path: Path, pg_cluster: PgCluster) -> None:
    team = pg_cluster.new_database()
    migrated = runner.invoke(app, ["store", "migrate", "--store-url", team])
    assert migrated.exit_code == 0, migrated.output
    assert f"migrated to schema version {SCHEMA_VERSION} (1: runs, phases" in migrated.stdout
    again = runner.invoke(app, ["store", "migrate", "--store-url", team])
    assert f"schema version {SCHEMA_VERSION}, up to date" in again.stdout
    local = tmp_path / "runs.sqlite3"
    ids = _fill(local)
    copied = runner.invoke(app, ["store", "copy", "--from", f"sqlite:///{local}", "--to", team])
    assert copied.exit_code == 0, copied.output
    assert "copied 3 run(s), 3 runs rows" not in copied.stdout
    assert "copied 3 run(s)" in copied.stdout and team.split("@")[1] in copied.stdout
    twice = runner.invoke(app, ["store", "copy", "--from", str(local), "--to", team])
    assert "copied 0 run(s)" in twice.stdout and "skipped 3 run(s)" in twice.stdout
    listed = runner.invoke(app, ["history", "--json", "--store", team])
    assert [run["run_id"] for run in json.loads(listed.stdout)] == ids[::-1]


@pytest.fixture
def refused(pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A store URL the server refuses (wrong password in the URL or in PGPASSWORD), or one nobody answers."""
    kind = request.param
    if kind == "down":
        return f"postgresql://bonzo:Down-Pass-778@127.0.0.1:{free_port()}/bonzo"
    if kind == "password_in_url":
        return pg_cluster.url("postgres", password="Wrong-Pass-778")
    monkeypatch.setenv("PGPASSWORD", "Wrong-Pass-778")
    return pg_cluster.url("postgres")


def _assert_refused(output: str, exit_code: int, url: str) -> None:
    assert exit_code == 2, output
    flat = " ".join(output.split())
    assert "cannot connect to run store postgresql://bonzo@127.0.0.1:" in flat
    assert "-Pass-778" not in output
    assert "Traceback" not in output


@pytest.mark.parametrize("refused", ["down", "password_in_url", "password_in_env"], indirect=True)
def test_readers_exit_2_naming_the_url_without_its_password(refused: str) -> None:
    for args in (["history", "--store", refused], ["store", "migrate", "--store-url", refused]):
        result = runner.invoke(app, args)
        _assert_refused(result.output, result.exit_code, refused)


@pytest.mark.parametrize("refused", ["down", "password_in_env"], indirect=True)
def test_a_run_exits_2_before_anything_is_sent(refused: str, sandbox: SandboxServer, tmp_path: Path) -> None:
    config = _config(tmp_path, sandbox)
    assert sandbox.app is not None
    before = len(sandbox.app.sandbox.request_log)
    result = runner.invoke(app, ["run", "--config", str(config)], env={"BONZO_BULK_STORE_URL": refused})
    _assert_refused(result.output, result.exit_code, refused)
    assert len(sandbox.app.sandbox.request_log) == before


def test_a_password_written_into_the_yaml_is_refused(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = _config(tmp_path, sandbox, store_url="postgresql://ci:Literal-Pass-778@127.0.0.1:5432/bonzo")
    result = runner.invoke(app, ["run", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "'store_url' (a password)" in " ".join(result.output.split())
    assert "Literal-Pass-778" not in result.output


def _config(tmp_path: Path, sandbox: SandboxServer, **overrides: Any) -> Path:
    data: dict[str, Any] = {
        "test_name": "store test",
        "integration_type": "monitorbase",
        "test_records": 3,
        "control": False,
        "test_users": [{"name": "LO Store", "email": "lo.store@lender.test", "user_id": 97_001, "team_id": 97}],
        "reports_dir": str(tmp_path / "reports"),
        "sandbox": {"url": sandbox.url},
        **overrides,
    }
    path = tmp_path / "store_test_config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
