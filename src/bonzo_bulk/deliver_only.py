"""Runs that only deliver: ``generate`` sends a plan, ``validate-webhook`` probes the hooks (and may send a few).

Both record what they send in the run store first, so ``cleanup --run`` finds it. They reuse the run's own
stages (endpoints, store, delivery) and stop before settling.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bonzo_bulk.models import DeliveryResult, PhaseKind, to_jsonable

if TYPE_CHECKING:
    from bonzo_bulk.config import LoadedConfig
    from bonzo_bulk.delivery import ProbeResult
    from bonzo_bulk.plan import RunPlan
    from bonzo_bulk.run import Endpoints, Progress

OnEndpoints = Callable[["Endpoints"], None]


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


def shrunk(loaded: LoadedConfig, records: int) -> LoadedConfig:
    """The same config sending ``records`` valid records and no invalid ones."""
    update: dict[str, Any] = {"test_records": records, "invalid_records": []}
    if loaded.config.distribution == "custom":
        update["distribution"] = "even"
    return dataclasses.replace(loaded, config=loaded.config.model_copy(update=update))


async def send_plan(plan: RunPlan, progress: Progress, on_endpoints: OnEndpoints) -> Sent:
    """Open the config's endpoints (live, or a started sandbox) and deliver the plan there."""
    from bonzo_bulk._http import make_session
    from bonzo_bulk.run import open_endpoints

    config = plan.loaded.config
    async with (
        make_session(limit=2, timeout=config.webhook_settings.timeout) as session,
        open_endpoints(plan, session) as endpoints,
    ):
        on_endpoints(endpoints)
        return await _record_and_deliver(plan, progress, endpoints)


async def check_webhooks(
    loaded: LoadedConfig,
    *,
    url: str | None,
    attempts: int,
    send: int,
    progress: Progress,
    on_endpoints: OnEndpoints,
) -> WebhookCheck:
    """Probe the config's hooks (or ``url``) without creating data; with ``send`` also deliver that many records."""
    from bonzo_bulk._http import make_session
    from bonzo_bulk.delivery import probe
    from bonzo_bulk.plan import plan_run
    from bonzo_bulk.run import Endpoints, open_endpoints

    plan = plan_run(shrunk(loaded, max(1, send)), phases=("primary",) if url else ("primary", "control"))
    timeout = loaded.config.webhook_settings.timeout
    async with make_session(limit=4, timeout=timeout) as session, contextlib.AsyncExitStack() as stack:
        if url is not None:
            endpoints = Endpoints(
                target=loaded.target, hook_url=url, control_hook_url=None, api_base_url="", api_key=""
            )
        else:
            endpoints = await stack.enter_async_context(open_endpoints(plan, session))
            on_endpoints(endpoints)
        hooks = [("primary" if url is None else "webhook", endpoints.hook_url)]
        if endpoints.control_hook_url and plan.phase("control"):
            hooks.append(("control", endpoints.control_hook_url))
        probes = [(n, await probe(u, attempts=attempts, timeout=timeout, session=session)) for n, u in hooks]
        sent = await _record_and_deliver(plan, progress, endpoints) if send else None
    return WebhookCheck(probes, sent)


async def _record_and_deliver(plan: RunPlan, progress: Progress, endpoints: Endpoints) -> Sent:
    """Record the run and its records in the store (so cleanup can find them), then deliver them."""
    from bonzo_bulk._http import make_session
    from bonzo_bulk.interrupts import recording_interrupts
    from bonzo_bulk.run import deliver_all, record_plan, session_limit, store_location_for
    from bonzo_bulk.store import RunStore

    config = plan.loaded.config
    with RunStore(store_location_for(plan.loaded)) as store, recording_interrupts(plan.loaded, plan.run_id, store):
        record_plan(plan, store)
        async with make_session(limit=session_limit(plan), timeout=config.webhook_settings.timeout) as session:
            deliveries = await deliver_all(plan, endpoints, session, store, progress)
    rows = delivery_rows(plan, deliveries)
    wanted = config.thresholds.delivery_rate
    below = any(r["acceptance_rate"] < wanted for r in rows if r["valid"])
    return Sent(plan.run_id, endpoints.target, rows, below)


def delivery_rows(plan: RunPlan, deliveries: dict[PhaseKind, list[DeliveryResult]]) -> list[dict[str, Any]]:
    """Per phase: sent, valid, accepted, acceptance rate, invalid records refused, errors, latency."""
    from bonzo_bulk.metrics import latency_summary

    rows = []
    for phase in plan.phases:
        results = deliveries.get(phase.kind, [])
        valid = [d for r, d in zip(phase.records, results, strict=True) if r.is_valid]
        latency = latency_summary(d.latency_ms for d in results if d.status is not None)
        accepted = sum(1 for d in valid if d.accepted)
        rows.append(
            {
                "phase": phase.kind,
                "sent": len(results),
                "valid": len(valid),
                "accepted": accepted,
                "acceptance_rate": accepted / len(valid) if valid else 0.0,
                "invalid_rejected": sum(
                    1 for r, d in zip(phase.records, results, strict=True) if not r.is_valid and not d.accepted
                ),
                "errors": dict(Counter(d.error_category for d in valid if d.error_category)),
                "latency_ms": to_jsonable(latency),
            }
        )
    return rows
