"""Scenarios: durations, stages, thresholds and every mistake refused with the key named (exit 2, nothing sent)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.load.scenario import MAX_RATE_PER_PROCESS, parse_duration, parse_load, parse_stress
from bonzo_bulk.load.schedule import build_schedule


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("2m", 120.0), ("1m30s", 90.0), ("1h", 3600.0), ("500ms", 0.5), (12, 12.0), ("1.5s", 1.5)],
)
def test_durations_parse(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "10 minutes", "-5s", 0, "5x", True])
def test_bad_durations_are_refused(text: Any) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def _load(**data: Any) -> Any:
    return parse_load({"stages": [{"rate": 5, "duration": "2s"}], **data})


def test_a_valid_scenario_reads_stages_and_thresholds() -> None:
    scenario = parse_load(
        {
            "stages": [{"rate": 5, "to": 20, "duration": "3s"}, {"rate": 20, "duration": "1m"}],
            "thresholds": {"hook_p95_ms": 300, "lost": 0},
        }
    )
    assert [s.duration for s in scenario.stages] == [3.0, 60.0]
    assert scenario.stages[0].mean_rate == 12.5
    assert scenario.peak_rate == 20
    assert scenario.thresholds.hook_p95_ms == 300


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"stages": [{"rate": 5, "duraton": "2s"}]}, "stages[0].duraton", "did you mean 'duration'"),
        ({"stages": [{"rate": 0, "duration": "2s"}]}, "stages[0].rate", "greater than 0"),
        ({"stages": [{"rate": -3, "duration": "2s"}]}, "stages[0].rate", "greater than 0"),
        ({"stages": [{"rate": 5, "duration": "two seconds"}]}, "stages[0].duration", "not a duration"),
        ({"stages": []}, "stages", "at least 1"),
        ({"stages": [{"rate": 5, "duration": 1}], "treshold": {}}, "treshold", "did you mean 'thresholds'"),
        (
            {"stages": [{"rate": 5, "duration": 1}], "thresholds": {"hook_p59_ms": 1}},
            "thresholds.hook_p59_ms",
            "hook_p95_ms",
        ),
    ],
)
def test_bad_scenarios_name_the_key(data: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_load(data)
    assert caught.value.key == key
    assert key in str(caught.value)
    assert words in str(caught.value)


def test_a_rate_the_senders_cannot_generate_is_refused_with_the_fix() -> None:
    rate = MAX_RATE_PER_PROCESS * 2 + 1
    with pytest.raises(ConfigError, match=r"--processes 3") as caught:
        parse_load({"stages": [{"rate": rate, "duration": "1s"}], "max_in_flight": 1000, "processes": 1})
    assert caught.value.key == "stages"
    assert parse_load({"stages": [{"rate": rate, "duration": "1s"}], "max_in_flight": 1000, "processes": 3})


def test_too_few_users_for_the_rate_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_in_flight") as caught:
        parse_load({"stages": [{"rate": 400, "duration": "1s"}], "max_in_flight": 5})
    assert caught.value.key == "max_in_flight"


@pytest.mark.parametrize(("value", "parsed"), [("auto", "auto"), (" AUTO ", "auto"), ("40", 40), (40, 40)])
def test_max_in_flight_is_auto_or_a_number(value: Any, parsed: Any) -> None:
    assert parse_load({"stages": [{"rate": 5, "duration": "1s"}], "max_in_flight": value}).max_in_flight == parsed
    assert parse_load({"stages": [{"rate": 5, "duration": "1s"}]}).max_in_flight == "auto"


@pytest.mark.parametrize("value", ["many", 0, 10_001, 2.5, True])
def test_a_bad_max_in_flight_names_the_key_and_the_choices(value: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_load({"stages": [{"rate": 5, "duration": "1s"}], "max_in_flight": value})
    assert caught.value.key == "max_in_flight"
    assert "write auto, or a number from 1 to 10,000" in str(caught.value)


def test_stress_steps_grow_to_the_max_rate() -> None:
    scenario = parse_stress({"start_rate": 10, "max_rate": 30, "step_factor": 1.5, "step_duration": "5s"})
    assert scenario.step_rates() == [10, 15, 22.5, 30]
    assert all(s.duration == 5 for s in scenario.stages())
    with pytest.raises(ConfigError) as caught:
        parse_stress({"start_rate": 50, "max_rate": 10})
    assert "max_rate" in str(caught.value)


def test_schedule_places_every_arrival_by_the_rate() -> None:
    schedule = build_schedule(
        parse_load({"stages": [{"rate": 10, "duration": 2}, {"rate": 10, "to": 30, "duration": 2}]}).stages
    )
    assert [w.count for w in schedule.stages] == [20, 40]
    first = schedule.offsets[:20]
    assert first == tuple(round(i * 0.1, 6) for i in range(20))
    ramp = schedule.offsets[20:]
    gaps = [b - a for a, b in itertools.pairwise(ramp)]
    assert all(later <= earlier + 1e-9 for earlier, later in itertools.pairwise(gaps))  # faster and faster
    assert min(ramp) >= 2.0 and max(ramp) < 4.0


def test_cli_refuses_a_bad_scenario_before_anything_is_sent(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(yaml.safe_dump({"stages": [{"rate": 0, "duration": "5s"}]}))
    reports = tmp_path / "reports"
    result = CliRunner().invoke(
        app,
        ["load", "--scenario", str(scenario), "--reports-dir", str(reports), "--target", "sandbox"],
    )
    assert result.exit_code == 2, result.output
    assert "stages[0].rate" in result.output
    assert not (reports / "load").exists()
    assert not (reports / "runs.sqlite3").exists()


def test_stress_cli_refuses_a_bad_flag_value(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    result = CliRunner().invoke(
        app, ["stress", "--step-duration", "forever", "--reports-dir", str(reports), "--target", "sandbox"]
    )
    assert result.exit_code == 2, result.output
    assert "step_duration" in result.output
    assert not (reports / "load").exists()
