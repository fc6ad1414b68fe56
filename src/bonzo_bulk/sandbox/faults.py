"""Fault profiles: which failures the sandbox injects, chosen deterministically so runs reproduce.

A profile is ``{"seed": 7, "faults": [{"kind": "drop", "rate": 0.1}, ...]}``. Record faults pick
records by ``records`` (fnmatch patterns on first_name or email), ``rate`` (a fraction chosen by a
hash of (seed, kind, record)) and ``hooks`` (hook types); API faults pick requests by their number
since the profile was set. Every fault actually applied is written to the ground truth.
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from bonzo_bulk.errors import SandboxError
from bonzo_bulk.sandbox.db import SUPERUSER_ID
from bonzo_bulk.sandbox.rows import IntakeRow, TruthEntry, UserRow

MANGLEABLE_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "address",
    "unit_number",
    "city",
    "state",
    "zip",
    "external_id",
)
"""Prospect fields a ``mangle_field`` / ``missing_field`` fault may name (or ``custom_fields.<key>``)."""

INTAKE_KINDS = frozenset({"intake_5xx", "intake_hang", "reset"})
API_KINDS = frozenset({"api_429_burst", "api_5xx"})


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _RecordFault(_Fault):
    kind: str
    records: list[str] | None = Field(default=None, description="fnmatch patterns on first_name or email")
    rate: float | None = Field(default=None, ge=0, le=1, description="fraction of matching records")
    hooks: list[str] | None = Field(default=None, description="only records sent to hooks of these types")

    def selects(self, seed: int, record: str, email: str, hook_type: str) -> bool:
        """Whether this fault applies to one record (deterministic in seed, kind and record)."""
        if self.hooks is not None and hook_type not in {h.lower() for h in self.hooks}:
            return False
        if self.records is not None:
            names = [n for n in (record, email) if n]
            if not any(
                fnmatch.fnmatchcase(name.lower(), pattern.lower()) for name in names for pattern in self.records
            ):
                return False
        if self.rate is not None:
            return chosen_fraction(seed, self.kind, record or email) < self.rate
        return True


class DropFault(_RecordFault):
    kind: Literal["drop"]


class WrongOwnerFault(_RecordFault):
    kind: Literal["wrong_owner"]


class LateFault(_RecordFault):
    kind: Literal["late"]
    delay_seconds: float = Field(default=120.0, gt=0)


class WrongTeamFault(_RecordFault):
    kind: Literal["wrong_team"]


_FIELD_NAME: dict[str, Any] = {"pattern": "^(" + "|".join(MANGLEABLE_FIELDS) + r"|custom_fields\..+)$"}


class MangleFieldFault(_RecordFault):
    kind: Literal["mangle_field"]
    field: str = Field(json_schema_extra=_FIELD_NAME)


class MissingFieldFault(_RecordFault):
    kind: Literal["missing_field"]
    field: str = Field(json_schema_extra=_FIELD_NAME)


class WrongSourceFault(_RecordFault):
    kind: Literal["wrong_source"]
    value: str = "app"


class DuplicateFault(_RecordFault):
    kind: Literal["duplicate"]


class Intake5xxFault(_RecordFault):
    kind: Literal["intake_5xx"]
    status: int = Field(default=503, ge=500, le=599)
    times: int | None = Field(default=None, ge=1, description="first N POSTs of the record; omit for always")


class IntakeHangFault(_RecordFault):
    kind: Literal["intake_hang"]
    seconds: float = Field(default=30.0, gt=0, le=3600)
    times: int | None = Field(default=None, ge=1)


class ResetFault(_RecordFault):
    kind: Literal["reset"]
    times: int | None = Field(default=None, ge=1)


class _ApiFault(_Fault):
    """An API fault: a window of requests (``after_requests``, ``count``), or a seeded ``rate`` of them."""

    kind: str
    after_requests: int = Field(default=0, ge=0, description="API requests let through before the first hit")
    count: int | None = Field(
        default=None, ge=1, description="requests the fault covers: default 5 (3 for api_5xx), unlimited with rate"
    )
    rate: float | None = Field(
        default=None, gt=0, le=1, description="hit this fraction of the covered requests, chosen by the seed"
    )

    default_count: ClassVar[int] = 5

    def hits(self, request_number: int, seed: int = 0) -> bool:
        """Whether the n-th API request (0-based, since the profile was set) is hit."""
        if request_number < self.after_requests:
            return False
        count = self.count if self.count is not None else (None if self.rate is not None else self.default_count)
        if count is not None and request_number >= self.after_requests + count:
            return False
        return self.rate is None or chosen_fraction(seed, self.kind, str(request_number)) < self.rate


class Api429BurstFault(_ApiFault):
    """429 ``Too Many Attempts.`` with ``Retry-After``: a burst, or (with ``rate: 0.2``) one request in five."""

    kind: Literal["api_429_burst"]
    retry_after: int = Field(default=1, ge=0)


class Api5xxFault(_ApiFault):
    """A server error on the API: a burst, or a seeded rate of requests."""

    kind: Literal["api_5xx"]
    status: int = Field(default=500, ge=500, le=599)

    default_count: ClassVar[int] = 3


RecordFault = (
    DropFault
    | WrongOwnerFault
    | LateFault
    | WrongTeamFault
    | MangleFieldFault
    | MissingFieldFault
    | WrongSourceFault
    | DuplicateFault
    | Intake5xxFault
    | IntakeHangFault
    | ResetFault
)
ApiFault = Api429BurstFault | Api5xxFault
Fault = Annotated[RecordFault | ApiFault, Field(discriminator="kind")]


class FaultProfile(BaseModel):
    """A set of faults and the seed that makes their selection reproducible."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    faults: list[Fault] = Field(default_factory=list)

    def record_faults(self) -> list[tuple[int, RecordFault]]:
        """The record faults with their index in the profile (the index tells two same-kind faults apart)."""
        found: list[tuple[int, RecordFault]] = []
        for index, fault in enumerate(self.faults):
            if not isinstance(fault, Api429BurstFault | Api5xxFault):
                found.append((index, fault))
        return found

    def api_faults(self) -> list[ApiFault]:
        """The API faults, in profile order (the first that hits a request wins)."""
        return [f for f in self.faults if isinstance(f, Api429BurstFault | Api5xxFault)]


