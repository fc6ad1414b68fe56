"""The pytest plugin, through ``pytester``: options, markers, laziness, dry run, subsets in any order, a
faulty sandbox failing exactly the right tests with the right records named, HTML and JUnit reports.

The real suites (``tests/integration_tests``) are copied into each pytester directory and run against
the local sandbox with a small, fast config: the sandbox the plugin starts itself in the clean run, one the test
serves (``sandbox.url``, the faults put on it by the run) in the others, which spares a sandbox process a run.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bonzo_bulk.config.options import OPTIONS
from bonzo_bulk.config.schema import ProcessingDelayModel
from bonzo_bulk.pytest_plugin import MARKERS
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer

ROOT = Path(__file__).parents[2]
SUITES = ROOT / "tests" / "integration_tests"
EXPECTED_RESPONSES = ROOT / "tests" / "fixtures" / "expected_responses.json"
USERS = [
    {"name": "LO One", "email": "lo.one@lender.test", "user_id": 101, "team_id": 11},
    {"name": "LO Two", "email": "lo.two@lender.test", "user_id": 102, "team_id": 12},
    {"name": "LO Three", "email": "lo.three@lender.test", "user_id": 103, "team_id": 13},
]
ASSIGNMENT_TESTS = {
    "test_monitorbase_integration.py::test_user_assignment_accuracy",
    "test_monitorbase_integration.py::test_team_routing",
    "test_monitorbase_integration.py::test_on_behalf_of_visibility",
    "test_monitorbase_integration.py::test_prospect_ownership",
    "test_data_integrity.py::test_validation_rule[assigned_user.email]",
    "test_data_integrity.py::test_validation_rule[assigned_user.id]",
    "test_data_integrity.py::test_validation_rule[business_entity_id]",
}
FAST = ("-p", "no:cacheprovider", "-p", "no:asyncio", "--strict-markers", "-p", "no:randomly")


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester directory holding the real integration suites and the fixture they read."""
    monkeypatch.setenv("COLUMNS", "160")
    for variable in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "SUPERUSER_WEBHOOK_URL", "BONZO_BULK_TARGET"):
        monkeypatch.delenv(variable, raising=False)
    shutil.copytree(SUITES, pytester.path / "bulk_suites", ignore=shutil.ignore_patterns("__pycache__"))
    (pytester.path / "fixtures").mkdir()
    shutil.copy(EXPECTED_RESPONSES, pytester.path / "fixtures" / "expected_responses.json")
    return pytester


@pytest.fixture
def served(tmp_path: Path) -> Iterator[SandboxServer]:
    """A sandbox with ``write_config``'s 50 ms processing, served around one test."""
    options = SandboxOptions(
        db_path=tmp_path / "served.sqlite3", processing=ProcessingDelayModel(distribution="fixed", seconds=0.05)
    )
    with SandboxServer(options) as server:
        yield server


def write_config(directory: Path, **overrides: Any) -> Path:
    """A fast config: 9 records over 3 users, 50 ms sandbox processing, 0.2 s polling, reports in ``directory``."""
    data: dict[str, Any] = {
        "test_name": "plugin test",
        "integration_type": "monitorbase",
        "test_records": 9,
        "test_users": USERS,
        "validation_rules": [
            {"field": "source", "expected": "monitorbase"},
            {"field": "assigned_user.email", "matches_lo_email": True},
            {"field": "assigned_user.id", "expected": "user_id_from_lo_email"},
            {"field": "business_entity_id", "expected": "team_id_from_user"},
        ],
        "invalid_records": [{"kind": "unknown_lo_email", "expect": "reject"}],
        "webhook_settings": {"timeout": 2.0, "retry_attempts": 1, "retry_delay": 0.05, "concurrent_requests": 8},
        "api_settings": {"retry_delay": 0.05, "default_retry_after": 1},
        "polling": {"interval": 0.2, "max_interval": 0.5, "deadline": 5.0},
        "sandbox": {"processing": {"distribution": "fixed", "seconds": 0.05}},
        "reports_dir": str(directory / "reports"),
        "contract": {"primary": [{"from": f"custom_{n}", "to": f"custom_fields.custom_{n}"} for n in (1, 2, 3)]},
    }
    data.update(overrides)
    path = directory / "bulk.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def failed_tests(result: pytest.RunResult) -> set[str]:
    """``file::test`` of each FAILED line of the short summary."""
    return {m.group(1) for line in result.outlines if (m := re.match(r"FAILED bulk_suites/(\S+?)(?: - |$)", line))}


