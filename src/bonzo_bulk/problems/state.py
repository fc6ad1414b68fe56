"""A problem's state in words, and a person's changes to it: acknowledge, mute, unmute, resolve.

The stored ``status`` (open, reopened, resolved) is what runs did; an acknowledgement (by whom, a note,
optionally until when) and a mute (until when) lie over it until they lapse. :func:`state_of` reads the
five states people see from those, at a given time, in one place.

Example::

    state_of(problem, now)          # 'open' | 'acknowledged' | 'muted' | 'resolved' | 'reopened'
    store.change_problem(pid, lambda p: acknowledge(p, by="ana", note="Bonzo support is on it", now=now))
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta
from typing import Literal

from bonzo_bulk.errors import ConfigError
from bonzo_bulk.secrets import redact
from bonzo_bulk.store.rows import ProblemChanges, ProblemEvent, ProblemRow

State = Literal["open", "acknowledged", "muted", "resolved", "reopened"]
STATES: tuple[State, ...] = ("open", "reopened", "acknowledged", "muted", "resolved")
_UNITS = {"m": 1, "min": 1, "h": 60, "d": 1440, "w": 10080}


def state_of(problem: ProblemRow, now: datetime) -> State:
    """What people see: resolved, else muted (until it lapses), else acknowledged (until it lapses), else
    open or reopened."""
    if problem.status == "resolved":
        return "resolved"
    if problem.muted_until is not None and problem.muted_until > now:
        return "muted"
    if problem.ack_by is not None and (problem.ack_until is None or problem.ack_until > now):
        return "acknowledged"
    return "reopened" if problem.status == "reopened" else "open"


def pages(problem: ProblemRow, now: datetime) -> bool:
    """Whether the problem may page anyone now: never while acknowledged or muted."""
    return state_of(problem, now) not in ("acknowledged", "muted")


def parse_duration(text: str, *, flag: str) -> timedelta:
    """``30m``, ``24h``, ``7d``, ``2w`` as a span; anything else is a clear error naming the flag.

    >>> parse_duration("24h", flag="--for"), parse_duration("30m", flag="--for")
    (datetime.timedelta(days=1), datetime.timedelta(seconds=1800))
    """
    match = re.fullmatch(r"\s*(\d+)\s*(m|min|h|d|w)\s*", text)
    if match is None or int(match.group(1)) == 0:
        raise ConfigError(f"{flag} {text!r}: give a span like 30m, 24h, 7d or 2w", key=flag)
    return timedelta(minutes=int(match.group(1)) * _UNITS[match.group(2)])


def parse_until(text: str, now: datetime, *, flag: str) -> datetime:
    """``--until``: a span from now (``24h``, ``7d``) or an ISO date or time (UTC unless it says otherwise)."""
    if re.fullmatch(r"\s*\d+\s*(m|min|h|d|w)\s*", text):
        return now + parse_duration(text, flag=flag)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{flag} {text!r}: give a span like 24h or 7d, or a date like 2026-12-31 or 2026-12-31T18:00", key=flag
        ) from None
    when = when if when.tzinfo is not None else when.replace(tzinfo=now.tzinfo)
    if when <= now:
        raise ConfigError(f"{flag} {text!r} is in the past; give a later time or a span like 24h", key=flag)
    return when


def _changed(problem: ProblemRow, event: str, actor: str, detail: str, now: datetime) -> ProblemChanges:
    return ProblemChanges(
        problems=(problem,), events=(ProblemEvent(problem.problem_id, now, event, redact(actor), redact(detail)),)
    )


def acknowledge(problem: ProblemRow, *, by: str, note: str, until: datetime | None, now: datetime) -> ProblemChanges:
    """ "We know": the problem stops paging until ``until`` (or until it is resolved); it is still reported."""
    acked = dataclasses.replace(problem, ack_by=redact(by), ack_note=redact(note), ack_at=now, ack_until=until)
    lapse = f" until {until:%Y-%m-%d %H:%M} UTC" if until else ""
    return _changed(acked, "acknowledged", by, f"{note}{lapse}", now)


def mute(problem: ProblemRow, *, until: datetime, by: str, now: datetime) -> ProblemChanges:
    """Silence a problem until ``until``."""
    muted = dataclasses.replace(problem, muted_until=until)
    return _changed(muted, "muted", by, f"until {until:%Y-%m-%d %H:%M} UTC", now)


def unmute(problem: ProblemRow, *, by: str, now: datetime) -> ProblemChanges:
    """Lift a mute now."""
    return _changed(dataclasses.replace(problem, muted_until=None), "unmuted", by, "", now)


def resolve(problem: ProblemRow, *, by: str, now: datetime) -> ProblemChanges:
    """A person's word that it is fixed: resolved now, reopened if a run shows it again."""
    resolved = dataclasses.replace(
        problem, status="resolved", resolved_at=now, resolved_by=redact(by), clean_runs=0, ack_by=None, ack_note=None
    )
    return _changed(resolved, "resolved", by, "resolved by hand", now)


def noticed(problem: ProblemRow, *, kind: str, channels: str, now: datetime) -> ProblemChanges:
    """A notice about the problem went out: reminders count from now."""
    reminders = problem.reminders_sent + 1 if kind == "reminder" else 0 if kind in ("new", "reopened") else None
    sent = dataclasses.replace(
        problem,
        runs_since_notice=0,
        last_notice_at=now,
        reminders_sent=problem.reminders_sent if reminders is None else reminders,
    )
    return _changed(sent, f"notified: {kind}", "monitor", channels, now)
