"""``bonzo-bulk export`` reads the same ledger from SQLite and PostgreSQL (on PostgreSQL it reads records and their
checks through two server-side cursors at once)."""

from __future__ import annotations

import json
from pathlib import Path

from builders import FAULTY, RunSpec, begin_run_of, build_run

from bonzo_bulk.report.export import export_run
from bonzo_bulk.store import RunStore


def test_export_reads_every_record_with_its_checks(store_at: str | Path, tmp_path: Path) -> None:
    result = build_run(RunSpec(records=30, faults=FAULTY, control=4, run_id="r-export"))
    with RunStore(store_at) as store:
        begin_run_of(store, result)
        store.finish_run(result)
    out = tmp_path / "ledger.jsonl"
    rows = export_run(store_at, "r-export", "jsonl", out)
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows == len(records) == 30 + 4
    failed = {r["name"] for r in records if r["phase"] == "primary" and not r["passed"]}
    primary = result.primary
    assert primary is not None and len(failed) == primary.failed_records
    assert all(r["checks"] for r in records)