_PROFILE = TypeAdapter(FaultProfile)


def chosen_fraction(seed: int, kind: str, record: str) -> float:
    """A stable number in [0, 1) from (seed, kind, record): a record is picked when it is below the rate."""
    digest = hashlib.sha256(f"{seed}\x00{kind}\x00{record}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _check_fields(profile: FaultProfile) -> None:
    """Refuse field faults that name something a prospect does not have."""
    for index, fault in enumerate(profile.faults):
        if isinstance(fault, MangleFieldFault | MissingFieldFault):
            name = fault.field
            if name not in MANGLEABLE_FIELDS and not (name.startswith("custom_fields.") and len(name) > 14):
                raise ValueError(
                    f"faults[{index}].field: {name!r} is not a prospect field a {fault.kind} fault can change; "
                    f"use one of {', '.join(MANGLEABLE_FIELDS)} or custom_fields.<key>"
                )


def describe_validation_error(exc: ValidationError) -> str:
    """One readable line per problem: ``faults[2].kind: ... (got 'x')``."""
    lines = []
    for err in exc.errors():
        loc = ""
        for part in err["loc"]:
            if isinstance(part, int):
                loc += f"[{part}]"
            elif part in _KIND_NAMES:
                continue  # the discriminator tag pydantic adds to the path
            else:
                loc += f".{part}" if loc else str(part)
        got = err.get("input")
        shown = f" (got {got!r})" if not isinstance(got, dict | list) else ""
        lines.append(f"{loc or 'profile'}: {err['msg']}{shown}")
    return "; ".join(lines)


_KIND_NAMES = frozenset(
    {
        "drop",
        "wrong_owner",
        "late",
        "wrong_team",
        "mangle_field",
        "missing_field",
        "wrong_source",
        "duplicate",
        *INTAKE_KINDS,
        *API_KINDS,
    }
)


def parse_profile(raw: Any, *, default_seed: int = 0) -> FaultProfile:
    """Validate a fault profile (a dict, or None for no faults); raises ValueError with a readable message."""
    if raw is None:
        return FaultProfile(seed=default_seed)
    if not isinstance(raw, dict):
        raise ValueError(f"a fault profile must be a mapping with 'seed' and 'faults', got {type(raw).__name__}")
    data = dict(raw)
    data.setdefault("seed", default_seed)
    if data.get("faults") is None:
        data["faults"] = []
    for index, fault in enumerate(data["faults"] if isinstance(data["faults"], list) else []):
        kind = fault.get("kind") if isinstance(fault, dict) else None
        if isinstance(fault, dict) and not (isinstance(kind, str) and kind in _KIND_NAMES):
            close = difflib.get_close_matches(str(kind), _KIND_NAMES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(
                f"faults[{index}].kind: {kind!r} is not a fault kind; {hint}kinds: {', '.join(sorted(_KIND_NAMES))}"
            )
    try:
        profile = _PROFILE.validate_python(data)
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc)) from exc
    _check_fields(profile)
    return profile


