"""Systemic vs sporadic: a check that fails on (nearly) every record is one finding, not N table rows.

A systemic failure has a cause outside the records — a field the webhook's Mapping tab does not map,
a declared value that is not what this Bonzo stores, test users whose ids are wrong — and is said
once, with the likely cause and the fix. What is left (some records fail, others pass) is sporadic:
those are the interesting records, and the per-record table lists only them. A systemic failure of
a checked field still fails the run: the thresholds see every failed check.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from bonzo_bulk.models import (
    RETRY_DUPLICATE_CHECK,
    UNVERIFIED_CHECK,
    CheckResult,
    Diagnosis,
    PhaseKind,
    RunResult,
    Stage,
)

SYSTEMIC_SHARE = 0.9
"""A check failing on at least this share of the records it judged is systemic..."""
SYSTEMIC_MIN_RECORDS = 3
"""... provided it failed on at least this many records."""

OWNER_CHECKS = ("owner", "owner_email", "team", "visibility")
"""The checks of where a record landed, in the order that names a misroute (one cause fails them together)."""
_NOT_SYSTEMIC = {"unexpected", "invalid_handling"}
"""Checks judged on their own records (stray prospects, records broken on purpose), never as a share."""
_KNOWN_CAUSE = {RETRY_DUPLICATE_CHECK}
"""Checks whose cause is known whenever they fail (our own retry), so they are diagnosed however few records fail."""


@dataclass
class _Failing:
    """What one check's failures looked like, summed up as records stream past."""

    first: CheckResult
    count: int = 0
    never: bool = True
    """Every failure had no value at all."""
    shapes: set[str] = field(default_factory=set)
    """Up to two distinct actual values (one means: the same wrong value everywhere)."""
    common: Counter[str] = field(default_factory=Counter)
    said: dict[str, str] = field(default_factory=dict)
    """The first message of each actual value counted in ``common`` (a redirect's says where it pointed)."""


class Diagnoser:
    """Counts each check's verdicts one record at a time; :meth:`diagnoses` names the systemic ones."""

    def __init__(self, kind: PhaseKind) -> None:
        self.kind = kind
        self.judged: Counter[str] = Counter()
        self.failing: dict[str, _Failing] = {}

    def add(self, checks: Iterable[CheckResult]) -> None:
        for check in checks:
            self.judged[check.check] += 1
            if check.passed or check.check in _NOT_SYSTEMIC:
                continue
            entry = self.failing.get(check.check)
            if entry is None:
                entry = self.failing[check.check] = _Failing(check)
            entry.count += 1
            entry.never = entry.never and check.actual in (None, "", [], {})
            if len(entry.shapes) < 2:
                entry.shapes.add(repr(check.actual))
            if check.check == "delivered":
                entry.common[str(check.actual)] += 1
                entry.said.setdefault(str(check.actual), check.message)

    def diagnoses(
        self, *, provenance: Mapping[str, str] | None = None, sources: Mapping[str, str] | None = None
    ) -> tuple[Diagnosis, ...]:
        found: list[Diagnosis] = []
        for name, entry in self.failing.items():
            total = self.judged[name]
            rare = entry.count < SYSTEMIC_MIN_RECORDS or entry.count < SYSTEMIC_SHARE * total
            if rare and name not in _KNOWN_CAUSE:
                continue
            cause, fix = _explain(name, entry, (provenance or {}).get(name), (sources or {}).get(name), self.kind)
            first = entry.first
            found.append(
                Diagnosis(self.kind, name, first.stage, entry.count, total, cause, fix, first.expected, first.actual)
            )
        return tuple(found)


def diagnose(
    kind: PhaseKind,
    checks: Iterable[CheckResult],
    *,
    provenance: Mapping[str, str] | None = None,
    sources: Mapping[str, str] | None = None,
) -> tuple[Diagnosis, ...]:
    """The systemic failures among one phase's checks.

    ``provenance`` maps a contract field to where the promise comes from (documented / declared /
    learned); ``sources`` maps it to the payload path it is read from, for the fix text.
    """
    diagnoser = Diagnoser(kind)
    diagnoser.add(checks)
    return diagnoser.diagnoses(provenance=provenance, sources=sources)


