"""Unverified is its own outcome: the judge gives it only to a delivered record missing while a listing never
reached its end, and the tally counts it apart from created and not created."""

from __future__ import annotations

from datetime import UTC, datetime

from builders import RunSpec, _record

from bonzo_bulk.config.schema import Thresholds
from bonzo_bulk.judge.tally import UNVERIFIED, PhaseTally
from bonzo_bulk.judge.verify import Judge
from bonzo_bulk.models import UNVERIFIED_CHECK, DeliveryResult, Observation, PlannedRecord, Verdict

REASON = "the listing of user 2 never completed (page 2 repeats a page already read)"


def delivered(record: PlannedRecord, status: int = 200) -> DeliveryResult:
    now = datetime.now(UTC)
    return DeliveryResult(record.name, status, 1, 5.0, 5.0, now, now)


def found(record: PlannedRecord) -> Observation:
    user = record.expected_user
    prospect = {
        "id": record.index,
        "first_name": record.name,
        "last_name": "Bulk",
        "email": record.email,
        "phone": record.phone,
        "source": "monitorbase",
        "assigned_to": user.user_id,
        "assigned_user": {"id": user.user_id, "email": user.email},
        "business_entity_id": user.team_id,
    }
    return Observation(record.name, (prospect,), (user.user_id,), datetime.now(UTC), 1)


def judge(unverified: str | None) -> Judge:
    return Judge.for_phase(
        "primary", [], transforms={}, thresholds=Thresholds(), integration_type="monitorbase", unverified=unverified
    )


def test_only_a_missing_delivered_record_is_unverified() -> None:
    spec = RunSpec()
    records = [_record(spec, "primary", n, 100) for n in (1, 2, 3, 4)]
    missing = judge(REASON)(records[0], delivered(records[0]), None)
    assert missing.unverified == REASON
    assert [(c.check, c.passed) for c in missing.checks] == [("delivered", True), (UNVERIFIED_CHECK, False)]
    assert "created" not in {c.check for c in missing.checks}
    assert REASON in missing.checks[1].message
    seen = judge(REASON)(records[1], delivered(records[1]), found(records[1]))
    assert seen.unverified is None and seen.found
    refused = judge(REASON)(records[2], delivered(records[2], 503), None)
    assert refused.unverified is None  # never accepted: nothing to look for
    complete = judge(None)(records[3], delivered(records[3]), None)
    assert complete.unverified is None
    assert {c.check for c in complete.checks if not c.passed} == {"created"}


def test_the_tally_counts_unverified_apart_from_created_and_missing() -> None:
    spec = RunSpec()
    records = [_record(spec, "primary", n, 100) for n in (1, 2, 3)]
    tally = PhaseTally("primary")
    tally.add(judge(REASON)(records[0], delivered(records[0]), found(records[0])))
    tally.add(judge(REASON)(records[1], delivered(records[1]), None))
    tally.add(judge(REASON)(records[2], delivered(records[2]), None))
    metrics = tally.metrics(thresholds=Thresholds(), api_requests=10)
    assert (metrics.created, metrics.missing, metrics.unverified) == (1, 0, 2)
    assert metrics.creation_rate == 1.0  # of the one record that could be checked
    verdicts = {v.name: v for v in metrics.thresholds}
    assert not verdicts[Verdict.UNVERIFIED].passed and verdicts[Verdict.UNVERIFIED].actual == 2
    assert sum(n for _, where, n in metrics.owner_counts if where == UNVERIFIED) == 2


def test_nothing_checked_gives_no_creation_rate_only_the_unverified_verdict() -> None:
    spec = RunSpec()
    record = _record(spec, "primary", 1, 100)
    tally = PhaseTally("primary")
    tally.add(judge(REASON)(record, delivered(record), None))
    names = {v.name for v in tally.metrics(thresholds=Thresholds(), api_requests=1).thresholds}
    assert Verdict.UNVERIFIED in names
    assert not names & {Verdict.CREATION_RATE, Verdict.ASSIGNMENT_ACCURACY, Verdict.MAPPING_ACCURACY}
