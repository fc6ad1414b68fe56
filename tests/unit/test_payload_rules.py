"""A rule expecting ``payload:<path>`` is checked against what the phase's template really sends, before sending."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bonzo_bulk.config.loader import load_config
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.plan.planner import plan_run
from bonzo_bulk.plan.scaffold import CONFIG_TEMPLATE, scaffold


def test_a_payload_path_the_template_holds_is_accepted(tmp_path: Path, make_config: Any) -> None:
    rule = {"field": "custom_fields.custom_2", "expected": "payload:custom_2"}
    loaded = make_config(tmp_path, validation_rules=[rule])
    plan = plan_run(loaded)
    assert plan.phase("primary") is not None


def test_a_payload_path_no_template_holds_is_refused_naming_the_rule_and_the_keys(
    tmp_path: Path, make_config: Any
) -> None:
    rules = [
        {"field": "first_name", "expected": "payload:first_name"},
        {"field": "first_name", "expected": "payload:no_such_key"},
    ]
    loaded = make_config(tmp_path, validation_rules=rules)
    with pytest.raises(ConfigError, match=r"'validation_rules\[1\]\.expected': 'payload:no_such_key'") as refused:
        plan_run(loaded)
    assert refused.value.key == "validation_rules[1].expected"
    assert "custom_2" in str(refused.value) and "lo_email" in str(refused.value)  # the keys it could name
    assert refused.value.exit_code == 2


def test_a_control_only_rule_is_checked_against_the_control_payload(tmp_path: Path, make_config: Any) -> None:
    """``lo_email`` is in Monitorbase's payload but not in the general (control) hook's."""
    rule = {"field": "email", "expected": "payload:lo_email"}
    assert plan_run(make_config(tmp_path, control=True, validation_rules=[rule])).phase("control") is not None
    with pytest.raises(ConfigError, match="control payload never holds"):
        plan_run(make_config(tmp_path, control=True, validation_rules=[{**rule, "phase": "control"}]))


@pytest.mark.parametrize(("origin", "kept"), [("monitorbase", True), ("mortech", False)])
def test_init_keeps_the_config_templates_payload_rule_only_where_the_copied_template_fills_it(
    tmp_path: Path, origin: str, kept: bool
) -> None:
    """The project's config template expects ``payload:custom_2`` (Monitorbase's); Mortech's XML has no such value."""
    assert CONFIG_TEMPLATE.is_file(), "run from the project's root"
    made = scaffold(f"acme_{origin}", base=tmp_path, origin=origin)
    text = made.config.read_text(encoding="utf-8")
    assert ('expected: "payload:custom_2"' in text) is kept
    assert 'field: "phone"' in text  # the rule after it is untouched
    plan_run(load_config(made.config, environ={}), phases=("primary",))  # and the config plans without a refusal
