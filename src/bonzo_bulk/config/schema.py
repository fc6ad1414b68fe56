"""The config schema: every option declared once, as a pydantic field with its default and help.

The YAML file, the environment and the command line (CLI flags and pytest options) all reach these
models through :mod:`bonzo_bulk.config.loader`, with one precedence: defaults < YAML < environment <
command line.
"""

from __future__ import annotations

import re
import typing
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import jmespath
import jmespath.exceptions
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bonzo_bulk.config.contract import ContractSettings
from bonzo_bulk.config.monitor import MonitorSettings
from bonzo_bulk.config.sandbox_clock import SandboxClock

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")
_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_ID = 2**53 - 1
"""The largest id accepted: exact in JSON numbers (doubles) and in a 64-bit column (the sandbox's SQLite)."""
DAY = 86_400.0
"""The longest any wait may be (seconds): a bigger number is a typo, not a plan."""


def _check_url(value: str, *, shown: str | None = None) -> str:
    """``value`` without a trailing slash, or a ValueError naming it (as ``shown`` when given: a secret's
    message says "the value" instead) and the fix."""
    named = shown or repr(value)
    if not re.match(r"^https?://[^\s/$.?#][^\s]*$", value):
        raise ValueError(f"{named} is not an http(s) URL; give a full URL such as https://app.getbonzo.com")
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ValueError(
            f"{named} is not a URL ({exc}): a '[' opens an IPv6 address and needs its ']'; "
            "give a full URL such as https://app.getbonzo.com"
        ) from exc
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{named} has an invalid port ({exc}); ports are 1-65535") from exc
    if port == 0:
        raise ValueError(f"{named} has port 0; ports are 1-65535")
    return value.rstrip("/")


def check_url(value: str, *, shown: str | None = None) -> str:
    """Validate an http(s) URL (public helper for secret URLs checked after placeholder resolution: pass
    ``shown="the value"`` so the message never repeats a secret)."""
    return _check_url(value, shown=shown)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_yes_no_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """``test_records: true`` is a typo, not 1: a yes/no value is refused where a number is wanted."""
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            if not _accepts_bool(annotation):
                raise ValueError(f"{value!r} is a yes/no value, but a number or text is wanted here")
        if isinstance(value, str) and _SURROGATE.search(value):
            raise ValueError("the text holds a lone UTF-16 surrogate, which is not valid Unicode; fix the text")
        return value


def _accepts_bool(annotation: Any) -> bool:
    """Whether a field's type admits a bool on purpose (``bool``, ``Any`` or a union holding one)."""
    if annotation is bool or annotation is Any:
        return True
    return any(_accepts_bool(arg) for arg in typing.get_args(annotation))


