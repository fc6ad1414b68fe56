"""A small builder of realistic RunResults: records over a few users, deliveries, prospects, checks, metrics."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bonzo_bulk.bonzo.view import ProspectView
from bonzo_bulk.config.schema import Thresholds
from bonzo_bulk.judge.diagnosis import diagnose
from bonzo_bulk.judge.tally import phase_metrics
from bonzo_bulk.models import (
    CheckResult,
    DeliveryResult,
    LatencySummary,
    Observation,
    PhaseKind,
    PhaseMetrics,
    PhaseResult,
    Placement,
    PlannedRecord,
    ProcessingTime,
    RecordOutcome,
    RunResult,
    Stage,
    Target,
    ThresholdVerdict,
    User,
    UserAccuracy,
    Verdict,
    by_record,
)
from bonzo_bulk.store import RunStore

if TYPE_CHECKING:
    from bonzo_bulk.sandbox import SandboxServer

USERS = (
    User(name="Alice Lender", email="alice.lo@bonzobuddy.test", user_id=101, team_id=7),
    User(name="Bob Broker", email="bob.lo@bonzobuddy.test", user_id=102, team_id=7),
    User(name="Carol Closer", email="carol.lo@bonzobuddy.test", user_id=103, team_id=8, external_id="mb-103"),
)
MAPPED_FIELDS = ("first_name", "last_name", "email", "phone", "source")
START = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)

# Faults a record may carry: where it goes wrong.
DROPPED = "dropped"  # the hook answered 503 after retries
MISSING = "missing"  # accepted, never appeared in Bonzo
WRONG_OWNER = "wrong_owner"  # appeared under the next user
WRONG_TEAM = "wrong_team"  # right owner, wrong team
MANGLED = "mangled"  # first_name changed on the way
SLOW = "slow"  # appeared, but after the processing limit
DUPLICATE = "duplicate"  # two prospects for one record


@dataclass
class RunSpec:
    """What to build: sizes, faults per record index, timing scale and where secrets might hide."""

    records: int = 30
    faults: Mapping[int, str] = field(default_factory=dict)
    invalid: int = 2
    run_id: str = "20250304_100000_ab12"
    started_at: datetime = START
    target: Target = "sandbox"
    integration: str = "monitorbase"
    processing_ms: float = 900.0
    latency_ms: float = 40.0
    api_requests_per_record: float = 1.5
    control: int = 0
    error_text: str = ""
    seed: int = 7
    notes: tuple[str, ...] = ()


def _summary(values: Sequence[float]) -> LatencySummary:
    if not values:
        return LatencySummary()
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return LatencySummary(
        count=len(ordered),
        min_ms=ordered[0],
        mean_ms=sum(ordered) / len(ordered),
        p50_ms=pick(0.5),
        p90_ms=pick(0.9),
        p95_ms=pick(0.95),
        p99_ms=pick(0.99),
        max_ms=ordered[-1],
    )


def _phase(spec: RunSpec, kind: PhaseKind, count: int, rng: random.Random) -> PhaseResult:
    records: list[PlannedRecord] = []
    deliveries: list[DeliveryResult] = []
    observations: list[Observation] = []
    checks: list[CheckResult] = []
    processing: list[float] = []
    per_user: Counter[tuple[int, str]] = Counter()
    per_user_found: Counter[int] = Counter()
    per_user_correct: Counter[int] = Counter()
    field_ok: Counter[str] = Counter()
    invalid_handled = 0
    prefix = "TestRecord_MonitorBase" if kind == "primary" else "ControlRecord_MonitorBase"
    for index in range(1, count + 1):
        user = USERS[(index - 1) % len(USERS)]
        fault = spec.faults.get(index) if kind == "primary" else None
        invalid_case = "unknown_lo_email" if kind == "primary" and index > count - spec.invalid else None
        name = f"{prefix}_{index:03d}"
        email = f"test.monitorbase.{index:03d}@bonzobuddy.test"
        payload = {
            "first_name": name,
            "last_name": "Bulk",
            "email": email,
            "phone": f"+1555000{index:04d}",
            "lo_email": user.email if invalid_case is None else "nobody@bonzobuddy.test",
            "run_id": spec.run_id,
        }
        expected = {
            "first_name": name,
            "last_name": "Bulk",
            "email": email,
            "phone": payload["phone"],
            "source": "monitorbase",
        }
        records.append(
            PlannedRecord(
                run_id=spec.run_id,
                phase=kind,
                index=index,
                name=name,
                record_id=f"20250304_100000_{index:03d}",
                first_name=name,
                last_name="Bulk",
                email=email,
                phone=str(payload["phone"]),
                expected_user=user,
                payload=payload,
                body=json.dumps(payload).encode(),
                content_type="application/json",
                expected=expected,
                invalid_case=invalid_case,
                expected_handling="reject" if invalid_case else None,
            )
        )
        sent_at = spec.started_at + timedelta(milliseconds=25 * index)
        latency = spec.latency_ms * rng.uniform(0.6, 1.8)
        if invalid_case is not None:
            deliveries.append(
                DeliveryResult(
                    name,
                    422,
                    1,
                    latency,
                    latency,
                    sent_at,
                    sent_at + timedelta(milliseconds=latency),
                    "http_4xx",
                    "rejected: unknown lo_email",
                    '{"error":"unknown lo_email"}',
                )
            )
            invalid_handled += 1
            checks.append(CheckResult(name, "invalid_handled", Stage.VERIFICATION, True, "reject", 422))
            observations.append(Observation(name, (), (), None, 1))
            continue
        per_user[(user.user_id, user.email)] += 1
        if fault == DROPPED:
            error = f"503 Service Unavailable {spec.error_text}".strip()
            deliveries.append(
                DeliveryResult(name, 503, 3, latency, latency * 3 + 500, sent_at, sent_at, "http_5xx", error, "busy")
            )
            checks.append(CheckResult(name, "delivered", Stage.DELIVERY, False, "2xx", 503, error))
            observations.append(Observation(name, (), (), None, 0))
            continue
        answered = sent_at + timedelta(milliseconds=latency)
        deliveries.append(DeliveryResult(name, 200, 1, latency, latency, sent_at, answered, None, None, '{"ok":true}'))
        checks.append(CheckResult(name, "delivered", Stage.DELIVERY, True, "2xx", 200))
        if fault == MISSING:
            checks.append(CheckResult(name, "created", Stage.PROCESSING, False, 1, 0, "never appeared in Bonzo"))
            observations.append(Observation(name, (), (), None, 12))
            continue
        owner = USERS[index % len(USERS)] if fault == WRONG_OWNER else user
        team_id = 99 if fault == WRONG_TEAM else owner.team_id
        took = spec.processing_ms * rng.uniform(0.5, 1.6) * (80 if fault == SLOW else 1)
        processing.append(took)
        prospect: dict[str, Any] = {
            "id": 50_000 + index,
            "first_name": name + "X" if fault == MANGLED else name,
            "last_name": "Bulk",
            "email": email,
            "phone": payload["phone"],
            "source": "monitorbase",
            "assigned_to": owner.user_id,
            "assigned_user": {"id": owner.user_id, "email": owner.email},
            "business_entity_id": team_id,
        }
        prospects: tuple[dict[str, Any], ...] = (prospect,)
        if fault == DUPLICATE:
            prospects = (prospect, {**prospect, "id": 90_000 + index})
        observations.append(Observation(name, prospects, (owner.user_id,), answered + timedelta(milliseconds=took), 3))
        checks.append(CheckResult(name, "created", Stage.PROCESSING, True, 1, len(prospects)))
        if fault == DUPLICATE:
            checks.append(
                CheckResult(name, "duplicates", Stage.VERIFICATION, False, 1, 2, "2 prospects for one record")
            )
        per_user_found[user.user_id] += 1
        owner_ok = owner.user_id == user.user_id
        checks.append(CheckResult(name, "owner.id", Stage.ASSIGNMENT, owner_ok, user.user_id, owner.user_id))
        checks.append(CheckResult(name, "team", Stage.ASSIGNMENT, team_id == user.team_id, user.team_id, team_id))
        if owner_ok and team_id == user.team_id:
            per_user_correct[user.user_id] += 1
        for field_name in MAPPED_FIELDS:
            ok = prospect[field_name] == expected[field_name]
            field_ok[field_name] += ok
            checks.append(
                CheckResult(name, f"field:{field_name}", Stage.MAPPING, ok, expected[field_name], prospect[field_name])
            )
        checks.append(
            CheckResult(name, "processing_time", Stage.PROCESSING, took <= 60_000, "<= 60s", round(took / 1000, 3))
        )
    valid = [r for r in records if r.is_valid]
    delivered = sum(1 for d, r in zip(deliveries, records, strict=True) if r.is_valid and d.accepted)
    created = sum(1 for o, r in zip(observations, records, strict=True) if r.is_valid and o.found)
    assigned = sum(per_user_correct.values())
    mapping_ok: dict[str, bool] = {}
    for check in checks:
        if check.stage is Stage.MAPPING:
            mapping_ok[check.record_name] = mapping_ok.get(check.record_name, True) and check.passed
    mapped = sum(mapping_ok.values())
    failed = [c for c in checks if not c.passed]
    n_valid = max(1, len(valid))
    rates = {
        "delivery_rate": delivered / n_valid,
        "creation_rate": created / n_valid,
        "assignment_accuracy": assigned / n_valid,
        "mapping_accuracy": mapped / n_valid,
    }
    limits = {"delivery_rate": 0.95, "creation_rate": 0.95, "assignment_accuracy": 0.95, "mapping_accuracy": 1.0}
    p95 = _summary(processing).p95_ms
    thresholds = (
        *(ThresholdVerdict(name, limits[name], value, value >= limits[name]) for name, value in rates.items()),
        ThresholdVerdict(Verdict.PROCESSING_P95, 60.0, p95 / 1000, p95 <= 60_000, "<="),
    )
    api_requests = round(spec.api_requests_per_record * len(records))
    by_id = {u.user_id: u for u in USERS}
    metrics = PhaseMetrics(
        generated=len(records),
        valid=len(valid),
        sent=len(deliveries),
        delivered=delivered,
        delivery_rate=rates["delivery_rate"],
        status_codes=dict(Counter(str(d.status) for d in deliveries)),
        delivery_latency=_summary([d.latency_ms for d in deliveries]),
        created=created,
        creation_rate=rates["creation_rate"],
        duplicates=sum(1 for o in observations if len(o.prospects) > 1),
        missing=len(valid) - created,
        unexpected=0,
        assigned_correctly=assigned,
        assignment_accuracy=rates["assignment_accuracy"],
        per_user=tuple(
            UserAccuracy(email, uid, n, per_user_found[uid], per_user_correct[uid], name=by_id[uid].name)
            for (uid, email), n in sorted(per_user.items())
        ),
        mapped_correctly=mapped,
        mapping_accuracy=rates["mapping_accuracy"],
        field_accuracy={f: field_ok[f] / max(1, created) for f in MAPPED_FIELDS},
        processing_time=_summary(processing),
        visible_lag=_summary([p + 30 for p in processing]),
        failures_by_stage=dict(Counter(c.stage.value for c in failed)),
        error_categories=dict(Counter(d.error_category for d in deliveries if d.error_category)),
        invalid_handled=invalid_handled,
        invalid_total=len(records) - len(valid),
        api_requests=api_requests,
        api_requests_per_record=api_requests / max(1, len(records)),
        thresholds=thresholds,
    )
    by_name = by_record(checks)
    outcomes = tuple(
        RecordOutcome(
            record=record,
            delivery=delivery,
            observation=observation,
            checks=tuple(by_name.get(record.name, ())),
            expects_prospect=record.is_valid and delivery.accepted,
            processing=_timing(delivery, observation),
            placements=tuple(
                Placement(ProspectView(p).owner_id, ProspectView(p).owner_email, ProspectView(p).team_id)
                for p in observation.prospects
            ),
        )
        for record, delivery, observation in zip(records, deliveries, observations, strict=True)
    )
    tallied = phase_metrics(kind, outcomes, thresholds=Thresholds(), api_requests=0)
    metrics = dataclasses.replace(metrics, owner_counts=tallied.owner_counts, team_counts=tallied.team_counts)
    return PhaseResult(
        kind=kind,
        metrics=metrics,
        outcomes=outcomes,
        complete=True,
        failed_records=sum(1 for o in outcomes if not o.passed),
        stray_checks=(),
        unexpected_prospects=(),
        settled=kind == "control" or MISSING not in spec.faults.values(),
        settle_seconds=round(spec.processing_ms / 1000 * 3, 3),
        diagnoses=diagnose(kind, checks),
        judged=dict(Counter(c.check for c in checks)),
    )


def _timing(delivery: DeliveryResult, observation: Observation) -> ProcessingTime | None:
    """The processing time the engine would read: first seen minus answered (the builder has no clock)."""
    if not delivery.accepted or not observation.found or observation.first_seen_at is None:
        return None
    assert delivery.answered_at is not None
    seconds = (observation.first_seen_at - delivery.answered_at).total_seconds()
    return ProcessingTime(round(seconds, 3), "created_at", 0.001, round(seconds + 0.03, 3))


def build_run(spec: RunSpec | None = None, **overrides: Any) -> RunResult:
    """A RunResult shaped like a real sandbox run, with the faults the spec names."""
    spec = spec or RunSpec(**overrides)
    rng = random.Random(spec.seed)
    phases = [_phase(spec, "primary", spec.records, rng)]
    if spec.control:
        phases.append(_phase(spec, "control", spec.control, rng))
    return RunResult(
        run_id=spec.run_id,
        test_name="test_monitorbase_bulk",
        integration=spec.integration,
        config_path="tests/configs/monitorbase_test_config.yaml",
        target=spec.target,
        started_at=spec.started_at,
        finished_at=spec.started_at + timedelta(seconds=42),
        dry_run=False,
        phases=tuple(phases),
        notes=spec.notes,
    )


FAULTY = {3: DROPPED, 7: MISSING, 11: WRONG_OWNER, 14: WRONG_TEAM, 18: MANGLED, 21: SLOW, 24: DUPLICATE}


def with_checks(phase: PhaseResult, checks: Sequence[CheckResult], *, replace: bool = False) -> PhaseResult:
    """``phase`` with ``checks`` added to (or, ``replace=True``, instead of) its records' checks, diagnosed anew;
    a check on no record of the phase is a stray one."""
    grouped = by_record(checks)
    outcomes = tuple(
        dataclasses.replace(o, checks=(() if replace else o.checks) + tuple(grouped.pop(o.name, ())))
        for o in phase.outcomes
    )
    stray = tuple(c for group in grouped.values() for c in group)
    every = [c for o in outcomes for c in o.checks] + list(stray)
    return dataclasses.replace(
        phase,
        outcomes=outcomes,
        stray_checks=stray,
        failed_records=sum(1 for o in outcomes if not o.passed),
        judged=dict(Counter(c.check for c in every)),
        diagnoses=diagnose(phase.kind, every),
    )


def failed_checks(result: RunResult) -> list[tuple[str, str, str]]:
    """(phase, record, check) of every failed check, in order."""
    return [(p.kind, c.record_name, c.check) for p in result.phases for c in p.checks() if not c.passed]


def begin_run_of(store: RunStore, result: RunResult, snapshot: Mapping[str, Any] | None = None) -> None:
    """Record in ``store`` that ``result``'s run began (what the engine does before sending)."""
    store.begin_run(
        run_id=result.run_id,
        test_name=result.test_name,
        integration=result.integration,
        config_path=result.config_path,
        target=result.target,
        started_at=result.started_at,
        dry_run=result.dry_run,
        config_snapshot=snapshot or {},
    )


def sandbox_server(db: Path, *, strict: bool = False, **options: Any) -> SandboxServer:
    """A sandbox for engine tests, not yet started: ``with sandbox_server(tmp_path / "s.sqlite3", strict=True) as srv``.

    Fixed 50 ms processing unless ``processing=`` says otherwise; ``strict=True`` keeps only what the Bonzo
    reference promises (pass ``mapped_custom_fields={"monitorbase": ["custom_1"]}`` to keep a custom field).
    Point a config at it with ``sandbox: {url: srv.url}``.
    """
    from bonzo_bulk.config.schema import ProcessingDelayModel
    from bonzo_bulk.sandbox import SandboxOptions, SandboxServer

    options.setdefault("processing", ProcessingDelayModel(distribution="fixed", seconds=0.05))
    return SandboxServer(SandboxOptions(db_path=db, strictness="strict" if strict else "lenient", **options))
