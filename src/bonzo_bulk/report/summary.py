"""The JSON summary of a run: verdicts and metrics up front, then every phase's detail, secrets redacted.

Example::

    write_json_summary(result, Path("reports/integration_health_reports"))
    # -> reports/integration_health_reports/monitorbase_<run id>.json (and latest.json)
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bonzo_bulk.errors import BonzoBulkError
from bonzo_bulk.models import RunResult, to_jsonable
from bonzo_bulk.regression import Regression
from bonzo_bulk.secrets import redact

SUMMARY_VERSION = 1


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def summary_document(result: RunResult, *, regressions: Sequence[Regression] = ()) -> dict[str, Any]:
    """The summary as JSON-ready data (what :func:`write_json_summary` writes)."""
    phases = []
    for phase in result.phases:
        detail = to_jsonable(phase)
        for record in detail["records"]:
            record.pop("body", None)  # the same bytes as ``payload``, already in the file
        phases.append(detail)
    document = {
        "summary_version": SUMMARY_VERSION,
        "run_id": result.run_id,
        "integration": result.integration,
        "test_name": result.test_name,
        "target": result.target,
        "passed": result.passed,
        "regressed": bool(regressions),
        "started_at": result.started_at.isoformat(),
        "finished_at": result.finished_at.isoformat(),
        "config_path": result.config_path,
        "dry_run": result.dry_run,
        "verdicts": {p.kind: to_jsonable(p.metrics.thresholds) for p in result.phases},
        "regressions": to_jsonable(list(regressions)),
        "metrics": {p.kind: to_jsonable(p.metrics) for p in result.phases},
        "diagnoses": [to_jsonable(d) | {"headline": d.headline} for p in result.phases for d in p.diagnoses],
        "failures": [
            {"phase": p.kind, **to_jsonable(check)} for p in result.phases for check in p.checks if not check.passed
        ],
        "notes": list(result.notes),
        "phases": phases,
    }
    redacted: dict[str, Any] = _redacted(document)
    return redacted


def write_json_summary(result: RunResult, directory: Path, *, regressions: Sequence[Regression] = ()) -> Path:
    """Write ``<directory>/<integration>_<run_id>.json`` and a ``latest.json`` copy; return the first."""
    path = directory / f"{result.integration}_{result.run_id}.json"
    text = json.dumps(summary_document(result, regressions=regressions), indent=2, ensure_ascii=False)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
        shutil.copyfile(path, directory / "latest.json")
    except OSError as exc:
        raise BonzoBulkError(f"cannot write the JSON summary to {path}: {exc}; check the reports directory") from exc
    return path
