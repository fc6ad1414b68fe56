"""No orphans: every record of every phase carries the run marker, and cleanup --run accounts for all it sent.

Each test runs against a sandbox of its own, so "nothing left" is the sandbox's whole prospect count.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.config.schema import ProcessingDelayModel
from bonzo_bulk.library import run_bulk
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer

FAST = ProcessingDelayModel(distribution="fixed", seconds=0.02)


def _served(tmp_path: Path, faults: dict[str, Any] | None = None) -> SandboxServer:
    return SandboxServer(SandboxOptions(db_path=tmp_path / "own-sandbox.sqlite3", processing=FAST, faults=faults))


def _prospects(server: SandboxServer) -> int:
    with urllib.request.urlopen(f"{server.url}/__sandbox/state", timeout=5) as answer:  # noqa: S310 - loopback
        return int(json.loads(answer.read())["prospects"])


def _cleanup(loaded: LoadedConfig, run_id: str, *extra: str) -> tuple[int, str]:
    assert loaded.path is not None
    result = CliRunner().invoke(
        app, ["cleanup", "--run", run_id, "--yes", "--config", str(loaded.path), *extra], env={"COLUMNS": "300"}
    )
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def no_live_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "SUPERUSER_WEBHOOK_URL", "BONZO_API_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_live_env")
def test_without_unique_emails_every_record_of_both_phases_is_marked_and_cleaned(
    tmp_path: Path, make_config: Any
) -> None:
    with _served(tmp_path) as server:
        loaded = make_config(
            tmp_path,
            sandbox_url=server.url,
            control=True,
            test_records=6,
            test_data_settings={"unique_emails": False},
            superuser_payload_template=str(
                Path("tests/fixtures/monitorbase_superuser_payload_template.json").resolve()
            ),
        )
        result = run_bulk(loaded)
        assert {p.kind for p in result.phases} == {"primary", "control"}
        for phase in result.phases:
            assert all(result.run_id in r.last_name for r in phase.records)
        assert _prospects(server) == 12

        code, output = _cleanup(loaded, result.run_id)

        assert _prospects(server) == 0, output
        assert code == 0, output
        assert "deleted 12" in output


@pytest.mark.usefixtures("no_live_env")
def test_a_run_is_cleaned_by_its_markers_even_when_the_first_name_does_not_match(
    tmp_path: Path, make_config: Any
) -> None:
    template = tmp_path / "typo.json"
    source = json.loads(Path("src/bonzo_bulk/integrations/monitorbase/payload_template.json").read_text())
    template.write_text(json.dumps({**source, "first_name": "Tset_{index}"}))
    with _served(tmp_path) as server:
        loaded = make_config(tmp_path, sandbox_url=server.url, test_records=4, payload_template=str(template))
        result = run_bulk(loaded)
        assert _prospects(server) == 4

        code, output = _cleanup(loaded, result.run_id)

        assert _prospects(server) == 0, output
        assert code == 0, output


@pytest.mark.usefixtures("no_live_env")
def test_records_still_on_their_way_are_reported_and_waited_for(tmp_path: Path, make_config: Any) -> None:
    late = {"seed": 1, "faults": [{"kind": "late", "delay_seconds": 3, "records": ["*_00[12]"]}]}
    with _served(tmp_path, faults=late) as server:
        loaded = make_config(tmp_path, sandbox_url=server.url, test_records=4, polling={"deadline": 0.5})
        result = run_bulk(loaded)

        code, output = _cleanup(loaded, result.run_id)
        assert code == 1, output
        assert "2 record(s) may still appear" in output
        assert "--wait" in output

        code, output = _cleanup(loaded, result.run_id, "--wait", "20")
        assert code == 0, output
        assert _prospects(server) == 0
