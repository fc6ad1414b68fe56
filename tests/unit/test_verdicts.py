"""Verdicts that hold on any Bonzo: no false alarm against a sandbox as strict as the reference allows,
the spec's config passing against a served sandbox targeted as live, time verdicts and the deadline kept
under rate limiting, and a calibrated contract that the next run passes."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml
from builders import sandbox_server
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.config.loader import load_config
from bonzo_bulk.config.sandbox_clock import SandboxClock
from bonzo_bulk.judge.stamps import utc_offset_text
from bonzo_bulk.library import run_bulk
from bonzo_bulk.plan.contract import load_contract_file
from bonzo_bulk.plan.seeding import config_seed

SPEC_CONFIG = Path(__file__).parents[1] / "configs" / "monitorbase_test_config.yaml"
SPEC_RULES = yaml.safe_load(SPEC_CONFIG.read_text())["validation_rules"]
UNDECLARED: dict[str, list[str]] = {"primary": [], "control": []}
"""No declared contract (the test configs declare custom fields and source by default)."""


def test_clean_run_on_a_strict_bonzo_has_no_false_alarm(make_config: Any, tmp_path: Path) -> None:
    """Nothing mapped beyond the documented fields, the general hook sets its own source: all passes."""
    with sandbox_server(tmp_path / "strict.sqlite3", strict=True) as strict:
        loaded = make_config(
            tmp_path, strict.url, control=True, contract=UNDECLARED, validation_rules=SPEC_RULES, test_records=12
        )
        result = run_bulk(loaded)
    assert result.passed, [c for p in result.phases for c in p.failures()]
    assert result.control is not None and result.control.metrics.created == 12
    assert all(p.diagnoses == () for p in result.phases)


def test_a_declared_field_that_never_arrives_is_one_systemic_diagnosis(make_config: Any, tmp_path: Path) -> None:
    declared = {"primary": [{"from": "custom_1", "to": "custom_fields.custom_1"}]}
    with sandbox_server(tmp_path / "strict.sqlite3", strict=True) as strict:
        result = run_bulk(make_config(tmp_path, strict.url, contract=declared, test_records=9))
    assert not result.passed
    assert result.primary is not None
    (diagnosis,) = result.primary.diagnoses
    assert (diagnosis.check, diagnosis.failed, diagnosis.judged) == ("custom_fields.custom_1", 9, 9)
    assert "never arrived" in diagnosis.cause and "Mapping tab" in diagnosis.fix
    assert result.primary.sporadic_failures() == []


@pytest.mark.parametrize("strictness", ["lenient", "strict"])
def test_the_spec_config_passes_against_a_served_sandbox_as_live(
    tmp_path: Path, strictness: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bonzo-bulk run`` on the spec's config file (through the CLI app, in this process), its environment
    only the live secrets: every other variable the run could read is removed first."""
    config = load_config(SPEC_CONFIG, environ={})
    seed = config_seed(config)
    for name in [n for n in os.environ if n.startswith(("BONZO", "TEST_HOOK", "SUPERUSER"))]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(SPEC_CONFIG.parents[2])
    with sandbox_server(tmp_path / "served.sqlite3", strict=strictness == "strict") as served:
        seeded = served.seed(list(seed.users), seed.hooks)
        hooks = [h["url"] for h in seeded["hooks"]]
        env = {
            "HOME": str(tmp_path),
            "TEST_HOOK_URL": hooks[0],
            "SUPERUSER_WEBHOOK_URL": hooks[1],
            "SUPERUSER_API_KEY": seeded["superuser_token"],
            "BONZO_API_URL": served.url,
        }
        done = CliRunner().invoke(
            app,
            [
                *("run", "--config", str(SPEC_CONFIG)),
                *("--reports-dir", str(tmp_path / "reports"), "--deadline", "20"),
            ],
            env=env,
        )
    assert done.exit_code == 0, done.output[-6000:]
    assert "Target: LIVE" in done.output and "PASSED" in done.stdout


def _created(prospect: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(prospect["created_at"]).replace("Z", "+00:00"))


