"""Issue 25.2: the store is checked before sending, its failures mid-run lose no delivery (journal, replay),
and a run whose store or API fails anyway still ends with a verdict, its unverified records named and the
cleanup command."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import begin_bare_run
from hostile_servers import Canned, HostileProxy, maintenance_page
from store_faults import DISK_FULL, MALFORMED, READ_ONLY, FaultyBackend
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.engine import run as engine
from bonzo_bulk.engine import unfinished as unfinished_module
from bonzo_bulk.engine.context import open_run
from bonzo_bulk.errors import RunUnfinished, StoreUnusable
from bonzo_bulk.library import run_bulk
from bonzo_bulk.models import DeliveryResult
from bonzo_bulk.plan.planner import plan_run
from bonzo_bulk.report import terminal as console_module
from bonzo_bulk.sandbox import SandboxServer
from bonzo_bulk.secrets import register_secret
from bonzo_bulk.store import RunStore
from bonzo_bulk.store.interface import replay_journal
from bonzo_bulk.store.sqlite import SqliteBackend


def faulty_store(path: Path) -> tuple[RunStore, FaultyBackend]:
    backend = FaultyBackend(SqliteBackend(path))
    return RunStore(path, backend=backend), backend


def begin(store: RunStore, run_id: str = "r1") -> None:
    begin_bare_run(store, run_id)


def delivery(name: str, excerpt: str = "") -> DeliveryResult:
    now = datetime.now(UTC)
    return DeliveryResult(name, 200, 1, 1.0, 1.0, now, now, response_excerpt=excerpt)


def test_a_damaged_store_file_is_refused_by_quick_check(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    with RunStore(path) as store:
        begin(store)
        store.add_deliveries("r1", "primary", [delivery(f"R{n:04d}", "x" * 200) for n in range(300)])
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    raw = bytearray(path.read_bytes())
    start = page_size * (pages - 3)  # a data page of the deliveries, not the schema on page 1
    raw[start : start + page_size] = b"\x0d" + bytes(range(256)) * (page_size // 256 - 1) + b"\x00" * 255
    path.write_bytes(bytes(raw))

    with RunStore(path) as store, pytest.raises(StoreUnusable) as caught:
        store.check_before_sending(records=3)
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert "is damaged (SQLite PRAGMA quick_check:" in message and str(path) in message
    assert "nothing was sent" in message


def test_too_little_free_space_names_what_is_free_and_needed(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.sqlite3") as store, pytest.raises(StoreUnusable) as caught:
        store.check_before_sending(records=10**12)
    assert re.search(r"\d[\d.]* [kMG]?B free on its filesystem, [\d.]+ [kMG]?B needed for a run of", str(caught.value))


def test_a_store_that_cannot_be_written_is_refused_by_the_write_probe(tmp_path: Path) -> None:
    store, backend = faulty_store(tmp_path / "runs.sqlite3")
    backend.fail(READ_ONLY)
    with store, pytest.raises(StoreUnusable, match="cannot be written \\(attempt to write a readonly database\\)"):
        store.check_before_sending(records=3)
    with RunStore(tmp_path / "runs.sqlite3") as reopened:  # the probe left nothing behind
        assert reopened.backend.fetchall("SELECT name FROM sqlite_master WHERE name LIKE 'bonzo_bulk_write%'") == []


@pytest.mark.parametrize("fault", [DISK_FULL, MALFORMED], ids=["disk-full", "malformed"])
def test_writes_the_store_cannot_take_go_to_the_journal_and_are_replayed(
    tmp_path: Path, fault: sqlite3.Error, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "journalSECRET0123456789abcdef"
    register_secret(secret)
    store, backend = faulty_store(tmp_path / "runs.sqlite3")
    journal = tmp_path / "reports" / "journal" / "r1.jsonl"
    with store:
        begin(store)
        store.keep_journal(journal)
        store.add_deliveries("r1", "primary", [delivery("A")])
        backend.fail(fault)
        store.add_deliveries("r1", "primary", [delivery("B", f"echo {secret}")])
        store.add_deliveries("r1", "primary", [delivery("C")])
        store.note_run("r1", "a note")
        assert store.failing and journal.is_file()
        lines = journal.read_text().splitlines()
        assert [json.loads(line)["op"] for line in lines] == ["deliveries", "deliveries", "note"]
        assert secret not in journal.read_text()
        warnings = [r.getMessage() for r in caplog.records if "the run goes on" in r.getMessage()]
        assert len(warnings) == 1 and str(journal) in warnings[0]  # once per outage, saying where and what next

        backend.heal()
        assert store.replay_journal(now=True)
        assert not journal.exists() and not store.failing
        names = [r["record_name"] for r in store.backend.fetchall("SELECT record_name FROM deliveries ORDER BY seq")]
        assert names == ["A", "B", "C"]
        assert store.run_notes("r1") == ["a note"]


def test_cleanup_and_report_replay_a_journal_left_behind(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    store, backend = faulty_store(path)
    journal = tmp_path / "reports" / "journal" / "r1.jsonl"
    with store:
        begin(store)
        store.keep_journal(journal)
        backend.fail(DISK_FULL, reads=True)
        store.add_deliveries("r1", "primary", [delivery("A"), delivery("B")])
    assert journal.is_file()  # the store still failed when the run closed it
    assert replay_journal(path, tmp_path / "reports", "r1") is True
    assert replay_journal(path, tmp_path / "reports", "r1") is None
    with RunStore(path) as reopened:
        assert len(reopened.backend.fetchall("SELECT * FROM deliveries")) == 2


def _run(loaded: Any, store: RunStore) -> Any:
    async def go() -> Any:
        async with open_run(plan_run(loaded), store=store) as run:
            return await engine.execute(run)

    return asyncio.run(go())


def test_a_store_failing_mid_run_and_back_loses_no_delivery(
    tmp_path: Path, sandbox: SandboxServer, make_config: Any
) -> None:
    loaded = make_config(tmp_path, sandbox.url, test_records=6)
    store, backend = faulty_store(tmp_path / "runs.sqlite3")
    backend.fail(DISK_FULL, after=4, times=1)  # a write after the run began and its records were stored fails once
    with store:
        result = _run(loaded, store)
        assert backend.raised == 1
        assert result.passed
        assert not store.journal_pending
        rows = store.backend.fetchall("SELECT COUNT(*) AS n FROM deliveries WHERE run_id = ?", (result.run_id,))
        assert rows[0]["n"] == 6
        assert store.count_outcomes(result.run_id, "primary") == 6


def test_a_store_that_never_comes_back_still_ends_with_a_verdict(
    tmp_path: Path, sandbox: SandboxServer, make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unfinished_module, "STORE_RETURN_SECONDS", 0.3)
    loaded = make_config(tmp_path, sandbox.url, test_records=4)
    store, backend = faulty_store(tmp_path / "runs.sqlite3")
    backend.fail(MALFORMED, after=6, reads=True)
    with store, pytest.raises(RunUnfinished) as caught:
        _run(loaded, store)
    message = str(caught.value)
    run_id = caught.value.run_id
    assert caught.value.exit_code == 1
    assert "unverified (4: no check was made" in message
    assert "TestRecord_MonitorBase_001" in message and "not created" not in message
    assert f"bonzo-bulk cleanup --run {run_id} --yes" in message
    assert "marked failed in its journal" in message
    last = message.splitlines()[-1]
    assert last == (
        f"Run {run_id} (sandbox): FAILED (4 records unverified: the run store failed while judging) (exit 1)"
    )
    backend.heal()
    assert replay_journal(tmp_path / "runs.sqlite3", loaded.config.reports_dir, run_id) is True
    with RunStore(tmp_path / "runs.sqlite3") as reopened:
        assert any(n.startswith("failed: could not be judged") for n in reopened.run_notes(run_id))


@pytest.mark.parametrize("status", [200, 503])
def test_an_html_maintenance_page_while_settling_ends_with_unverified_records(
    status: int, tmp_path: Path, sandbox: SandboxServer, users: list[dict[str, object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = sandbox.seed(users, [{"type": "monitorbase", "source": "monitorbase"}])
    hook = next(h for h in seeded["hooks"] if h["type"] == "monitorbase")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(console_module.console, "width", 400)
    config = tmp_path / "live.yaml"
    settings = {
        "test_name": "maintenance",
        "webhook_url": "{TEST_HOOK_URL}",
        "superuser_api_key": "{SUPERUSER_API_KEY}",
        "test_records": 3,
        "control": False,
        "test_users": users,
        "api_settings": {"retry_attempts": 0, "retry_delay": 0.05, "max_prospects_per_request": 50},
        "polling": {"interval": 0.2, "deadline": 1},
        "reports_dir": str(tmp_path / "reports"),
    }
    config.write_text(yaml.safe_dump(settings))
    rule = Canned(maintenance_page(status), "/api/v3/prospects", method="GET", query_contains="per_page=50")
    with HostileProxy(sandbox.url, [rule]) as proxy:
        env = {
            "TEST_HOOK_URL": hook["url"].replace(sandbox.url, proxy.url),
            "SUPERUSER_API_KEY": seeded["superuser_token"],
            "BONZO_API_URL": proxy.url,
            "SUPERUSER_WEBHOOK_URL": None,
            "BONZO_BULK_REPORTS_DIR": None,
            "BONZO_BULK_TARGET": None,
            "COLUMNS": "400",
        }
        result = CliRunner().invoke(app, ["run", "--config", str(config)], env=env)
        assert proxy.canned >= 1
    output = " ".join(result.output.split())
    assert result.exit_code == 1, output
    assert re.search(r"\(live\): FAILED \(3 records unverified: a listing never reached its end\) \(exit 1\)", output)
    assert "not JSON" in output or str(status) in output
    assert "Traceback" not in output


def test_a_replay_cut_short_keeps_only_what_was_not_written(tmp_path: Path) -> None:
    store, backend = faulty_store(tmp_path / "runs.sqlite3")
    journal = tmp_path / "journal.jsonl"
    with store:
        begin(store)
        store.keep_journal(journal)
        backend.fail(DISK_FULL)
        store.add_deliveries("r1", "primary", [delivery("A")])
        store.add_deliveries("r1", "primary", [delivery("B")])
        backend.fail(DISK_FULL, after=1)  # the first batch's one INSERT goes through, the second's fails
        assert not store.replay_journal(now=True)
        assert [json.loads(line)["op"] for line in journal.read_text().splitlines()] == ["deliveries"]
        backend.heal()
        assert store.replay_journal(now=True) and not journal.exists()
        names = [r["record_name"] for r in store.backend.fetchall("SELECT record_name FROM deliveries ORDER BY seq")]
        assert names == ["A", "B"]


def test_report_run_replays_a_finish_the_store_could_not_take(
    tmp_path: Path, sandbox: SandboxServer, make_config: Any
) -> None:
    loaded = make_config(tmp_path, sandbox.url, test_records=3)
    result = run_bulk(loaded)
    reports = Path(loaded.config.reports_dir)
    path = reports / "runs.sqlite3"
    with sqlite3.connect(path) as db:  # as if the store had failed when the run finished
        db.execute("UPDATE runs SET finished_at = NULL WHERE run_id = ?", (result.run_id,))
        db.execute("DELETE FROM phases WHERE run_id = ?", (result.run_id,))
    store, backend = faulty_store(path)
    with store:
        store.keep_journal(reports / "journal" / f"{result.run_id}.jsonl")
        backend.fail(DISK_FULL, reads=True)
        store.finish_run(result)
    assert store.journal is not None and store.journal.is_file()

    ran = CliRunner().invoke(app, ["report", "--run", result.run_id, "--reports-dir", str(reports)])

    assert ran.exit_code == 0, ran.output
    assert not store.journal.exists()
    with RunStore(path) as reopened:
        stored = reopened.load_run(result.run_id)
    assert stored.passed == result.passed and stored.primary is not None and result.primary is not None
    assert stored.primary.metrics.created == result.primary.metrics.created
