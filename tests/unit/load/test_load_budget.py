"""Load and stress are bounded by default (issue 24, finding 1: `stress` with no flags sent 105,758 leads):
a cap of leads and minutes decided before anything is sent, raised only by a flag; a stress run keeps the
steps that fit it; a load scenario that does not fit is refused (exit 2, nothing sent); the Locust
processes are chosen from the peak rate and the cores, refused only when no number of them can reach it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.config.schema import BulkConfig
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.load.budget import DEFAULT_MAX_LEADS, DEFAULT_MAX_MINUTES, Cap, auto_processes, plan_budget
from bonzo_bulk.load.scenario import parse_load, parse_stress

CONFIG = BulkConfig.model_validate(
    {"test_users": [{"name": "LO One", "email": "lo.one@lender.test", "user_id": 101, "team_id": 11}]}
)


def test_the_default_stress_run_fits_the_default_cap_on_a_two_core_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    budget = plan_budget(parse_stress({}), CONFIG, Cap())
    assert budget.leads <= DEFAULT_MAX_LEADS
    assert budget.sending_s + budget.reserve_s <= DEFAULT_MAX_MINUTES * 60
    assert budget.dropped_steps > 0 and budget.processes == 1
    line = budget.describe("stress")
    assert f"at most {DEFAULT_MAX_LEADS:,} leads and {DEFAULT_MAX_MINUTES:g} min" in line
    assert "--max-leads" in line and "--max-minutes" in line


def test_only_a_flag_raises_the_cap() -> None:
    default = plan_budget(parse_stress({}), CONFIG, Cap())
    raised = plan_budget(parse_stress({}), CONFIG, Cap.of(100_000, 30))
    assert len(raised.stages) > len(default.stages) and raised.leads > DEFAULT_MAX_LEADS
    with pytest.raises(ConfigError, match="--max-leads 0"):
        Cap.of(0, None)
    with pytest.raises(ConfigError, match="--max-minutes"):
        plan_budget(parse_stress({}), CONFIG, Cap.of(None, 1))  # settling alone needs more


def test_a_load_scenario_beyond_the_cap_is_refused_with_the_flags_that_raise_it() -> None:
    big = parse_load({"stages": [{"rate": 100, "duration": "3m"}]})  # 18,000 leads
    with pytest.raises(ConfigError) as caught:
        plan_budget(big, CONFIG, Cap())
    assert caught.value.key == "--max-leads"
    assert "18,000 leads" in str(caught.value) and "--max-leads 18000" in str(caught.value)
    assert plan_budget(big, CONFIG, Cap.of(18_000, 10)).leads == 18_000


def test_processes_are_chosen_from_the_peak_rate_and_the_cores() -> None:
    assert auto_processes(150, 2) == 1
    assert auto_processes(1000, 2) == 1  # one process sends 2,000/s on time (benchmarks/bench_load.py --goal)
    assert auto_processes(1501, 2) == 2
    with pytest.raises(ConfigError, match="this machine has 2 core") as caught:
        auto_processes(3001, 2)
    assert caught.value.key == "--processes"
    assert "needs 3 Locust processes" in str(caught.value)


def test_auto_users_hold_the_peak_rate_for_slow_answers_and_a_number_is_kept() -> None:
    thousand = parse_load({"stages": [{"rate": 1000, "duration": "5s"}]})
    budget = plan_budget(thousand, CONFIG, Cap())
    assert (budget.processes, budget.users) == (auto_processes(1000), 300)  # 1,000/s x 0.3 s answers
    assert "of 300 users" in budget.describe("load")
    slow = parse_load({"stages": [{"rate": 5, "duration": "5s"}]})
    assert plan_budget(slow, CONFIG, Cap()).users == 100  # never fewer than before auto
    fixed = parse_load({"stages": [{"rate": 1000, "duration": "5s"}], "max_in_flight": 150})
    assert plan_budget(fixed, CONFIG, Cap()).users == 150
    two = plan_budget(thousand, CONFIG, Cap(), workers=2)
    assert (two.processes, two.users) == (2, 150)


def test_stress_with_no_flags_is_not_refused(tmp_path: Path) -> None:
    """Before, `bonzo-bulk stress` exited 2 asking for --processes 2; now a bad cap is what is refused."""
    reports = tmp_path / "reports"
    result = CliRunner().invoke(
        app, ["stress", "--max-minutes", "0.5", "--reports-dir", str(reports), "--target", "sandbox"]
    )
    assert result.exit_code == 2, result.output
    assert "--max-minutes 0.5" in result.output and "--processes" not in result.output
    assert not (reports / "load").exists()


def test_a_load_scenario_over_the_cap_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    scenario = tmp_path / "big.yaml"
    scenario.write_text(yaml.safe_dump({"stages": [{"rate": 50, "duration": "5m"}]}))
    reports = tmp_path / "reports"
    result = CliRunner().invoke(
        app, ["load", "--scenario", str(scenario), "--reports-dir", str(reports), "--target", "sandbox"]
    )
    assert result.exit_code == 2, result.output
    assert "15,000 leads" in result.output and "--max-leads 15000" in " ".join(result.output.split())
    assert not (reports / "load").exists() and not (reports / "runs.sqlite3").exists()


def test_a_bad_processes_value_names_the_flag_and_the_fix(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    for bad in ("abc", "0"):
        result = CliRunner().invoke(
            app, ["stress", "--processes", bad, "--reports-dir", str(reports), "--target", "sandbox"]
        )
        assert result.exit_code == 2, result.output
        flat = " ".join(result.output.split())
        assert f"(from --processes): '{bad}'" in flat and "write auto, or a number from 1 to 256" in flat
    assert not reports.exists()
    assert parse_stress({"processes": "auto"}).processes == "auto" and parse_stress({"processes": 2}).processes == 2
