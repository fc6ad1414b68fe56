"""``monitor run``: one bounded, lock-protected bulk run, judged, fed to the alert policy, notified, recorded.

The platform's scheduler calls it (cron, a systemd timer, a GitHub schedule, a Kubernetes CronJob);
nothing here loops or sleeps. Exit codes: 0 healthy (or degraded), 1 a check failed (or a regression
with ``fail_on_regression``), 2 bad usage or config (nothing sent), 3 the run could not finish
(timeout, unreachable target, crash; its test data is cleaned up), 75 skipped because the previous
run still holds the lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bonzo_bulk._http import run_async
from bonzo_bulk.cleanup.policy import CleanupPolicy
from bonzo_bulk.config.environment import environment
from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.config.monitor import AlertPolicy, MonitorSettings
from bonzo_bulk.engine.context import open_run
from bonzo_bulk.engine.run import execute
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.models import RunResult
from bonzo_bulk.monitor.message import Outcome, compose, compose_problem, status_line
from bonzo_bulk.monitor.notify import PingEvent, notification_urls, ping, ping_url, send
from bonzo_bulk.monitor.policy import (
    AlertState,
    Decision,
    NoticeKind,
    Status,
    decide,
    near_limits,
    problem_notices,
    run_notices,
)
from bonzo_bulk.monitor.state import Delivery, MonitorRun, MonitorStore, run_lock
from bonzo_bulk.plan.planner import RunPlan, plan_run
from bonzo_bulk.problems.state import noticed
from bonzo_bulk.problems.track import ProblemTracker
from bonzo_bulk.report.metrics import MetricsPush
from bonzo_bulk.report.publish import publish
from bonzo_bulk.secrets import redact, redact_cut
from bonzo_bulk.store import RunStore
from bonzo_bulk.target.endpoints import store_location_for

log = logging.getLogger("bonzo_bulk.monitor")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ERROR = 0, 1, 2, 3
CLEANUP_SECONDS = 120.0
"""The bound on cleaning up after a run that could not finish."""


@dataclass(frozen=True)
class MonitorReport:
    """What one ``monitor run`` did: the outcome, the policy's decision, every delivery, the exit code."""

    outcome: Outcome
    decision: Decision
    deliveries: tuple[Delivery, ...]
    exit_code: int
    notices: tuple[str, ...] = ()
    """Every notice this run sent: the run's own (``alert``) and each problem's (``new 3f2a9c01d4``)."""


def monitor_name(loaded: LoadedConfig) -> str:
    """The monitor's name: ``monitor.name``, else the integration."""
    return loaded.config.monitor.name or loaded.config.integration_type


def monitor_status(
    loaded: LoadedConfig, *, limit: int
) -> tuple[str, AlertState, list[tuple[MonitorRun, list[Delivery]]]]:
    """A monitor's name, alert state and its latest ``limit`` runs with what each sent."""
    name = monitor_name(loaded)
    with RunStore(store_location_for(loaded)) as store:
        monitors = MonitorStore(store)
        return name, monitors.load_state(name), monitors.runs(name, limit=limit)


def refuse_automatic_sandbox(loaded: LoadedConfig) -> None:
    """A :class:`ConfigError` (exit 2) when ``target: auto`` fell back to the sandbox because the live settings
    are missing: a scheduled monitor that silently tests the sandbox can only pass. An explicit ``--target
    sandbox`` (or ``target: sandbox``) runs."""
    if not loaded.automatic:
        return
    missing = " and ".join(loaded.missing) or "TEST_HOOK_URL and SUPERUSER_API_KEY"
    raise ConfigError(
        f"monitor run: {missing} {'is' if len(loaded.missing) == 1 else 'are'} not set, so target 'auto' would "
        "test the local sandbox and the monitor could only pass; set them (environment or .env) to monitor the "
        "live integration, or pass --target sandbox to run the monitor against the sandbox on purpose",
        key="target",
    )