def test_help_lists_every_option_and_ini_key(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*FAST, "--help")
    text = result.stdout.str()
    assert "bonzo-bulk:" in text
    for flag in ("--config", "--dry-run", "--allow-literal-secrets", *(o.flag for o in OPTIONS)):
        assert re.search(rf"^\s+{re.escape(flag)}(?:[ =]|$)", text, re.MULTILINE), flag
    for key in ("bonzo_config", "bonzo_dry_run", *(f"bonzo_{o.dest}" for o in OPTIONS)):
        assert re.search(rf"^\s+{key} ", text, re.MULTILINE), key


def test_options_and_ini_keys_reach_the_config(pytester: pytest.Pytester, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    pytester.makeini("[pytest]\nbonzo_test_records = 4\nbonzo_concurrency = 3\nbonzo_target = sandbox\n")
    pytester.makepyfile(
        """
        def test_loaded(bonzo_config):
            config = bonzo_config.config
            assert config.test_records == 12  # the flag beats the ini key
            assert config.webhook_settings.concurrent_requests == 3  # the ini key beats the YAML
            assert config.processing_delay == 2.5
            assert config.test_data_settings.seed == 7
            assert config.polling.interval == 0.2  # from the YAML
            assert bonzo_config.target == "sandbox"
        """
    )
    result = pytester.runpytest(
        *FAST, f"--config={config}", "--test-records=12", "--processing-delay=2.5", "--seed", "7", "--strict-config"
    )
    result.assert_outcomes(passed=1)
    assert not (tmp_path / "reports").exists(), "reading the config must not start a run"


def test_bad_option_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*FAST, "--target=staging")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--target*invalid choice*staging*"])


def test_markers_are_registered_and_strict(pytester: pytest.Pytester) -> None:
    text = pytester.runpytest(*FAST, "--markers").stdout.str()
    for name in MARKERS:
        assert f"@pytest.mark.{name}:" in text
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.integration
        @pytest.mark.webhook
        @pytest.mark.api
        @pytest.mark.data_integrity
        @pytest.mark.superuser
        @pytest.mark.slow
        def test_marked():
            pass

        @pytest.mark.not_a_bonzo_marker
        def test_unknown():
            pass
        """
    )
    result = pytester.runpytest(*FAST)
    result.stdout.fnmatch_lines(["*'not_a_bonzo_marker' not found in `markers` configuration option*"])


def test_the_reporter_is_registered_for_the_session_and_unregistered_after(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        def pytest_sessionstart(session):
            reporter = session.config.pluginmanager.get_plugin("bonzo-bulk-reporter")
            session.config.rootpath.joinpath("during").write_text(type(reporter).__name__)

        @pytest.hookimpl(trylast=True)
        def pytest_unconfigure(config):
            config.rootpath.joinpath("after").write_text(repr(config.pluginmanager.get_plugin("bonzo-bulk-reporter")))
        """
    )
    pytester.makepyfile("def test_plain():\n    assert True\n")
    pytester.runpytest(*FAST).assert_outcomes(passed=1)
    assert (pytester.path / "during").read_text() == "Reporter"
    assert (pytester.path / "after").read_text() == "None"


def test_plugin_is_idle_unless_its_fixtures_are_used(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest(*FAST, "--config=does/not/exist.yaml", "--html=report.html")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "reports").exists()
    assert "bonzo-bulk integration health" not in result.stdout.str()
    assert "Integration health" not in (pytester.path / "report.html").read_text(encoding="utf-8")


