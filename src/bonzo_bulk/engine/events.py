"""What a run emits as it goes, and the bus its subscribers listen on.

The engine (:mod:`bonzo_bulk.engine.run`) says what happened — records planned, a record delivered, a
record judged, a phase done, the run done — and never calls an output. The run store, the progress
display, the log, the cleanup policy and publishing are subscribers (locust's and schemathesis's
event hooks work the same way), so a front door chooses its outputs by subscribing.

Example::

    bus = EventBus()
    bus.subscribe(lambda event: print(event) if isinstance(event, PhaseDone) else None)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from bonzo_bulk.models import DeliveryResult, PhaseKind, PhaseResult, PlannedRecord, RecordOutcome, RunResult, Target

if TYPE_CHECKING:
    from bonzo_bulk.plan.planner import RunPlan


@dataclass(frozen=True, slots=True)
class RunStarted:
    """Preflight passed; nothing is sent yet."""

    plan: RunPlan
    target: Target
    where: str
    """Where it goes, printable: the sandbox's URL, or the live API's (never a hook URL: it holds a secret)."""


@dataclass(frozen=True, slots=True)
class RecordsPlanned:
    """A batch of records was made; it is handed to the sender only after every subscriber has it."""

    phase: PhaseKind
    records: Sequence[PlannedRecord]


@dataclass(frozen=True, slots=True)
class RecordDelivered:
    """The hook answered one record (or the delivery stopped before sending it)."""

    phase: PhaseKind
    record: PlannedRecord
    delivery: DeliveryResult


@dataclass(frozen=True, slots=True)
class DeliveryDone:
    """Every record of a phase has a delivery result."""

    phase: PhaseKind
    valid: int
    accepted: int
    invalid_accepted: int


@dataclass(frozen=True, slots=True)
class Polled:
    """One settle poll: how many of the expected prospects are visible so far."""

    found: int
    expected: int


@dataclass(frozen=True, slots=True)
class RecordJudged:
    """One record's outcome: every check, judged once."""

    outcome: RecordOutcome


@dataclass(frozen=True, slots=True)
class PhaseDone:
    """A phase is judged: its metrics, verdicts and the outcomes kept in memory."""

    result: PhaseResult


@dataclass(frozen=True, slots=True)
class RunDone:
    """The whole run is judged (subscribers may be async: the engine awaits them in turn)."""

    result: RunResult


Event: TypeAlias = (
    RunStarted | RecordsPlanned | RecordDelivered | DeliveryDone | Polled | RecordJudged | PhaseDone | RunDone
)
Subscriber: TypeAlias = Callable[[Event], object]
"""Called with each event; may return an awaitable, which only :meth:`EventBus.emit_async` awaits."""


class EventBus:
    """Calls each subscriber with each event, in the order they subscribed."""

    def __init__(self, subscribers: Sequence[Subscriber] = ()) -> None:
        self._subscribers: list[Subscriber] = list(subscribers)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns the function that removes it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def emit(self, event: Event) -> None:
        """Tell every subscriber, synchronously (per-record events: a subscriber must not await)."""
        for subscriber in self._subscribers:
            result = subscriber(event)
            if result is not None and inspect.isawaitable(result):  # most return None: skip the ABC check
                close = getattr(result, "close", None)
                if close is not None:
                    close()
                raise TypeError(f"{subscriber!r} returned an awaitable for {type(event).__name__}; only RunDone awaits")

    async def emit_async(self, event: Event) -> None:
        """Tell every subscriber, awaiting those that return an awaitable (cleanup, publishing)."""
        for subscriber in self._subscribers:
            result = subscriber(event)
            if inspect.isawaitable(result):
                await result