class TestUserConfig(_Section):
    """A Bonzo user that test records are assigned to."""

    __test__ = False  # not a pytest class

    name: str
    email: str = Field(json_schema_extra={"pattern": r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"})
    user_id: int = Field(gt=0, le=MAX_ID)
    team_id: int = Field(gt=0, le=MAX_ID)
    team_name: str | None = None
    external_id: str | None = None
    weight: float | None = Field(
        default=None, gt=0, le=1_000_000, description="share of records (distribution: weighted)"
    )
    count: int | None = Field(default=None, ge=0, le=1_000_000, description="exact record count (distribution: custom)")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not an email address")
        return value


class ValidationRule(_Section):
    """A check on each found prospect: ``field`` is a JMESPath path into the prospect resource.

    ``expected`` is a literal, or a symbol: ``user_id_from_lo_email`` (the expected owner's id),
    ``team_id_from_user`` (the expected owner's team), ``lo_email`` / ``user_email``, ``integration_type``,
    or ``payload:<path>`` (a value from the payload that was sent).
    """

    field: str
    expected: Any = None
    matches_lo_email: bool = False

    @field_validator("field")
    @classmethod
    def _path_compiles(cls, value: str) -> str:
        """The JMESPath path is compiled when the config loads, not found broken after records were sent."""
        if not value.strip():
            raise ValueError("the path is empty; give a JMESPath path such as 'assigned_user.email'")
        try:
            jmespath.compile(value)
        except jmespath.exceptions.JMESPathError as exc:
            reason = str(exc).splitlines()[0]
            raise ValueError(
                f"{value!r} is not a JMESPath path ({reason}); write it like 'assigned_user.email' or 'tags[0]'"
            ) from exc
        return value

    required: bool = False
    normalize: Literal["none", "lower", "phone", "strip"] = "none"
    stage: Literal["assignment", "mapping", "verification"] | None = None
    phase: Literal["primary", "control", "both"] = Field(
        default="primary",
        description="the phase whose records the rule checks: the spec's rules describe the primary hook; the "
        "control posts to a general-type hook that stores its own values",
    )

    @model_validator(mode="after")
    def _has_expectation(self) -> ValidationRule:
        if self.expected is None and not self.matches_lo_email and not self.required:
            raise ValueError(
                f"rule for {self.field!r} says nothing to check: give 'expected', "
                "'matches_lo_email: true' or 'required: true'"
            )
        return self


class TestDataSettings(_Section):
    """How test records look (the users' patterns)."""

    __test__ = False

    first_name_pattern: str = "TestRecord"
    last_name_pattern: str = "MonitorBase"
    email_domain: str = "bonzobuddy.test"
    phone_area_code: str = Field(default="555", pattern=r"^\d{3}$")
    address_pattern: str = "123 Test St"
    city: str = "TestCity"
    state: str = "CA"
    zip: str = "12345"
    seed: int | None = Field(default=None, description="Faker seed; the same seed gives the same records")

    @field_validator("first_name_pattern", "last_name_pattern")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        """Record names are built from these and cleanup matches them: plain words, no glob or space."""
        if not _NAME_PART.match(value):
            raise ValueError(
                f"{value!r} must be a plain word of letters, digits, '.' or '-' (no glob characters, spaces or "
                "'_', which joins the parts), e.g. 'TestRecord'"
            )
        return value

    @field_validator("email_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not _DOMAIN.match(value):
            raise ValueError(
                f"{value!r} is not a domain name (no '@', no spaces, at least one dot), e.g. 'bonzobuddy.test'"
            )
        return value

    unique_emails: bool = Field(
        default=True,
        description="tag each email with the run id (test.monitorbase.001+RUN@…) so runs never merge",
    )


class WebhookSettings(_Section):
    """How records are delivered to the webhook."""

    timeout: float = Field(default=30.0, gt=0, le=3600, description="seconds per request")
    retry_attempts: int = Field(default=3, ge=0, le=20, description="retries after the first try")
    retry_delay: float = Field(
        default=5.0, ge=0, le=3600, description="base backoff in seconds (exponential, jittered)"
    )
    max_retry_delay: float = Field(default=60.0, ge=0, le=3600)
    concurrent_requests: int = Field(default=5, ge=1, le=4096)
    deadline: float | None = Field(
        default=None,
        gt=0,
        le=DAY,
        description="seconds the whole delivery may take; records not sent by then fail. Default: as long as the "
        "records take when each is answered within its timeout on the first try, and at least 5 minutes",
    )
    give_up_after_refusals: int = Field(
        default=10, ge=1, le=100_000, description="stop sending after this many refused connections in a row"
    )
    give_up_after_timeouts: int = Field(
        default=10,
        ge=1,
        le=100_000,
        description="stop sending after this many requests in a row got no answer within the timeout",
    )
    rate_limit: float | None = Field(
        default=None, ge=0.01, le=1_000_000, description="records per second (at least 0.01), None for no limit"
    )


class ApiSettings(_Section):
    """How Bonzo's API is called."""

    base_url: str = "https://app.getbonzo.com"
    timeout: float = Field(default=30.0, gt=0, le=3600)
    retry_attempts: int = Field(default=3, ge=0, le=20)
    retry_delay: float = Field(default=1.0, ge=0, le=3600)
    max_prospects_per_request: int = Field(default=100, ge=1, le=1000)
    concurrent_requests: int = Field(default=4, ge=1, le=64)
    default_retry_after: float = Field(default=60.0, ge=0, le=3600, description="wait on a 429 without Retry-After")
    max_wait: float = Field(
        default=120.0,
        gt=0,
        le=DAY,
        description="the longest Retry-After a 429 is waited for; one asking more ends the call at once "
        "(and the preflight, as a whole, waits no longer than this on 429s)",
    )
    request_budget: int | None = Field(
        default=None,
        ge=1,
        description="most API requests one run may send (preflight, settling, cleanup); default: no limit",
    )
    max_requests_per_minute: float | None = Field(
        default=None,
        gt=0,
        le=100_000,
        description="pace API calls under this rate; X-RateLimit-Limit headers, when Bonzo sends them, "
        "lower it further, and a 429 halves the pace",
    )
    listing_timeout: float = Field(
        default=120.0,
        gt=0,
        le=DAY,
        description="most seconds one walk through a user's pages may take where no run deadline bounds it "
        "(cleanup, listing prospects); a walk cut short is reported, never taken as the end of the list",
    )
    list_order: str | None = Field(
        default=None,
        description="value sent as `order` when listing prospects (Bonzo's accepted values are undocumented, so "
        "none is sent by default; the poller checks the order it gets either way)",
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)


class PollingSettings(_Section):
    """How the poller waits for records to settle (never a blind sleep)."""

    interval: float = Field(default=1.0, gt=0, le=3600, description="seconds between polls")
    max_interval: float = Field(default=10.0, gt=0, le=3600)
    deadline: float | None = Field(
        default=None, gt=0, le=DAY, description="seconds after the last delivery; default processing_delay + grace"
    )
    grace: float = Field(default=15.0, ge=0, le=DAY)
    stable_polls: int = Field(default=1, ge=0, le=100, description="extra polls that must show no change")


class Thresholds(_Section):
    """Pass criteria (rates are fractions of 1)."""

    delivery_rate: float = Field(default=0.95, ge=0, le=1)
    creation_rate: float = Field(default=0.90, ge=0, le=1)
    assignment_accuracy: float = Field(default=0.95, ge=0, le=1)
    control_assignment_accuracy: float = Field(default=1.0, ge=0, le=1)
    mapping_accuracy: float = Field(default=0.95, ge=0, le=1)
    max_processing_seconds: float = Field(default=60.0, gt=0, le=DAY, description="p95 of accepted -> visible")
    max_avg_response_seconds: float = Field(default=5.0, gt=0, le=DAY)
    max_response_seconds: float = Field(default=30.0, gt=0, le=DAY)


class InvalidCase(_Section):
    """A record sent broken on purpose, and how the integration is expected to handle it."""

    kind: Literal["unknown_lo_email", "no_contact", "malformed_phone", "missing_first_name"]
    count: int = Field(default=1, ge=1, le=100)
    expect: Literal["reject", "drop", "fallback", "accept"] = "reject"
    fallback_user_id: int | None = Field(default=None, description="with expect: fallback, the owner it must get")
    """reject: a 4xx at the hook; drop: accepted, no prospect; fallback: a prospect with the fallback
    owner; accept: a prospect (with the phone left out, say)."""


class RegressionSettings(_Section):
    """How far a run may fall behind the baseline run before it counts as a regression."""

    p95_processing_increase: float = Field(default=0.5, ge=0, le=1000, description="+50 % p95 processing time")
    p95_latency_increase: float = Field(default=0.5, ge=0, le=1000, description="+50 % p95 delivery latency")
    accuracy_drop: float = Field(default=0.0, ge=0, le=1, description="any drop in a rate or accuracy")
    api_requests_increase: float = Field(default=0.5, ge=0, le=1000, description="+50 % API requests per record")
    fail_on_regression: bool = False
    history_runs: int = Field(default=30, ge=3, le=1000, description="comparable runs the statistical check reads")
    min_history: int = Field(default=5, ge=3, description="fewer comparable runs: no statistical check yet")
    confidence: float = Field(default=0.999, gt=0.5, lt=1, description="one-sided prediction interval level")
    min_effect: float = Field(default=0.10, ge=0, description="a figure must also be 10 % worse to count")


class ReportsSettings(_Section):
    """Retention of the report files each run writes (JSON summary and dashboard, several MB a run)."""

    keep_runs: int = Field(
        default=50, ge=0, description="after each run, keep the newest N runs' report files (0 keeps all)"
    )


class CleanupSettings(_Section):
    after_run: Literal["keep", "on_success", "always"] = Field(
        default="keep", description="delete the run's test prospects after the run"
    )
    straggler_wait: float = Field(
        default=60.0,
        ge=0,
        le=DAY,
        description="after_run: seconds to keep scanning for records delivered but not found yet; what is still "
        "missing is recorded as pending (`bonzo-bulk cleanup --pending` or the next run's cleanup removes it)",
    )


class ProcessingDelayModel(_Section):
    """How long the sandbox's intake worker takes per lead."""

    distribution: Literal["fixed", "uniform", "lognormal"] = "uniform"
    seconds: float = Field(default=0.5, ge=0, le=DAY, description="fixed delay; median for lognormal")
    low: float = Field(default=0.2, ge=0, le=DAY)
    high: float = Field(default=1.5, ge=0, le=DAY)
    sigma: float = Field(default=0.5, ge=0, le=10)


Strictness = Literal["lenient", "strict"]
SandboxHookType = Literal["monitorbase", "general", "zillow", "mortech", "lendingtree", "hubspot", "unbounce"]
"""The hook types the sandbox serves (its parsers are in ``bonzo_bulk.sandbox.hooktypes``)."""
PaginationStyle = Literal["laravel", "page_numbers", "links_cursor", "meta_cursor"]
HostileListing = Literal["none", "repeat", "endless", "foreign_next"]
SearchFields = Literal["all", "names"]
"""What ``GET /prospects?search=`` matches in the sandbox: names, email and phone, or the names alone."""


class SandboxListing(_Section):
    """How the sandbox pages ``GET /prospects``: the shapes Bonzo's reference leaves open (docs/sandbox.md)."""

    style: PaginationStyle = Field(
        default="laravel",
        description="laravel: links.next and meta page numbers; page_numbers: meta.current_page/last_page only; "
        "links_cursor: an opaque cursor in a relative links.next; meta_cursor: meta.next_cursor",
    )
    max_per_page: int = Field(default=100, ge=1, le=1000, description="per_page asked above this is served at this")
    hints: Literal["served", "asked"] = Field(
        default="served",
        description="asked: meta.per_page and last_page computed from the per_page asked, not the capped one served",
    )
    hostile: HostileListing = Field(
        default="none",
        description="repeat: every page is page 1 again; endless: new ids on every page; both claim last_page "
        "1000000. foreign_next: links.next names another host",
    )


class SandboxSettings(_Section):
    """The local Bonzo stand-in used when no live target is configured."""

    url: str | None = Field(default=None, description="use an already running sandbox instead of starting one")
    db: str | None = Field(default=None, description="SQLite file; default a temporary one per run")
    processing: ProcessingDelayModel = Field(default_factory=ProcessingDelayModel)
    unknown_lo_email: Literal["reject", "fallback", "drop"] = "reject"
    fallback_user_id: int | None = None
    faults: str | dict[str, Any] | None = Field(default=None, description="fault profile: a YAML path or inline")
    rate_limit_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    capacity: float | None = Field(
        default=None,
        gt=0,
        le=1_000_000,
        description="leads/s the sandbox creates at most; beyond it a backlog (and the lag) grows",
    )
    strictness: Strictness = Field(
        default="lenient",
        description="strict: behave like the least the Bonzo reference promises (see docs/sandbox.md)",
    )
    mapped_custom_fields: dict[SandboxHookType, list[str]] = Field(
        default_factory=dict,
        description="strict only: per hook type, the custom fields its webhook Mapping tab maps (default none)",
    )
    listing: SandboxListing = Field(
        default_factory=SandboxListing, description="how GET /prospects pages (style, per-page cap, hostile pages)"
    )
    clock: SandboxClock = Field(
        default_factory=SandboxClock,
        description="how stamps and Date headers are written (zone, whole seconds, offset)",
    )
    search: SearchFields = Field(
        default="all",
        description="what GET /prospects?search= matches: all (first/last/full name, email, phone) or names "
        "(first, last and full name only)",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)


Distribution = Literal["even", "weighted", "custom"]
TargetChoice = Literal["auto", "sandbox", "live"]


class BulkConfig(_Section):
    """One bulk test: the spec's YAML plus the sections the users' configs carry."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, populate_by_name=True)

    test_name: str = "Bulk Integration Test"
    integration_type: str = "monitorbase"
    webhook_url: SecretStr | None = None
    superuser_webhook_url: SecretStr | None = None
    superuser_api_key: SecretStr | None = None
    target: TargetChoice = "auto"
    test_records: Annotated[int, Field(ge=1, le=1_000_000)] = 21
    distribution: Distribution = "even"
    processing_delay: float = Field(
        default=30.0, ge=0, le=DAY, description="longest a record may take to appear; the poller waits up to it"
    )
    payload_template: str | None = None
    superuser_payload_template: str | None = None
    control: bool = Field(default=True, description="run the superuser control hook when it is configured")
    test_users: list[TestUserConfig] = Field(min_length=1)
    validation_rules: list[ValidationRule] = Field(default_factory=list)
    test_data_settings: TestDataSettings = Field(default_factory=TestDataSettings)
    webhook_settings: WebhookSettings = Field(default_factory=WebhookSettings)
    api_settings: ApiSettings = Field(default_factory=ApiSettings)
    polling: PollingSettings = Field(default_factory=PollingSettings)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    invalid_records: list[InvalidCase] = Field(default_factory=list)
    contract: ContractSettings = Field(default_factory=ContractSettings)
    cleanup: CleanupSettings = Field(default_factory=CleanupSettings)
    regression: RegressionSettings = Field(default_factory=RegressionSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    reports_dir: str = "reports"
    reports: ReportsSettings = Field(default_factory=ReportsSettings)
    run_store: str | None = Field(default=None, description="SQLite run store; default <reports_dir>/runs.sqlite3")
    store_url: str | None = Field(
        default=None,
        description="run store: SQLite path, sqlite:///path or postgresql://user@host:port/db (password: PGPASSWORD)",
    )

    @field_validator("integration_type")
    @classmethod
    def _integration(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
            raise ValueError(f"{value!r} must be lower-case letters, digits and '_' (e.g. 'monitorbase')")
        return value

    @model_validator(mode="after")
    def _distribution_fits(self) -> BulkConfig:
        users = self.test_users
        emails = [u.email.lower() for u in users]
        if len(set(emails)) != len(emails):
            dup = next(e for e in emails if emails.count(e) > 1)
            raise ValueError(f"test_users: {dup!r} is listed twice; each test user needs its own email")
        user_ids = [u.user_id for u in users]
        if len(set(user_ids)) != len(user_ids):
            twice = next(i for i in user_ids if user_ids.count(i) > 1)
            raise ValueError(f"test_users: user_id {twice} is listed twice; each test user needs its own Bonzo user_id")
        if self.distribution == "weighted":
            missing = [i for i, u in enumerate(users) if u.weight is None]
            if missing:
                raise ValueError(
                    f"distribution 'weighted' needs a 'weight:' on every test user; "
                    f"test_users[{missing[0]}] ({users[missing[0]].name}) has none"
                )
        if self.distribution == "custom":
            missing = [i for i, u in enumerate(users) if u.count is None]
            if missing:
                raise ValueError(
                    f"distribution 'custom' needs a 'count:' on every test user; "
                    f"test_users[{missing[0]}] ({users[missing[0]].name}) has none"
                )
            total = sum(u.count or 0 for u in users)
            if total != self.test_records:
                raise ValueError(
                    f"distribution 'custom': the counts of test_users sum to {total}, but test_records is "
                    f"{self.test_records}; make them equal"
                )
        ids = {u.user_id for u in users}
        for i, case in enumerate(self.invalid_records):
            if case.expect == "fallback" and case.fallback_user_id not in ids:
                raise ValueError(
                    f"invalid_records[{i}]: expect 'fallback' needs 'fallback_user_id:' set to the user_id of "
                    f"one of the test_users ({', '.join(str(u.user_id) for u in users)})"
                )
        return self
