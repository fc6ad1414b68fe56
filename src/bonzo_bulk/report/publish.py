"""Publish a finished run: baseline and statistical regressions, the JSON summary, the dashboard, CI outputs,
report retention — best effort after the verdict: a report that cannot be written is its own error, not the run's.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bonzo_bulk.config.loader import LoadedConfig, writable_folder
from bonzo_bulk.engine.events import Event, RunDone
from bonzo_bulk.errors import BonzoBulkError, ReportError
from bonzo_bulk.judge.verdict import RunVerdict, VerdictState
from bonzo_bulk.models import RunResult
from bonzo_bulk.problems.track import ProblemTracker, RunProblems
from bonzo_bulk.report.ci import write_ci_outputs
from bonzo_bulk.report.dashboard import distributions_of, render_dashboard
from bonzo_bulk.report.history_regression import detect
from bonzo_bulk.report.regression import Regression, compare
from bonzo_bulk.report.retention import PruneReport, prune
from bonzo_bulk.report.summary import HEALTH_DIR, summary_document, write_summary
from bonzo_bulk.secrets import redact
from bonzo_bulk.store import RunStore, StoreLocation
from bonzo_bulk.target.endpoints import store_location_for

log = logging.getLogger("bonzo_bulk")


@dataclass(frozen=True)
class Published:
    """Where a run's reports went, and how it compared with the baseline."""

    summary_json: Path
    summary: dict[str, Any]
    """The JSON summary as written (a :func:`~bonzo_bulk.report.summary.summary_document`, not yet redacted)."""
    dashboard: Path
    regressions: tuple[Regression, ...]
    baseline_run_id: str | None
    verdict: RunVerdict
    retention: PruneReport | None = None
    store: str | None = None
    """The run store's printable label (a path, or a URL without its password)."""
    problems: RunProblems | None = None
    """The run's problems, when they were tracked."""


def publish(
    result: RunResult,
    loaded: LoadedConfig,
    *,
    store_path: str | Path | None = None,
    fail_on_regression: bool = False,
    self_contained: bool = False,
    problems: RunProblems | None = None,
    fail_on_new_problems_only: bool = False,
) -> Published:
    """Compare with the baseline, write the JSON summary and the health dashboard of a finished run, then
    apply the report retention (``reports.keep_runs``). ``fail_on_regression`` enforces regressions
    like ``regression.fail_on_regression`` does; ``self_contained`` embeds plotly.js in the dashboard
    instead of sharing ``assets/`` in its folder."""
    started = time.perf_counter()
    config = loaded.config
    health_dir = Path(config.reports_dir) / HEALTH_DIR
    store_file = store_path or store_location_for(loaded)
    with RunStore(store_file) as store:
        # Like with like: a run is compared with, and trended beside, runs of its own kind only.
        kinds = (result.kind,)
        baseline_id = store.baseline_run_id(result.integration, result.kind)
        baseline = store.load_run(baseline_id, keep=0) if baseline_id and baseline_id != result.run_id else None
        history = store.list_runs(integration=result.integration, limit=30, kinds=kinds)
        comparable = store.list_runs(
            integration=result.integration, limit=4 * config.regression.history_runs, kinds=kinds
        )
        others = [baseline.run_id] if baseline else []
        concurrency = store.webhook_concurrency([result.run_id, *others, *(r.run_id for r in comparable)])
        distributions = distributions_of(result, store)
        pending = store.cleanup_pending(result.run_id)
    poll_interval_ms = 1000 * config.polling.interval
    regressions = (
        *(compare(result, baseline, config.regression, concurrency=concurrency) if baseline else ()),
        *detect(result, comparable, config.regression, poll_interval_ms=poll_interval_ms, concurrency=concurrency),
    )
    verdict = RunVerdict(
        result.passed,
        len(regressions),
        fail_on_regression or config.regression.fail_on_regression,
        new_problems=len(problems.new) if problems is not None else None,
        new_problems_only=fail_on_new_problems_only,
        unverified=result.unverified,
        cleanup_pending=pending,
    )
    store_label = StoreLocation.parse(store_file).label
    document = summary_document(result, regressions=regressions, store=store_label, problems=problems)
    summary = write_summary(document, health_dir)
    dashboard = render_dashboard(
        result,
        history=history,
        baseline=baseline,
        regressions=regressions,
        verdict=verdict,
        summary_json=summary,
        out=health_dir / f"{result.integration}_{result.run_id}.html",
        self_contained=self_contained,
        distributions=distributions,
        problems=problems,
    )
    log.info("Health dashboard: %s", dashboard)
    write_ci_outputs(result, regressions, dashboard, problems=problems)
    retention = prune(store_file, health_dir, keep=config.reports.keep_runs) if config.reports.keep_runs else None
    log.info("Published in %.2f s (baseline, summary, dashboard, retention)", time.perf_counter() - started)
    return Published(
        summary_json=summary,
        summary=document,
        dashboard=dashboard,
        regressions=regressions,
        baseline_run_id=baseline_id if baseline else None,
        verdict=verdict,
        retention=retention,
        store=store_label,
        problems=problems,
    )


