"""A whole bulk run, as the library, the CLI (``run``, ``health``) and the pytest plugin run it.

It opens the run like every mode does (:func:`bonzo_bulk.engine.context.open_run`), subscribes the
``cleanup.after_run`` policy, the problem tracker (each failure as a new or known problem, in the run
store) and then the caller's subscribers (publishing, say), and runs the engine.
``bonzo_bulk.run_bulk`` and ``bonzo_bulk.execute`` are these.

Example::

    from bonzo_bulk import load_config, run_bulk

    result = run_bulk(load_config("tests/configs/monitorbase_test_config.yaml"))
    result.passed, result.primary.metrics.assignment_accuracy
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bonzo_bulk._http import run_async
from bonzo_bulk.cleanup.policy import CleanupPolicy
from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.engine import run as engine
from bonzo_bulk.engine.context import open_run
from bonzo_bulk.engine.events import Subscriber
from bonzo_bulk.models import PhaseKind, RunResult
from bonzo_bulk.plan.planner import RunPlan, plan_run
from bonzo_bulk.problems.track import ProblemTracker
from bonzo_bulk.report.metrics import MetricsPush
from bonzo_bulk.target.endpoints import Progress, store_location_for


async def execute(
    plan: RunPlan,
    *,
    progress: Progress | None = None,
    store_path: str | Path | None = None,
    subscribers: Sequence[Subscriber] = (),
    problems: ProblemTracker | None = None,
) -> RunResult:
    """Preflight, send a planned run, wait for it to settle, judge it, clean up after it as the config says,
    track its problems (``problems``, or a tracker of the run's store); ``subscribers`` hear every event
    after those two and, with ``BONZO_BULK_PUSHGATEWAY_URL`` set, the metrics push."""
    tracker = problems or tracker_for(plan.loaded, store_path)
    async with open_run(plan, progress=progress, store_path=store_path) as run:
        run.subscribe(CleanupPolicy(run), tracker, *MetricsPush.for_run(run), *subscribers)
        return await engine.execute(run)


def tracker_for(loaded: LoadedConfig, store_path: str | Path | None = None) -> ProblemTracker:
    """The problem tracker of a config's run store, with its ``monitor.problems`` settings."""
    return ProblemTracker(store_path or store_location_for(loaded), loaded.config.monitor.problems)


def run_bulk(
    loaded: LoadedConfig,
    *,
    phases: Sequence[PhaseKind] = ("primary", "control"),
    progress: Progress | None = None,
    store_path: str | Path | None = None,
    subscribers: Sequence[Subscriber] = (),
    problems: ProblemTracker | None = None,
) -> RunResult:
    """Plan and execute a bulk run synchronously (on uvloop where available)."""
    plan = plan_run(loaded, phases=phases)
    return run_async(
        execute(plan, progress=progress, store_path=store_path, subscribers=subscribers, problems=problems)
    )
