"""The test data factory: identifiable, seeded records spread over the test users.

Every record is named ``TestRecord_MonitorBase_001`` … (control records ``…_SU_001``), has the email
``test.monitorbase.001+<run id>@bonzobuddy.test`` and the last name ``MonitorBase <run id>``, and carries
the run id and record id in fields Bonzo keeps, so a run's records can always be found again and cleaned
up. The same seed gives the same records; the expected owner and team of each record is decided here.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from faker import Faker

from bonzo_bulk._paths import get_path, set_path
from bonzo_bulk.config.contract import ContractSettings
from bonzo_bulk.config.schema import BulkConfig, InvalidCase
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.models import PhaseKind, PlannedRecord, User
from bonzo_bulk.plan.contract import PhaseContract, build_contract
from bonzo_bulk.plan.encodings import encode_body
from bonzo_bulk.plan.integration import Integration, LoadedVariant
from bonzo_bulk.plan.templates import Renderer, compile_template, placeholders

TEST_MARKER = "bonzo-bulk test record"
RUN_ID_PATTERN = re.compile(r"^r\d{8}-\d{6}-[0-9a-f]{4,6}$")
"""What every run id looks like (see :meth:`RunIdentity.new`)."""
INVALID_SUFFIX = "INV"
CONTROL_SUFFIX = "SU"


@dataclass(frozen=True, slots=True)
class RunIdentity:
    """The run id and start time every record of one run carries."""

    run_id: str
    started_at: datetime

    @classmethod
    def new(cls, now: datetime | None = None) -> RunIdentity:
        """A fresh run id: time-ordered, unique, lower case (Bonzo lower-cases tags)."""
        started = now or datetime.now(UTC)
        return cls(run_id=f"r{started:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}", started_at=started)


def assign_users(users: Sequence[User], config: BulkConfig, count: int) -> list[User]:
    """The expected owner of each of ``count`` records, interleaved so every user gets early records.

    ``even`` splits as evenly as possible, ``weighted`` by each user's ``weight`` (largest
    remainder), ``custom`` by each user's exact ``count``.
    """
    if not users:
        raise ConfigError("test_users is empty: list at least one test user", key="test_users")
    if config.distribution == "custom" and count == config.test_records:
        quotas = [u.count or 0 for u in config.test_users]
    elif config.distribution == "weighted":
        quotas = _largest_remainder([u.weight or 0.0 for u in config.test_users], count)
    else:
        quotas = _largest_remainder([1.0] * len(users), count)
    assigned: list[User] = []
    remaining = list(quotas)
    while len(assigned) < count:
        for i, user in enumerate(users):
            if remaining[i] > 0:
                assigned.append(user)
                remaining[i] -= 1
    return assigned


def _largest_remainder(weights: Sequence[float], count: int) -> list[int]:
    total = sum(weights)
    shares = [w / total * count for w in weights]
    quotas = [int(s) for s in shares]
    order = sorted(range(len(weights)), key=lambda i: (shares[i] - quotas[i], -i), reverse=True)
    for i in order[: count - sum(quotas)]:
        quotas[i] += 1
    return quotas


@dataclass(frozen=True)
class Factory:
    """Builds the records of one phase of a run from a config, an integration and its templates.

    ``template`` overrides the integration's own template(s) (the config's ``payload_template``);
    None uses the integration's variants, spread over the records in turn (record 1 the first).
    """

    config: BulkConfig
    users: Sequence[User]
    integration: Integration
    template: Any
    identity: RunIdentity
    phase: PhaseKind = "primary"
    contract: PhaseContract | None = None
    """The fields the phase is held to; None: the integration's documented mapping alone."""

    @property
    def variants(self) -> tuple[LoadedVariant, ...]:
        """The templates records are rendered from, in turn."""
        if self.template is not None:
            return (LoadedVariant(None, self.template),)
        return self.integration.variants

    def plan(self, count: int | None = None, *, invalid: Sequence[InvalidCase] = ()) -> list[PlannedRecord]:
        """Plan ``count`` valid records (default ``test_records``) plus the invalid cases."""
        return list(self.iter_plan(count, invalid=invalid))

    def size(self, count: int | None = None, *, invalid: Sequence[InvalidCase] = ()) -> int:
        """How many records :meth:`iter_plan` makes."""
        return (self.config.test_records if count is None else count) + sum(case.count for case in invalid)

    def iter_plan(self, count: int | None = None, *, invalid: Sequence[InvalidCase] = ()) -> Iterator[PlannedRecord]:
        """The records of :meth:`plan`, one at a time (a 100k phase is never held at once).

        Everything that can be wrong with the config or the templates is checked before the first
        record is yielded, so a bad config stops the run before anything is sent.
        """
        total = self.config.test_records if count is None else count
        renderers = self.renderers()
        faker = Faker("en_US")
        faker.seed_instance(self._seed())
        owners = self.expected_owners(total)
        width = max(3, len(str(total)))
        used_phones: set[str] = set()
        for i, owner in enumerate(owners, start=1):
            record = self._record(i, owner, width, faker, used_phones, renderers[(i - 1) % len(renderers)], case=None)
            if i <= len(renderers):
                self._check_marker(record.expected, record.run_id)
            yield record
        n = 0
        accepted = total
        for case in invalid:
            for _ in range(case.count):
                n += 1
                owner = self.users[(n - 1) % len(self.users)]
                if case.expect == "fallback":
                    owner = next(u for u in self.users if u.user_id == case.fallback_user_id)
                elif self.integration.manifest.owner.routing is not None:
                    owner = self._routed_owner(accepted)
                    accepted += case.expect == "accept"
                renderer = renderers[(n - 1) % len(renderers)]
                yield self._record(n, owner, width, faker, used_phones, renderer, case=case)

    def check(self, *, invalid: Sequence[InvalidCase] = ()) -> None:
        """Raise the ConfigError planning would, before a record is sent: templates, owners, the marker."""
        for _ in zip(range(len(self.variants)), self.iter_plan(invalid=invalid), strict=False):
            pass

    def renderers(self) -> list[Renderer]:
        """The compiled templates, after checking the placeholders and the owner ids (raises ConfigError)."""
        label = f"{self.integration.name} payload template"
        renderers = [
            compile_template(v.template, name=label if v.value is None else f"{label} ({v.value})")
            for v in self.variants
        ]
        self._check_placeholders()
        self._check_owner_ids()
        return renderers

    def expected_owners(self, count: int) -> list[User]:
        """The expected owner of each valid record: named in the payload (spread by the config's
        distribution), or, when the payload names none, the integration's routing rule decides."""
        if self.integration.manifest.owner.routing is None:
            return assign_users(self.users, self.config, count)
        return [self._routed_owner(position) for position in range(count)]

    def _routed_owner(self, position: int) -> User:
        """The owner routing gives the lead accepted at ``position`` (0-based) on this run's hook."""
        routing = self.integration.manifest.owner.routing
        assert routing is not None
        if routing.kind == "round_robin":
            return self.users[position % len(self.users)]
        owner = next((u for u in self.users if u.user_id == routing.user_id), None)
        if owner is None:
            raise ConfigError(
                f"{self.integration.name}: routing 'fixed' names user_id {routing.user_id}, which is not one of "
                f"the test_users ({', '.join(str(u.user_id) for u in self.users)}); add that user or fix the manifest",
                key="test_users",
            )
        return owner

    def _check_owner_ids(self) -> None:
        """Foreign-id owners need every test user's ``external_id``; round robin needs ordered delivery."""
        owner = self.integration.manifest.owner
        if owner.kind == "foreign_id":
            for i, user in enumerate(self.users):
                if not user.external_id:
                    raise ConfigError(
                        f"test_users[{i}] ({user.name}) has no 'external_id:'; {self.integration.name} names the "
                        "owner by a foreign id, so each test user needs the id the lead source knows them by",
                        key=f"test_users[{i}].external_id",
                    )
        if owner.routing is not None and owner.routing.kind == "round_robin" and self.phase == "primary":
            workers = self.config.webhook_settings.concurrent_requests
            if workers != 1:
                raise ConfigError(
                    f"'webhook_settings.concurrent_requests': {workers} — {self.integration.name} is routed round "
                    "robin, which gives each record a predictable owner only when records arrive in order; set it to 1",
                    key="webhook_settings.concurrent_requests",
                )

    def _seed(self) -> int:
        seed = self.config.test_data_settings.seed
        if seed is not None:
            return seed + (0 if self.phase == "primary" else 1)
        digest = hashlib.sha256(f"{self.identity.run_id}:{self.phase}".encode()).digest()
        return int.from_bytes(digest[:8], "big")

    def _check_placeholders(self) -> None:
        known = {
            *self._context_keys(),
        }
        used: set[str] = set()
        for variant in self.variants:
            used |= placeholders(variant.template)
        unknown = sorted(p for p in used if p not in known)
        if unknown:
            raise ConfigError(
                f"'payload_template' ({self.integration.name} payload template): unknown placeholder(s) "
                f"{', '.join('{' + u + '}' for u in unknown)}; known: {', '.join(sorted(known))}",
                key="payload_template",
            )

    @staticmethod
    def _context_keys() -> list[str]:
        user = ["email", "name", "user_id", "id", "team_id", "external_id", "foreign_id"]
        plain = [
            "first_name",
            "last_name",
            "email",
            "phone",
            "address",
            "city",
            "state",
            "zip",
            "record_id",
            "alert_date",
            "created_at",
            "run_id",
            "run_tag",
            "test_marker",
            "index",
            "current_ltv",
            "home_value",
            "loan_amount",
            "timestamp",
        ]
        return [*plain, *(f"user.{k}" for k in user), "team.id"]

    def _record(
        self,
        index: int,
        owner: User,
        width: int,
        faker: Faker,
        used_phones: set[str],
        renderer: Renderer,
        *,
        case: InvalidCase | None,
    ) -> PlannedRecord:
        name, email, last_name, record_id = self._names(index, width, case)
        phone = _unique_phone(faker, self.config.test_data_settings.phone_area_code, used_phones)
        names = {"first_name": name, "last_name": last_name, "email": email, "phone": phone, "record_id": record_id}
        payload = renderer(self._context(index, owner, faker, names))
        if not isinstance(payload, dict):
            raise ConfigError(f"{self.integration.name} payload template must be a JSON object", key="payload_template")
        if case is not None:
            self._break(payload, case, index)
        manifest = self.integration.manifest
        expected = self.phase_contract.expected_for(payload)
        body = encode_body(payload, manifest.encoding, root=manifest.root, json_field=manifest.json_field)
        return PlannedRecord(
            run_id=self.identity.run_id,
            phase=self.phase,
            index=index,
            name=name,
            record_id=record_id,
            first_name=_text_or(get_path(payload, manifest.borrower.first_name), name),
            last_name=last_name,
            email=email if case is None or case.kind != "no_contact" else "",
            phone=phone if case is None or case.kind not in ("no_contact", "malformed_phone") else "",
            expected_user=owner,
            payload=payload,
            body=body,
            content_type=manifest.content_type,
            expected=expected,
            invalid_case=case.kind if case else None,
            expected_handling=case.expect if case else None,
        )

    def _names(self, index: int, width: int, case: InvalidCase | None) -> tuple[str, str, str, str]:
        """A record's name, email, last name and record id, from the users' patterns and its number."""
        settings = self.config.test_data_settings
        run_id = self.identity.run_id
        number = f"{index:0{width}d}"
        parts = [settings.first_name_pattern, settings.last_name_pattern]
        if self.phase == "control":
            parts.append(CONTROL_SUFFIX)
        if case is not None:
            parts.append(INVALID_SUFFIX)
        name = "_".join([*parts, number])
        local = ".".join(
            [
                "test",
                self.config.integration_type,
                *(["su"] if self.phase == "control" else []),
                *(["inv"] if case else []),
                number,
            ]
        )
        tag = f"+{run_id}" if settings.unique_emails or case is not None else ""
        email = f"{local}{tag}@{settings.email_domain}"
        # The run id reaches Bonzo in every record whatever the settings: in the last name, and in the email
        # too with unique_emails, so no record of a run can become an orphan cleanup cannot find. The last name
        # is what settling's search for the run id matches on a Bonzo whose search reads names only (its fields
        # are undocumented, reference §2.2): the email alone left every poll empty until the deadline.
        last_name = f"{settings.last_name_pattern} {run_id}"
        record_id = f"{self.identity.started_at:%Y%m%d_%H%M%S}_{'SU_' if self.phase == 'control' else ''}" + (
            f"INV_{number}" if case else number
        )
        return name, email, last_name, record_id

    def _context(self, index: int, owner: User, faker: Faker, names: Mapping[str, str]) -> dict[str, Any]:
        """The values a payload template's placeholders are filled from (every key of :meth:`_context_keys`):
        the record's ``names`` (first and last name, email, phone, record id), then the rest."""
        settings = self.config.test_data_settings
        run_id = self.identity.run_id
        # faker.random_int(a, b) is randrange(a, b + 1) on the seeded generator: drawn here without the proxy's
        # lookups, the same numbers (tests/unit/test_records.py compares them).
        draw = faker.random.randrange
        sent_day = self.identity.started_at - timedelta(days=draw(0, 4))
        return {
            **names,
            "address": settings.address_pattern,
            "city": settings.city,
            "state": settings.state,
            "zip": settings.zip,
            "alert_date": f"{sent_day:%Y-%m-%d}",
            "created_at": self.identity.started_at.isoformat().replace("+00:00", "Z"),
            "timestamp": self.identity.started_at.isoformat().replace("+00:00", "Z"),
            "run_id": run_id,
            "run_tag": run_id,
            "test_marker": TEST_MARKER,
            "index": index,
            "current_ltv": str(draw(40, 96)),
            "home_value": str(draw(180, 1501) * 1000),
            "loan_amount": str(draw(100, 901) * 1000),
            "user": {
                "email": owner.email,
                "name": owner.name,
                "user_id": owner.user_id,
                "id": owner.user_id,
                "team_id": owner.team_id,
                "external_id": owner.external_id or "",
                "foreign_id": owner.external_id or "",
            },
            "team": {"id": owner.team_id},
        }

    def _check_marker(self, expected: Mapping[str, Any], run_id: str) -> None:
        """Refuse a template whose records would reach Bonzo without the run id in any field it keeps."""
        if any(run_id in str(value) for value in expected.values()):
            return
        key = "superuser_payload_template" if self.phase == "control" else "payload_template"
        raise ConfigError(
            f"'{key}' ({self.integration.name} payload template): no field Bonzo keeps carries the run id, so "
            "this run's records could not be found again or cleaned up; map {email} (with unique_emails: true), "
            "{last_name}, {run_id} (e.g. custom_1) or {run_tag} (tags)",
            key=key,
        )

    @property
    def source(self) -> str:
        """What Bonzo's ``source`` must say: the primary integration's source in both phases."""
        return self.config.integration_type

    @functools.cached_property
    def phase_contract(self) -> PhaseContract:
        """The contract the records' expected fields come from."""
        if self.contract is not None:
            return self.contract
        return build_contract(self.integration, self.phase, ContractSettings())

    def _break(self, payload: dict[str, Any], case: InvalidCase, index: int) -> None:
        manifest = self.integration.manifest
        borrower = manifest.borrower
        if case.kind == "unknown_lo_email":
            if manifest.owner.path is None:
                raise ConfigError(
                    f"invalid case 'unknown_lo_email' needs an owner path, and {manifest.name} has none",
                    key="invalid_records",
                )
            unknown: Any = 990_000_000 + index
            if manifest.owner.kind == "email":
                unknown = f"unknown.lo.{index:03d}+{self.identity.run_id}@{self.config.test_data_settings.email_domain}"
            elif manifest.owner.kind == "foreign_id":
                unknown = f"unknown-owner-{index:03d}-{self.identity.run_id}"
            set_path(payload, manifest.owner.path, unknown)
        elif case.kind == "no_contact":
            for path in [borrower.email, *borrower.phone]:
                if path:
                    set_path(payload, path, "")
        elif case.kind == "malformed_phone":
            for path in borrower.phone:
                set_path(payload, path, "12-34")
        elif case.kind == "missing_first_name":
            set_path(payload, borrower.first_name, "")


def _text_or(value: Any, default: str) -> str:
    """A payload value as text, or ``default`` when the payload has none."""
    return default if value is None else str(value)


def _unique_phone(faker: Faker, area: str, used: set[str]) -> str:
    """``{area}-NXX-XXXX``: what ``faker.numerify('%##')`` and ``numerify('####')`` give, drawn in their order
    (numerify fills every ``#`` with randint(0, 9), then every ``%`` with randint(1, 9)) without its regexes."""
    digit = faker.random.randint
    while True:
        second, third, first = digit(0, 9), digit(0, 9), digit(1, 9)
        phone = f"{area}-{first}{second}{third}-{digit(0, 9)}{digit(0, 9)}{digit(0, 9)}{digit(0, 9)}"
        if phone not in used:
            used.add(phone)
            return phone