@dataclass(frozen=True)
class Outcome:
    """A finished run's verdict, its reports when they could be written, else why not."""

    verdict: RunVerdict
    published: Published | None
    report_error: ReportError | None

    @property
    def exit_code(self) -> int:
        """The verdict's exit code; a passing run whose reports failed exits with the report error's code."""
        if self.verdict.exit_code or self.report_error is None:
            return self.verdict.exit_code
        return self.report_error.exit_code

    @property
    def label(self) -> str:
        """The verdict in the words of :attr:`exit_code`: ``PASSED, but its reports were not written`` when
        that is why a passing run exits non-zero."""
        if self.report_error is None:
            return self.verdict.label
        return f"{self.verdict.label}, but its reports were not written"

    @property
    def state(self) -> VerdictState:
        """The verdict's colour: ``bad`` whenever the exit code is not 0."""
        return "bad" if self.exit_code else self.verdict.state


def publish_best_effort(
    result: RunResult,
    loaded: LoadedConfig,
    *,
    fail_on_regression: bool = False,
    self_contained: bool = False,
    problems: RunProblems | None = None,
    fail_on_new_problems_only: bool = False,
) -> Outcome:
    """Write the run's reports, or say why not (naming the folder) without touching the verdict.

    A folder that cannot be written is bad input (exit 2: fix ``--reports-dir``); any other failure
    to write (a full disk, say) is exit 1.
    """
    try:
        published = publish(
            result,
            loaded,
            fail_on_regression=fail_on_regression,
            self_contained=self_contained,
            problems=problems,
            fail_on_new_problems_only=fail_on_new_problems_only,
        )
    except (BonzoBulkError, OSError) as exc:
        folder = Path(loaded.config.reports_dir)
        writable = writable_folder(folder)
        fix = "pick a writable folder with --reports-dir" if not writable else "check the folder and the disk"
        error = ReportError(
            f"the reports of run {result.run_id} were not written to {folder}: {redact(str(exc))}; {fix}, then "
            f"`bonzo-bulk report --run {result.run_id}` renders them again (the verdict stands)",
            path=str(folder),
            from_flag=not writable,
        )
        verdict = unpublished_verdict(
            result,
            loaded,
            fail_on_regression=fail_on_regression,
            problems=problems,
            fail_on_new_problems_only=fail_on_new_problems_only,
        )
        return Outcome(verdict, None, error)
    return Outcome(published.verdict, published, None)


def unpublished_verdict(
    result: RunResult,
    loaded: LoadedConfig,
    *,
    fail_on_regression: bool = False,
    problems: RunProblems | None = None,
    fail_on_new_problems_only: bool = False,
) -> RunVerdict:
    """The verdict of a run whose reports were not written: as :func:`publish` makes it, but with no regression
    (nothing was compared); the records its cleanup left pending still count, read from the run store when it
    can be read."""
    try:
        with RunStore(store_location_for(loaded)) as store:
            pending = store.cleanup_pending(result.run_id)
    except BonzoBulkError as exc:
        log.warning("cannot read run %s's pending cleanup from the run store: %s", result.run_id, redact(str(exc)))
        pending = 0
    return RunVerdict(
        result.passed,
        0,
        fail_on_regression or loaded.config.regression.fail_on_regression,
        new_problems=len(problems.new) if problems is not None else None,
        new_problems_only=fail_on_new_problems_only,
        unverified=result.unverified,
        cleanup_pending=pending,
    )


class Publisher:
    """Publishing as a run's subscriber: when the run is done, its reports are written (best effort).

    Example::

        tracker = tracker_for(loaded)
        publisher = Publisher(loaded, problems=tracker)
        result = run_bulk(loaded, subscribers=[publisher], problems=tracker)
        publisher.outcome.exit_code
    """

    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        fail_on_regression: bool = False,
        self_contained: bool = False,
        problems: ProblemTracker | None = None,
        fail_on_new_problems_only: bool = False,
    ) -> None:
        self.loaded = loaded
        self.fail_on_regression = fail_on_regression
        self.self_contained = self_contained
        self.problems = problems
        """The run's problem tracker (subscribed before this publisher): each failure is reported new or known."""
        self.fail_on_new_problems_only = fail_on_new_problems_only
        self.outcome: Outcome | None = None
        """The reports and verdict, once the run is done."""

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunDone):
            self.outcome = publish_best_effort(
                event.result,
                self.loaded,
                fail_on_regression=self.fail_on_regression,
                self_contained=self.self_contained,
                problems=self.problems.found if self.problems is not None else None,
                fail_on_new_problems_only=self.fail_on_new_problems_only,
            )

    def result(self) -> Outcome:
        """The outcome of publishing (the run must have finished)."""
        if self.outcome is None:
            raise RuntimeError("the run has not finished: nothing was published")
        return self.outcome
