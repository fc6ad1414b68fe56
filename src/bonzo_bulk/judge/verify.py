"""Judge: turn what was sent and what the API showed into one :class:`RecordOutcome` per record.

The built-in checks (delivered, created, no duplicate, processing time, owner, team, visibility,
every mapped field, source) are rules like the config's own (:mod:`bonzo_bulk.judge.rules`); a
config rule on the same field replaces the built-in one. Every check carries expected and actual
values, so a failure names the record and what was wrong, not only a percentage.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bonzo_bulk._paths import get_path
from bonzo_bulk.bonzo.normalize import values_match
from bonzo_bulk.bonzo.view import ProspectView
from bonzo_bulk.config.schema import TestDataSettings, Thresholds, ValidationRule
from bonzo_bulk.judge.rules import SAME_AS_BUILTIN, Rule, config_rules, record_rules, resolve_expected
from bonzo_bulk.judge.stamps import StampMapping
from bonzo_bulk.judge.timing import processing_time
from bonzo_bulk.models import (
    RETRY_DUPLICATE_CHECK,
    UNVERIFIED_CHECK,
    CheckResult,
    DeliveryResult,
    Observation,
    PhaseKind,
    Placement,
    PlannedRecord,
    ProcessingTime,
    Prospect,
    RecordOutcome,
    Stage,
)
from bonzo_bulk.plan.integration import Manifest, owner_value


def check_name(rule: ValidationRule) -> str:
    """The name of the check a config rule is judged by (a built-in one when it states an ownership fact)."""
    resolved = config_rules([rule])[0]
    return SAME_AS_BUILTIN.get((resolved.field, resolved.symbol), resolved.field)


def expects_prospect(record: PlannedRecord, delivery: DeliveryResult | None) -> bool:
    """Whether a record should produce a prospect the poller must wait for."""
    if delivery is None or not delivery.accepted:
        return False
    return record.is_valid or record.expected_handling in ("fallback", "accept")


@dataclass(frozen=True)
class Judge:
    """What judging a phase's records needs: the rules, the contract's transforms, thresholds, and what the run
    learned about ``created_at`` (:class:`~bonzo_bulk.judge.stamps.StampMapping`)."""

    rules: Sequence[Rule]
    transforms: Mapping[str, str]
    thresholds: Thresholds
    integration_type: str
    stamps: StampMapping = dataclasses.field(default_factory=StampMapping)
    unverified: str | None = None
    """Why a record missing from the lists cannot be called not created (a listing never reached its end)."""
    _rules_by_fields: dict[tuple[str, ...], list[Rule]] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """A record's rules depend only on which fields it expects: worked out once per set of fields."""

    def rules_of(self, record: PlannedRecord) -> list[Rule]:
        """Every rule for one record (:func:`~bonzo_bulk.judge.rules.record_rules`), computed once per field set."""
        fields = tuple(record.expected)
        rules = self._rules_by_fields.get(fields)
        if rules is None:
            rules = self._rules_by_fields[fields] = record_rules(record, self.rules, self.transforms)
        return rules

    @classmethod
    def for_phase(
        cls,
        kind: PhaseKind,
        rules: Sequence[ValidationRule],
        *,
        transforms: Mapping[str, str],
        thresholds: Thresholds,
        integration_type: str,
        stamps: StampMapping | None = None,
        unverified: str | None = None,
    ) -> Judge:
        """The judge of one phase: the config rules that apply to it (``phase: primary|control|both``)."""
        return cls(
            config_rules([r for r in rules if r.phase in (kind, "both")]),
            transforms,
            thresholds,
            integration_type,
            stamps or StampMapping(),
            unverified,
        )

    def __call__(
        self, record: PlannedRecord, delivery: DeliveryResult | None, observation: Observation | None
    ) -> RecordOutcome:
        """The outcome of one record: every check, and the facts derived once (processing time, owner)."""
        views = [ProspectView(p) for p in observation.oldest_first()] if observation is not None else []
        view = views[0] if views else None
        timing = processing_time(delivery, observation, self.stamps)
        unverified = self.unverified if view is None and delivery is not None and delivery.accepted else None
        if unverified is not None:
            checks = [_unverified_check(record, unverified)]
            if record.is_valid:
                checks.insert(0, _delivery_check(record, delivery))
        elif record.is_valid:
            checks = verify_record(
                record,
                delivery,
                observation,
                view,
                timing,
                rules=self.rules_of(record),
                thresholds=self.thresholds,
                integration_type=self.integration_type,
            )
        else:
            checks = [verify_invalid(record, delivery, view)]
        return RecordOutcome(
            record=record,
            delivery=delivery,
            observation=observation,
            checks=tuple(checks),
            expects_prospect=expects_prospect(record, delivery),
            processing=timing,
            placements=tuple(Placement(v.owner_id, v.owner_email, v.team_id) for v in views),
            unverified=unverified,
        )