def test_time_verdicts_and_the_deadline_hold_when_one_request_in_five_is_429(make_config: Any, tmp_path: Path) -> None:
    interval, deadline = 1.0, 4.0
    faults = {
        "seed": 3,
        "faults": [
            {"kind": "api_429_burst", "rate": 0.2, "retry_after": 1},
            {"kind": "drop", "records": ["TestRecord_MonitorBase_005"]},
        ],
    }
    with sandbox_server(tmp_path / "limited.sqlite3", faults=faults) as limited:
        loaded = make_config(
            tmp_path,
            limited.url,
            test_records=12,
            polling={"interval": interval, "max_interval": interval, "deadline": deadline},
            api_settings={"retry_attempts": 5, "retry_delay": 0.05, "default_retry_after": 1},
        )
        result = run_bulk(loaded)
        hits = [e for e in httpx.get(f"{limited.url}/__sandbox/ground-truth").json()["faults"] if "429" in e["fault"]]
    phase = result.primary
    assert phase is not None
    assert hits, "the sandbox answered no 429"
    measured = {
        c.record_name: c.actual for c in phase.checks() if c.check == "processing_time" and c.actual is not None
    }
    assert len(measured) == 11  # every record but the dropped one
    for outcome in phase.outcomes:
        observation, delivery = outcome.observation, outcome.delivery
        if observation is None or not observation.found:
            continue
        assert delivery is not None and delivery.answered_at is not None
        truth = (_created(dict(observation.prospects[0])) - delivery.answered_at).total_seconds()
        assert abs(measured[observation.record_name] - truth) <= interval, observation.record_name
    # The dropped record keeps settling busy until the deadline, and settling ends on the deadline's rule: the
    # deadline passed, or a Retry-After would have run past it and was refused (no wait stretches it; the client's
    # refusal is test_bonzo_client's test_a_429_wait_past_the_deadline_is_refused_at_once).
    assert phase.settle_seconds >= deadline
    assert any("the deadline" in note for note in result.notes), result.notes


@pytest.mark.parametrize("strictness", ["lenient", "strict"])
def test_calibration_writes_a_contract_the_next_run_passes(make_config: Any, tmp_path: Path, strictness: str) -> None:
    strict = strictness == "strict"
    mapped = {"monitorbase": ["custom_1"]} if strict else {}
    clock = SandboxClock(zone="America/Chicago", whole_seconds=True) if strict else SandboxClock()
    with sandbox_server(tmp_path / "cal.sqlite3", strict=strict, mapped_custom_fields=mapped, clock=clock) as sandbox:
        loaded = make_config(tmp_path, sandbox.url, control=True, contract=UNDECLARED)
        assert loaded.path is not None
        contract = tmp_path / "learned.contract.yaml"
        runner = CliRunner()
        calibrated = runner.invoke(app, ["calibrate", "--config", str(loaded.path), "--out", str(contract)])
        assert calibrated.exit_code == 0, calibrated.output
        # What created_at looks like is reported: a naive Chicago stamp's zone is learned, never read as UTC.
        assert "created_at format" in calibrated.output, calibrated.output
        if strict:
            chicago = datetime.now(ZoneInfo("America/Chicago")).utcoffset()
            assert chicago is not None
            assert "naive (no offset), whole seconds" in calibrated.output
            assert f"{utc_offset_text(chicago.total_seconds())}, learned" in calibrated.output, calibrated.output
        learned = load_contract_file(contract)
        primary = {f.field: f for f in learned.primary.fields}
        assert primary["custom_fields.custom_1"].source == "custom_1"
        assert primary["phone"].transform == "phone"
        control = {f.field: f for f in learned.control.fields}
        assert control["source"].value == ("webhook" if strict else "monitorbase")
        if strict:
            assert "custom_2" in learned.primary.never_arrived
        # Calibration cleaned up after itself.
        left = httpx.get(f"{sandbox.url}/__sandbox/state").json()
        assert left["prospects"] == 0, left
        rerun = runner.invoke(app, ["calibrate", "--config", str(loaded.path), "--out", str(contract)])
        assert rerun.exit_code == 0 and "still holds" in rerun.output, rerun.output
        result = run_bulk(
            make_config(tmp_path, sandbox.url, control=True, contract={**UNDECLARED, "file": str(contract)})
        )
    assert result.passed, [c for p in result.phases for c in p.failures()]
    assert result.primary is not None
    assert any(c.check == "custom_fields.custom_1" and c.passed for c in result.primary.checks())
