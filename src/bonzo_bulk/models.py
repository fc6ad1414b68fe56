"""Plain typed data passed between the stages: plan -> deliver -> settle -> judge -> results.

One record is one :class:`RecordOutcome`; a phase is its metrics and the outcomes kept in memory.
The same objects feed the assertions, the reports and the JSON summary. They are frozen
dataclasses; :func:`to_jsonable` turns any of them into JSON-ready values.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, TypeAlias

JSONValue: TypeAlias = Any
Prospect: TypeAlias = Mapping[str, Any]
"""One prospect resource as Bonzo's API returns it (the ``data`` object)."""

PhaseKind = Literal["primary", "control"]
Target = Literal["sandbox", "live"]
RunKind = Literal["bulk", "load", "stress", "calibrate", "monitor"]
"""What a run was for: the mode that opened it. Runs are compared only with runs of the same kind."""
RUN_KINDS: tuple[RunKind, ...] = ("bulk", "load", "stress", "calibrate", "monitor")
LOAD_KINDS: tuple[RunKind, ...] = ("load", "stress")
"""Kinds whose figures are a load report (per-stage rates, a knee), not a bulk health page."""


class Stage(enum.StrEnum):
    """Where in the pipeline a check belongs; failures are counted per stage."""

    DELIVERY = "delivery"
    PROCESSING = "processing"
    ASSIGNMENT = "assignment"
    MAPPING = "mapping"
    VERIFICATION = "verification"


@dataclass(frozen=True, slots=True)
class User:
    """A Bonzo test user: the loan officer a record is meant for."""

    name: str
    email: str
    user_id: int
    team_id: int
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class PlannedRecord:
    """One test record, decided before anything is sent.

    ``payload`` is the rendered template (a JSON-ready tree); ``body`` and ``content_type`` are
    exactly what goes on the wire. ``expected`` holds the Bonzo prospect fields the record must
    end up with (after Bonzo's normalisation), keyed by prospect field path.
    """

    run_id: str
    phase: PhaseKind
    index: int
    name: str  # e.g. TestRecord_MonitorBase_001 (also the first name sent)
    record_id: str  # <YYYYmmdd_HHMMSS>_<NNN>
    first_name: str
    last_name: str
    email: str
    phone: str
    expected_user: User
    payload: Mapping[str, JSONValue]
    body: bytes
    content_type: str
    expected: Mapping[str, JSONValue]
    invalid_case: str | None = None
    """Name of the invalid-record case this record exercises, or None for a valid record."""
    expected_handling: str | None = None
    """For an invalid record: ``reject`` (4xx at the hook), ``drop`` (no prospect) or ``fallback``."""

    @property
    def is_valid(self) -> bool:
        return self.invalid_case is None


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What happened when one record was POSTed to the webhook."""

    record_name: str
    status: int | None
    attempts: int
    latency_ms: float
    """Time of the final attempt, request start to response read."""
    total_ms: float
    """Time from the first attempt's start to the final answer, retries and waits included."""
    sent_at: datetime
    answered_at: datetime | None
    error_category: str | None = None
    """None when accepted; else ``connect``, ``timeout``, ``reset``, ``redirect`` (a 3xx: never followed),
    ``http_4xx``, ``http_429``, ``http_5xx``."""
    error: str | None = None
    response_excerpt: str = ""

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class Observation:
    """What the API showed of one record by the end of settling."""

    record_name: str
    prospects: tuple[Prospect, ...]
    """Every prospect matched to the record (more than one is a duplicate)."""
    seen_in: tuple[int, ...]
    """User ids whose On-Behalf-Of list held the record."""
    first_seen_at: datetime | None
    polls: int
    poll_gap: float | None = None
    """Seconds between the poll that first found the record and the start of the last earlier poll of the same
    user's list that read as deep as the page it was found on (the last poll that could have seen it)."""

    @property
    def found(self) -> bool:
        return bool(self.prospects)

    def oldest_first(self) -> list[Prospect]:
        """The prospects, oldest (lowest id) first: the order the judge reads them in, a placement each."""
        return sorted(self.prospects, key=lambda p: int(p.get("id") or 0))


UNVERIFIED_CHECK = "verified"
"""The check an unverified record fails instead of ``created``: its lists were not all read to their end."""

