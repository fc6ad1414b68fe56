"""Templates render on the parsed tree: types kept, text escaped by JSON, unknown placeholders named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bonzo_bulk.errors import TemplateError
from bonzo_bulk.plan.templates import compile_template, load_template, placeholders, render


def test_whole_string_placeholder_keeps_its_type() -> None:
    out = render({"user_id": "{user.user_id}", "flag": "{ok}", "n": 5}, {"user": {"user_id": 65013}, "ok": True})
    assert out == {"user_id": 65013, "flag": True, "n": 5}


def test_placeholder_inside_text_is_formatted_and_braces_escape() -> None:
    out = render({"loan": "LN-{record_id}-{{x}}"}, {"record_id": "20250101_000000_001"})
    assert out == {"loan": "LN-20250101_000000_001-{x}"}


def test_unknown_placeholder_names_itself_and_where() -> None:
    with pytest.raises(TemplateError, match=r"'\{user.mail\}' at \$.lo_email is unknown"):
        render({"lo_email": "{user.mail}"}, {"user": {"email": "a@b.test"}})


def test_the_users_templates_render_unchanged() -> None:
    template = load_template(Path("tests/fixtures/monitorbase_superuser_payload_template.json"))
    assert placeholders(template) == {"first_name", "last_name", "phone", "email", "user.user_id"}
    out = render(template, {"first_name": "F", "last_name": "L", "phone": "555", "email": "e", "user": {"user_id": 7}})
    assert out["user_id"] == 7


def test_constants_are_not_shared_between_renders() -> None:
    renderer = compile_template({"tags": ["a"], "brokers": []})
    first = renderer({})
    first["tags"].append("mutated")
    assert renderer({}) == {"tags": ["a"], "brokers": []}


def test_bad_template_file_is_a_template_error(tmp_path: Path) -> None:
    bad = tmp_path / "t.json"
    bad.write_text('{"a": ')
    with pytest.raises(TemplateError, match="not valid JSON"):
        load_template(bad)


@given(value=st.one_of(st.text(), st.integers(min_value=-(10**30), max_value=10**30), st.booleans(), st.none()))
def test_any_value_round_trips_through_json_with_its_type(value: object) -> None:
    payload = render({"v": "{v}", "t": "x{v}y"}, {"v": value})
    assert json.loads(json.dumps(payload))["v"] == value
    assert isinstance(payload["t"], str)