def _unverified_check(record: PlannedRecord, reason: str) -> CheckResult:
    """The one check of a record that could not be checked: unverified, with the reason, never "not created"."""
    return CheckResult(
        record.name,
        UNVERIFIED_CHECK,
        Stage.VERIFICATION,
        False,
        "every test user's list read to its end",
        "unverified",
        f"unverified: missing from the lists read, but {reason}",
    )


def verify_record(
    record: PlannedRecord,
    delivery: DeliveryResult | None,
    observation: Observation | None,
    view: ProspectView | None,
    timing: ProcessingTime | None,
    *,
    rules: Sequence[Rule],
    thresholds: Thresholds,
    integration_type: str,
) -> list[CheckResult]:
    """All checks for one valid record."""
    name = record.name
    checks: list[CheckResult] = []
    delivered = delivery is not None and delivery.accepted
    checks.append(_delivery_check(record, delivery))
    if observation is None or view is None:
        if delivered:
            checks.append(
                CheckResult(
                    name,
                    "created",
                    Stage.PROCESSING,
                    False,
                    "a prospect",
                    None,
                    "accepted by the webhook but not in any test user's list by the deadline",
                )
            )
        return checks
    ids = sorted(int(p.get("id") or 0) for p in observation.prospects)
    checks.append(CheckResult(name, "created", Stage.PROCESSING, True, "a prospect", view.raw.get("id")))
    checks.append(_duplicate_check(name, ids, delivery))
    checks.append(_processing_check(record, timing, thresholds))
    expected_owner = record.expected_user.user_id
    seen_in = sorted(set(observation.seen_in))
    checks.append(
        CheckResult(
            name,
            "visibility",
            Stage.ASSIGNMENT,
            seen_in == [expected_owner],
            [expected_owner],
            seen_in,
            "" if seen_in == [expected_owner] else "not (only) in the expected owner's On-Behalf-Of list",
        )
    )
    for rule in rules:
        check = _rule_check(rule, record, view, integration_type)
        if check is not None:
            checks.append(check)
    return checks


def _delivery_check(record: PlannedRecord, delivery: DeliveryResult | None) -> CheckResult:
    if delivery is None:
        return CheckResult(record.name, "delivered", Stage.DELIVERY, False, "2xx", None, "never sent")
    actual = delivery.status if delivery.status is not None else delivery.error_category
    message = "" if delivery.accepted else (delivery.error or delivery.response_excerpt or f"status {delivery.status}")
    return CheckResult(record.name, "delivered", Stage.DELIVERY, delivery.accepted, "2xx", actual, message)


def _duplicate_check(name: str, ids: Sequence[int], delivery: DeliveryResult | None) -> CheckResult:
    """One prospect per record; more, when our sender POSTed the record as many times (a retry after a timeout or
    reset the hook had in fact accepted), is a duplicate after our retry, told apart from the integration's."""
    attempts = delivery.attempts if delivery is not None else 1
    if len(ids) > 1 and attempts > 1 and len(ids) <= attempts:
        return CheckResult(
            name,
            RETRY_DUPLICATE_CHECK,
            Stage.PROCESSING,
            False,
            1,
            len(ids),
            f"duplicate after our retry ({attempts} attempts): {len(ids)} prospects: ids {list(ids)}",
        )
    return CheckResult(
        name,
        "duplicate",
        Stage.PROCESSING,
        len(ids) == 1,
        1,
        len(ids),
        "" if len(ids) == 1 else f"{len(ids)} prospects: ids {list(ids)}",
    )


def _processing_check(record: PlannedRecord, timing: ProcessingTime | None, thresholds: Thresholds) -> CheckResult:
    """Within the limit only when the whole interval is: the verdict reads its upper end."""
    limit = thresholds.max_processing_seconds
    if timing is None:
        return CheckResult(record.name, "processing_time", Stage.PROCESSING, True, f"<= {limit:g} s", None)
    ok = timing.high <= limit
    how = "by Bonzo's created_at" if timing.source == "created_at" else "first seen through the API"
    interval = f"between {timing.low:.3f} and {timing.high:.3f} s ({how})"
    return CheckResult(
        record.name,
        "processing_time",
        Stage.PROCESSING,
        ok,
        f"<= {limit:g} s",
        round(timing.high, 3),
        interval if ok else f"took up to {timing.high:.1f} s: {interval}",
    )