def test_dry_run_sends_nothing_and_writes_the_payloads(suite: pytest.Pytester, tmp_path: Path) -> None:
    options = SandboxOptions(db_path=tmp_path / "sandbox.sqlite3", processing=ProcessingDelayModel())
    with SandboxServer(options) as sandbox:
        config = write_config(tmp_path, sandbox={"url": sandbox.url})
        result = suite.runpytest(*FAST, f"--config={config}", "--dry-run", "-rs", "bulk_suites")
        received = httpx.get(f"{sandbox.url}/__sandbox/requests").json()["requests"]
    assert received == []
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 2, result.stdout.str()  # the primary and control payload checks
    assert outcomes["skipped"] >= 25
    assert "failed" not in outcomes and "errors" not in outcomes
    result.stdout.fnmatch_lines(["SKIPPED * --dry-run: nothing was sent"])
    [payloads] = (tmp_path / "reports" / "dry_run").glob("*_payloads.jsonl")
    lines = [json.loads(line) for line in payloads.read_text(encoding="utf-8").splitlines()]
    assert {line["phase"] for line in lines} == {"primary", "control"}
    assert len(lines) == 9 + 1 + 9  # valid + the invalid case + control
    assert lines[0]["payload"]["lo_email"] == "lo.one@lender.test"


