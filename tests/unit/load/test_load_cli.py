"""``bonzo-bulk load`` and ``stress`` end to end against the sandbox, as the user runs them (a subprocess):
Locust sends in child processes, every lead is accounted for, the figures land in the store and the dashboard,
Ctrl-C stops the load and still settles and reports. Bounded: a few hundred leads to loopback, each run < 2 min."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from bonzo_bulk.load.results import LoadStore
from bonzo_bulk.store import RunStore

HOOK_HASH = re.compile(r"/api/webhook/[0-9a-f]{32}")
STAGE_KEYS = {"target_rate", "achieved_rate", "dropped_arrivals", "hook_p95_ms", "e2e_lag_p95_s", "lost"}


def _config(make_config: Any, tmp_path: Path, **sandbox: Any) -> Path:
    make_config(
        tmp_path,
        None,
        processing_delay=5,
        polling={"interval": 0.3, "deadline": 8.0, "max_interval": 0.5},
        sandbox={"processing": {"distribution": "fixed", "seconds": 0.05}, **sandbox},
    )
    return tmp_path / "config.yaml"


def _scenario(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bonzo_bulk", *args]


def test_load_run_accounts_for_every_lead_and_thresholds_decide_the_exit(make_config: Any, tmp_path: Path) -> None:
    config = _config(make_config, tmp_path)
    scenario = _scenario(
        tmp_path,
        {
            "name": "tiny",
            "stages": [{"rate": 5, "to": 15, "duration": "2s"}, {"rate": 15, "duration": "2s"}],
            "thresholds": {"hook_p95_ms": 0.001, "e2e_lag_p95_s": 5},  # no POST is answered within 1 µs
            "max_in_flight": 10,
            "verify_interval": "0.5s",
        },
    )
    done = subprocess.run(
        _cli("load", "--config", str(config), "--scenario", str(scenario), "--json"),
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert [s["stage"] for s in summary["stages"]] == [0, 1]
    for stage in summary["stages"]:
        assert set(stage) >= STAGE_KEYS
    assert summary["stages"][0]["target_rate"] == 10.0 and summary["stages"][1]["target_rate"] == 15.0
    accounting = summary["accounting"]
    assert accounting["planned"] == accounting["sent"] == 50
    assert accounting["sent"] == accounting["created"] + accounting["lost"] + accounting["errors"]
    assert (accounting["lost"], accounting["misrouted"], accounting["duplicates"], accounting["dropped_arrivals"]) == (
        0,
        0,
        0,
        0,
    )
    failed = {t["name"] for t in summary["thresholds"] if not t["passed"]}
    assert "hook_p95_ms" in failed and "e2e_lag_p95_s" not in failed
    assert all(0 <= s["e2e_lag_p95_s"] < 5 for s in summary["stages"])
    run_id = summary["run_id"]
    said = [line for line in done.stderr.splitlines() if line.strip()]
    announced = next(i for i, line in enumerate(said) if line.startswith(f"load run {run_id} → sandbox at http://"))
    assert said[announced + 1].startswith("cap: at most 10,000 leads and 5 min in all")
    assert any(line.startswith("progress: ") and "sent 50 of 50" in line for line in said[announced:])
    assert said[-1].startswith(f"Remove the leads of run {run_id} with: bonzo-bulk cleanup --run {run_id} --yes")
    with RunStore(tmp_path / "reports" / "runs.sqlite3") as store:
        stored = LoadStore(store).load(summary["run_id"])
        assert store.load_run(summary["run_id"]).primary is not None  # the engine's run, beside the load tables
        assert store.run_kind(run_id) == "load"
    assert stored is not None and stored.kind == "load"
    assert {k: v for k, v in summary.items() if k != "dashboard"} == stored.summary, "printed = stored, made once"
    assert len(stored.stages) == 2 and len(stored.series) >= 4
    assert sum(p.achieved_rate for p in stored.series) == 50
    folder = tmp_path / "reports" / "load" / summary["run_id"]
    page = Path(summary["dashboard"]).read_text(encoding="utf-8")
    assert 'id="plot-rate"' in page and 'id="plot-lag"' in page
    for written in (page, (folder / "locust.log").read_text(), done.stdout, done.stderr):
        assert not HOOK_HASH.search(written)


def test_stress_finds_the_knee_of_a_sandbox_with_capacity(make_config: Any, tmp_path: Path) -> None:
    config = _config(make_config, tmp_path, capacity=20)
    done = subprocess.run(
        _cli(
            "stress",
            "--config",
            str(config),
            "--start-rate",
            "17",
            "--step-factor",
            "1.35",
            "--max-rate",
            "40",
            "--step-duration",
            "3s",
            "--json",
        ),
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["knee_reached"] is True
    assert summary["knee_rate"] == 17  # capacity 20: steps 17, 23, 31; 23 leads/s outruns it
    broken = [s for s in summary["steps"] if s["broken"]]
    assert len(broken) == 1 and broken[0]["rate"] > 20
    assert "backlog growing" in " ".join(broken[0]["reasons"])
    assert summary["accounting"]["lost"] == 0


def test_ctrl_c_stops_the_load_then_settles_and_reports_what_was_sent(make_config: Any, tmp_path: Path) -> None:
    """Ctrl-C as a terminal sends it: SIGINT to the whole process group, and again from a launcher that forwards
    it (`uv run`); before, the second copy aborted the load and lost its run (issue 24, finding 2)."""
    config = _config(make_config, tmp_path)
    # After a stop Locust drains what it still holds for drop_after + timeout + 1 s (load/runner.py): a 2 s
    # request timeout (the sandbox answers in milliseconds) keeps that wait at 4 s instead of 12.
    scenario = _scenario(
        tmp_path, {"stages": [{"rate": 10, "duration": "60s"}], "verify_interval": "0.5s", "timeout": "2s"}
    )
    process = subprocess.Popen(
        _cli("load", "--config", str(config), "--scenario", str(scenario), "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        journals: list[Path] = []
        while time.monotonic() < deadline and process.poll() is None:
            journals = list((tmp_path / "reports" / "load").glob("*/journal.jsonl"))
            if journals and len(journals[0].read_text().splitlines()) >= 10:
                break
            time.sleep(0.2)
        assert journals, "the load never started"
        os.killpg(process.pid, signal.SIGINT)
        time.sleep(0.3)  # the forwarded copy arrives apart (two signals sent at once would merge into one)
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr[-2000:]
    summary = json.loads(stdout)
    accounting = summary["accounting"]
    assert 10 <= accounting["sent"] < 600
    assert accounting["not_sent"] == 600 - accounting["sent"] - accounting["dropped_arrivals"]
    assert accounting["created"] == accounting["sent"] and accounting["lost"] == 0
    assert "interrupted" in (summary["stop_reason"] or "")
    run_id = summary["run_id"]
    assert f"bonzo-bulk cleanup --run {run_id} --yes" in stderr.splitlines()[-1]
    assert "nothing of a run was sent" not in stderr
    with RunStore(tmp_path / "reports" / "runs.sqlite3") as store:
        assert store.run_kind(run_id) == "load" and store.load_run(run_id).primary is not None