def load_profile(source: str | Path | dict[str, Any] | None, *, base_dir: Path | None = None) -> dict[str, Any] | None:
    """Read a fault profile from a YAML path (relative to ``base_dir``) or pass a dict through, validated."""
    if source is None or isinstance(source, dict):
        raw: Any = source
        where = "inline fault profile"
    else:
        path = Path(source)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        where = str(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SandboxError(f"fault profile {where}: cannot read it ({exc.strerror}); check the path") from exc
        except UnicodeDecodeError as exc:
            raise SandboxError(f"fault profile {where}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc
        except yaml.YAMLError as exc:
            raise SandboxError(f"fault profile {where}: not valid YAML ({exc})") from exc
    try:
        profile = parse_profile(raw)
    except ValueError as exc:
        raise SandboxError(f"fault profile {where}: {exc}") from exc
    return profile.model_dump(mode="json", exclude_none=True) if raw is not None else None


def plan_record_faults(profile: FaultProfile, record: str, email: str, hook_type: str) -> list[dict[str, Any]]:
    """The processing faults (not intake ones) that will hit this accepted record, frozen into its queue row."""
    planned = []
    for index, fault in profile.record_faults():
        if fault.kind in INTAKE_KINDS or not fault.selects(profile.seed, record, email, hook_type):
            continue
        entry = fault.model_dump(mode="json", exclude={"records", "rate", "hooks"}, exclude_none=True)
        entry["index"] = index
        planned.append(entry)
    return planned


def mangle(field: str, value: Any) -> str:
    """A visibly different value for a field: email prefixed, phone's last digit bumped, text suffixed."""
    if value is None or value == "":
        return "mangled"
    text = str(value)
    if field == "email":
        return "mangled." + text
    if field == "phone" and text[-1:].isdigit():
        return text[:-1] + str((int(text[-1]) + 1) % 10)
    return text + "-mangled"


@dataclass
class ProcessingOutcome:
    """What the worker creates for one lead after its faults: owner, team, zero or more docs, the truth."""

    user_id: int
    team_id: int
    docs: list[dict[str, Any]] = field(default_factory=list)
    truth: list[TruthEntry] = field(default_factory=list)


def _next_user(owner_id: int, users: Mapping[int, UserRow]) -> UserRow | None:
    """The seeded user after the owner (by id, wrapping round); None when there is no other user."""
    candidates = sorted(uid for uid, u in users.items() if not u.is_superuser)
    if len(candidates) < 2 or owner_id not in candidates:
        others = [uid for uid in candidates if uid != owner_id]
        return users[others[0]] if others else None
    return users[candidates[(candidates.index(owner_id) + 1) % len(candidates)]]


def _next_team(team_id: int, teams: Mapping[int, str]) -> int:
    """The team after this one (by id, wrapping round); the superuser's team when there is no other."""
    candidates = sorted(t for t in teams if t != SUPERUSER_ID)
    if team_id in candidates and len(candidates) > 1:
        return candidates[(candidates.index(team_id) + 1) % len(candidates)]
    others = [t for t in candidates if t != team_id]
    return others[0] if others else SUPERUSER_ID


def _set_field(doc: dict[str, Any], name: str, value: Any) -> Any:
    """Set a doc field (or ``custom_fields.<key>``; None removes it) and return the old value."""
    if name.startswith("custom_fields."):
        key = name[len("custom_fields.") :]
        old = doc["custom_fields"].get(key)
        if value is None:
            doc["custom_fields"].pop(key, None)
        else:
            doc["custom_fields"][key] = value
        return old
    old = doc.get(name)
    doc[name] = value
    return old


def _get_field(doc: dict[str, Any], name: str) -> Any:
    """A doc field, or ``custom_fields.<key>``."""
    if name.startswith("custom_fields."):
        return doc["custom_fields"].get(name[len("custom_fields.") :])
    return doc.get(name)


def apply_processing_faults(
    row: IntakeRow, doc: dict[str, Any], users: Mapping[int, UserRow], teams: Mapping[int, str], at: str
) -> ProcessingOutcome:
    """Apply a lead's planned faults to its prospect doc; every fault that took effect gets a truth entry."""
    owner = users.get(row.user_id)
    outcome = ProcessingOutcome(row.user_id, owner.team_id if owner else 0)

    def truth(entry: Mapping[str, Any], detail: dict[str, Any]) -> None:
        dedupe = f"{entry['index']}|{row.record}|{row.email}|{row.hook_type}"
        outcome.truth.append(TruthEntry(entry["kind"], row.record, row.email, row.hook_type, detail, at, dedupe))

    planned = row.faults
    drop = next((p for p in planned if p["kind"] == "drop"), None)
    if drop is not None:
        truth(drop, {})
        return outcome
    copies = 1
    for entry in planned:
        kind = entry["kind"]
        if kind == "wrong_owner":
            other = _next_user(outcome.user_id, users)
            if other is not None:
                truth(entry, {"expected_user_id": outcome.user_id, "actual_user_id": other.id})
                outcome.user_id, outcome.team_id = other.id, other.team_id
        elif kind == "wrong_team":
            team = _next_team(outcome.team_id, teams)
            truth(entry, {"expected_team_id": outcome.team_id, "actual_team_id": team})
            outcome.team_id = team
        elif kind == "mangle_field":
            name = entry["field"]
            value = mangle(name, _get_field(doc, name))
            truth(entry, {"field": name, "original": _set_field(doc, name, value), "value": value})
        elif kind == "missing_field":
            name = entry["field"]
            truth(entry, {"field": name, "original": _set_field(doc, name, None)})
        elif kind == "wrong_source":
            truth(entry, {"expected": doc.get("source"), "value": entry["value"]})
            doc["source"] = entry["value"]
        elif kind == "duplicate":
            copies = 2
            truth(entry, {"copies": 2})
    first, last = doc.get("first_name"), doc.get("last_name")
    doc["full_name"] = " ".join(p for p in (first, last) if p) or None
    if not doc.get("phone"):
        doc["phone_type"] = None
    outcome.docs = [doc] + [copy.deepcopy(doc) for _ in range(copies - 1)]
    return outcome
