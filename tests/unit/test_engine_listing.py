"""Every record's verdict against the sandbox's ground truth, under each way a listing may page, and the
hostile listings: a record that exists is never "not created", a record nobody could look for is unverified."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.config.schema import ProcessingDelayModel, SandboxListing
from bonzo_bulk.library import run_bulk
from bonzo_bulk.models import UNVERIFIED_CHECK, RunResult, Stage
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer
from bonzo_bulk.store import RunStore

R = "TestRecord_MonitorBase_{:03d}".format
RECORDS = 30
"""10 records per user, served 4 a page: every list takes three pages (and a fourth, empty, for page numbers)."""

VARIANTS = {
    "laravel": SandboxListing(style="laravel", max_per_page=4),
    "page_numbers": SandboxListing(style="page_numbers", max_per_page=4, hints="asked"),
    "links_cursor": SandboxListing(style="links_cursor", max_per_page=4),
    "meta_cursor": SandboxListing(style="meta_cursor", max_per_page=4),
}
HOSTILE = {
    "repeat": SandboxListing(max_per_page=4, hostile="repeat"),
    "endless": SandboxListing(max_per_page=4, hostile="endless"),
    "foreign_next": SandboxListing(max_per_page=4, hostile="foreign_next"),
    "repeat_cursor": SandboxListing(style="meta_cursor", max_per_page=4, hostile="repeat"),
}


def serve(tmp_path_factory: pytest.TempPathFactory, listing: SandboxListing) -> Iterator[SandboxServer]:
    db = tmp_path_factory.mktemp("listing") / "sandbox.sqlite3"
    fast = ProcessingDelayModel(distribution="fixed", seconds=0.05)
    with SandboxServer(SandboxOptions(db_path=db, processing=fast, listing=listing)) as server:
        yield server


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def paged_sandbox(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """A sandbox paging one way (one per pagination style), stopped after the module."""
    yield from serve(tmp_path_factory, VARIANTS[request.param])


@pytest.fixture(scope="module", params=sorted(HOSTILE))
def hostile_sandbox(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SandboxServer]:
    """A sandbox whose listing never ends honestly, stopped after the module."""
    yield from serve(tmp_path_factory, HOSTILE[request.param])


def truth_for(sandbox: SandboxServer, run_id: str) -> dict[str, set[str]]:
    entries = httpx.get(f"{sandbox.url}/__sandbox/ground-truth").json()["faults"]
    truth: dict[str, set[str]] = {}
    for entry in entries:
        if run_id in (entry.get("email") or ""):
            truth.setdefault(entry["fault"], set()).add(entry["record"])
    return truth


def failing(result: RunResult) -> dict[str, set[tuple[str, str]]]:
    assert result.primary is not None
    return {
        name: {(c.stage.value, c.check) for c in checks} for name, checks in result.primary.failures_by_record().items()
    }


FAULTS = [
    {"kind": "drop", "records": [R(2), R(13)]},
    {"kind": "duplicate", "records": [R(7)]},
    {"kind": "wrong_owner", "records": [R(11)]},
    {"kind": "mangle_field", "field": "last_name", "records": [R(22)]},
]
EXPECTED = {
    "drop": {("processing", "created")},
    "duplicate": {("processing", "duplicate")},
    "wrong_owner": {
        ("assignment", "owner"),
        ("assignment", "owner_email"),
        ("assignment", "team"),
        ("assignment", "visibility"),
    },
    "mangle_field": {("mapping", "last_name")},
}


def run_against(tmp_path: Path, sandbox: SandboxServer, make_config: Any, **overrides: Any) -> RunResult:
    section = {"url": sandbox.url, "faults": {"seed": 1, "faults": overrides.pop("faults", [])}}
    return run_bulk(make_config(tmp_path, sandbox.url, sandbox=section, test_records=RECORDS, **overrides))


def test_every_verdict_matches_the_ground_truth_under_each_pagination_style(
    tmp_path: Path, paged_sandbox: SandboxServer, make_config: Any
) -> None:
    result = run_against(tmp_path, paged_sandbox, make_config, faults=FAULTS)
    truth = truth_for(paged_sandbox, result.run_id)
    assert {kind: set(names) for kind, names in truth.items()} == {f["kind"]: set(f["records"]) for f in FAULTS}
    expected = {name: EXPECTED[kind] for kind, names in truth.items() for name in names}
    assert failing(result) == expected  # record by record: every fault caught, nothing else failing
    assert result.unverified == 0
    assert result.primary is not None
    assert result.primary.metrics.created == RECORDS - 2  # a record that exists is never "not created"
    assert not any("listing incomplete" in note for note in result.notes)


@pytest.mark.parametrize(
    "api_fault",
    [
        {"kind": "api_5xx", "rate": 0.3, "after_requests": 3},
        {"kind": "api_429_burst", "rate": 0.2, "after_requests": 3, "retry_after": 0},
    ],
    ids=["5xx", "429"],
)
def test_a_flaky_api_is_never_a_verdict(
    tmp_path: Path, paged_sandbox: SandboxServer, make_config: Any, api_fault: dict[str, Any]
) -> None:
    # 5xx and 429 on a share of every listing request, no retries in the client: the next poll lists again.
    result = run_against(
        tmp_path,
        paged_sandbox,
        make_config,
        faults=[api_fault],  # after the 3 requests of the preflight
        api_settings={"retry_attempts": 0},
        polling={"deadline": 4.0},
    )
    found = failing(result)
    # Either a record was found and passed, or its lists were never all read (unverified): never "not created".
    assert all(checks == {(Stage.VERIFICATION.value, UNVERIFIED_CHECK)} for checks in found.values()), found
    assert result.primary is not None
    assert result.primary.metrics.created + result.unverified == RECORDS


def test_a_hostile_listing_ends_at_the_deadline_with_unverified_records(
    tmp_path: Path, hostile_sandbox: SandboxServer, make_config: Any
) -> None:
    result = run_against(tmp_path, hostile_sandbox, make_config, polling={"deadline": 1.0, "interval": 0.1})
    assert result.primary is not None
    found = failing(result)
    assert result.unverified > 0
    assert result.primary.metrics.created + result.unverified == RECORDS
    for checks in found.values():  # never "not created": each failing record is unverified, and only that
        assert checks == {(Stage.VERIFICATION.value, UNVERIFIED_CHECK)}
    notes = [n for n in result.notes if n.startswith("listing incomplete")]
    assert notes and all("unverified" in n for n in notes)
    assert not result.passed
    # The store keeps each record's reason; the run read back says the same.
    with RunStore(Path(tmp_path / "reports") / "runs.sqlite3") as store:
        stored = {o.name: o.unverified for o in store.outcomes(result.run_id, "primary")}
        again = store.load_run(result.run_id)
    assert {name for name, why in stored.items() if why} == set(found)
    assert all("never completed" in why for why in stored.values() if why)
    assert again.unverified == result.unverified


def test_the_terminal_says_unverified_and_exits_1(tmp_path: Path, make_config: Any) -> None:
    # The run starts its own sandbox, whose every page claims last_page 1000000 and, after the first (one record
    # of the two each user owns), holds new made-up ids: the walk ends at the deadline.
    loaded = make_config(
        tmp_path,
        test_records=6,
        sandbox={
            "listing": {"hostile": "endless", "max_per_page": 1},
            "processing": {"distribution": "fixed", "seconds": 0.05},
        },
    )
    runner = CliRunner()
    result = runner.invoke(app, ["run", "--config", str(loaded.path), "--deadline", "2"], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "unverified" in result.output
    assert "not created" not in result.output
    assert "listing incomplete" in result.output
    assert "records unverified" in result.output.splitlines()[-1]
    summary = next((tmp_path / "reports" / "integration_health_reports").glob("*.json"))
    document = json.loads(summary.read_text())
    assert document["metrics"]["primary"]["unverified"] > 0
    assert {f["check"] for f in document["failures"]} == {UNVERIFIED_CHECK}
    dashboard = next((tmp_path / "reports" / "integration_health_reports").glob("*.html")).read_text()
    assert "Unverified" in dashboard
