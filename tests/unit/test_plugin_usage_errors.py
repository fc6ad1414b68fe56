"""A bad config under pytest stops the session with one ``ERROR: bonzo-bulk: ...`` line and exit code 4
(pytest's usage error), not a pluggy traceback per test module; a session that needs no config ignores it."""

from __future__ import annotations

import re

import pytest

QUIET = ("-p", "no:cacheprovider", "-p", "no:asyncio", "-q")
USES_CONFIG = """
def test_reads_the_config(bonzo_config):
    assert bonzo_config.config.test_records
"""
USES_RULES = """
def test_rule(validation_rule):
    assert validation_rule.field
"""


def _one_error(result: pytest.RunResult) -> str:
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output and not re.search(r"\.py:\d+", output), output
    errors = [line for line in result.errlines if line.startswith("ERROR")]
    assert len(errors) == 1, output
    return errors[0]


def test_a_missing_config_file_is_one_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fixture=USES_CONFIG, test_rules=USES_RULES)
    result = pytester.runpytest("--config", "missing.yaml", *QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    error = _one_error(result)
    assert error.startswith("ERROR: bonzo-bulk: config file 'missing.yaml' does not exist; pass --config")


def test_a_bad_option_value_names_the_key_and_the_value(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=USES_RULES)
    config = pytester.path / "bulk.yaml"
    config.write_text("test_users:\n  - {name: LO, email: lo@lender.test, user_id: 1, team_id: 1}\n")
    result = pytester.runpytest("--config", str(config), "--test-records", "0", *QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    error = _one_error(result)
    assert "'test_records' (from --test-records): 0 is not valid" in error


def test_a_bad_ini_value_is_one_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=USES_CONFIG)
    pytester.makeini("[pytest]\nbonzo_test_records = many\n")
    result = pytester.runpytest(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert _one_error(result) == "ERROR: bonzo-bulk: ini key bonzo_test_records = 'many': not a whole number, e.g. 20"


def test_tests_that_need_no_config_do_not_load_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = pytester.runpytest("--config", "missing.yaml", *QUIET)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
