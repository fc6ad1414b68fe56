"""What people do with problems, for ``bonzo-bulk problems``: list them, show one, acknowledge, mute, unmute, resolve.

An id may be given in full or by a unique prefix of at least :data:`MIN_PREFIX` characters; anything else is
a clear error naming the id and the fix (exit 2, nothing changed).

Example::

    listed = list_problems("reports/runs.sqlite3", include_all=False, integration=None, now=now)
    ack("reports/runs.sqlite3", "3f2a9c01", by="ana", note="Bonzo support is on it", until=None, now=now)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bonzo_bulk.errors import ConfigError
from bonzo_bulk.problems import state
from bonzo_bulk.problems.signature import ID_LENGTH
from bonzo_bulk.problems.state import State, state_of
from bonzo_bulk.store import RunStore, StoreLocation
from bonzo_bulk.store.rows import ProblemChanges, ProblemEvent, ProblemRow, ProblemSeen

MIN_PREFIX = 4
HISTORY = 20
"""Runs and events ``problems show`` lists."""


@dataclass(frozen=True, slots=True)
class Listed:
    """One problem as listed: the row and its state now."""

    problem: ProblemRow
    state: State


@dataclass(frozen=True, slots=True)
class Shown:
    """One problem in full: the row, its state, the latest runs it appeared in and its latest events."""

    problem: ProblemRow
    state: State
    seen: list[ProblemSeen]
    events: list[ProblemEvent]


def _open(location: str | Path) -> RunStore:
    """The run store, which must exist: looking at problems never creates an empty one."""
    where = StoreLocation.parse(location, key="--store-url")
    if not where.exists:
        raise ConfigError(
            f"--store-url {where.label!r}: no run store there, so no problems yet; run `bonzo-bulk run` first, or "
            "pass --config FILE (its store), --store-url PATH_OR_URL or --reports-dir DIR",
            key="--store-url",
        )
    return RunStore(where)


def list_problems(location: str | Path, *, include_all: bool, integration: str | None, now: datetime) -> list[Listed]:
    """The problems not resolved (``include_all``: every one), of one integration when given, latest first."""
    with _open(location) as store:
        rows = store.problems(integration=integration)
    listed = [Listed(p, state_of(p, now)) for p in rows]
    return listed if include_all else [item for item in listed if item.state != "resolved"]


def resolve_id(store: RunStore, given: str) -> str:
    """The full id of ``given`` (a full id or a unique prefix), or a ConfigError naming it and the fix."""
    text = given.strip().lower()
    if not re.fullmatch(rf"[0-9a-f]{{{MIN_PREFIX},{ID_LENGTH}}}", text):
        raise ConfigError(
            f"problem id {given!r} is not an id: give the {ID_LENGTH} hex digits `bonzo-bulk problems` lists "
            f"(or at least {MIN_PREFIX} of them)",
            key="ID",
        )
    found = store.problem_ids(text)
    if len(found) == 1:
        return found[0]
    if not found:
        raise ConfigError(
            f"problem id {given!r}: no such problem in {store.label}; `bonzo-bulk problems --all` lists them",
            key="ID",
        )
    raise ConfigError(f"problem id {given!r} matches {', '.join(found)}; give more of it", key="ID")


def show(location: str | Path, given: str, *, now: datetime) -> Shown:
    """One problem with its latest runs and events."""
    with _open(location) as store:
        problem_id = resolve_id(store, given)
        problem = store.problem(problem_id)
        assert problem is not None  # resolve_id found it
        seen, events = store.problem_history(problem_id, limit=HISTORY)
    return Shown(problem, state_of(problem, now), seen, events)


def _change(location: str | Path, given: str, change: Callable[[ProblemRow], ProblemChanges]) -> ProblemRow:
    with _open(location) as store:
        problem_id = resolve_id(store, given)
        changed = store.change_problem(problem_id, change)
    return changed.problems[0]


def ack(location: str | Path, given: str, *, by: str, note: str, until: str | None, now: datetime) -> ProblemRow:
    """Acknowledge a problem (``until``: a span like 7d or a date; None: until it is resolved)."""
    if not note.strip():
        raise ConfigError("--note '': say what is known, e.g. --note 'Bonzo support ticket 4711'", key="--note")
    lapse = state.parse_until(until, now, flag="--until") if until is not None else None
    return _change(location, given, lambda p: state.acknowledge(p, by=by, note=note, until=lapse, now=now))


def mute(location: str | Path, given: str, *, span: str, by: str, now: datetime) -> ProblemRow:
    """Mute a problem for a span (``24h``, ``7d``)."""
    until = now + state.parse_duration(span, flag="--for")
    return _change(location, given, lambda p: state.mute(p, until=until, by=by, now=now))


def unmute(location: str | Path, given: str, *, by: str, now: datetime) -> ProblemRow:
    return _change(location, given, lambda p: state.unmute(p, by=by, now=now))


def resolve(location: str | Path, given: str, *, by: str, now: datetime) -> ProblemRow:
    """A person's word that it is fixed; a run that shows it again reopens it."""
    return _change(location, given, lambda p: state.resolve(p, by=by, now=now))
