"""Runs that only deliver: ``generate`` sends a plan, ``validate-webhook`` probes the hooks (and may send a few).

The sending is a run opened like any other (:func:`~bonzo_bulk.engine.context.open_run`, not judged) and the
engine's own part run (:func:`bonzo_bulk.engine.run.deliver_only`: recorded in the run store first, so
``cleanup --run`` finds it); this module listens to its delivery events and sums them up per phase.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bonzo_bulk.engine.context import Destination, open_run
from bonzo_bulk.engine.events import Event, RecordDelivered, RunStarted
from bonzo_bulk.engine.run import deliver_only
from bonzo_bulk.models import DeliveryResult, PhaseKind, Target, to_jsonable

if TYPE_CHECKING:
    from bonzo_bulk.config.loader import LoadedConfig
    from bonzo_bulk.deliver.probe import ProbeResult
    from bonzo_bulk.plan.planner import RunPlan
    from bonzo_bulk.target.endpoints import Progress

OnTarget = Callable[[Target, str], None]
"""Told the target (``sandbox`` or ``live``) and where that is, printable, before anything is sent."""
Deliveries = dict[PhaseKind, list[tuple[bool, DeliveryResult]]]
"""Per phase, each record's delivery and whether the record was valid."""


@dataclass(frozen=True)
class Sent:
    """What a delivery-only run sent: one row per phase (:func:`delivery_rows`) and whether any phase's
    acceptance rate is under the config's delivery threshold."""

    run_id: str
    target: str
    rows: list[dict[str, Any]]
    below_threshold: bool


@dataclass(frozen=True)
class WebhookCheck:
    """``validate-webhook``: each hook's probe, what ``--send`` delivered (None without it), and the verdict."""

    probes: list[tuple[str, ProbeResult]]
    sent: Sent | None

    @property
    def failed(self) -> bool:
        """A hook unreachable or failing TLS, or the records sent accepted below the delivery threshold."""
        unhealthy = any(not p.reachable or p.tls_ok is False for _, p in self.probes)
        return unhealthy or (self.sent is not None and self.sent.below_threshold)


@dataclass
class _Deliveries:
    """A subscriber to the engine's events: each record's delivery per phase, and the run's id and target."""

    on_target: OnTarget | None
    run_id: str = ""
    target: str = ""
    by_phase: Deliveries = field(default_factory=dict)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RecordDelivered):
            self.by_phase.setdefault(event.phase, []).append((event.record.is_valid, event.delivery))
        elif isinstance(event, RunStarted):
            self.run_id, self.target = event.plan.run_id, event.target
            if self.on_target is not None:
                self.on_target(event.target, event.where)


def shrunk(loaded: LoadedConfig, records: int) -> LoadedConfig:
    """The same config sending ``records`` valid records and no invalid ones."""
    update: dict[str, Any] = {"test_records": records, "invalid_records": []}
    if loaded.config.distribution == "custom":
        update["distribution"] = "even"
    return dataclasses.replace(loaded, config=loaded.config.model_copy(update=update))


async def send_plan(
    plan: RunPlan, progress: Progress, on_target: OnTarget | None, destination: Destination | None = None
) -> Sent:
    """Deliver the plan (to the config's target, live or a started sandbox, unless a ``destination`` is
    given), recorded in the run store so cleanup can find it."""
    heard = _Deliveries(on_target)
    async with open_run(plan, progress=progress, judged=False, destination=destination) as run:
        run.subscribe(heard)
        await deliver_only(run)
    rows = delivery_rows(plan, heard.by_phase)
    wanted = plan.loaded.config.thresholds.delivery_rate
    below = any(r["acceptance_rate"] < wanted for r in rows if r["valid"])
    return Sent(heard.run_id, heard.target, rows, below)


async def check_webhooks(
    loaded: LoadedConfig,
    *,
    url: str | None,
    attempts: int,
    send: int,
    progress: Progress,
    on_target: OnTarget,
) -> WebhookCheck:
    """Probe the config's hooks (or ``url``) without creating data; with ``send`` also deliver that many records."""
    from bonzo_bulk._http import make_session
    from bonzo_bulk.deliver.probe import probe
    from bonzo_bulk.plan.planner import plan_run
    from bonzo_bulk.plan.seeding import plan_seed
    from bonzo_bulk.target.endpoints import open_endpoints

    plan = plan_run(shrunk(loaded, max(1, send)), phases=("primary",) if url else ("primary", "control"))
    timeout = loaded.config.webhook_settings.timeout
    async with make_session(limit=4, timeout=timeout) as session, contextlib.AsyncExitStack() as stack:
        if url is not None:
            destination = Destination.hook(loaded.target, url)
        else:
            endpoints = await stack.enter_async_context(
                open_endpoints(loaded, session, run_id=plan.run_id, new_run=bool(plan.phases), seed=plan_seed(plan))
            )
            on_target(endpoints.target, endpoints.where)
            destination = Destination.of(endpoints)
        hooks = [("primary" if url is None else "webhook", destination.hook_url)]
        if destination.control_hook_url and plan.phase("control"):
            hooks.append(("control", destination.control_hook_url))
        probes = [(n, await probe(u, attempts=attempts, timeout=timeout, session=session)) for n, u in hooks]
        sent = await send_plan(plan, progress, None, destination) if send else None
    return WebhookCheck(probes, sent)


def delivery_rows(plan: RunPlan, deliveries: Deliveries) -> list[dict[str, Any]]:
    """Per phase: sent, valid, accepted, acceptance rate, invalid records refused, errors, latency."""
    from bonzo_bulk.judge.tally import latency_summary

    rows = []
    for phase in plan.phases:
        results = deliveries.get(phase.kind, [])
        valid = [d for is_valid, d in results if is_valid]
        latency = latency_summary(d.latency_ms for _, d in results if d.status is not None)
        accepted = sum(1 for d in valid if d.accepted)
        rows.append(
            {
                "phase": phase.kind,
                "sent": len(results),
                "valid": len(valid),
                "accepted": accepted,
                "acceptance_rate": accepted / len(valid) if valid else 0.0,
                "invalid_rejected": sum(1 for is_valid, d in results if not is_valid and not d.accepted),
                "errors": dict(Counter(d.error_category for d in valid if d.error_category)),
                "latency_ms": to_jsonable(latency),
            }
        )
    return rows
