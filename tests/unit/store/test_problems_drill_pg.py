"""The problems drill on a shared PostgreSQL store, by two monitors (east and west) taking turns, then racing:
one problem, alerts exactly for new, reminder, resolved and reopened whoever ran, and a new fault that both
monitors see at the same moment opened once. Both monitors test one sandbox the test serves (as both would
one Bonzo), not a sandbox process per run."""

from __future__ import annotations

import threading
from pathlib import Path

import yaml
from pgcluster import PgCluster
from test_monitor_loop import CANARY_PASSWORD, CANARY_TOKEN, FAULTS, Receiver
from test_problems_drill import drill_config, monitor_once, receiving, serving_a_sandbox
from typer.testing import CliRunner

from bonzo_bulk.config.loader import load_config
from bonzo_bulk.monitor.runner import MonitorReport, monitor_run
from bonzo_bulk.sandbox import SandboxServer
from bonzo_bulk.store import RunStore


def _monitor(tmp_path: Path, users: list[dict[str, object]], name: str, store_url: str, sandbox_url: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    config = drill_config(folder, users, store_url=store_url, sandbox_url=sandbox_url)
    data = yaml.safe_load(config.read_text())
    data["monitor"]["name"] = name
    config.write_text(yaml.safe_dump(data))
    return config


def test_two_monitors_sharing_postgresql_share_one_problem_and_its_alerts(
    tmp_path: Path, pg_cluster: PgCluster, users: list[dict[str, object]]
) -> None:
    with receiving() as receiver, serving_a_sandbox(tmp_path / "sandbox.sqlite3") as sandbox:
        _drill(tmp_path, pg_cluster, receiver, users, sandbox)


def _drill(
    tmp_path: Path, pg_cluster: PgCluster, receiver: Receiver, users: list[dict[str, object]], sandbox: SandboxServer
) -> None:
    store_url = pg_cluster.new_database()
    east, west = (_monitor(tmp_path, users, name, store_url, sandbox.url) for name in ("east", "west"))
    url = f"json://bonzo:{CANARY_PASSWORD}@127.0.0.1:{receiver.port}/notify/{CANARY_TOKEN}"
    env = {"BONZO_BULK_NOTIFY_URLS": url}
    runner = CliRunner()
    notices = []
    for step, faults in enumerate([FAULTS, FAULTS, FAULTS, None, None, FAULTS]):
        document = monitor_once(runner, east if step % 2 == 0 else west, env, faults, sandbox)
        notices.append([n.split()[0] for n in document["notices"]])
    assert notices == [["new"], [], ["reminder"], [], ["resolved"], ["reopened"]]
    with RunStore(store_url) as store:
        assert len(store.problems()) == 1

    reports: list[MonitorReport] = []
    second = east.parent / "second_fault.yaml"

    def race(config: Path) -> None:
        loaded = load_config(config, overrides={"faults": str(second)})
        reports.append(monitor_run(loaded, env=env))

    threads = [threading.Thread(target=race, args=(config,)) for config in (east, west)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reports) == 2 and all(r.exit_code == 1 for r in reports)
    opened = [n for r in reports for n in r.notices if n.startswith("new ")]
    assert len(opened) == 1, [r.notices for r in reports]
    with RunStore(store_url) as store:
        problems = store.problems()
        assert len(problems) == 2
        last_name = next(p for p in problems if p.check == "last_name")
        assert last_name.runs == 2
    assert all(CANARY_TOKEN not in str(n["body"]) for n in receiver.received)