RETRY_DUPLICATE_CHECK = "duplicate_after_retry"
"""The check a record with more than one prospect fails instead of ``duplicate`` when our sender tried its POST
more than once and no more prospects appeared than it sent POSTs: the hook accepted an attempt the sender gave up
on (a timeout or a reset), so the extra prospect is our retry's, not the integration creating two."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One verdict on one record: expected against actual."""

    record_name: str
    check: str  # e.g. "created", "owner.id", "team", "field:first_name", "source", "processing_time"
    stage: Stage
    passed: bool
    expected: JSONValue = None
    actual: JSONValue = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Percentiles of a set of durations, in milliseconds (HdrHistogram)."""

    count: int = 0
    min_ms: float = 0.0
    mean_ms: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class TimingWidths:
    """How one phase's processing times were measured from one source: how many records, how wide their intervals."""

    source: str
    """``created_at`` or ``first_seen`` (see :data:`TimingSource`)."""
    records: int
    median_width: float
    """Seconds: the median width of the intervals."""
    max_width: float

    @property
    def text(self) -> str:
        """``created_at on 48: intervals 0.41 s wide (median), 1.20 s at most`` (terminal, dashboard, notes)."""
        return (
            f"{self.source} on {self.records}: intervals {self.median_width:.2f} s wide (median), "
            f"{self.max_width:.2f} s at most"
        )


@dataclass(frozen=True, slots=True)
class UserAccuracy:
    """Assignment accuracy for one expected owner."""

    email: str
    user_id: int
    expected: int
    found: int
    correct: int
    name: str = ""
    team_id: int | None = None

    @property
    def accuracy(self) -> float:
        return self.correct / self.expected if self.expected else 1.0


class Verdict(enum.StrEnum):
    """The name of every threshold verdict a phase can have; every output looks verdicts up by these."""

    DELIVERY_RATE = "delivery_rate"
    CREATION_RATE = "creation_rate"
    ASSIGNMENT_ACCURACY = "assignment_accuracy"
    MAPPING_ACCURACY = "mapping_accuracy"
    PROCESSING_P95 = "processing_p95_seconds"
    AVG_RESPONSE = "avg_response_seconds"
    MAX_RESPONSE = "max_response_seconds"
    INVALID_HANDLING = "invalid_handling"
    UNEXPECTED_PROSPECTS = "unexpected_prospects"
    DUPLICATE_PROSPECTS = "duplicate_prospects"
    UNVERIFIED = "unverified_records"
    """Records that could not be checked because a listing never reached its end (never "not created")."""


@dataclass(frozen=True, slots=True)
class ThresholdVerdict:
    """A pass criterion from the config and how the run measured against it."""

    name: str  # delivery_rate, creation_rate, assignment_accuracy, mapping_accuracy, processing_p95_s, ...
    threshold: float
    actual: float
    passed: bool
    comparison: Literal[">=", "<="] = ">="


@dataclass(frozen=True, slots=True)
class PhaseMetrics:
    """The figures of one phase (primary or control) of a run."""

    generated: int
    valid: int
    sent: int
    delivered: int
    delivery_rate: float
    status_codes: Mapping[str, int]
    delivery_latency: LatencySummary
    created: int
    creation_rate: float
    duplicates: int
    missing: int
    unexpected: int
    assigned_correctly: int
    assignment_accuracy: float
    per_user: tuple[UserAccuracy, ...]
    mapped_correctly: int
    mapping_accuracy: float
    field_accuracy: Mapping[str, float]
    processing_time: LatencySummary
    """Sent -> created, the upper end of each record's interval: by Bonzo's ``created_at`` where usable, else first
    seen (see :mod:`bonzo_bulk.judge.timing`)."""
    visible_lag: LatencySummary
    """Sent -> first seen through the API: an upper bound that depends on the polling."""
    failures_by_stage: Mapping[str, int]
    error_categories: Mapping[str, int]
    invalid_handled: int
    invalid_total: int
    api_requests: int
    api_requests_per_record: float
    thresholds: tuple[ThresholdVerdict, ...]
    owner_counts: tuple[tuple[int, str, int], ...] = ()
    """(expected user id, where its prospects went, how many): an owner id (or email), ``(no owner)``,
    ``(not created)``, ``(not delivered)`` — one count per prospect found (the dashboard's assignment matrix)."""
    team_counts: tuple[tuple[int, str, int], ...] = ()
    """(expected team id, the team its prospects went to or the same three words, how many)."""
    unverified: int = 0
    """Records missing from the lists while a listing never reached its end: neither created nor not created."""
    timing_widths: tuple[TimingWidths, ...] = ()
    """Per source of the processing times, the records and the widths of their intervals."""

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.thresholds)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A check that failed on (nearly) every record of a phase, with its likely cause and fix.

    Made by :mod:`bonzo_bulk.judge.diagnosis`.
    """

    phase: PhaseKind
    check: str
    stage: Stage
    failed: int
    judged: int
    cause: str
    fix: str
    example_expected: Any = None
    example_actual: Any = None

    @property
    def headline(self) -> str:
        return f"[{self.phase}] {self.check} failed on {self.failed} of {self.judged} records: {self.cause}"


TimingSource = Literal["created_at", "first_seen"]


@dataclass(frozen=True, slots=True)
class ProcessingTime:
    """One record's processing time as an interval ``[low, high]`` seconds that contains the true lag (sent ->
    created), with where it comes from (:mod:`bonzo_bulk.judge.timing` computes it; everyone else reads it).

    The one point figure is the upper end (:attr:`seconds`): percentiles, histograms and every verdict on time
    use it, so a verdict never claims more speed than the evidence shows.
    """

    low: float
    high: float
    source: TimingSource
    visible_after: float | None
    """First seen through the API minus sent: an upper bound, whatever ``source`` is."""

    @property
    def seconds(self) -> float:
        """The upper end of the interval: the figure verdicts, percentiles and histograms use."""
        return self.high

    @property
    def width(self) -> float:
        """How far apart the interval's ends are, in seconds (how fine the figure is)."""
        return self.high - self.low

    def contains(self, lag: float, slack: float = 0.0) -> bool:
        """Whether a lag (seconds) lies in the interval, give or take ``slack``."""
        return self.low - slack <= lag <= self.high + slack