def _rule_check(rule: Rule, record: PlannedRecord, view: ProspectView, integration_type: str) -> CheckResult | None:
    if rule.field == "owner":
        actual_ids = sorted(view.owner_ids)
        expected = resolve_expected(rule, record, integration_type)
        ok = actual_ids == [expected]
        message = "" if ok else ("assigned_to and assigned_user.id disagree" if len(actual_ids) > 1 else "mismatch")
        return CheckResult(record.name, "owner", rule.stage, ok, expected, view.owner_id, message)
    if rule.field == "owner_email":
        if view.owner_email is None:
            return None  # the prospect names no owner email: the owner id check stands alone
        expected = resolve_expected(rule, record, integration_type)
        ok = values_match(expected, view.owner_email, "lower")
        return CheckResult(
            record.name, "owner_email", rule.stage, ok, expected, view.owner_email, "" if ok else "mismatch"
        )
    if rule.field == "team":
        expected = resolve_expected(rule, record, integration_type)
        ok = values_match(expected, view.team_id, "none")
        return CheckResult(record.name, "team", rule.stage, ok, expected, view.team_id, "" if ok else "mismatch")
    actual = view.value(rule.field)
    if rule.required_only:
        ok = actual not in (None, "", [], {})
        return CheckResult(record.name, rule.field, rule.stage, ok, "a value", actual, "" if ok else "missing")
    expected = resolve_expected(rule, record, integration_type)
    ok = values_match(expected, actual, rule.normalize)
    return CheckResult(record.name, rule.field, rule.stage, ok, expected, actual, "" if ok else "mismatch")


def verify_invalid(record: PlannedRecord, delivery: DeliveryResult | None, view: ProspectView | None) -> CheckResult:
    """Whether a record sent broken on purpose was handled as the config expects."""
    status = delivery.status if delivery else None
    found = view is not None
    owner = view.owner_id if view is not None else None
    expectation = record.expected_handling or "reject"
    if expectation == "reject":
        ok = status is not None and 400 <= status < 500 and not found
        wanted = "rejected with a 4xx, no prospect"
    elif expectation == "drop":
        ok = status is not None and 200 <= status < 300 and not found
        wanted = "accepted, no prospect"
    elif expectation == "fallback":
        ok = found and owner == record.expected_user.user_id
        wanted = f"a prospect owned by the fallback user {record.expected_user.user_id}"
    else:
        ok = found
        wanted = "a prospect"
    actual = f"status {status if status is not None else (delivery.error_category if delivery else 'not sent')}, " + (
        f"prospect owned by {owner}" if found else "no prospect"
    )
    return CheckResult(
        record.name,
        "invalid_handling",
        Stage.VERIFICATION,
        ok,
        wanted,
        actual,
        "" if ok else f"{record.invalid_case}: expected {wanted}",
    )


def verify_unexpected(prospects: Sequence[Prospect]) -> list[CheckResult]:
    """Prospects that carry the run's marker but match no record that was sent."""
    return [
        CheckResult(
            str(p.get("first_name") or p.get("id")),
            "unexpected",
            Stage.VERIFICATION,
            False,
            "no prospect",
            {"id": p.get("id"), "email": p.get("email"), "owner": ProspectView(p).owner_id},
            "a prospect matching this run that no record explains",
        )
        for p in prospects
    ]


def verify_payloads(
    records: Sequence[PlannedRecord],
    manifest: Manifest,
    *,
    kind: PhaseKind,
    integration_type: str,
    settings: TestDataSettings,
) -> list[CheckResult]:
    """Check planned payloads before anything is sent: borrower fields present, the owner field naming
    the expected user, and the record names and emails in the spec's patterns (used by ``--dry-run``)."""
    borrower = manifest.borrower
    control = ("_SU", r"su\.") if kind == "control" else ("", "")
    name_pattern = re.compile(
        rf"^{re.escape(settings.first_name_pattern)}_{re.escape(settings.last_name_pattern)}{control[0]}_\d{{3,}}$"
    )
    email_pattern = re.compile(
        rf"^test\.{re.escape(integration_type)}\.{control[1]}\d{{3,}}(\+[a-z0-9-]+)?@{re.escape(settings.email_domain)}$"
    )
    checks: list[CheckResult] = []
    for record in records:
        first_name = get_path(record.payload, borrower.first_name)
        phones = [get_path(record.payload, path) for path in borrower.phone]
        rows: list[tuple[str, bool, Any, Any]] = [
            (f"payload:{path}", value not in (None, ""), "a value", value)
            for path in (borrower.first_name, borrower.last_name, borrower.email)
            if path
            for value in [get_path(record.payload, path)]
        ]
        rows.append(("payload:phone", any(phones), "a phone", phones))
        expected_owner = owner_value(manifest, record.expected_user)
        if manifest.owner.path and expected_owner is not None:
            owner = get_path(record.payload, manifest.owner.path)
            rows.append((f"payload:{manifest.owner.path}", str(owner) == str(expected_owner), expected_owner, owner))
        rows.append(("name pattern", bool(name_pattern.match(record.name)), name_pattern.pattern, record.name))
        rows.append(("first_name is the record name", first_name == record.name, record.name, first_name))
        rows.append(("email pattern", bool(email_pattern.match(record.email)), email_pattern.pattern, record.email))
        checks.extend(CheckResult(record.name, name, Stage.VERIFICATION, ok, want, got) for name, ok, want, got in rows)
    return checks
