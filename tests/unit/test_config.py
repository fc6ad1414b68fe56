"""Config loading: placeholders, precedence, target resolution, and every mistake as a clear ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from bonzo_bulk.config.loader import load_config
from bonzo_bulk.config.options import OPTIONS
from bonzo_bulk.errors import ConfigError

SHIPPED = Path("tests/configs/monitorbase_test_config.yaml")

BASE = """
test_name: "T"
webhook_url: "{TEST_HOOK_URL}"
superuser_api_key: "{SUPERUSER_API_KEY}"
test_records: 6
test_users:
  - {name: A, email: a@x.test, user_id: 1, team_id: 10}
  - {name: B, email: b@x.test, user_id: 2, team_id: 20}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_shipped_config_loads_and_targets_the_sandbox_without_environment() -> None:
    loaded = load_config(SHIPPED, environ={})
    assert loaded.target == "sandbox"
    assert loaded.config.test_records == 21
    assert [u.user_id for u in loaded.users] == [65013, 27227, 29194]
    assert loaded.config.webhook_settings.concurrent_requests == 5
    assert loaded.config.thresholds.creation_rate == 0.90


def test_environment_makes_it_live_and_secrets_stay_secret(tmp_path: Path) -> None:
    env = {
        "TEST_HOOK_URL": "https://hooks.example.test/api/webhook/" + "a" * 32,
        "SUPERUSER_API_KEY": "canary-key-123456",
    }
    loaded = load_config(write(tmp_path, BASE), environ=env)
    assert loaded.target == "live"
    assert "canary-key-123456" not in repr(loaded.config)
    assert loaded.config.superuser_api_key is not None
    assert loaded.config.superuser_api_key.get_secret_value() == "canary-key-123456"


def test_half_configured_live_is_an_error_not_a_silent_sandbox(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SUPERUSER_API_KEY is not"):
        load_config(write(tmp_path, BASE), environ={"TEST_HOOK_URL": "https://h.example.test/x"})


def test_live_target_without_variables_names_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TEST_HOOK_URL and SUPERUSER_API_KEY"):
        load_config(write(tmp_path, BASE), environ={}, overrides={"target": "live"})


def test_precedence_defaults_yaml_environment_command_line(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    assert load_config(path, environ={}).config.test_records == 6
    assert load_config(path, environ={"BONZO_BULK_TEST_RECORDS": "8"}).config.test_records == 8
    loaded = load_config(path, environ={"BONZO_BULK_TEST_RECORDS": "8"}, overrides={"test-records": 9})
    assert loaded.config.test_records == 9
    assert load_config(path, environ={}).config.processing_delay == 30.0


def test_api_base_url_from_environment(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, BASE), environ={"BONZO_API_URL": "http://127.0.0.1:9/"})
    assert loaded.config.api_settings.base_url == "http://127.0.0.1:9"


def test_dotenv_beside_the_config_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TEST_HOOK_URL=https://h.example.test/hook\nSUPERUSER_API_KEY=abcdefgh12345\n")
    assert load_config(write(tmp_path, BASE), environ={}).target == "live"


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("test_recrods: 5\n", r"'test_recrods' \(line \d+\): unknown key; did you mean 'test_records'\?"),
        ("processing_delay: many\n", r"'processing_delay' \(line \d+\): 'many' is not valid"),
        ("distribution: diagonal\n", r"'distribution'.*'diagonal'"),
        ("webhook_settings:\n  concurent_requests: 3\n", r"did you mean 'concurrent_requests'"),
        ("api_settings:\n  base_url: not-a-url\n", r"'api_settings.base_url'.*not an http\(s\) URL"),
        ("city_of: {MISSING_VAR_X}\n", r"'city_of'"),
    ],
)
def test_mistakes_name_key_line_value_and_fix(tmp_path: Path, snippet: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as info:
        load_config(write(tmp_path, BASE + snippet), environ={})
    assert str(tmp_path / "c.yaml") in str(info.value)
    assert info.value.exit_code == 2


def test_unresolvable_non_secret_placeholder_names_the_variable(tmp_path: Path) -> None:
    text = BASE + 'test_data_settings:\n  city: "{CITY_NAME}"\n'
    with pytest.raises(ConfigError, match=r"placeholder \{CITY_NAME\} has no value; set the environment variable"):
        load_config(write(tmp_path, text), environ={})
    assert (
        load_config(write(tmp_path, text), environ={"CITY_NAME": "Austin"}).config.test_data_settings.city == "Austin"
    )


def test_weighted_needs_weights_and_custom_counts_must_sum(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'weighted' needs a 'weight:'.*test_users\[0\]"):
        load_config(write(tmp_path, BASE + "distribution: weighted\n"), environ={})
    custom = BASE.replace("team_id: 10}", "team_id: 10, count: 2}").replace("team_id: 20}", "team_id: 20, count: 3}")
    with pytest.raises(ConfigError, match="sum to 5, but test_records is 6"):
        load_config(write(tmp_path, custom + "distribution: custom\n"), environ={})


def test_literal_token_in_the_file_is_refused_unless_overridden(tmp_path: Path) -> None:
    text = BASE.replace('"{SUPERUSER_API_KEY}"', '"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLWNhbmFyeQ"')
    with pytest.raises(ConfigError, match="looks like a literal secret") as info:
        load_config(write(tmp_path, text), environ={})
    assert "c2lnbmF0dXJlLWNhbmFyeQ" not in str(info.value)
    loaded = load_config(write(tmp_path, text), environ={}, allow_literal_secrets=True, overrides={"target": "sandbox"})
    assert loaded.warnings and "literal secret" in loaded.warnings[0]


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; pass --config"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line"):
        load_config(write(tmp_path, "test_users: [\n  - a: b\n"))


def test_unknown_override_suggests_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean --test-records"):
        load_config(write(tmp_path, BASE), environ={}, overrides={"test_record": 3})


def test_each_option_lands_somewhere_in_the_schema(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    values = {"int": 3, "float": 2.5, "str": "x"}
    faults = Path("tests/configs/faults/broken_integration.yaml")
    for option in OPTIONS:
        value: object = option.choices[0] if option.choices else values[option.kind.__name__]
        if option.name == "faults":
            value = str(faults)
        if option.name == "target":
            value = "sandbox"
        node = load_config(path, environ={}, overrides={option.name: value}).config.model_dump()
        for part in option.path:
            node = node[part]
        expected = str(faults.resolve()) if option.name == "faults" else value
        assert node == expected, option.name


def test_a_bad_value_names_the_flag_or_variable_it_came_from(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    with pytest.raises(ConfigError, match=r"'test_records' \(from --test-records\): -5 is not valid"):
        load_config(path, environ={}, overrides={"test_records": -5})
    with pytest.raises(ConfigError, match=r"\(from environment variable BONZO_BULK_TEST_RECORDS\): '0' is not valid"):
        load_config(path, environ={"BONZO_BULK_TEST_RECORDS": "0"})
