"""What the sandbox's state holds, as values: users, hooks, prospects, pending intake, ground truth; and the
timestamp style it stores them with."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


def utc_stamp(epoch: float | None = None) -> str:
    """Bonzo's timestamp style with microseconds: ``2023-06-26T10:43:40.123456Z``."""
    now = time.time() if epoch is None else epoch
    whole = int(now)
    micros = round((now - whole) * 1_000_000)
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}Z"


@dataclass(frozen=True, slots=True)
class UserRow:
    """A sandbox user with its API token (the superuser is one too)."""

    id: int
    name: str
    email: str
    team_id: int
    external_id: str | None
    token: str
    is_superuser: bool


@dataclass(frozen=True, slots=True)
class HookRow:
    """A hook URL: its hash, integration type, the source its prospects carry, and its routing policy.

    ``routing`` stands in for Bonzo's per-webhook routing / Lead Routing Policy, used by hook types whose
    payload names no owner: ``{"kind": "fixed", "user_id": N}`` or ``{"kind": "round_robin", "user_ids": [...]}``.
    """

    hash: str
    type: str
    source: str
    routing: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StoredProspect:
    """One prospect as stored: owner, team, the resource fields (``doc``) and timestamps."""

    id: int
    user_id: int
    team_id: int
    doc: dict[str, Any]
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class NewProspect:
    """A prospect to insert."""

    user_id: int
    team_id: int
    doc: dict[str, Any]
    search: str


@dataclass(frozen=True, slots=True)
class NewIntake:
    """A lead to queue for the worker."""

    hook_type: str
    user_id: int
    record: str
    email: str
    fields: dict[str, Any]
    faults: list[dict[str, Any]]
    accepted_at: float
    due_at: float


@dataclass(frozen=True, slots=True)
class IntakeRow(NewIntake):
    """A lead accepted at a hook and not yet processed: a queued :class:`NewIntake` with its row id."""

    id: int


@dataclass(frozen=True, slots=True)
class TruthEntry:
    """One applied fault; ``dedupe`` (when set) folds repeats of the same (record, fault) into a count."""

    fault: str
    record: str | None
    email: str | None
    hook: str | None
    detail: dict[str, Any]
    at: str
    dedupe: str | None = None
