"""The control-passed / primary-failed diagnosis is computed once and said by every output (issue 24.11): the
terminal, the dashboard, the JSON summary, monitor alerts, pytest-html; and counts read as counts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from builders import DUPLICATE, FAULTY, build_run

from bonzo_bulk.judge.diagnosis import hook_diagnosis
from bonzo_bulk.judge.tally import verdict_text
from bonzo_bulk.models import RunResult, ThresholdVerdict, Verdict
from bonzo_bulk.monitor.message import Outcome, compose
from bonzo_bulk.monitor.policy import AlertState
from bonzo_bulk.pytest_plugin.html import health_html
from bonzo_bulk.report.dashboard import render_dashboard
from bonzo_bulk.report.rows import verdict_line
from bonzo_bulk.report.summary import summary_document
from bonzo_bulk.report.terminal import out, print_result

LO_EMAIL = "Control passed, primary failed: the fault is in the lo_email -> user resolution of the integration."
PRIMARY_FAILS = build_run(run_id="r20260101-000000-abcd", faults=FAULTY, control=6)


def test_each_pair_of_phase_verdicts_names_its_fault() -> None:
    control_fails = build_run(run_id="c", faults=FAULTY, control=6)
    assert control_fails.primary is not None and not control_fails.primary.passed
    failing_control = dataclasses.replace(control_fails.primary, kind="control")
    both = dataclasses.replace(control_fails, phases=(control_fails.phases[0], failing_control))
    clean = build_run(run_id="p", control=6)
    only_control = dataclasses.replace(clean, phases=(clean.phases[0], failing_control))
    findings = [hook_diagnosis(r) for r in (PRIMARY_FAILS, both, only_control, clean)]
    assert [f.finding if f else None for f in findings] == [
        "lo_email_resolution", "downstream", "control_hook", "both_passed",
    ]  # fmt: skip
    assert hook_diagnosis(build_run(run_id="no_control")) is None, "no control phase, nothing to compare"


@pytest.fixture(scope="module")
def run() -> RunResult:
    assert PRIMARY_FAILS.control is not None and PRIMARY_FAILS.control.passed
    assert PRIMARY_FAILS.primary is not None and not PRIMARY_FAILS.primary.passed
    return PRIMARY_FAILS


def test_the_terminal_says_it(run: RunResult) -> None:
    with out.capture() as captured:
        print_result(run)
    assert LO_EMAIL in captured.get()


def test_the_json_summary_says_it(run: RunResult) -> None:
    document = summary_document(run)
    assert document["hook_diagnosis"] == {"finding": "lo_email_resolution", "text": LO_EMAIL}
    assert summary_document(build_run(run_id="alone"))["hook_diagnosis"] is None


def test_the_dashboard_says_it(run: RunResult, tmp_path: Path) -> None:
    page = render_dashboard(run, out=tmp_path / "dash.html").read_text(encoding="utf-8")
    assert 'id="hook-diagnosis" data-finding="lo_email_resolution"' in page
    assert LO_EMAIL.replace("->", "-&gt;") in page


def test_monitor_alerts_say_it(run: RunResult) -> None:
    outcome = Outcome("monitorbase", "monitorbase", "sandbox", "failed", run.run_id, run, None)
    _, body = compose("alert", outcome, AlertState(), "1 failed run")
    assert LO_EMAIL in body


def test_pytest_html_says_it(run: RunResult, tmp_path: Path) -> None:
    section = health_html(result=run, plan_files=None, published=None, report_dir=tmp_path)
    assert LO_EMAIL.replace("->", "-&gt;") in section


def test_counts_read_as_counts() -> None:
    """Issue 24.11: ``duplicate prospects 1 ≤ 0`` read ``1.00``."""
    duplicated = build_run(run_id="d", faults={4: DUPLICATE})
    assert duplicated.primary is not None
    [verdict] = [v for v in duplicated.primary.metrics.thresholds if v.name == Verdict.DUPLICATE_PROSPECTS]
    assert verdict_text(verdict) == ("1", "<= 0")
    assert verdict_line(verdict, "primary") == "primary duplicate_prospects: 1 (threshold <= 0) FAILED"
    stray = ThresholdVerdict(Verdict.UNEXPECTED_PROSPECTS, 0, 2, False, "<=")
    assert verdict_text(stray) == ("2", "<= 0")
    assert verdict_text(ThresholdVerdict(Verdict.PROCESSING_P95, 60, 2.04, True, "<=")) == ("2.04 s", "<= 60 s")
