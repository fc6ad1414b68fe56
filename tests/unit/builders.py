"""A small builder of realistic RunResults: records over a few users, deliveries, prospects, checks, metrics."""

from __future__ import annotations

import dataclasses
import json
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
from bonzo_bulk.judge.tally import NO_OWNER, PhaseTally
from bonzo_bulk.models import (
    CheckResult,
    DeliveryResult,
    Observation,
    PhaseKind,
    PhaseResult,
    Placement,
    PlannedRecord,
    ProcessingTime,
    RecordOutcome,
    RunResult,
    Stage,
    Target,
    User,
    UserAccuracy,
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


THRESHOLDS = Thresholds(
    delivery_rate=0.95,
    creation_rate=0.95,
    assignment_accuracy=0.95,
    control_assignment_accuracy=0.95,
    mapping_accuracy=1.0,
)
"""What the built runs are held to."""


def _record(spec: RunSpec, kind: PhaseKind, index: int, count: int) -> PlannedRecord:
    """Record ``index`` of a phase of ``count``: its user in turn; the last ``spec.invalid`` primary ones name
    an unknown ``lo_email`` on purpose."""
    user = USERS[(index - 1) % len(USERS)]
    invalid_case = "unknown_lo_email" if kind == "primary" and index > count - spec.invalid else None
    prefix = "TestRecord_MonitorBase" if kind == "primary" else "ControlRecord_MonitorBase"
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
    return PlannedRecord(
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
        expected={
            "first_name": name,
            "last_name": "Bulk",
            "email": email,
            "phone": payload["phone"],
            "source": "monitorbase",
        },
        invalid_case=invalid_case,
        expected_handling="reject" if invalid_case else None,
    )


def _outcome(spec: RunSpec, record: PlannedRecord, fault: str | None, rng: random.Random) -> RecordOutcome:
    """What the engine would make of ``record`` going wrong as ``fault`` says: its delivery, what settling saw,
    and every check."""
    name = record.name
    sent_at = spec.started_at + timedelta(milliseconds=25 * record.index)
    latency = spec.latency_ms * rng.uniform(0.6, 1.8)
    if not record.is_valid:
        delivery = DeliveryResult(
            name, 422, 1, latency, latency, sent_at, sent_at + timedelta(milliseconds=latency),
            "http_4xx", "rejected: unknown lo_email", '{"error":"unknown lo_email"}',
        )  # fmt: skip
        check = CheckResult(name, "invalid_handled", Stage.VERIFICATION, True, "reject", 422)
        return _judged(record, delivery, Observation(name, (), (), None, 1), [check])
    if fault == DROPPED:
        error = f"503 Service Unavailable {spec.error_text}".strip()
        delivery = DeliveryResult(name, 503, 3, latency, latency * 3 + 500, sent_at, sent_at, "http_5xx", error, "busy")
        check = CheckResult(name, "delivered", Stage.DELIVERY, False, "2xx", 503, error)
        return _judged(record, delivery, Observation(name, (), (), None, 0), [check])
    answered = sent_at + timedelta(milliseconds=latency)
    delivery = DeliveryResult(name, 200, 1, latency, latency, sent_at, answered, None, None, '{"ok":true}')
    checks = [CheckResult(name, "delivered", Stage.DELIVERY, True, "2xx", 200)]
    if fault == MISSING:
        checks.append(CheckResult(name, "created", Stage.PROCESSING, False, 1, 0, "never appeared in Bonzo"))
        return _judged(record, delivery, Observation(name, (), (), None, 12), checks)
    user = record.expected_user
    owner = USERS[record.index % len(USERS)] if fault == WRONG_OWNER else user
    team_id = 99 if fault == WRONG_TEAM else owner.team_id
    took = spec.processing_ms * rng.uniform(0.5, 1.6) * (80 if fault == SLOW else 1)
    prospect: dict[str, Any] = {
        "id": 50_000 + record.index,
        "first_name": name + "X" if fault == MANGLED else name,
        "last_name": "Bulk",
        "email": record.email,
        "phone": record.phone,
        "source": "monitorbase",
        "assigned_to": owner.user_id,
        "assigned_user": {"id": owner.user_id, "email": owner.email},
        "business_entity_id": team_id,
    }
    prospects: tuple[dict[str, Any], ...] = (prospect,)
    if fault == DUPLICATE:
        prospects = (prospect, {**prospect, "id": 90_000 + record.index})
    observation = Observation(name, prospects, (owner.user_id,), answered + timedelta(milliseconds=took), 3)
    checks.append(CheckResult(name, "created", Stage.PROCESSING, True, 1, len(prospects)))
    if fault == DUPLICATE:
        checks.append(CheckResult(name, "duplicates", Stage.VERIFICATION, False, 1, 2, "2 prospects for one record"))
    checks.append(
        CheckResult(name, "owner.id", Stage.ASSIGNMENT, owner.user_id == user.user_id, user.user_id, owner.user_id)
    )
    checks.append(CheckResult(name, "team", Stage.ASSIGNMENT, team_id == user.team_id, user.team_id, team_id))
    for field_name in MAPPED_FIELDS:
        expected, actual = record.expected[field_name], prospect[field_name]
        checks.append(CheckResult(name, field_name, Stage.MAPPING, actual == expected, expected, actual))
    checks.append(
        CheckResult(name, "processing_time", Stage.PROCESSING, took <= 60_000, "<= 60s", round(took / 1000, 3))
    )
    return _judged(record, delivery, observation, checks)


def _judged(
    record: PlannedRecord, delivery: DeliveryResult, observation: Observation, checks: Sequence[CheckResult]
) -> RecordOutcome:
    """One record as the judge hands it on: its checks, whether a prospect was due, its timing and placements."""
    return RecordOutcome(
        record=record,
        delivery=delivery,
        observation=observation,
        checks=tuple(checks),
        expects_prospect=record.is_valid and delivery.accepted,
        processing=_timing(delivery, observation),
        placements=tuple(
            Placement(ProspectView(p).owner_id, ProspectView(p).owner_email, ProspectView(p).team_id)
            for p in observation.prospects
        ),
    )


def _phase(spec: RunSpec, kind: PhaseKind, count: int, rng: random.Random) -> PhaseResult:
    """A phase of ``count`` records, its figures and verdicts added up by the engine's own tally."""
    tally = PhaseTally(kind)
    outcomes = []
    for index in range(1, count + 1):
        record = _record(spec, kind, index, count)
        outcome = _outcome(spec, record, spec.faults.get(index) if kind == "primary" else None, rng)
        tally.add(outcome)
        outcomes.append(outcome)
    checks = [c for o in outcomes for c in o.checks]
    return PhaseResult(
        kind=kind,
        metrics=tally.metrics(thresholds=THRESHOLDS, api_requests=round(spec.api_requests_per_record * count)),
        outcomes=tuple(outcomes),
        complete=True,
        failed_records=tally.failed_records,
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
    return ProcessingTime(round(seconds - 0.001, 3), round(seconds, 3), "created_at", round(seconds + 0.03, 3))


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
        kind=result.kind,
    )


def begin_bare_run(store: RunStore, run_id: str = "r1", started_at: datetime | None = None) -> None:
    """Record in ``store`` that a run began, with nothing but its id (a Monitorbase run on the sandbox)."""
    store.begin_run(
        run_id=run_id,
        test_name="t",
        integration="monitorbase",
        config_path=None,
        target="sandbox",
        started_at=started_at or datetime.now(UTC),
        dry_run=False,
        config_snapshot={},
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


def many_owners_run(users: int, misrouted: int) -> RunResult:
    """A run whose primary phase had ``users`` loan officers, one record each; the first ``misrouted`` records went
    to the next officer (the last three of them to nobody)."""
    result = build_run(run_id="run_many_users")
    primary = result.phases[0]
    per_user = tuple(
        UserAccuracy(
            email=f"lo{i:05d}@lender.test", user_id=100_000 + i, expected=1, found=1, correct=int(i >= misrouted)
        )
        for i in range(users)
    )
    owners = tuple(
        (100_000 + i, NO_OWNER if misrouted - 3 <= i < misrouted else str(100_000 + i + int(i < misrouted)), 1)
        for i in range(users)
    )
    teams = tuple((5000 + i % 60, str(5000 + i % 60), 1) for i in range(users))
    metrics = dataclasses.replace(primary.metrics, per_user=per_user, owner_counts=owners, team_counts=teams)
    return dataclasses.replace(result, phases=(dataclasses.replace(primary, metrics=metrics),))


def fill_history(store_at: str | Path, runs: int, integrations: Sequence[str] = ("monitorbase",)) -> None:
    """``runs`` small finished runs, an hour apart, round-robin over ``integrations`` (what a year of monitoring
    leaves): the benchmarks' stores of many runs."""
    template = build_run(records=8, invalid=1)
    with RunStore(store_at) as store:
        for n in range(runs):
            run_id = f"hist_{n:05d}"
            phases = tuple(
                dataclasses.replace(
                    phase,
                    outcomes=tuple(
                        dataclasses.replace(o, record=dataclasses.replace(o.record, run_id=run_id))
                        for o in phase.outcomes
                    ),
                )
                for phase in template.phases
            )
            started = template.started_at + timedelta(hours=n)
            store.finish_run(
                dataclasses.replace(
                    template,
                    run_id=run_id,
                    integration=integrations[n % len(integrations)],
                    started_at=started,
                    finished_at=started + timedelta(seconds=40),
                    phases=phases,
                )
            )
