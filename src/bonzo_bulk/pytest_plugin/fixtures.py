"""The plugin's fixtures: the config, the plan and the bulk run (once per session, only the phases the
selected tests need), each phase, the hook's availability and the assertion helper."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bonzo_bulk.errors import BonzoBulkError, Interrupted
from bonzo_bulk.pytest_plugin.assertions import BulkChecks
from bonzo_bulk.pytest_plugin.session import (
    dry_run,
    fail,
    interrupt_session,
    loaded_config,
    log,
    needed_phases,
    state,
)

if TYPE_CHECKING:
    from bonzo_bulk.config.loader import LoadedConfig
    from bonzo_bulk.deliver.probe import ProbeResult
    from bonzo_bulk.models import CheckResult, PhaseResult, RunResult, Target
    from bonzo_bulk.plan.planner import RunPlan

DRY_RUN_SKIP = "--dry-run: nothing was sent"


@pytest.fixture(scope="session")
def bonzo_config(pytestconfig: pytest.Config) -> LoadedConfig:
    """The loaded config: ``--config`` (or ini ``bonzo_config``) with the command-line options applied."""
    try:
        return loaded_config(pytestconfig)
    except BonzoBulkError as exc:
        fail(exc)


@pytest.fixture(scope="session")
def bulk_plan(request: pytest.FixtureRequest, bonzo_config: LoadedConfig) -> RunPlan:
    """The session's records, planned once (with ``--dry-run`` also written to ``<reports_dir>/dry_run``)."""
    from bonzo_bulk.plan.files import write_plan
    from bonzo_bulk.plan.planner import plan_run

    current = state(request.config)
    if current.plan is None:
        phases = needed_phases(request.session)
        try:
            current.plan = plan_run(bonzo_config, phases=phases)
            if dry_run(request.config):
                current.plan_files = write_plan(current.plan, Path(bonzo_config.config.reports_dir) / "dry_run")
                log.info(
                    "Dry run: %d payloads planned (%s), nothing sent; written to %s",
                    current.plan_files.records,
                    ", ".join(phases),
                    current.plan_files.payloads,
                )
        except BonzoBulkError as exc:
            fail(exc)
    return current.plan


@pytest.fixture(scope="session")
def bulk_run(request: pytest.FixtureRequest, bulk_plan: RunPlan) -> RunResult:
    """The bulk run (deliver, settle, verify, then ``cleanup.after_run``), once per session; published at the
    session's end."""
    from bonzo_bulk._http import run_async
    from bonzo_bulk.library import execute, tracker_for

    if dry_run(request.config):
        pytest.skip(DRY_RUN_SKIP)
    current = state(request.config)
    if current.result is None:
        tracker = tracker_for(bulk_plan.loaded)
        try:
            current.result = run_async(execute(bulk_plan, problems=tracker))
        except Interrupted as exc:  # Ctrl-C or SIGTERM: the whole session stops, as pytest's own Ctrl-C does
            interrupt_session(exc)
        except BonzoBulkError as exc:
            fail(exc)
        current.problems = tracker.found
    assert current.result is not None
    return current.result


@pytest.fixture(scope="session")
def primary_phase(bulk_run: RunResult) -> PhaseResult:
    """The primary hook's results (records routed by ``lo_email``)."""
    assert bulk_run.primary is not None, "the primary phase was not planned"
    return bulk_run.primary


@pytest.fixture(scope="session")
def control_phase(bulk_run: RunResult, bonzo_config: LoadedConfig) -> PhaseResult:
    """The control hook's results (records carrying ``user_id``); skipped when no control hook is configured."""
    if bulk_run.control is None:
        why = "control: false in the config" if not bonzo_config.config.control else "SUPERUSER_WEBHOOK_URL is not set"
        pytest.skip(f"no control run: {why}")
    return bulk_run.control


@dataclass(frozen=True)
class HookAvailability:
    """Whether the webhook answers: a side-effect-free probe (live), or every POST of the run (sandbox)."""

    target: Target
    how: str
    checks: tuple[CheckResult, ...]
    probe: ProbeResult | None = None

    @property
    def reachable(self) -> bool:
        return all(c.passed for c in self.checks)


@pytest.fixture(scope="session")
def hook_availability(request: pytest.FixtureRequest, bonzo_config: LoadedConfig) -> HookAvailability:
    """Live: HEAD/GET/OPTIONS the hook (no lead is created, works with ``--dry-run``). Sandbox: the hook
    exists only during the run, so availability is every POST of the run having had an HTTP answer."""
    from bonzo_bulk._http import run_async
    from bonzo_bulk.deliver.probe import probe
    from bonzo_bulk.models import CheckResult, Stage
    from bonzo_bulk.secrets import redact

    config = bonzo_config.config
    if bonzo_config.target == "live" and config.webhook_url is not None:
        try:
            found = run_async(
                probe(config.webhook_url.get_secret_value(), attempts=1, timeout=config.webhook_settings.timeout)
            )
        except BonzoBulkError as exc:
            fail(exc)
        answer = f"HTTP answer in {found.latency_p50_ms:.0f} ms" if found.latency_p50_ms is not None else "answered"
        check = CheckResult(
            "webhook", "reachable", Stage.DELIVERY, found.reachable, "an HTTP answer", found.error or answer
        )
        return HookAvailability("live", f"probe of {found.url} (HEAD, GET, OPTIONS; no lead created)", (check,), found)
    result: RunResult = request.getfixturevalue("bulk_run")
    assert result.primary is not None
    checks = tuple(
        CheckResult(
            d.record_name,
            "answered",
            Stage.DELIVERY,
            d.status is not None,
            "an HTTP status",
            d.status if d.status is not None else d.error_category,
            redact(d.error or ""),
        )
        for d in (o.delivery for o in result.primary.outcomes)
        if d is not None
    )
    return HookAvailability("sandbox", "every POST of the run (the sandbox hook lives only during the run)", checks)


@pytest.fixture
def bulk_checks(request: pytest.FixtureRequest) -> BulkChecks:
    """Assertions on the session's checks and verdicts (see :class:`BulkChecks`)."""
    return BulkChecks(request.node)