@dataclass(frozen=True, slots=True)
class Placement:
    """Where Bonzo put one prospect: its owner and team, read once through every known shape."""

    owner_id: int | None
    owner_email: str | None
    team_id: int | None


@dataclass(frozen=True, slots=True, repr=False)
class RecordOutcome:
    """One record end to end: what was planned, how it was delivered, what Bonzo showed, every check.

    Made once per record by :func:`bonzo_bulk.judge.verify.judge`; the derived facts (whether a prospect
    was expected, the processing time, the owner) are computed there and read by everyone else.
    """

    record: PlannedRecord
    delivery: DeliveryResult | None
    observation: Observation | None
    checks: tuple[CheckResult, ...]
    expects_prospect: bool
    """Accepted by the hook and meant to become a prospect (valid, or an invalid case Bonzo keeps)."""
    processing: ProcessingTime | None
    placements: tuple[Placement, ...]
    """Owner and team of each prospect matched to the record, in :meth:`Observation.oldest_first` order."""
    unverified: str | None = None
    """Why the record could not be checked (missing from the lists while a listing never reached its end);
    None when it was checked. An unverified record is never counted as created or as not created."""

    @property
    def owner_id(self) -> int | None:
        """The owner Bonzo shows for the (first) prospect."""
        return self.placements[0].owner_id if self.placements else None

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def delivered(self) -> bool:
        return self.delivery is not None and self.delivery.accepted

    @property
    def found(self) -> bool:
        return self.observation is not None and self.observation.found

    @property
    def created(self) -> bool:
        """Delivered and found: a prospect this run's delivery made."""
        return self.delivered and self.found

    @property
    def duplicates(self) -> int:
        """Prospects beyond the first made for this record."""
        return max(0, len(self.observation.prospects) - 1) if self.observation is not None else 0

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def stage_ok(self, stage: Stage) -> bool:
        """Whether every check of one stage passed."""
        return all(c.passed for c in self.checks if c.stage is stage)

    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def __repr__(self) -> str:
        return f"RecordOutcome({self.name!r}, {'passed' if self.passed else 'FAILED'})"


KEEP_ALL = 2000
"""A phase of at most this many records keeps every outcome in memory; a bigger one its failed ones, this many."""


