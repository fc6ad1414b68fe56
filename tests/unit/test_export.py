"""`bonzo-bulk export RUN`: the full per-record ledger from the run store, as JSON lines or CSV, secrets redacted."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from builders import DROPPED, MISSING, WRONG_OWNER, RunSpec, begin_run_of, build_run
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.models import RunResult
from bonzo_bulk.report.export import CSV_COLUMNS
from bonzo_bulk.secrets import register_secret
from bonzo_bulk.store import RunStore

runner = CliRunner(env={"COLUMNS": "200"})
CANARY = "canary-ExportSekret-93b1d"


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, RunResult]:
    register_secret(CANARY)
    result = build_run(
        RunSpec(
            records=24,
            faults={2: DROPPED, 5: MISSING, 7: WRONG_OWNER},
            control=6,
            run_id="run_export",
            error_text=f"upstream said {CANARY}",
        )
    )
    path = tmp_path / "runs.sqlite3"
    with RunStore(path) as store:
        begin_run_of(store, result)
        store.finish_run(result)
    return path, result


def _failed_by_record(result: RunResult) -> dict[tuple[str, str], list[str]]:
    failed: dict[tuple[str, str], list[str]] = {}
    for phase in result.phases:
        for check in phase.failures():
            failed.setdefault((phase.kind, check.record_name), []).append(check.check)
    return failed


def test_jsonl_has_one_line_per_record_with_its_delivery_prospects_and_checks(
    stored: tuple[Path, RunResult], tmp_path: Path
) -> None:
    path, result = stored
    out = tmp_path / "ledger.jsonl"
    done = runner.invoke(app, ["export", "run_export", "--store", str(path), "--out", str(out)])
    assert done.exit_code == 0, done.output
    text = out.read_text(encoding="utf-8")
    assert CANARY not in text and "upstream said ***" in text
    rows = [json.loads(line) for line in text.splitlines()]
    planned = [(p.kind, r.name) for p in result.phases for r in p.records]
    assert [(r["phase"], r["name"]) for r in rows] == planned
    deliveries = {(p.kind, o.name): o.delivery for p in result.phases for o in p.outcomes if o.delivery}
    failed = _failed_by_record(result)
    for row in rows:
        key = (row["phase"], row["name"])
        assert row["delivery"]["status"] == deliveries[key].status
        assert [c["check"] for c in row["checks"] if not c["passed"]] == failed.get(key, [])
        assert row["passed"] is (key not in failed)
        assert row["payload"]["first_name"] == row["first_name"]
    dropped = next(r for r in rows if r["name"].endswith("_002"))
    assert dropped["delivery"]["error_category"] == "http_5xx" and dropped["observation"]["prospects"] == []
    assert dropped["outcome"]["processing_seconds"] is None and dropped["outcome"]["placements"] == []
    timings = {(p.kind, o.name): o for p in result.phases for o in p.outcomes}
    for row in rows:
        outcome = timings[(row["phase"], row["name"])]
        expected = outcome.processing.seconds if outcome.processing else None
        assert row["outcome"]["processing_seconds"] == expected
        assert [p["owner_id"] for p in row["outcome"]["placements"]] == [p.owner_id for p in outcome.placements]


def test_csv_flattens_the_same_ledger(stored: tuple[Path, RunResult]) -> None:
    path, result = stored
    done = runner.invoke(app, ["export", "run_export", "--store", str(path), "--format", "csv"])
    assert done.exit_code == 0, done.output
    assert CANARY not in done.stdout
    table = list(csv.DictReader(done.stdout.splitlines()))
    assert tuple(table[0]) == CSV_COLUMNS
    assert len(table) == sum(len(p.records) for p in result.phases)
    failed = _failed_by_record(result)
    for row in table:
        names = failed.get((row["phase"], row["name"]), [])
        assert row["failed_checks"] == "; ".join(names)
        assert row["passed"] == str(not names)
    missing = next(r for r in table if r["phase"] == "primary" and r["name"].endswith("_005"))
    assert missing["status"] == "200" and missing["prospects"] == "0"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["export", "no_such_run"], "RUN_ID 'no_such_run'"),
        (["export", "run_export", "--format", "xml"], "--format 'xml'"),
    ],
)
def test_bad_input_exits_2_naming_it(stored: tuple[Path, RunResult], args: list[str], named: str) -> None:
    path, _ = stored
    done = runner.invoke(app, [*args, "--store", str(path)])
    assert done.exit_code == 2
    assert named in " ".join(done.output.split())


GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "export_golden_run.jsonl"


def test_export_content_is_what_the_store_gave_before_its_writes_were_made_cheaper(tmp_path: Path) -> None:
    """Every value of every record, delivery, observation, outcome and check, as written by the store's
    writer of b5ec49e (before issue 21 compacted the writes): a faster writer must store the same ledger."""
    result = build_run(
        RunSpec(
            records=24,
            faults={2: DROPPED, 5: MISSING, 7: WRONG_OWNER},
            control=6,
            run_id="run_golden",
            invalid=2,
        )
    )
    path = tmp_path / "runs.sqlite3"
    with RunStore(path) as store:
        begin_run_of(store, result)
        store.finish_run(result)
    out = tmp_path / "ledger.jsonl"
    done = runner.invoke(app, ["export", "run_golden", "--store", str(path), "--out", str(out)])
    assert done.exit_code == 0, done.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    golden = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(golden) == 30
    for row, want in zip(rows, golden, strict=True):
        assert row == want, row["name"]
