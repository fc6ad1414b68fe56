"""What a run shows of its problems: one :class:`Sighting` per failure signature, from the run's own findings.

A systemic diagnosis is one signature (cause class ``systemic``); the failing records no diagnosis
explains are grouped by their check's sporadic class (``misrouted``, ``never created``, ``mangled`` ...).
The checks of where a record landed (owner, owner email, team, visibility) fail together for one
cause, so they are one signature named by the first of them that failed. Nothing is judged again.

Example::

    for sighting in sightings(result):
        sighting.signature.problem_id, sighting.title, sighting.failed, sighting.judged
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bonzo_bulk.judge.diagnosis import OWNER_CHECKS
from bonzo_bulk.models import CheckResult, PhaseResult, RunResult
from bonzo_bulk.secrets import redact, redact_cut

ID_LENGTH = 10
"""Hex digits of a problem id: short to type, and 16^10 signatures before two are likely to meet."""

SYSTEMIC = "systemic"
_SPORADIC_CLASS = {
    "delivered": "not delivered",
    "created": "never created",
    "duplicate": "duplicated",
    "duplicate_after_retry": "duplicated by our retry",
    "processing_time": "slow",
    "invalid_handling": "invalid record mishandled",
    "unexpected": "stray prospect",
}
_EMPTY: tuple[object, ...] = (None, "", [], {})


@dataclass(frozen=True, slots=True)
class Signature:
    """What makes two runs' failures the same problem."""

    integration: str
    target: str
    phase: str
    check: str
    cause: str
    """``systemic``, or a sporadic class: ``misrouted``, ``never created``, ``mangled``, ``missing`` ..."""

    @property
    def problem_id(self) -> str:
        """The short, stable id: a hash of the signature.

        >>> Signature("monitorbase", "sandbox", "primary", "owner", "systemic").problem_id
        'bec4cf1b7d'
        """
        text = "\x1f".join((self.integration, self.target, self.phase, self.check, self.cause))
        return hashlib.sha256(text.encode()).hexdigest()[:ID_LENGTH]

    @property
    def title(self) -> str:
        """The problem in words.

        >>> Signature("monitorbase", "sandbox", "primary", "owner", "misrouted").title
        'monitorbase (sandbox) primary: records misrouted (owner wrong on some records)'
        """
        where = f"{self.integration} ({self.target}) {self.phase}"
        if self.cause == SYSTEMIC:
            return f"{where}: {self.check} fails on (nearly) every record"
        if self.cause == "misrouted":
            return f"{where}: records misrouted ({self.check} wrong on some records)"
        if self.cause in ("mangled", "missing"):
            return f"{where}: field {self.check} {self.cause} on some records"
        return f"{where}: some records {self.cause}"


@dataclass(frozen=True, slots=True)
class Sighting:
    """One signature as one run showed it: how many records, of how many judged, which ones, the fix."""

    signature: Signature
    failed: int
    judged: int
    checks: tuple[str, ...]
    """The checks it stands for (a misroute fails several at once)."""
    samples: tuple[str, ...]
    """A few failing records by name."""
    detail: str
    """The cause in words (the diagnosis's, or the class's), redacted."""
    fix: str = ""

    @property
    def share(self) -> float:
        return self.failed / self.judged if self.judged else 0.0


def cause_class(check: str, actual: object) -> str:
    """The sporadic class of one failed check (owner checks are ``misrouted``; a field ``missing`` or ``mangled``).

    >>> cause_class("created", None), cause_class("team", 12), cause_class("first_name", ""), cause_class("phone", "1")
    ('never created', 'misrouted', 'missing', 'mangled')
    """
    if check in OWNER_CHECKS:
        return "misrouted"
    if check in _SPORADIC_CLASS:
        return _SPORADIC_CLASS[check]
    return "missing" if actual in _EMPTY else "mangled"