def test_clean_run_passes_with_html_and_junit_reports(suite: pytest.Pytester, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = suite.runpytest(
        *FAST,
        f"--config={config}",
        "--html=out/report.html",
        "--self-contained-html",
        "--junitxml=out/junit.xml",
        "bulk_suites",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 30 and "failed" not in outcomes and "skipped" not in outcomes, outcomes
    report = (suite.path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Integration health" in report
    assert "Target: the local SANDBOX" in report
    assert "assignment accuracy per user" in report and "lo.two@lender.test" in report
    assert "mapping per field" in report and "processing time" in report and "failures by stage" in report
    assert "health dashboard" in report
    assert not re.search(r"/api/webhook/[0-9A-Za-z]{6,}", report), "a hook hash leaked into the report"
    summary = json.loads((suite.path / "out" / "report.health.json").read_text(encoding="utf-8"))
    assert summary["passed"] is True and summary["run_id"] in report
    assert sorted(summary["metrics"]) == ["control", "primary"]
    junit = (suite.path / "out" / "junit.xml").read_text(encoding="utf-8")
    assert 'failures="0"' in junit and "test_user_assignment_accuracy" in junit
    assert (suite.path / "out" / "junit.health.json").is_file()
    dashboards = list((tmp_path / "reports" / "integration_health_reports").glob("monitorbase_*.html"))
    assert len(dashboards) == 1
    # --self-contained-html: the dashboard is one file to share too, plotly.js inside it.
    assert "<script src=" not in dashboards[0].read_text(encoding="utf-8")
    assert not (tmp_path / "reports" / "integration_health_reports" / "assets").exists()


@pytest.mark.parametrize(
    ("selection", "phases", "selected"),
    [
        (("-m", "webhook and not superuser"), ["primary"], {"test_bulk_webhook_delivery", "test_response_times"}),
        (("-m", "superuser"), ["control"], {"test_control_assignment_accuracy", "test_control_payload_schema"}),
        (("-k", "assignment_accuracy"), ["control", "primary"], {"test_user_assignment_accuracy"}),
    ],
    ids=["primary-webhook", "superuser", "k-assignment"],
)
def test_subsets_run_only_the_phases_they_need_in_any_order(
    suite: pytest.Pytester,
    tmp_path: Path,
    served: SandboxServer,
    selection: tuple[str, str],
    phases: list[str],
    selected: set[str],
) -> None:
    suite.makeconftest(
        """
        def pytest_collection_modifyitems(items):
            items.reverse()  # no test may depend on another having run first
        """
    )
    config = write_config(tmp_path, sandbox={"url": served.url})
    result = suite.runpytest(*FAST, f"--config={config}", "--junitxml=junit.xml", "-v", *selection, "bulk_suites")
    outcomes = result.parseoutcomes()
    assert "failed" not in outcomes and "skipped" not in outcomes and outcomes["passed"] >= 1, outcomes
    ran = set(re.findall(r"::(test_\w+)(?:\[[^\]]*\])? PASSED", result.stdout.str()))
    assert selected <= ran
    summary = json.loads((suite.path / "junit.health.json").read_text(encoding="utf-8"))
    assert sorted(summary["metrics"]) == phases


def test_faulty_sandbox_fails_exactly_the_assignment_tests_naming_the_records(
    suite: pytest.Pytester, tmp_path: Path, served: SandboxServer
) -> None:
    faults = {
        "seed": 1,
        "faults": [{"kind": "wrong_owner", "records": ["TestRecord_MonitorBase_002", "TestRecord_MonitorBase_007"]}],
    }
    config = write_config(tmp_path, sandbox={"url": served.url, "faults": faults})
    result = suite.runpytest(
        *FAST, f"--config={config}", "-rf", "--html=report.html", "--junitxml=junit.xml", "bulk_suites"
    )
    assert failed_tests(result) == ASSIGNMENT_TESTS, result.stdout.str()
    text = result.stdout.str()
    assert "Traceback" not in text
    # the failure is a table: record, stage, check, expected owner, actual owner (another test user), its problem
    for record, expected_owner in (("TestRecord_MonitorBase_002", 102), ("TestRecord_MonitorBase_007", 101)):
        row = rf"^{record}\s+assignment\s+owner\s+{expected_owner}\s+(10[123])\s+new problem [0-9a-f]{{10}}\s+mismatch$"
        actual = {int(m) for m in re.findall(row, text, re.MULTILINE)}
        assert actual and expected_owner not in actual, f"no assignment row for {record}:\n{text}"
    assert "User assignment [primary]: 7/9 records passed" in text
    assert "assignment_accuracy: 77.8% (threshold >= 95.0%) FAILED" in text
    failing_records = set(re.findall(r"TestRecord_MonitorBase_\d{3}", text.split("short test summary")[0]))
    assert failing_records == {"TestRecord_MonitorBase_002", "TestRecord_MonitorBase_007"}
    report = (suite.path / "report.html").read_text(encoding="utf-8")
    assert "Integration health" in report and "FAILED" in report and "TestRecord_MonitorBase_007" in report
    junit = (suite.path / "junit.xml").read_text(encoding="utf-8")
    assert f'failures="{len(ASSIGNMENT_TESTS)}"' in junit and "TestRecord_MonitorBase_002" in junit


def test_known_problems_only_pass_under_fail_on_new_problems_only(
    suite: pytest.Pytester, tmp_path: Path, served: SandboxServer
) -> None:
    faults = {"seed": 1, "faults": [{"kind": "wrong_owner", "records": ["TestRecord_MonitorBase_002"]}]}
    config = write_config(tmp_path, sandbox={"url": served.url, "faults": faults}, control=False)
    args = (*FAST, f"--config={config}", "--fail-on-new-problems-only", "bulk_suites/test_monitorbase_integration.py")
    first = suite.runpytest(*args)
    assert first.ret == pytest.ExitCode.TESTS_FAILED, "a new problem fails the session"
    assert re.search(
        r"new problem [0-9a-f]{10}: monitorbase \(sandbox\) primary: records misrouted", first.stdout.str()
    )
    second = suite.runpytest(*args)
    text = second.stdout.str()
    assert failed_tests(second), "the tests still fail and say why"
    assert re.search(r"TestRecord_MonitorBase_002\s+assignment\s+owner\s+102\s+10[13]\s+known problem", text), text
    assert second.ret == pytest.ExitCode.OK, text
    assert "every failure is a known problem and --fail-on-new-problems-only is set: the session passes" in text