def _explain(
    name: str, failures: _Failing, provenance: str | None, source: str | None, kind: PhaseKind
) -> tuple[str, str]:
    never = failures.never
    same = len(failures.shapes) == 1
    section = f"contract.{kind}"
    if name == "delivered":
        common = failures.common.most_common(1)[0][0]
        if common.isdigit() and 300 <= int(common) < 400:
            return (
                f"the webhook answered a redirect ({common}): {failures.said.get(common) or 'not followed'}",
                "point TEST_HOOK_URL / SUPERUSER_WEBHOOK_URL at the URL the hook redirects to, if you trust that "
                "host; a lead is never re-sent to another URL",
            )
        return (
            f"the webhook refused or never answered (most often: {common})",
            "check TEST_HOOK_URL / SUPERUSER_WEBHOOK_URL and that the hook is enabled; its Logs tab shows each payload",
        )
    if name == "created":
        return (
            "no record appeared in any test user's list by the deadline",
            "check that the webhook creates prospects (its Logs tab), that test_users are the owners it routes to, "
            "and that processing_delay is long enough",
        )
    if name == UNVERIFIED_CHECK:
        return (
            "these records were missing from the lists read, but a listing never reached its end, so whether "
            f"they were created is unknown ({failures.first.message})",
            "see the run's notes for the listing that failed; raise the deadline (polling.deadline) or "
            "api_settings.request_budget if it ran out, and report a listing that repeats or leaves the API",
        )
    if name in OWNER_CHECKS:
        return (
            f"{name} is wrong on every record ({_example(failures)})",
            "check test_users: each user_id / team_id must be the Bonzo user and team the webhook assigns "
            "(for Monitorbase hooks, the user whose email is lo_email)",
        )
    if name == "processing_time":
        return (
            f"every record took longer than the threshold ({_example(failures)})",
            "raise thresholds.max_processing_seconds if this is the integration's normal speed, or look for a backlog",
        )
    if name == "duplicate":
        return (
            "every record arrived more than once: the integration created two prospects from one POST",
            "check for a retrying sender or two webhooks feeding Bonzo",
        )
    if name == RETRY_DUPLICATE_CHECK:
        return (
            f"duplicate after our retry ({_example(failures)}): our sender gave up on a POST (a timeout or a reset) "
            "that the hook had in fact accepted, and sent it again; not the integration creating two",
            "raise webhook_settings.timeout above the hook's slowest answer (or set retry_attempts: 0); "
            "`bonzo-bulk cleanup` removes the extra prospects",
        )
    origin = {"documented": "documented by Bonzo", "declared": "declared in your config", "learned": "learned"}.get(
        provenance or "", "asked for by a validation rule"
    )
    sent = f"`{source}`" if source else "the payload value"
    if never:
        return (
            f"`{name}` never arrived ({origin})",
            f"is {sent} mapped in the webhook's Mapping tab? Map it there, or remove the declaration "
            f"({section} / validation_rules), or run `bonzo-bulk calibrate` to learn what arrives",
        )
    if same:
        return (
            f"`{name}` holds {failures.first.actual!r} on every record, not the {origin} value ({_example(failures)})",
            f"if that is what this hook stores, declare it ({section} / validation_rules) "
            "or run `bonzo-bulk calibrate`",
        )
    return (
        f"`{name}` differs from what was sent on every record ({origin}; {_example(failures)})",
        f"run `bonzo-bulk calibrate` to see how Bonzo transforms {sent}, then accept the contract it writes",
    )


def _example(failures: _Failing) -> str:
    first = failures.first
    return f"e.g. {first.record_name}: expected {first.expected!r}, got {first.actual!r}"


HookFinding = Literal["lo_email_resolution", "downstream", "control_hook", "both_passed"]


@dataclass(frozen=True, slots=True)
class HookDiagnosis:
    """What the primary hook (``lo_email`` routing) and the control hook (explicit ``user_id``) say together."""

    finding: HookFinding
    text: str

    @property
    def is_fault(self) -> bool:
        """Whether it names a fault (not both hooks passing)."""
        return self.finding != "both_passed"


_HOOK_TEXT: dict[HookFinding, str] = {
    "lo_email_resolution": "Control passed, primary failed: the fault is in the lo_email -> user resolution of the "
    "integration.",
    "downstream": "Both hooks failed: the fault is further down (prospect creation or Bonzo itself).",
    "control_hook": "Primary passed but the control hook failed: check the superuser hook and its user_id payload.",
    "both_passed": "Primary and control hooks both passed.",
}


def hook_diagnosis(result: RunResult) -> HookDiagnosis | None:
    """Where the fault is, from the primary and control phases side by side; None without a control phase.

    Every output (terminal, dashboard, JSON summary, monitor alerts, pytest-html) reads it from here.
    """
    primary, control = result.primary, result.control
    if primary is None or control is None:
        return None
    finding: HookFinding
    if control.passed:
        finding = "both_passed" if primary.passed else "lo_email_resolution"
    else:
        finding = "control_hook" if primary.passed else "downstream"
    return HookDiagnosis(finding, _HOOK_TEXT[finding])


def pinned_zone_contradicted(kind: PhaseKind, contradiction: str | None, judged: int) -> Diagnosis | None:
    """The diagnosis of a ``contract.created_at`` pin that the run's evidence rules out (None when it holds).

    The pin is not used: a zone every record contradicts would put the true processing times outside the
    intervals reported. The figures come from what the evidence learned instead (or from first seen).
    """
    if contradiction is None:
        return None
    return Diagnosis(
        kind,
        "created_at zone",
        Stage.PROCESSING,
        judged,
        judged,
        contradiction,
        "run `bonzo-bulk calibrate` to see the zone this Bonzo writes created_at in, then set contract.created_at.zone "
        "to it (or remove the pin and let each run learn it)",
    )
