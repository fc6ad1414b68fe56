"""One bulk run end to end: (plan) -> preflight -> deliver -> settle -> verify -> results in the run store.

The CLI, the pytest plugin and the library API all call :func:`bonzo_bulk.plan.plan_run` and
:func:`execute` (or :func:`run_bulk`, both at once), then :func:`bonzo_bulk.publishing.publish` for the
reports. Nothing here knows which of them is calling, and nothing here imports a report.

Example::

    from bonzo_bulk import load_config, run_bulk

    result = run_bulk(load_config("tests/configs/monitorbase_test_config.yaml"))
    result.passed, result.primary.metrics.assignment_accuracy
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from bonzo_bulk._http import make_session, run_async
from bonzo_bulk.bonzo import BonzoClient
from bonzo_bulk.config import LoadedConfig
from bonzo_bulk.delivery import deliver
from bonzo_bulk.diagnosis import diagnose
from bonzo_bulk.errors import SandboxError
from bonzo_bulk.interrupts import recording_interrupts
from bonzo_bulk.metrics import phase_metrics
from bonzo_bulk.models import (
    DeliveryResult,
    PhaseKind,
    PhaseResult,
    PlannedRecord,
    RunResult,
    Target,
    User,
)
from bonzo_bulk.plan import RunPlan, plan_run
from bonzo_bulk.preflight import preflight
from bonzo_bulk.sandbox.seeding import run_hooks, seed_users
from bonzo_bulk.sandbox_files import sandbox_db_for
from bonzo_bulk.secrets import redact, redact_url, register_secret
from bonzo_bulk.settle import settle
from bonzo_bulk.store import RunStore, StoreLocation
from bonzo_bulk.validation import verify_phase

log = logging.getLogger("bonzo_bulk")

STORE_BATCH = 500


class Progress(Protocol):
    """Where a run reports what it is doing (rich bars in the CLI; nothing under pytest)."""

    def stage(self, name: str, total: int | None) -> None: ...
    def advance(self, name: str, amount: int = 1) -> None: ...
    def update(self, name: str, completed: int, total: int | None = None) -> None: ...
    def note(self, message: str) -> None: ...


class NullProgress:
    """A progress sink that shows nothing."""

    def stage(self, name: str, total: int | None) -> None:
        """Ignore a stage start."""

    def advance(self, name: str, amount: int = 1) -> None:
        """Ignore progress."""

    def update(self, name: str, completed: int, total: int | None = None) -> None:
        """Ignore progress."""

    def note(self, message: str) -> None:
        """Ignore a note."""


@dataclass(frozen=True)
class Endpoints:
    """Where a run sends and looks: the sandbox's or the live systems'."""

    target: Target
    hook_url: str
    control_hook_url: str | None
    api_base_url: str
    api_key: str
    sandbox_url: str | None = None


@contextlib.asynccontextmanager
async def open_endpoints(
    plan: RunPlan, session: aiohttp.ClientSession, *, sandbox_db: Path | None = None
) -> AsyncIterator[Endpoints]:
    """The live systems from the config, or a seeded local sandbox (started here unless one runs).

    A started sandbox owns its database (``sandbox_db``, else :func:`sandbox_db_for` the plan's run)
    and its port, so concurrent runs never process each other's leads.
    """
    loaded = plan.loaded
    config = loaded.config
    if loaded.target == "live":
        assert config.webhook_url is not None
        assert config.superuser_api_key is not None
        yield Endpoints(
            target="live",
            hook_url=config.webhook_url.get_secret_value(),
            control_hook_url=config.superuser_webhook_url.get_secret_value() if config.superuser_webhook_url else None,
            api_base_url=config.api_settings.base_url,
            api_key=config.superuser_api_key.get_secret_value(),
        )
        return
    from bonzo_bulk.sandbox.process import SandboxProcess
    from bonzo_bulk.sandbox.state import SandboxOptions

    with contextlib.ExitStack() as stack:
        url = config.sandbox.url
        if url is None:
            options = SandboxOptions.from_settings(config.sandbox, base_dir=loaded.base_dir)
            if config.sandbox.db is None:
                options.db_path = sandbox_db or sandbox_db_for(loaded, plan.run_id, new_run=bool(plan.phases))
            # A process of its own: a sandbox sharing the engine's GIL slowed its own processing (p50 17 s at 10k).
            server = stack.enter_context(SandboxProcess(options))
            url = server.url
        endpoints = await _seed_sandbox(plan, session, url)
        yield endpoints


async def _seed_sandbox(plan: RunPlan, session: aiohttp.ClientSession, url: str) -> Endpoints:
    config = plan.loaded.config
    primary, control = plan.phase("primary"), plan.phase("control")
    hooks = run_hooks(config, primary.integration if primary else None, control.integration if control else None)
    hook_type = hooks[0]["type"]
    control_type = hooks[1]["type"] if control is not None else None
    users = seed_users(config)
    try:
        async with session.post(f"{url}/__sandbox/seed", json={"users": users, "hooks": hooks}) as response:
            body = await response.json()
            if response.status != 200:
                raise SandboxError(f"the sandbox refused the seed ({response.status}): {redact(str(body))[:300]}")
        if isinstance(config.sandbox.faults, str | dict) and config.sandbox.url is not None:
            from bonzo_bulk.sandbox import SandboxOptions

            options = SandboxOptions.from_settings(config.sandbox, base_dir=plan.loaded.base_dir)
            async with session.put(f"{url}/__sandbox/faults", json=options.faults) as response:
                if response.status != 200:
                    raise SandboxError(f"the sandbox refused the fault profile ({response.status})")
        # A running sandbox keeps its own strictness unless the config sets one explicitly.
        chosen = config.sandbox.model_fields_set & {"strictness", "mapped_custom_fields"}
        if config.sandbox.url is not None and chosen:
            settings = {key: getattr(config.sandbox, key) for key in chosen}
            async with session.put(f"{url}/__sandbox/settings", json=settings) as response:
                if response.status != 200:
                    raise SandboxError(f"the sandbox refused its settings ({response.status})")
    except aiohttp.ClientError as exc:
        raise SandboxError(f"the sandbox at {url} did not answer: {exc}") from exc
    by_type = {h["type"]: h["url"] for h in body["hooks"]}
    for hook in body["hooks"]:
        register_secret(str(hook["hash"]))
    register_secret(str(body["superuser_token"]))
    return Endpoints(
        target="sandbox",
        hook_url=by_type[hook_type],
        control_hook_url=by_type.get(control_type) if control_type else None,
        api_base_url=url,
        api_key=str(body["superuser_token"]),
        sandbox_url=url,
    )


def config_snapshot(loaded: LoadedConfig) -> dict[str, Any]:
    """The config as stored with the run: secrets reduced to whether they were set."""
    data = loaded.config.model_dump(mode="json")
    for key in ("webhook_url", "superuser_webhook_url", "superuser_api_key"):
        data[key] = "<set>" if data.get(key) else None
    if loaded.config.store_url:
        data["store_url"] = StoreLocation.parse(loaded.config.store_url).label
    return data


class _StoreWriter:
    """Buffers delivery results and writes them to the run store in batches as the run goes."""

    def __init__(self, store: RunStore, run_id: str, phase: PhaseKind, progress: Progress) -> None:
        self.store, self.run_id, self.phase, self.progress = store, run_id, phase, progress
        self.buffer: list[DeliveryResult] = []

    def __call__(self, result: DeliveryResult) -> None:
        self.buffer.append(result)
        self.progress.advance("deliver")
        if len(self.buffer) >= STORE_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.store.add_deliveries(self.run_id, self.phase, self.buffer)
            self.buffer = []


def record_plan(plan: RunPlan, store: RunStore) -> None:
    """Write a run and all its records to the store before anything is sent (so cleanup can always
    find what an interrupted run sent)."""
    loaded = plan.loaded
    config = loaded.config
    store.begin_run(
        run_id=plan.run_id,
        test_name=config.test_name,
        integration=config.integration_type,
        config_path=str(loaded.path) if loaded.path else None,
        target=loaded.target,
        started_at=plan.identity.started_at,
        dry_run=False,
        config_snapshot=config_snapshot(loaded),
    )
    store.add_records(plan.run_id, plan.records)


def session_limit(plan: RunPlan) -> int:
    """Connections one run needs: every phase's webhook concurrency plus the API client's."""
    config = plan.loaded.config
    return (
        config.webhook_settings.concurrent_requests * max(1, len(plan.phases)) + config.api_settings.concurrent_requests
    )


async def execute(
    plan: RunPlan, *, progress: Progress | None = None, store_path: str | Path | None = None
) -> RunResult:
    """Preflight, send a planned run, wait for it to settle, verify it, record everything, clean up per policy."""
    progress = progress or NullProgress()
    loaded = plan.loaded
    config = loaded.config
    with RunStore(store_path or store_location_for(loaded)) as store, recording_interrupts(loaded, plan.run_id, store):
        async with (
            make_session(limit=session_limit(plan), timeout=config.webhook_settings.timeout) as session,
            open_endpoints(plan, session) as endpoints,
            BonzoClient(
                base_url=endpoints.api_base_url,
                api_key=endpoints.api_key,
                settings=config.api_settings,
                session=session,
            ) as client,
        ):
            _announce(loaded, endpoints, progress)
            checked = await preflight(
                client,
                session,
                users=loaded.users,
                hooks=_hooks(plan, endpoints),
                timeout=min(config.webhook_settings.timeout, 10.0),
            )
            log.info("%s", checked.describe())
            record_plan(plan, store)
            deliveries = await deliver_all(plan, endpoints, session, store, progress)
            result = await _settle_and_verify(plan, endpoints, client, deliveries, store, progress)
            finishing = time.perf_counter()
            store.finish_run(result, keep_written=True)
            log.info("Run store: run finished in %.2f s", time.perf_counter() - finishing)
            policy = config.cleanup.after_run
            if policy == "always" or (policy == "on_success" and result.passed):
                from bonzo_bulk.cleanup import cleanup_run

                report = await cleanup_run(loaded, plan.run_id, endpoints=endpoints, session=session, store=store)
                log.info(
                    "Cleanup after the run (%s): %d deleted, %d left for removal by hand%s",
                    policy,
                    len(report.deleted),
                    len(report.manual),
                    f" ({report.refused})" if report.refused else "",
                )
    _log_summary(result)
    return result


def _hooks(plan: RunPlan, endpoints: Endpoints) -> list[tuple[str, str]]:
    """(name, URL) of each hook the run will POST to."""
    hooks = [("webhook", endpoints.hook_url)] if plan.phase("primary") else []
    if plan.phase("control") and endpoints.control_hook_url:
        hooks.append(("control webhook", endpoints.control_hook_url))
    return hooks


def store_location_for(loaded: LoadedConfig) -> str | Path:
    """The run store a config names: ``store_url``, else ``run_store``, else ``<reports_dir>/runs.sqlite3``."""
    config = loaded.config
    if config.store_url:
        return config.store_url
    return Path(config.run_store) if config.run_store else Path(config.reports_dir) / "runs.sqlite3"


def _announce(loaded: LoadedConfig, endpoints: Endpoints, progress: Progress) -> None:
    if endpoints.target == "sandbox":
        message = (
            f"Target: the local SANDBOX at {endpoints.sandbox_url} — TEST_HOOK_URL / SUPERUSER_API_KEY are not "
            "set, so nothing is sent to Bonzo"
            if loaded.config.target == "auto"
            else f"Target: the local SANDBOX at {endpoints.sandbox_url} (--target sandbox)"
        )
    else:
        message = f"Target: LIVE — webhook {redact_url(endpoints.hook_url)}, API {endpoints.api_base_url}"
    log.warning(message)


async def deliver_all(
    plan: RunPlan, endpoints: Endpoints, session: aiohttp.ClientSession, store: RunStore, progress: Progress
) -> dict[PhaseKind, list[DeliveryResult]]:
    config = plan.loaded.config
    progress.stage("deliver", len(plan.records))
    results: dict[PhaseKind, list[DeliveryResult]] = {}
    for phase in plan.phases:
        url = endpoints.hook_url if phase.kind == "primary" else endpoints.control_hook_url
        if url is None:
            raise SandboxError(
                "no control hook URL: set SUPERUSER_WEBHOOK_URL or turn the control off (control: false)"
            )
        writer = _StoreWriter(store, plan.run_id, phase.kind, progress)
        try:
            results[phase.kind] = await deliver(
                phase.records,
                url=url,
                settings=config.webhook_settings,
                session=session,
                on_result=writer,
                on_status=log.warning,
            )
        finally:
            writer.flush()  # also when interrupted: every answered delivery is in the store
        ok = sum(1 for d in results[phase.kind] if d.accepted)
        valid = [d for r, d in zip(phase.records, results[phase.kind], strict=True) if r.is_valid]
        accepted = sum(1 for d in valid if d.accepted)
        label = "Webhook delivery" if phase.kind == "primary" else "Control webhook delivery"
        log.info("%s: %d/%d successful (%.1f%%)", label, accepted, len(valid), _pct(accepted, len(valid)))
        if ok != accepted:
            log.info("%s: %d invalid test record(s) accepted by the webhook", label, ok - accepted)
    return results


async def _settle_and_verify(
    plan: RunPlan,
    endpoints: Endpoints,
    client: BonzoClient,
    deliveries: dict[PhaseKind, list[DeliveryResult]],
    store: RunStore,
    progress: Progress,
) -> RunResult:
    loaded = plan.loaded
    config = loaded.config
    by_name = {d.record_name: d for results in deliveries.values() for d in results}
    users = loaded.users
    for user in users:
        log.info("Using On-Behalf-Of: %s (%s)", user.user_id, user.email)
    deadline = config.polling.deadline or config.processing_delay + config.polling.grace
    progress.stage("settle", None)
    outcome = await settle(
        client,
        plan.records,
        by_name,
        users=users,
        search=plan.run_id if config.test_data_settings.unique_emails else _name_prefix(loaded),
        polling=config.polling,
        deadline_seconds=deadline,
        per_page=config.api_settings.max_prospects_per_request,
        order=config.api_settings.list_order,
        on_poll=lambda found, expected: progress.update("settle", found, expected),
    )
    finished_at = datetime.now(UTC)
    total_records = max(1, len(plan.records))
    phases: list[PhaseResult] = []
    for phase in plan.phases:
        names = {r.name for r in phase.records}
        observations = {k: v for k, v in outcome.observations.items() if k in names}
        store.add_observed_prospects(plan.run_id, phase.kind, list(observations.values()))
        unexpected = outcome.unexpected if phase.kind == "primary" else []
        checks = verify_phase(
            phase.records,
            by_name,
            observations,
            unexpected,
            rules=[r for r in config.validation_rules if r.phase in (phase.kind, "both")],
            transforms=phase.contract.transforms,
            thresholds=config.thresholds,
            integration_type=config.integration_type,
            clock=outcome.clock,
        )
        share = round(client.requests_made * len(phase.records) / total_records)
        metrics = phase_metrics(
            phase.kind,
            phase.records,
            by_name,
            observations,
            checks,
            thresholds=config.thresholds,
            api_requests=share,
            clock=outcome.clock,
        )
        phases.append(
            PhaseResult(
                kind=phase.kind,
                records=phase.records,
                deliveries=tuple(deliveries[phase.kind]),
                observations=tuple(observations.values()),
                checks=tuple(checks),
                unexpected_prospects=tuple(unexpected),
                metrics=metrics,
                settled=outcome.settled,
                settle_seconds=round(outcome.seconds, 3),
                diagnoses=diagnose(
                    phase.kind,
                    checks,
                    provenance={f.field: f.by for f in phase.contract.fields},
                    sources={f.field: f.source for f in phase.contract.fields if f.source},
                ),
            )
        )
        _log_phase(phase.kind, phase.records, observations, metrics.created, users)
    notes = [
        f"settled in {outcome.seconds:.1f} s over {outcome.polls} poll(s); {client.requests_made} API requests in all "
        f"({outcome.api_requests} while settling)",
        f"clock offset to Bonzo's API: {outcome.clock.describe()}",
    ]
    if outcome.rate_limited_seconds:
        notes.append(
            f"rate limiting: {client.rate_limited_answers} answer(s) 429, {outcome.rate_limited_seconds:.1f} s of the "
            f"{deadline:g} s deadline spent waiting on Retry-After"
        )
    if outcome.stopped_early:
        notes.append(f"settling stopped early: {outcome.stopped_early}")
    elif not outcome.settled:
        notes.append(f"the deadline ({deadline:g} s after the last delivery) passed before every record settled")
    if endpoints.target == "sandbox":
        notes.append("target: local sandbox — nothing was sent to Bonzo")
    return run_result(plan, endpoints.target, phases, notes, finished_at)


def run_result(
    plan: RunPlan, target: Target, phases: Sequence[PhaseResult], notes: Sequence[str], finished_at: datetime
) -> RunResult:
    """The result of a run of ``plan`` whose phases have been judged."""
    loaded = plan.loaded
    return RunResult(
        run_id=plan.run_id,
        test_name=loaded.config.test_name,
        integration=loaded.config.integration_type,
        config_path=str(loaded.path) if loaded.path else None,
        target=target,
        started_at=plan.identity.started_at,
        finished_at=finished_at,
        dry_run=False,
        phases=tuple(phases),
        notes=tuple(notes),
    )


def _name_prefix(loaded: LoadedConfig) -> str:
    settings = loaded.config.test_data_settings
    return f"{settings.first_name_pattern}_{settings.last_name_pattern}"


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def _log_phase(
    kind: PhaseKind,
    records: Sequence[PlannedRecord],
    observations: dict[str, Any],
    created: int,
    users: Sequence[User],
) -> None:
    valid = [r for r in records if r.is_valid]
    for user in users:
        mine = [r for r in valid if r.expected_user.user_id == user.user_id]
        found = sum(1 for r in mine if r.name in observations and user.user_id in observations[r.name].seen_in)
        log.info(
            "Found %d/%d %stest prospects for %s", found, len(mine), "control " if kind == "control" else "", user.email
        )
    label = "Prospect creation" if kind == "primary" else "Control prospect creation"
    found_total = sum(1 for r in valid if r.name in observations)
    log.info("%s: %d/%d prospects found (%.1f%%)", label, found_total, len(valid), _pct(found_total, len(valid)))


def _log_summary(result: RunResult) -> None:
    for phase in result.phases:
        m = phase.metrics
        label = "" if phase.kind == "primary" else "Control "
        log.info(
            "%sUser assignment accuracy: %d/%d correct (%.1f%%)",
            label,
            m.assigned_correctly,
            m.created,
            100 * m.assignment_accuracy,
        )
        log.info(
            "%sData mapping accuracy: %d/%d (%.1f%%)", label, m.mapped_correctly, m.created, 100 * m.mapping_accuracy
        )
        log.info(
            "%sProcessing time: p50 %.2f s, p95 %.2f s; API requests per verified record: %.3f",
            label,
            m.processing_time.p50_ms / 1000,
            m.processing_time.p95_ms / 1000,
            m.api_requests_per_record,
        )
    log.info("Run %s: thresholds %s", result.run_id, "met" if result.passed else "FAILED")


def run_bulk(
    loaded: LoadedConfig,
    *,
    phases: Sequence[PhaseKind] = ("primary", "control"),
    progress: Progress | None = None,
    store_path: str | Path | None = None,
) -> RunResult:
    """Plan and execute a bulk run synchronously (on uvloop where available)."""
    plan = plan_run(loaded, phases=phases)
    return run_async(execute(plan, progress=progress, store_path=store_path))
