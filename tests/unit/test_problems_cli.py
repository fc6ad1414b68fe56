"""`bonzo-bulk problems`: list, show, ack, mute, unmute, resolve on a store with tracked problems; bad ids and
spans are exit 2 with a message naming the value and the fix, and change nothing."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from builders import RunSpec, build_run, with_checks
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.config.monitor import ProblemSettings
from bonzo_bulk.models import CheckResult, RunResult, Stage
from bonzo_bulk.problems.track import ProblemTracker
from bonzo_bulk.store import RunStore


def _run(number: int, *, owner_wrong: bool) -> RunResult:
    result = build_run(RunSpec(records=4, invalid=0, run_id=f"20260301_0900{number:02d}_cd34"))
    primary = result.phases[0]
    checks = [CheckResult(o.name, "owner", Stage.ASSIGNMENT, not owner_wrong, 101, 102) for o in primary.outcomes]
    checks.append(CheckResult(primary.outcomes[0].name, "last_name", Stage.MAPPING, False, "Bulk", "BULK"))
    return dataclasses.replace(result, phases=(with_checks(primary, checks, replace=True),))


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A store where one run showed two problems: owner wrong on every record, last_name mangled on one."""
    location = str(tmp_path / "runs.sqlite3")
    ProblemTracker(location, ProblemSettings()).track(_run(1, owner_wrong=True))
    return location


def _ids(store: str) -> dict[str, str]:
    with RunStore(store) as opened:
        return {p.check: p.problem_id for p in opened.problems()}


def test_list_show_ack_mute_unmute_resolve(store: str) -> None:
    runner = CliRunner()
    ids = _ids(store)
    listed = runner.invoke(app, ["problems", "--store", store, "--json"])
    assert listed.exit_code == 0, listed.output
    assert {p["id"]: p["state"] for p in json.loads(listed.stdout)} == {ids["owner"]: "open", ids["last_name"]: "open"}
    other = runner.invoke(app, ["problems", "--store", store, "--integration", "zillow"])
    assert other.exit_code == 0 and "no open problems" in other.output
    mine = runner.invoke(app, ["problems", "--store", store, "--integration", "monitorbase", "--json"])
    assert len(json.loads(mine.stdout)) == 2
    table = runner.invoke(app, ["problems", "--store", store])
    assert "owner fails on (nearly) every record" in table.output and "field last_name mangled" in table.output

    acked = runner.invoke(
        app, ["problems", "ack", ids["owner"][:6], "--note", "ticket 4711", "--by", "ana", "--store", store]
    )
    assert acked.exit_code == 0 and f"acknowledged {ids['owner']} until it is resolved" in acked.output
    muted = runner.invoke(app, ["problems", "mute", ids["last_name"], "--for", "24h", "--by", "bo", "--store", store])
    assert muted.exit_code == 0 and f"muted {ids['last_name']} until" in muted.output
    states = {
        p["id"]: p["state"] for p in json.loads(runner.invoke(app, ["problems", "--store", store, "--json"]).stdout)
    }
    assert states == {ids["owner"]: "acknowledged", ids["last_name"]: "muted"}

    assert runner.invoke(app, ["problems", "unmute", ids["last_name"], "--store", store]).exit_code == 0
    resolved = runner.invoke(app, ["problems", "resolve", ids["last_name"], "--by", "bo", "--store", store])
    assert resolved.exit_code == 0, resolved.output
    open_now = json.loads(runner.invoke(app, ["problems", "--store", store, "--json"]).stdout)
    assert [p["id"] for p in open_now] == [ids["owner"]]
    every = json.loads(runner.invoke(app, ["problems", "--all", "--store", store, "--json"]).stdout)
    assert {p["id"]: p["state"] for p in every}[ids["last_name"]] == "resolved"

    shown = runner.invoke(app, ["problems", "show", ids["last_name"], "--store", store])
    assert shown.exit_code == 0, shown.output
    for line in ("resolved by bo", "unmuted by", "muted by bo", "opened by run", "20260301_090001_cd34  1/1 records"):
        assert line in shown.output, shown.output

    again = ProblemTracker(store, ProblemSettings()).track(_run(2, owner_wrong=True))
    assert again is not None
    assert {t.problem.check: (t.change, t.state) for t in again.problems} == {
        "owner": ("known", "acknowledged"),
        "last_name": ("reopened", "reopened"),
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "xyz!"], "problem id 'xyz!' is not an id"),
        (["show", "abc"], "problem id 'abc' is not an id"),
        (["show", "abcdef0123"], "problem id 'abcdef0123': no such problem"),
        (["mute", "{owner}", "--for", "forever"], "--for 'forever': give a span like 30m, 24h, 7d or 2w"),
        (["mute", "{owner}", "--for", "0h"], "--for '0h': give a span"),
        (["ack", "{owner}", "--note", "x", "--until", "someday"], "--until 'someday': give a span like 24h"),
        (["ack", "{owner}", "--note", "x", "--until", "2001-01-01"], "--until '2001-01-01' is in the past"),
        (["ack", "{owner}", "--note", " "], "--note '': say what is known"),
    ],
)
def test_bad_ids_and_spans_exit_2_and_change_nothing(store: str, args: list[str], message: str) -> None:
    owner = _ids(store)["owner"]
    before = json.loads(CliRunner().invoke(app, ["problems", "--store", store, "--json"]).stdout)
    result = CliRunner().invoke(app, ["problems", *(a.format(owner=owner) for a in args), "--store", store])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert json.loads(CliRunner().invoke(app, ["problems", "--store", store, "--json"]).stdout) == before


def test_no_store_is_exit_2_and_creates_none(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "runs.sqlite3"
    result = CliRunner().invoke(app, ["problems", "--store", str(missing)])
    assert result.exit_code == 2, result.output
    assert "no run store there, so no problems yet" in " ".join(result.output.split())
    assert not missing.exists()