def monitor_run(
    loaded: LoadedConfig,
    *,
    fail_on_regression: bool = False,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> MonitorReport:
    """Run the monitor once; a notification or ping that fails is recorded and never changes the exit code.

    A monitor never tests the sandbox by accident: an automatic sandbox is refused before anything is sent.
    """
    refuse_automatic_sandbox(loaded)
    config = loaded.config
    settings = config.monitor
    name = monitor_name(loaded)
    values = environment(loaded.base_dir) if env is None else env
    urls = notification_urls(settings, values)
    ping_target = ping_url(settings, values)
    apprise_config = loaded.resolve_path(settings.apprise_config) if settings.apprise_config else None
    store_path = store_location_for(loaded)
    cleanup = config.cleanup.model_copy(update={"after_run": settings.cleanup})
    run_config = dataclasses.replace(loaded, config=config.model_copy(update={"cleanup": cleanup}))
    channels = _Channels(urls, apprise_config, settings.notify_env)
    with run_lock(Path(config.reports_dir) / f"monitor-{name}.lock"):
        started = clock()
        deliveries: list[Delivery] = []
        if ping_target:
            deliveries.append(ping(ping_target, "start", timeout=settings.ping_timeout))
        tracker = ProblemTracker(store_path, settings.problems, clock=clock)
        try:
            outcome, regressed = _run_once(run_config, name, tracker)
        except ConfigError as exc:
            if ping_target:  # the switch was told the run started: tell it how it ended
                ping(ping_target, "fail", timeout=settings.ping_timeout, message=f"config error: {exc}")
            raise
        with RunStore(store_path) as store:
            monitors = MonitorStore(store)
            decision, sent = _notify(store, monitors.load_state(name), outcome, settings, channels, deliveries, clock)
            exit_code = _exit_code(
                outcome.status, regressed and (fail_on_regression or config.regression.fail_on_regression)
            )
            if ping_target:
                event: PingEvent = "success" if exit_code == EXIT_OK else "fail"
                line = status_line(outcome, decision.reason)
                deliveries.append(ping(ping_target, event, timeout=settings.ping_timeout, message=line))
            record = MonitorRun(
                name=name,
                started_at=started,
                finished_at=clock(),
                run_id=outcome.run_id,
                status=outcome.status,
                exit_code=exit_code,
                reason=redact(decision.reason),
                notices=tuple(sent),
            )
            monitors.save(record, decision.state, deliveries)
    return MonitorReport(outcome, decision, tuple(deliveries), exit_code, tuple(sent))


def _notify(
    store: RunStore,
    previous: AlertState,
    outcome: Outcome,
    settings: MonitorSettings,
    channels: _Channels,
    deliveries: list[Delivery],
    clock: Callable[[], datetime],
) -> tuple[Decision, list[str]]:
    """The run policy's decision and every notice sent for it: the run's own, then each problem's."""
    decision = decide(previous, outcome.status, clock(), settings.alerts)
    kinds = run_notices(decision, previous, outcome.status, per_problem=settings.problems.alerts)
    if kinds != decision.notices:
        decision = dataclasses.replace(decision, reason=f"{decision.reason} (said per problem)")
    for kind in kinds:
        title, body = compose(kind, outcome, decision.state, decision.reason)
        deliveries += channels.send(kind, title, body)
    sent: list[str] = list(kinds)
    if settings.problems.alerts:
        sent += _notify_problems(store, outcome, channels, deliveries, clock(), settings.alerts)
    return decision, sent


@dataclass(frozen=True)
class _Channels:
    """Where notices go (apprise URLs and config file), or the one line saying there is nowhere."""

    urls: list[str]
    apprise_config: Path | None
    notify_env: str

    def send(self, kind: NoticeKind, title: str, body: str, *, label: str = "") -> list[Delivery]:
        if self.urls or self.apprise_config:
            sent = send(kind, title, body, self.urls, apprise_config=self.apprise_config)
        else:
            sent = [Delivery(kind, "none", False, f"no channel: set {self.notify_env}")]
        return [dataclasses.replace(d, kind=f"{d.kind} {label}".strip()) for d in sent]


def _notify_problems(
    store: RunStore,
    outcome: Outcome,
    channels: _Channels,
    deliveries: list[Delivery],
    now: datetime,
    policy: AlertPolicy,
) -> list[str]:
    """Send what each of the run's problems owes (new, reopened, escalated, resolved, reminder) and note on the
    problem each one a channel took, so reminders count from it; the labels of the notices sent."""
    found = outcome.problems
    if found is None:
        return []
    sent: list[str] = []
    for notice in problem_notices(found, policy, now):
        problem_id = notice.tracked.problem.problem_id
        title, body = compose_problem(notice, outcome)
        delivered = channels.send(notice.kind, title, body, label=problem_id)
        deliveries += delivered
        reached = [d.channel for d in delivered if d.ok]
        if reached:  # a notice no channel took is not a notice: a reminder owed stays owed
            where = ", ".join(reached)
            store.change_problem(problem_id, functools.partial(noticed, kind=notice.kind, channels=where, now=now))
        sent.append(f"{notice.kind} {problem_id}")
    return sent


def _exit_code(status: Status, regression_fails: bool) -> int:
    if status == "error":
        return EXIT_ERROR
    if status == "failed" or (status == "degraded" and regression_fails):
        return EXIT_FAILED
    return EXIT_OK


def _run_once(loaded: LoadedConfig, name: str, tracker: ProblemTracker) -> tuple[Outcome, bool]:
    """Run, publish and judge one bulk run within ``monitor.max_duration``; any failure to finish is an outcome."""
    config = loaded.config
    settings = config.monitor
    store_path = store_location_for(loaded)
    plan = plan_run(loaded)
    base = Outcome(
        name=name,
        integration=config.integration_type,
        target=loaded.target,
        status="error",
        run_id=plan.run_id,
        result=None,
        error=None,
    )
    try:
        result = run_async(asyncio.wait_for(_cleaned_run(plan, store_path, tracker), timeout=settings.max_duration))
        published = publish(result, loaded, store_path=store_path, problems=tracker.found)
    except ConfigError:
        raise
    except TimeoutError:
        error = f"it did not finish within monitor.max_duration ({settings.max_duration:g} s)"
    except Exception as exc:  # the monitor must report any failure to run, not crash on it
        error = redact_cut(f"{type(exc).__name__}: {exc}", 500)
    else:
        near = tuple(near_limits(result, settings.alerts.near_limit))
        failed = not result.passed or published.verdict.cleanup_pending > 0  # records its cleanup left pending
        status: Status = "failed" if failed else "degraded" if published.regressions or near else "ok"
        outcome = dataclasses.replace(
            base,
            status=status,
            result=result,
            regressions=published.regressions,
            near_limits=near,
            dashboard=published.dashboard,
            problems=tracker.found,
        )
        return outcome, bool(published.regressions)
    log.error("monitor %s: run %s could not finish: %s", name, plan.run_id, error)
    return dataclasses.replace(base, error=error), False


async def _cleaned_run(plan: RunPlan, store_path: str | Path, tracker: ProblemTracker) -> RunResult:
    """The run with the cleanup policy and the problem tracker subscribed; one that could not finish (cut off by
    the time bound, an unreachable target, a crash) is cleaned up too, at its own target, unless
    ``monitor.cleanup`` is keep."""
    async with open_run(plan, kind="monitor", store_path=store_path) as run:
        policy = CleanupPolicy(run)
        run.subscribe(policy, tracker, *MetricsPush.for_run(run))
        try:
            return await execute(run)
        except ConfigError:
            raise
        except (Exception, asyncio.CancelledError):
            if policy.after_run != "keep":
                await _clean_up(policy)
            raise


async def _clean_up(policy: CleanupPolicy) -> None:
    """Remove what a run that could not finish had sent (bounded; a failure here is logged, not raised)."""
    run_id = policy.run.plan.run_id
    if not policy.run.store.has_run(run_id):
        return
    try:
        # Past its time bound already: what is not in Bonzo yet is recorded as pending at once, not waited for.
        report = await asyncio.wait_for(policy.clean(wait=0), timeout=CLEANUP_SECONDS)
        log.warning(
            "cleaned up run %s after it failed: %d deleted, %d pending (the next run's cleanup or "
            "`bonzo-bulk cleanup --pending --yes` removes them)",
            run_id,
            len(report.deleted),
            len(report.missing),
        )
    except Exception as exc:  # cleanup after a failure is best effort; `bonzo-bulk cleanup --run` can finish it
        log.warning("cleanup of run %s failed (%s); run `bonzo-bulk cleanup --run %s --yes`", run_id, exc, run_id)
