"""A whole bulk run, as the library, the CLI (``run``, ``health``) and the pytest plugin run it.

It opens the run like every mode does (:func:`bonzo_bulk.engine.context.open_run`), subscribes the
``cleanup.after_run`` policy and then the caller's subscribers (publishing, say), and runs the engine.
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
from bonzo_bulk.report.metrics import MetricsPush
from bonzo_bulk.target.endpoints import Progress


async def execute(
    plan: RunPlan,
    *,
    progress: Progress | None = None,
    store_path: str | Path | None = None,
    subscribers: Sequence[Subscriber] = (),
) -> RunResult:
    """Preflight, send a planned run, wait for it to settle, judge it, clean up after it as the config says;
    ``subscribers`` hear every event (after the cleanup policy and, with ``BONZO_BULK_PUSHGATEWAY_URL`` set, the
    metrics push)."""
    async with open_run(plan, progress=progress, store_path=store_path) as run:
        run.subscribe(CleanupPolicy(run), *MetricsPush.for_run(run), *subscribers)
        return await engine.execute(run)


def run_bulk(
    loaded: LoadedConfig,
    *,
    phases: Sequence[PhaseKind] = ("primary", "control"),
    progress: Progress | None = None,
    store_path: str | Path | None = None,
    subscribers: Sequence[Subscriber] = (),
) -> RunResult:
    """Plan and execute a bulk run synchronously (on uvloop where available)."""
    plan = plan_run(loaded, phases=phases)
    return run_async(execute(plan, progress=progress, store_path=store_path, subscribers=subscribers))