@dataclass(frozen=True, slots=True)
class PhaseKeys:
    """How one phase's failed checks map to signatures: made once per phase, asked once per check."""

    diagnosed: frozenset[str]
    systemic_lead: str
    """The owner check that names a systemic misroute: the first of OWNER_CHECKS diagnosed."""
    sporadic_lead: str
    """The owner check that names a sporadic misroute: the first of OWNER_CHECKS failing undiagnosed."""

    @classmethod
    def of(cls, phase: PhaseResult) -> PhaseKeys:
        diagnosed = frozenset(d.check for d in phase.diagnoses)
        failing = {c.check for c in phase.failures() if c.check not in diagnosed}
        return cls(diagnosed, _first_owner(diagnosed), _first_owner(failing))

    def key(self, check: str, actual: object) -> tuple[str, str]:
        """(check, cause class) of one failed check: its problem's, whatever a report shows it as."""
        if check in self.diagnosed:
            return (self.systemic_lead if check in OWNER_CHECKS else check), SYSTEMIC
        cause = cause_class(check, actual)
        return (self.sporadic_lead if cause == "misrouted" else check), cause


def _first_owner(names: set[str] | frozenset[str]) -> str:
    return next((name for name in OWNER_CHECKS if name in names), OWNER_CHECKS[0])


def sightings(result: RunResult, *, samples: int = 5) -> list[Sighting]:
    """Every signature the run's failures show, systemic ones first, each phase in turn."""
    found: list[Sighting] = []
    for phase in result.phases:
        found += _systemic(result, phase, samples) + _sporadic(result, phase, samples)
    return found


def _systemic(result: RunResult, phase: PhaseResult, samples: int) -> list[Sighting]:
    keys = PhaseKeys.of(phase)
    groups: dict[str, list[str]] = {}
    for diagnosis in phase.diagnoses:
        groups.setdefault(keys.key(diagnosis.check, None)[0], []).append(diagnosis.check)
    found = []
    for key, checks in groups.items():
        diagnoses = [d for d in phase.diagnoses if d.check in checks]
        head = next((d for d in diagnoses if d.check == key), diagnoses[0])
        found.append(
            Sighting(
                Signature(result.integration, result.target, phase.kind, key, SYSTEMIC),
                failed=max(d.failed for d in diagnoses),
                judged=max(d.judged for d in diagnoses),
                checks=tuple(checks),
                samples=_names(phase.failures(), set(checks), samples),
                detail=redact(head.cause),
                fix=redact(head.fix),
            )
        )
    return found


def _sporadic(result: RunResult, phase: PhaseResult, samples: int) -> list[Sighting]:
    keys = PhaseKeys.of(phase)
    groups: dict[tuple[str, str], list[CheckResult]] = {}
    for check in phase.failures():
        if check.check not in keys.diagnosed:
            groups.setdefault(keys.key(check.check, check.actual), []).append(check)
    found = []
    for (key, cause), failing in groups.items():
        records = list(dict.fromkeys(c.record_name for c in failing))
        checks = tuple(dict.fromkeys(c.check for c in failing))
        judged = phase.judged.get(key) or phase.metrics.generated
        first = failing[0]
        detail = f"{cause}: e.g. {first.record_name} {first.check} expected {first.expected!r}, got {first.actual!r}"
        found.append(
            Sighting(
                Signature(result.integration, result.target, phase.kind, key, cause),
                failed=len(records),
                judged=max(judged, len(records)),
                checks=checks,
                samples=tuple(redact(name) for name in records[:samples]),
                detail=redact_cut(detail, 300),
            )
        )
    return found


def _names(failures: Iterable[CheckResult], checks: set[str], limit: int) -> tuple[str, ...]:
    names: list[str] = []
    for check in failures:
        if check.check in checks and check.record_name not in names:
            names.append(check.record_name)
            if len(names) == limit:
                break
    return tuple(redact(name) for name in names)


def by_id(found: Sequence[Sighting]) -> dict[str, Sighting]:
    """Sightings keyed by problem id."""
    return {s.signature.problem_id: s for s in found}
