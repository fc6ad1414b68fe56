"""CI output: the job summary (verdict, diagnoses, top failures, under 1 MiB), capped annotations, the action."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path

import yaml
from builders import FAULTY, build_run

from bonzo_bulk.models import CheckResult, Stage
from bonzo_bulk.report.ci import STEP_SUMMARY_LIMIT, error_annotations, step_summary, write_ci_outputs
from bonzo_bulk.report.regression import Regression

ROOT = Path(__file__).parents[2]
ACTION = ROOT / ".github" / "actions" / "bonzo-bulk" / "action.yml"


def test_summary_leads_with_the_verdict_then_diagnoses_and_top_failures() -> None:
    result = build_run(run_id="r_ci", faults=FAULTY)
    text = step_summary(result, [], Path("reports/x/monitorbase_r_ci.html"))
    assert text.startswith("## ❌ bonzo-bulk: monitorbase FAILED (sandbox)")
    assert "| primary | creation_rate |" in text
    assert "### Diagnosis" in text and "- **sporadic**: primary created failed for 1/27 records" in text
    assert "### Top failing records (7 in all)" in text and "| TestRecord_MonitorBase_007 | primary |" in text
    assert "monitorbase_r_ci.html" in text


def test_a_passed_run_that_regressed_says_so() -> None:
    regression = Regression("p95_processing_ms", "primary", 900, 1500, 1100, "p95 processing time 1,500 ms is above")
    text = step_summary(build_run(run_id="r_ok"), [regression], None)
    assert text.startswith("## ⚠️ bonzo-bulk: monitorbase REGRESSED")
    assert "### Regressions" in text and "p95 processing time 1,500 ms is above" in text


def test_a_huge_failure_list_stays_under_the_step_summary_cap() -> None:
    result = build_run(run_id="r_big")
    primary = result.primary
    assert primary is not None
    noise = "x" * 400
    checks = tuple(
        CheckResult(f"TestRecord_MonitorBase_{i:05d}", "owner.id", Stage.ASSIGNMENT, False, noise, noise)
        for i in range(20_000)
    )
    big = dataclasses.replace(result, phases=(dataclasses.replace(primary, outcomes=(), stray_checks=checks),))
    text = step_summary(big, [], None)
    assert len(text.encode()) < STEP_SUMMARY_LIMIT
    assert "<details><summary>19990 more failing records</summary>" in text
    assert re.search(r"- … and \d+ more \(see the JSON summary and the dashboard\)", text)


def test_annotations_are_capped_and_escaped() -> None:
    result = build_run(run_id="r_ann", faults=FAULTY)
    lines = error_annotations(result, limit=3, config_path="cfg/a,b.yaml")
    assert len(lines) == 4
    assert lines[0].startswith("::error file=cfg/a%2Cb.yaml,title=TestRecord_MonitorBase_003 (primary)::")
    assert lines[-1] == (
        "::error title=bonzo-bulk::4 more failures of run r_ann are in the job summary and the dashboard"
    )


def test_outputs_only_inside_github_actions(tmp_path: Path) -> None:
    result = build_run(run_id="r_env", faults=FAULTY)
    stream = io.StringIO()
    assert write_ci_outputs(result, [], None, environ={}, stream=stream) is None
    assert stream.getvalue() == ""
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    env = {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": "true"}
    assert write_ci_outputs(result, [], None, environ=env, stream=stream) == summary
    assert summary.read_text().startswith("earlier step\n## ❌ bonzo-bulk")
    assert stream.getvalue().count("::error ") == 7


def test_the_composite_action_and_examples_use_only_declared_inputs() -> None:
    action = yaml.safe_load(ACTION.read_text())
    declared = set(action["inputs"])
    assert action["runs"]["using"] == "composite"
    used = set(re.findall(r"inputs\.([a-z-]+)", ACTION.read_text()))
    assert used <= declared, used - declared
    uploads = [s for s in action["runs"]["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["with"]["archive"] is False
    for example in sorted((ROOT / "examples" / "github").glob("*.yml")):
        workflow = yaml.safe_load(example.read_text())
        steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
        ours = [s for s in steps if s.get("uses") == "./.github/actions/bonzo-bulk"]
        assert ours, example
        for step in ours:
            assert set(step.get("with", {})) <= declared, (example, set(step["with"]) - declared)
            assert all(str(v).startswith("${{ secrets.") for v in step.get("env", {}).values()), example
