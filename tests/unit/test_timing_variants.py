"""Processing time on every clock variant of the sandbox, record by record: each record's true lag (the sandbox's
ground truth of when it created the prospect, minus when the lead was sent) lies inside the interval the run
reports, every injected fault is caught, and no clean record is flagged."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bonzo_bulk.config.sandbox_clock import SandboxClock
from bonzo_bulk.config.schema import ProcessingDelayModel, SandboxListing
from bonzo_bulk.judge.stamps import StampMapping
from bonzo_bulk.judge.timing import processing_time, sent_time
from bonzo_bulk.library import run_bulk
from bonzo_bulk.models import RunResult
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer

VARIANTS: dict[str, dict[str, Any]] = {
    "utc-microseconds": {},
    "naive-chicago": {"zone": "America/Chicago"},
    "naive-chicago-whole-seconds": {"zone": "America/Chicago", "whole_seconds": True},
    "naive-kolkata-whole-seconds-clock-37s-ahead": {
        "zone": "Asia/Kolkata",
        "whole_seconds": True,
        "offset_seconds": 37,
    },
    "offset-new-york-clock-20s-behind": {"zone": "America/New_York", "naive": False, "offset_seconds": -20},
    "utc-whole-seconds-clock-37s-ahead": {"whole_seconds": True, "offset_seconds": 37},
}
FAULTS = [{"kind": "duplicate", "rate": 0.15}, {"kind": "wrong_team", "rate": 0.15}, {"kind": "drop", "rate": 0.1}]
EXPECTED = {"duplicate": {("processing", "duplicate")}, "wrong_team": {("assignment", "team")}}


@pytest.fixture(params=list(VARIANTS), scope="module")
def variant(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """A sandbox writing time one way, with processing delays spread over 0.05-0.9 s; stopped at the end."""
    options = SandboxOptions(
        db_path=tmp_path_factory.mktemp("clock") / "sandbox.sqlite3",
        processing=ProcessingDelayModel(distribution="uniform", low=0.05, high=0.9),
        clock=SandboxClock(**VARIANTS[request.param]),
    )
    with SandboxServer(options) as server:
        yield server


def _run(make_config: Any, tmp_path: Path, sandbox: SandboxServer, **overrides: Any) -> RunResult:
    section = {"url": sandbox.url, "faults": {"seed": 3, "faults": FAULTS}}
    config = make_config(
        tmp_path, sandbox.url, sandbox=section, test_records=24, polling={"deadline": 4.0}, **overrides
    )
    return run_bulk(config)


def _truth(sandbox: SandboxServer, run_id: str) -> tuple[dict[str, float], dict[str, set[str]]]:
    """When each of the run's prospects was really created (by email, the first one), and the faults applied."""
    created: dict[str, float] = {}
    for prospect in httpx.get(f"{sandbox.url}/__sandbox/created").json()["prospects"]:
        if run_id in (prospect["email"] or ""):
            stamp = datetime.fromisoformat(prospect["created_at"].replace("Z", "+00:00")).timestamp()
            created.setdefault(prospect["email"], stamp)
    faults: dict[str, set[str]] = {}
    for entry in httpx.get(f"{sandbox.url}/__sandbox/ground-truth").json()["faults"]:
        if run_id in (entry.get("email") or ""):
            faults.setdefault(entry["fault"], set()).add(entry["record"])
    return created, faults


def _judged_against_truth(result: RunResult, sandbox: SandboxServer) -> tuple[int, int, list[float]]:
    """(records inside their interval, records timed, widths), after checking every fault and no false alarm."""
    phase = result.primary
    assert phase is not None and phase.complete
    created, faults = _truth(sandbox, result.run_id)
    failing = {name: {(c.stage.value, c.check) for c in checks} for name, checks in phase.failures_by_record().items()}
    dropped = faults.get("drop", set())
    expected: dict[str, set[tuple[str, str]]] = {r: {("processing", "created")} for r in dropped}
    for kind, checks in EXPECTED.items():
        for record in faults.get(kind, set()) - dropped:
            expected[record] = expected.get(record, set()) | checks
    assert failing == expected
    inside = timed = 0
    widths: list[float] = []
    for outcome in phase.outcomes:
        if outcome.processing is None:
            assert outcome.record.name in dropped
            continue
        assert outcome.delivery is not None
        lag = created[outcome.record.email] - sent_time(outcome.delivery).timestamp()
        timed += 1
        inside += outcome.processing.contains(lag, 2e-6)
        widths.append(outcome.processing.width)
        assert outcome.processing.contains(lag, 2e-6), (outcome.record.name, lag, outcome.processing)
        # Without created_at, first seen's interval (from the last walk that could have seen it) holds it too.
        seen = processing_time(outcome.delivery, outcome.observation, StampMapping())
        assert seen is not None and seen.source == "first_seen" and seen.contains(lag, 2e-6), (lag, seen)
    return inside, timed, widths


def test_every_true_lag_is_inside_its_interval(make_config: Any, tmp_path: Path, variant: SandboxServer) -> None:
    result = _run(make_config, tmp_path, variant)
    inside, timed, widths = _judged_against_truth(result, variant)
    assert timed >= 18 and inside == timed
    phase = result.primary
    assert phase is not None
    sources = {w.source for w in phase.metrics.timing_widths}
    assert sources == {"created_at"}, result.notes  # every variant is learned: no record falls back
    assert statistics.median(widths) < 1.6
    assert any(note.startswith("processing time [primary]") for note in result.notes)
    assert any("created_at format" in note for note in result.notes)


def test_a_pinned_zone_the_evidence_contradicts_is_a_diagnosis(make_config: Any, tmp_path: Path) -> None:
    options = SandboxOptions(
        processing=ProcessingDelayModel(distribution="uniform", low=0.05, high=0.9),
        clock=SandboxClock(zone="America/Chicago", whole_seconds=True),
    )
    with SandboxServer(options) as sandbox:
        pinned = {"created_at": {"zone": "America/New_York"}}
        result = _run(make_config, tmp_path, sandbox, contract=pinned)
        inside, timed, _ = _judged_against_truth(result, sandbox)
    assert inside == timed
    phase = result.primary
    assert phase is not None
    diagnoses = [d for d in phase.diagnoses if d.check == "created_at zone"]
    assert len(diagnoses) == 1 and "America/New_York" in diagnoses[0].cause
    assert any("the evidence decides" in note for note in result.notes)


def test_first_seen_intervals_hold_when_records_span_pages(make_config: Any, tmp_path: Path) -> None:
    """Pages of 3: a walk that stopped at page 1 proves nothing about page 3 (settle/reach.py)."""
    options = SandboxOptions(
        processing=ProcessingDelayModel(distribution="uniform", low=0.05, high=0.9),
        listing=SandboxListing(max_per_page=3),
        clock=SandboxClock(zone="Europe/Paris", whole_seconds=True),
    )
    with SandboxServer(options) as sandbox:
        result = _run(make_config, tmp_path, sandbox)
        inside, timed, _ = _judged_against_truth(result, sandbox)
    assert timed >= 18 and inside == timed