@dataclass(frozen=True, slots=True, repr=False)
class PhaseResult:
    """Everything one phase (primary hook, or the superuser control hook) produced.

    ``outcomes`` are the records kept in memory: every record of a small phase, else the failing ones
    up to a cap (``complete`` says which). The full ledger of every record is the run store
    (:meth:`bonzo_bulk.store.RunStore.outcomes`), so a 100k run never holds every payload at once.
    """

    kind: PhaseKind
    metrics: PhaseMetrics
    outcomes: tuple[RecordOutcome, ...]
    complete: bool
    """True when ``outcomes`` holds every record of the phase."""
    failed_records: int
    """Records with at least one failed check (all of them, kept or not)."""
    stray_checks: tuple[CheckResult, ...]
    """Checks on prospects no record explains (one ``unexpected`` check each)."""
    unexpected_prospects: tuple[Prospect, ...]
    settled: bool
    """True when every expected record settled before the deadline."""
    settle_seconds: float
    diagnoses: tuple[Diagnosis, ...] = ()
    """Checks that failed on (nearly) every record: said once, with cause and fix."""
    judged: Mapping[str, int] = field(default_factory=dict)
    """How many records each check judged (every record, kept or not)."""

    @property
    def passed(self) -> bool:
        return self.metrics.passed

    @property
    def records(self) -> list[PlannedRecord]:
        """The planned records kept in memory (all of them when ``complete``)."""
        return [o.record for o in self.outcomes]

    def __repr__(self) -> str:
        # Short on purpose: the default repr of 10k records is hundreds of MB (and asyncio builds it).
        verdict = "passed" if self.passed else "FAILED"
        return f"PhaseResult({self.kind}, {self.metrics.generated} records, {self.failed_records} failed, {verdict})"

    def checks(self) -> list[CheckResult]:
        """Every check kept in memory: the kept records' checks, then the stray ones."""
        return [c for o in self.outcomes for c in o.checks] + list(self.stray_checks)

    def failures_by_record(self) -> dict[str, list[CheckResult]]:
        """The failed checks grouped by record, records in the order they first fail."""
        return by_record(self.failures())

    def sporadic_failures(self) -> list[CheckResult]:
        """The failed checks that no diagnosis explains (the records worth looking at one by one)."""
        systemic = {d.check for d in self.diagnoses}
        return [c for c in self.failures() if c.check not in systemic]

    def failures(self, *, stage: Stage | None = None, check_prefix: str | None = None) -> list[CheckResult]:
        """The failed checks kept in memory, optionally only of one stage or whose name starts with a prefix."""
        return [
            c
            for c in self.checks()
            if not c.passed
            and (stage is None or c.stage is stage)
            and (check_prefix is None or c.check.startswith(check_prefix))
        ]


@dataclass(frozen=True, slots=True, repr=False)
class RunResult:
    """One bulk run end to end: its metadata and each phase's result."""

    run_id: str
    test_name: str
    integration: str
    config_path: str | None
    target: Target
    started_at: datetime
    finished_at: datetime
    dry_run: bool
    phases: tuple[PhaseResult, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    kind: RunKind = "bulk"
    """The mode that opened the run (set by ``open_run``); history compares only runs of one kind."""

    @property
    def primary(self) -> PhaseResult | None:
        return next((p for p in self.phases if p.kind == "primary"), None)

    @property
    def control(self) -> PhaseResult | None:
        return next((p for p in self.phases if p.kind == "control"), None)

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.phases)

    @property
    def unverified(self) -> int:
        """Records of every phase that could not be checked (a listing never reached its end)."""
        return sum(p.metrics.unverified for p in self.phases)

    def __repr__(self) -> str:
        phases = ", ".join(repr(p) for p in self.phases)
        return f"RunResult({self.run_id!r}, target={self.target!r}, phases=[{phases}])"


def percent(part: float, whole: float = 1.0) -> str:
    """``part`` of ``whole`` as people read it, to one decimal (a rate alone when ``whole`` is left out); 0 of
    nothing. Every output reads rates through this one helper.

    >>> percent(0.9333), percent(14, 15), percent(3, 0)
    ('93.3%', '93.3%', '0.0%')
    """
    return f"{100 * part / whole if whole else 0.0:.1f}%"


def by_record(checks: Iterable[CheckResult]) -> dict[str, list[CheckResult]]:
    """Checks grouped by record name, records in the order they first appear."""
    grouped: dict[str, list[CheckResult]] = {}
    for check in checks:
        grouped.setdefault(check.record_name, []).append(check)
    return grouped


_JSON_SCALARS = frozenset({str, int, float, bool})


def to_jsonable(value: Any) -> JSONValue:
    """Turn dataclasses, enums, datetimes, bytes and mappings into JSON-ready values."""
    if value is None or type(value) in _JSON_SCALARS:
        return value  # most values are; the checks below (an ABC among them) cost 300k calls a 10k run
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for extra in ("accepted", "found", "passed", "accuracy", "is_valid"):
            attr = getattr(type(value), extra, None)
            if isinstance(attr, property):
                out[extra] = to_jsonable(getattr(value, extra))
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value
