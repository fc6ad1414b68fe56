"""Every output of a run names each failure's problem, new or known: the JSON summary, the terminal, the CI job
summary, the dashboard; `--fail-on-new-problems-only` fails a run only on a new (or reopened) problem.

Every run puts its ``--faults`` profile on one sandbox the test serves (not a sandbox process per run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import sandbox_server
from test_monitor_loop import FAULTS
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.config.schema import ProcessingDelayModel


def _run(config: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--json", *args], env=env)
    return result.exit_code, json.loads(result.stdout)


def test_new_then_known_in_every_output_and_only_new_ones_fail_under_the_flag(
    tmp_path: Path, make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "SUPERUSER_WEBHOOK_URL", "BONZO_API_URL"):
        monkeypatch.delenv(name, raising=False)
    fast = ProcessingDelayModel(distribution="fixed", seconds=0.02)
    with sandbox_server(tmp_path / "sandbox.sqlite3", processing=fast) as sandbox:
        config = make_config(tmp_path, sandbox.url, test_records=3, control=False).path
        _new_then_known(tmp_path, config)


def _new_then_known(tmp_path: Path, config: Path) -> None:
    summary_file = tmp_path / "step_summary.md"

    code, first = _run(config, "--faults", str(FAULTS), "--fail-on-new-problems-only")
    assert code == 1, "a new problem fails the run even under --fail-on-new-problems-only"
    [problem] = first["problems"]
    assert (problem["check"], problem["cause"], problem["change"], problem["new"]) == ("owner", "systemic", "new", True)
    assert {f["problem"]["id"] for f in first["failures"]} == {problem["id"]}
    assert all(f["problem"]["new"] for f in first["failures"])

    env = {"GITHUB_STEP_SUMMARY": str(summary_file)}
    code, second = _run(config, "--faults", str(FAULTS), env=env)
    assert code == 1, "without the flag a failed threshold fails the run, known problem or not"
    assert [(p["id"], p["change"], p["state"]) for p in second["problems"]] == [(problem["id"], "known", "open")]
    assert not any(f["problem"]["new"] for f in second["failures"])
    summary = summary_file.read_text(encoding="utf-8")
    assert "### Problems" in summary and f"known problem {problem['id']}" in summary
    dashboard = Path(second["ledger"]["store"]).parent / "integration_health_reports"
    page = (dashboard / f"monitorbase_{second['run_id']}.html").read_text(encoding="utf-8")
    assert f"[known problem {problem['id']}]" in page
    assert f'data-id="{problem["id"]}" data-change="known"' in page and "Problems: 0 new, 1 known" in page

    code, third = _run(config, "--faults", str(FAULTS), "--fail-on-new-problems-only")
    assert code == 0, "only known problems: the flag lets the run pass"
    assert third["passed"] is False and [p["change"] for p in third["problems"]] == ["known"]
    text = CliRunner().invoke(
        app, ["run", "--config", str(config), "--faults", str(FAULTS), "--fail-on-new-problems-only"]
    )
    assert text.exit_code == 0, text.output
    flat = " ".join(text.output.split())
    assert f"known problem {problem['id']}" in flat and "PASSED with known problems only" in flat
    health = CliRunner().invoke(
        app, ["health", "--config", str(config), "--faults", str(FAULTS), "--fail-on-new-problems-only"]
    )
    assert health.exit_code == 0 and "HEALTHY" in health.output and "UNHEALTHY" not in health.output, health.output

    second_fault = tmp_path / "second.yaml"
    second_fault.write_text(
        yaml.safe_dump({"seed": 5, "faults": [{"kind": "mangle_field", "field": "last_name", "rate": 1.0}]})
    )
    code, fourth = _run(config, "--faults", str(second_fault), "--fail-on-new-problems-only")
    assert code == 1
    changes = {p["check"]: p["change"] for p in fourth["problems"]}
    assert changes == {"last_name": "new"}, changes
