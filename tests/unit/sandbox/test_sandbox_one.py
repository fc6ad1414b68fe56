"""One sandbox: served on its own (``bonzo-bulk sandbox --config X``) or started in-process by a run of X,
it holds the same users and hooks and turns the same record into the same prospect, in both strictnesses."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bonzo_bulk._http import make_session
from bonzo_bulk.cli.sandbox import serve_sandbox
from bonzo_bulk.config.loader import load_config
from bonzo_bulk.models import PlannedRecord
from bonzo_bulk.plan.planner import RunPlan, plan_run
from bonzo_bulk.plan.seeding import plan_seed
from bonzo_bulk.target.endpoints import open_endpoints

USERS = [
    {"name": "LO One", "email": "lo.one@lender.test", "user_id": 101, "team_id": 11},
    {"name": "LO Two", "email": "lo.two@lender.test", "user_id": 102, "team_id": 12},
]
VOLATILE = ("id", "created_at", "updated_at")


def write_config(tmp_path: Path, strictness: str) -> Path:
    """A Monitorbase config with the control phase, fast processing and a strict-mode custom field mapping."""
    data = {
        "integration_type": "monitorbase",
        "test_records": 2,
        "control": True,
        "test_users": USERS,
        "reports_dir": str(tmp_path / "reports"),
        "sandbox": {
            "strictness": strictness,
            "mapped_custom_fields": {"monitorbase": ["custom_1"]},
            "processing": {"distribution": "fixed", "seconds": 0.05},
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def in_process(plan: RunPlan) -> AsyncIterator[dict[str, str]]:
    """The sandbox a run of the plan starts and seeds (the run's own code path)."""
    session = make_session(limit=4, timeout=10)
    opened = open_endpoints(plan.loaded, session, run_id=plan.run_id, new_run=True, seed=plan_seed(plan))
    async with session, opened as endpoints:
        assert endpoints.control_hook_url is not None and endpoints.sandbox_url is not None
        yield {
            "base": endpoints.sandbox_url,
            "token": endpoints.api_key,
            "primary": endpoints.hook_url,
            "control": endpoints.control_hook_url,
        }


@contextlib.contextmanager
def standalone(config: Path, db: Path) -> Iterator[dict[str, str]]:
    """``bonzo-bulk sandbox --config`` on a thread; its hook URLs and token read from what it prints."""
    lines: list[str] = []
    stop = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            serve_sandbox(
                host="127.0.0.1", port=0, db=db, config_file=config, faults=None, echo=lines.append, until=stop.is_set
            )
        except BaseException as exc:  # reported by the test below
            failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        for _ in range(1500):
            if "Press Ctrl-C to stop." in lines or failed:
                break
            stop.wait(0.02)
        assert not failed and "Press Ctrl-C to stop." in lines, (failed, lines)
        text = "\n".join(lines)
        hooks = dict(re.findall(r"hook URL \((\w+), source \w+\): (\S+)", text))
        token = re.search(r"superuser token \(works only on this sandbox\): (\S+)", text)
        base = re.search(r"at (http://\S+)", text)
        assert token is not None and base is not None
        yield {
            "base": base.group(1),
            "token": token.group(1),
            "primary": hooks["monitorbase"],
            "control": hooks["general"],
        }
    finally:
        stop.set()
        thread.join(10)


async def prospect_of(client: httpx.AsyncClient, where: dict[str, str], record: PlannedRecord) -> dict[str, Any]:
    """Post one planned record to its hook and read back its prospect (volatile keys and tag ids removed)."""
    hook = where["primary" if record.phase == "primary" else "control"]
    posted = await client.post(hook, content=record.body, headers={"content-type": record.content_type})
    assert posted.status_code == 200, posted.text
    headers = {"Authorization": f"Bearer {where['token']}", "On-Behalf-Of": str(record.expected_user.user_id)}
    for _ in range(250):
        listed = await client.get(f"{where['base']}/api/v3/prospects", headers=headers, params={"search": record.email})
        found = listed.json()["data"]
        if found:
            (prospect,) = found
            shown = {k: v for k, v in prospect.items() if k not in VOLATILE}
            shown["tags"] = [{k: v for k, v in t.items() if k != "id"} for t in shown["tags"]]
            return shown
        await asyncio.sleep(0.02)
    raise AssertionError(f"{record.name} never appeared")


async def state_of(client: httpx.AsyncClient, where: dict[str, str]) -> dict[str, Any]:
    """Users, hook (type, source) pairs and settings: what both sandboxes must share."""
    state = (await client.get(f"{where['base']}/__sandbox/state")).json()
    return {
        "users": state["users"],
        "hooks": sorted((h["type"], h["source"]) for h in state["hooks"]),
        "settings": state["settings"],
    }


@pytest.mark.parametrize("strictness", ["lenient", "strict"])
async def test_standalone_and_in_process_sandboxes_agree(tmp_path: Path, strictness: str) -> None:
    config = write_config(tmp_path, strictness)
    plan = plan_run(load_config(config, environ={}))
    records = [phase.records[0] for phase in plan.phases]
    assert [r.phase for r in records] == ["primary", "control"]
    async with httpx.AsyncClient(timeout=10) as client:
        async with in_process(plan) as where:
            inside = [await prospect_of(client, where, r) for r in records]
            inside_state = await state_of(client, where)
        with standalone(config, tmp_path / "standalone.sqlite3") as where:
            served = [await prospect_of(client, where, r) for r in records]
            served_state = await state_of(client, where)
    assert served_state == inside_state
    assert served == inside
    primary, control = inside
    if strictness == "strict":
        assert (primary["source"], control["source"]) == ("monitorbase", "webhook")
        assert primary["custom_fields"] == [{"key": "custom_1", "value": records[0].payload["custom_1"]}]
    else:
        assert (primary["source"], control["source"]) == ("monitorbase", "monitorbase")
        assert {"custom_1", "custom_2", "custom_3"} <= set(primary["custom_fields"])
