"""The engine must catch every fault the sandbox injects: exactly the faulted records, at the right
stage and check, and nothing else — compared with the sandbox's own ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from bonzo_bulk.library import run_bulk
from bonzo_bulk.models import RunResult, Stage
from bonzo_bulk.sandbox import SandboxServer


@pytest.fixture
def run_with(make_config: Any) -> Any:
    """Run the engine against the session sandbox with a fault profile."""

    def run(tmp_path: Path, sandbox: SandboxServer, faults: list[dict[str, Any]], **overrides: Any) -> RunResult:
        sandbox_section = {"url": sandbox.url, "faults": {"seed": 1, "faults": faults}}
        return run_bulk(make_config(tmp_path, sandbox.url, sandbox=sandbox_section, **overrides))

    return run


def truth_for(sandbox: SandboxServer, run_id: str) -> dict[str, set[str]]:
    entries = httpx.get(f"{sandbox.url}/__sandbox/ground-truth").json()["faults"]
    truth: dict[str, set[str]] = {}
    for entry in entries:
        if run_id in (entry.get("email") or ""):
            truth.setdefault(entry["fault"], set()).add(entry["record"])
    return truth


def failing(result: RunResult) -> dict[str, set[tuple[str, str]]]:
    assert result.primary is not None
    grouped = result.primary.failures_by_record()
    return {name: {(c.stage.value, c.check) for c in checks} for name, checks in grouped.items()}


R = "TestRecord_MonitorBase_{:03d}".format


def test_clean_run_passes_every_check(run_with: Any, tmp_path: Path, any_sandbox: SandboxServer) -> None:
    result = run_with(tmp_path, any_sandbox, [])
    assert result.passed, failing(result)
    assert result.primary is not None
    assert result.primary.metrics.created == 9
    assert result.primary.settled
    assert truth_for(any_sandbox, result.run_id) == {}


@pytest.mark.parametrize(
    ("fault", "expected_checks"),
    [
        ({"kind": "drop"}, {("processing", "created")}),
        ({"kind": "duplicate"}, {("processing", "duplicate")}),
        (
            {"kind": "wrong_owner"},
            {
                ("assignment", "owner"),
                ("assignment", "owner_email"),
                ("assignment", "team"),
                ("assignment", "visibility"),
            },
        ),
        ({"kind": "wrong_team"}, {("assignment", "team")}),
        ({"kind": "mangle_field", "field": "last_name"}, {("mapping", "last_name")}),
        ({"kind": "missing_field", "field": "city"}, {("mapping", "city")}),
        ({"kind": "wrong_source", "value": "app"}, {("mapping", "source")}),
        ({"kind": "late", "delay_seconds": 30}, {("processing", "created")}),
        ({"kind": "intake_5xx", "status": 503}, {("delivery", "delivered")}),
        ({"kind": "reset"}, {("delivery", "delivered")}),
        ({"kind": "intake_hang", "seconds": 4}, {("delivery", "delivered")}),
    ],
    ids=lambda v: v["kind"] if isinstance(v, dict) else "",
)
def test_each_record_fault_is_caught_exactly(
    run_with: Any,
    tmp_path: Path,
    any_sandbox: SandboxServer,
    fault: dict[str, Any],
    expected_checks: set[tuple[str, str]],
) -> None:
    targets = [R(2), R(7)]
    result = run_with(tmp_path, any_sandbox, [{**fault, "records": targets}])
    truth = truth_for(any_sandbox, result.run_id)
    assert truth.get(fault["kind"]) == set(targets)
    found = failing(result)
    assert set(found) == set(targets), found
    for record in targets:
        assert found[record] == expected_checks
    assert not result.passed


def test_retried_intake_failure_recovers_and_counts_attempts(
    run_with: Any, tmp_path: Path, sandbox: SandboxServer
) -> None:
    result = run_with(tmp_path, sandbox, [{"kind": "intake_5xx", "times": 1, "records": [R(4)]}])
    assert result.passed, failing(result)
    assert result.primary is not None
    attempts = {o.name: o.delivery.attempts for o in result.primary.outcomes if o.delivery is not None}
    assert attempts[R(4)] == 2
    assert {v for k, v in attempts.items() if k != R(4)} == {1}


@pytest.mark.parametrize(
    "fault", [{"kind": "api_429_burst", "count": 3, "retry_after": 1}, {"kind": "api_5xx", "count": 2}]
)
def test_api_faults_are_ridden_out_and_cost_requests(
    run_with: Any, tmp_path: Path, sandbox: SandboxServer, fault: dict[str, Any]
) -> None:
    result = run_with(tmp_path, sandbox, [fault])
    assert result.passed, failing(result)
    assert result.primary is not None
    truth = httpx.get(f"{sandbox.url}/__sandbox/ground-truth").json()["faults"]
    assert any(entry["fault"] == fault["kind"] for entry in truth)


def test_rate_based_faults_match_the_ground_truth(run_with: Any, tmp_path: Path, sandbox: SandboxServer) -> None:
    result = run_with(
        tmp_path, sandbox, [{"kind": "drop", "rate": 0.3}, {"kind": "wrong_team", "rate": 0.3}], test_records=30
    )
    truth = truth_for(sandbox, result.run_id)
    found = failing(result)
    dropped = truth.get("drop", set())
    rerouted = truth.get("wrong_team", set()) - dropped
    assert dropped | rerouted == set(found)
    for record in dropped:
        assert found[record] == {("processing", "created")}
    for record in rerouted:
        assert found[record] == {("assignment", "team")}


def test_invalid_records_are_judged_by_their_declared_handling(
    run_with: Any, tmp_path: Path, sandbox: SandboxServer
) -> None:
    cases = [
        {"kind": "unknown_lo_email", "expect": "reject"},
        {"kind": "no_contact", "expect": "reject"},
        {"kind": "malformed_phone", "expect": "accept"},
    ]
    result = run_with(tmp_path, sandbox, [], invalid_records=cases)
    assert result.passed, failing(result)
    assert result.primary is not None
    assert result.primary.metrics.invalid_handled == 3
    # Declaring the wrong expectation must fail, and name the record.
    wrong = run_with(tmp_path, sandbox, [], invalid_records=[{"kind": "no_contact", "expect": "accept"}])
    assert failing(wrong) == {"TestRecord_MonitorBase_INV_001": {(Stage.VERIFICATION.value, "invalid_handling")}}


def test_failures_carry_expected_and_actual(run_with: Any, tmp_path: Path, sandbox: SandboxServer) -> None:
    result = run_with(tmp_path, sandbox, [{"kind": "wrong_owner", "records": [R(1)]}])
    assert result.primary is not None
    check = next(c for c in result.primary.failures() if c.check == "owner")
    assert check.expected == 101
    assert check.actual in (102, 103)
