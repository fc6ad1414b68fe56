"""Write a planned run to disk without sending it: payloads as JSON Lines and the planned distribution.

Used by ``--dry-run`` everywhere (the generator script, ``bonzo-bulk generate``, the pytest plugin).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bonzo_bulk.errors import BonzoBulkError
from bonzo_bulk.plan.planner import RunPlan
from bonzo_bulk.secrets import redact


@dataclass(frozen=True, slots=True)
class PlanFiles:
    """Where a dry run wrote its payloads and distribution."""

    payloads: Path
    distribution: Path
    records: int


def distribution(plan: RunPlan) -> dict[str, Any]:
    """The planned spread of records per phase and user, with each user's expected team."""
    phases: dict[str, Any] = {}
    for phase in plan.phases:
        counts = Counter(r.expected_user.user_id for r in phase.records if r.is_valid)
        users = {r.expected_user.user_id: r.expected_user for r in phase.records}
        phases[phase.kind] = {
            "integration": phase.integration.name,
            "valid_records": sum(counts.values()),
            "invalid_records": sum(1 for r in phase.records if not r.is_valid),
            "per_user": [
                {"user_id": uid, "email": users[uid].email, "team_id": users[uid].team_id, "records": n}
                for uid, n in sorted(counts.items())
            ],
        }
    return {
        "run_id": plan.run_id,
        "started_at": plan.identity.started_at.isoformat(),
        "distribution": plan.loaded.config.distribution,
        "phases": phases,
    }


def write_plan(plan: RunPlan, directory: Path) -> PlanFiles:
    """Write ``<run_id>_payloads.jsonl`` (one line per record) and ``<run_id>_distribution.json``."""
    payloads = directory / f"{plan.run_id}_payloads.jsonl"
    spread = directory / f"{plan.run_id}_distribution.json"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with payloads.open("w", encoding="utf-8") as out:
            for record in plan.records:
                line = {
                    "phase": record.phase,
                    "name": record.name,
                    "record_id": record.record_id,
                    "expected_user_id": record.expected_user.user_id,
                    "expected_team_id": record.expected_user.team_id,
                    "invalid_case": record.invalid_case,
                    "content_type": record.content_type,
                    "payload": record.payload,
                }
                out.write(redact(json.dumps(line, ensure_ascii=False)) + "\n")
        spread.write_text(json.dumps(distribution(plan), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise BonzoBulkError(f"cannot write the dry-run files to {directory}: {exc.strerror}") from exc
    return PlanFiles(payloads=payloads, distribution=spread, records=len(plan.records))
