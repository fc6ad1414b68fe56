"""One verdict for the last line, the exit code and the dashboard badge: PASS never stands beside a failing
exit code or a regression banner."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from builders import build_run

from bonzo_bulk.config.schema import RegressionSettings
from bonzo_bulk.judge.verdict import RunVerdict
from bonzo_bulk.report import render_dashboard
from bonzo_bulk.report.regression import compare
from bonzo_bulk.store import RunSummary


@pytest.mark.parametrize(
    ("verdict", "label", "badge", "state", "exit_code"),
    [
        (RunVerdict(True), "PASSED", "PASS", "ok", 0),
        (RunVerdict(False), "FAILED", "FAIL", "bad", 1),
        (RunVerdict(True, 2, fail_on_regression=True), "FAILED (regression)", "FAIL (regression)", "bad", 1),
        (RunVerdict(True, 1), "PASSED with 1 regression (a warning", "REGRESSED", "warn", 0),
        (RunVerdict(False, 3, fail_on_regression=True), "FAILED (and 3 regressions)", "FAIL", "bad", 1),
        (RunVerdict(False, unverified=1), "FAILED (1 record unverified: a listing", "FAIL (unverified)", "bad", 1),
        (
            RunVerdict(True, cleanup_pending=2),
            "FAILED (2 records pending cleanup: run `bonzo-bulk cleanup --pending",
            "FAIL (cleanup pending)",
            "bad",
            1,
        ),
        (
            RunVerdict(True, 1, cleanup_pending=1),
            "FAILED (1 record pending cleanup",
            "FAIL (cleanup pending)",
            "bad",
            1,
        ),
    ],
)
def test_words_follow_the_exit_code(verdict: RunVerdict, label: str, badge: str, state: str, exit_code: int) -> None:
    assert verdict.label.startswith(label)
    assert (verdict.badge, verdict.state, verdict.exit_code) == (badge, state, exit_code)
    assert ("PASS" in verdict.label) == (exit_code == 0)


@pytest.mark.parametrize(
    ("enforced", "badge", "banner"), [(True, "FAIL (regression)", "bad"), (False, "REGRESSED", "warn")]
)
def test_dashboard_badge_beside_a_regression_banner(tmp_path: Path, enforced: bool, badge: str, banner: str) -> None:
    baseline = build_run(run_id="run_base", processing_ms=300.0)
    slower = build_run(run_id="run_slow", processing_ms=3000.0)
    regressions = compare(slower, baseline, RegressionSettings())
    assert slower.passed and regressions, "thresholds pass, the p95 regressed"
    page = render_dashboard(
        slower,
        history=[RunSummary.from_result(baseline, is_baseline=True)],
        baseline=baseline,
        regressions=regressions,
        verdict=RunVerdict(slower.passed, len(regressions), fail_on_regression=enforced),
        out=tmp_path / "d.html",
    ).read_text(encoding="utf-8")
    found = re.search(r'<span class="badge (\w+)" id="verdict" title="([^"]*)">([^<]*)</span>', page)
    assert found is not None
    assert found.group(3) == badge and found.group(1) == banner
    assert re.search(rf'<div class="flags {banner}" id="regressions">', page)
    title = re.search(r"<title>([^<]*)</title>", page)
    assert title is not None and title.group(1).startswith(badge)
