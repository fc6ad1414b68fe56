"""The JSON summary of a run: verdicts, metrics, diagnoses and the first failures, secrets redacted.

The summary stays small at any run size: aggregates per phase and at most :data:`FAILURES_SHOWN`
failing checks (with a count of the rest). The full per-record ledger is the run store, read with
``bonzo-bulk export RUN --format jsonl|csv``.

Example::

    write_json_summary(result, Path("reports/integration_health_reports"))
    # -> reports/integration_health_reports/monitorbase_<run id>.json (latest.json links to it)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bonzo_bulk.errors import BonzoBulkError
from bonzo_bulk.judge.diagnosis import hook_diagnosis
from bonzo_bulk.models import CheckResult, PhaseKind, PhaseResult, RunResult, to_jsonable
from bonzo_bulk.problems.track import RunProblems
from bonzo_bulk.report.files import write_whole
from bonzo_bulk.report.regression import Regression
from bonzo_bulk.secrets import redact

SUMMARY_VERSION = 2
FAILURES_SHOWN = 200
LATEST = "latest.json"
HEALTH_DIR = "integration_health_reports"
"""The folder under the reports folder that holds each run's JSON summary and dashboard (read everywhere)."""


def _failing(result: RunResult) -> Iterator[tuple[PhaseKind, CheckResult]]:
    for phase in result.phases:
        for check in phase.failures():
            yield phase.kind, check


def _phase_overview(phase: PhaseResult) -> dict[str, Any]:
    """One phase's counts; its records, deliveries, observations and checks are in the run store."""
    return {
        "kind": phase.kind,
        "passed": phase.passed,
        "records": phase.metrics.generated,
        "delivered": phase.metrics.delivered,
        "created": phase.metrics.created,
        "failed_records": phase.failed_records,
        "failed_checks": sum(phase.metrics.failures_by_stage.values()),
        "checks": sum(phase.judged.values()),
        "unexpected_prospects": len(phase.unexpected_prospects),
        "settled": phase.settled,
        "settle_seconds": phase.settle_seconds,
    }


def summary_document(
    result: RunResult,
    *,
    regressions: Sequence[Regression] = (),
    store: str | None = None,
    problems: RunProblems | None = None,
) -> dict[str, Any]:
    """The summary as JSON-ready data, NOT yet redacted: serialize it with :func:`summary_text`. With the run's
    ``problems``, each failure names its problem and whether it is new or known."""
    failures: list[dict[str, Any]] = []
    for kind, check in _failing(result):
        if len(failures) == FAILURES_SHOWN:
            break
        failures.append({"phase": kind, **to_jsonable(check), **_problem_of(problems, kind, check)})
    # Every failed check of every record, kept in memory or only in the store.
    total = sum(sum(p.metrics.failures_by_stage.values()) for p in result.phases)
    return {
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
        "hook_diagnosis": to_jsonable(hook_diagnosis(result)),
        "failures": failures,
        "failures_total": total,
        "failures_not_shown": total - len(failures),
        "notes": list(result.notes),
        "problems": problems_document(problems),
        "phases": [_phase_overview(p) for p in result.phases],
        "ledger": {
            "store": store,
            "export": f"bonzo-bulk export {result.run_id} --format jsonl",
        },
    }


def _problem_of(problems: RunProblems | None, phase: PhaseKind, check: CheckResult) -> dict[str, Any]:
    tracked = problems.for_check(phase, check) if problems is not None else None
    if tracked is None:
        return {}
    return {"problem": {"id": tracked.problem.problem_id, "new": tracked.is_new, "state": tracked.state}}


def problems_document(problems: RunProblems | None) -> list[dict[str, Any]] | None:
    """The run's problems as JSON (None when they were not tracked): each one's id, title, what the run did to
    it (new, reopened, escalated, known, resolved), its state, records affected and share, samples and fix."""
    if problems is None:
        return None
    return [
        {
            "id": t.problem.problem_id,
            "title": t.problem.title,
            "phase": t.problem.phase,
            "check": t.problem.check,
            "cause": t.problem.cause,
            "change": t.change,
            "new": t.is_new,
            "state": t.state,
            "records_affected": t.sighting.failed if t.sighting else 0,
            "records_judged": t.sighting.judged if t.sighting else 0,
            "share": round(t.sighting.share, 4) if t.sighting else 0.0,
            "first_seen_at": t.problem.first_seen_at.isoformat(),
            "runs": t.problem.runs,
            "samples": list(t.sighting.samples) if t.sighting else [],
            "fix": t.problem.fix,
            "acknowledged_by": t.problem.ack_by,
            "note": t.problem.ack_note,
        }
        for t in problems.problems
    ]


def summary_text(document: dict[str, Any], *, indent: int | None = 2) -> str:
    """Serialize a summary document and redact every secret in ONE pass over the text."""
    return redact(json.dumps(document, indent=indent, ensure_ascii=False))


def write_json_summary(
    result: RunResult,
    directory: Path,
    *,
    regressions: Sequence[Regression] = (),
    store: str | None = None,
) -> Path:
    """Write ``<directory>/<integration>_<run_id>.json`` and point ``latest.json`` at it; return the first."""
    return write_summary(summary_document(result, regressions=regressions, store=store), directory)


def write_summary(document: dict[str, Any], directory: Path) -> Path:
    """Write a :func:`summary_document` as ``<directory>/<integration>_<run_id>.json``, redacted, and point
    ``latest.json`` at it; return the first."""
    path = directory / f"{document['integration']}_{document['run_id']}.json"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_whole(path, summary_text(document) + "\n")
        _point_latest(directory / LATEST, path)
    except OSError as exc:
        raise BonzoBulkError(f"cannot write the JSON summary to {path}: {exc}; check the reports directory") from exc
    return path


def _point_latest(latest: Path, target: Path) -> None:
    """``latest.json`` as a relative symlink to the newest summary (a small pointer file where links fail)."""
    scratch = latest.with_name(f".{latest.name}.{os.getpid()}")
    scratch.unlink(missing_ok=True)
    try:
        scratch.symlink_to(target.name)
    except OSError:
        scratch.write_text(json.dumps({"latest": target.name}) + "\n", encoding="utf-8")
    os.replace(scratch, latest)
