"""Prometheus metrics of finished runs: the last run's verdict and time per integration and target, records by
outcome, processing time as a histogram with real buckets, API requests per record.

Built with ``prometheus-client`` in a :class:`~prometheus_client.CollectorRegistry` of their own (never the
process-global one), from a finished :class:`~bonzo_bulk.models.RunResult` and the per-record times in the run
store. ``bonzo-bulk serve`` exposes them for the store's latest runs on ``/metrics``; a batch run pushes its
own to a Pushgateway when ``BONZO_BULK_PUSHGATEWAY_URL`` is set (:class:`MetricsPush`, subscribed by the front
doors and the modes, never by the engine). Labels stay bounded: integration, target, phase, outcome, stage —
never a run or record id.

Example::

    figures = RunFigures.of(result, store)
    text = exposition(registry_of([figures]))
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import basic_auth_handler, default_handler, push_to_gateway
from prometheus_client.registry import Collector

from bonzo_bulk.config.environment import environment
from bonzo_bulk.engine.context import RunContext
from bonzo_bulk.engine.events import Event, RunDone
from bonzo_bulk.models import PhaseResult, RunResult
from bonzo_bulk.secrets import redact, register_secret_parts
from bonzo_bulk.store import RunStore

log = logging.getLogger("bonzo_bulk")

PUSHGATEWAY_ENV = "BONZO_BULK_PUSHGATEWAY_URL"
PUSH_JOB = "bonzo_bulk"
PUSH_TIMEOUT = 10.0
PROCESSING_BUCKETS: tuple[float, ...] = (0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800)
"""Upper bounds (seconds) of the processing-time histogram: sub-second sandbox runs to a 30-minute backlog."""


@dataclass(frozen=True, slots=True)
class Histogram:
    """Observations counted into :data:`PROCESSING_BUCKETS` (cumulative, as Prometheus wants them)."""

    cumulative: tuple[int, ...]
    """How many observations were at most each bound, then all of them (``+Inf``)."""
    total: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Histogram:
        counts = [0] * (len(PROCESSING_BUCKETS) + 1)
        total = 0.0
        for value in values:
            counts[bisect.bisect_left(PROCESSING_BUCKETS, value)] += 1
            total += value
        cumulative, running = [], 0
        for count in counts:
            running += count
            cumulative.append(running)
        return cls(tuple(cumulative), total)

    def buckets(self) -> list[tuple[str, float]]:
        bounds = [*(f"{b:g}" for b in PROCESSING_BUCKETS), "+Inf"]
        return [(bound, float(count)) for bound, count in zip(bounds, self.cumulative, strict=True)]


@dataclass(frozen=True, slots=True)
class PhaseFigures:
    """One phase's figures: records by outcome, failures by stage, processing time, API cost."""

    phase: str
    passed: bool
    records: Mapping[str, int]
    """Records by outcome: ``passed`` and ``failed`` (at least one failed check) add up to the phase."""
    failures_by_stage: Mapping[str, int]
    processing: Histogram
    api_requests_per_record: float

    @classmethod
    def of(cls, phase: PhaseResult, processing_seconds: Iterable[float]) -> PhaseFigures:
        m = phase.metrics
        return cls(
            phase=phase.kind,
            passed=phase.passed,
            records={"passed": max(0, m.generated - phase.failed_records), "failed": phase.failed_records},
            failures_by_stage=dict(m.failures_by_stage),
            processing=Histogram.of(processing_seconds),
            api_requests_per_record=m.api_requests_per_record,
        )


@dataclass(frozen=True, slots=True)
class RunFigures:
    """A finished run's metrics, labelled by its integration and target only."""

    integration: str
    target: str
    passed: bool
    duration_seconds: float
    finished_timestamp: float
    phases: tuple[PhaseFigures, ...]

    @classmethod
    def of(cls, result: RunResult, store: RunStore) -> RunFigures:
        """From a finished run; each record's processing time is read from the run store."""
        return cls(
            integration=result.integration,
            target=result.target,
            passed=result.passed,
            duration_seconds=max(0.0, (result.finished_at - result.started_at).total_seconds()),
            finished_timestamp=result.finished_at.timestamp(),
            phases=tuple(
                PhaseFigures.of(p, store.processing_seconds(result.run_id, p.kind).values()) for p in result.phases
            ),
        )


def _gauge(name: str, documentation: str, labels: Sequence[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


class RunCollector(Collector):
    """Collects the figures ``source`` gives, each time it is scraped (a source may read the store anew)."""

    def __init__(self, source: Callable[[], Sequence[RunFigures]]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        runs = self.source()
        run_labels = ("integration", "target")
        phase_labels = (*run_labels, "phase")
        passed = _gauge("bonzo_bulk_run_passed", "1 when the last run passed every threshold, else 0", run_labels)
        duration = _gauge("bonzo_bulk_run_duration_seconds", "how long the last run took, start to verdict", run_labels)
        finished = _gauge(
            "bonzo_bulk_run_finished_timestamp_seconds", "when the last run finished (Unix time)", run_labels
        )
        phase_passed = _gauge("bonzo_bulk_phase_passed", "1 when the last run's phase passed, else 0", phase_labels)
        records = _gauge("bonzo_bulk_records", "the last run's records by outcome", (*phase_labels, "outcome"))
        stages = _gauge(
            "bonzo_bulk_failures_by_stage",
            "the last run's failed records by the stage that failed",
            (*phase_labels, "stage"),
        )
        api = _gauge(
            "bonzo_bulk_api_requests_per_record", "Bonzo API requests the last run spent per record", phase_labels
        )
        processing = HistogramMetricFamily(
            "bonzo_bulk_processing_seconds",
            "the last run's time from delivery to the prospect in Bonzo, per record",
            labels=phase_labels,
        )
        for run in runs:
            labels = [run.integration, run.target]
            passed.add_metric(labels, float(run.passed))
            duration.add_metric(labels, run.duration_seconds)
            finished.add_metric(labels, run.finished_timestamp)
            for phase in run.phases:
                at = [*labels, phase.phase]
                phase_passed.add_metric(at, float(phase.passed))
                for outcome, count in sorted(phase.records.items()):
                    records.add_metric([*at, outcome], float(count))
                for stage, count in sorted(phase.failures_by_stage.items()):
                    stages.add_metric([*at, stage], float(count))
                api.add_metric(at, phase.api_requests_per_record)
                processing.add_metric(at, phase.processing.buckets(), phase.processing.total)
        yield from (passed, duration, finished, phase_passed, records, stages, api, processing)


def registry_of(source: Sequence[RunFigures] | Callable[[], Sequence[RunFigures]]) -> CollectorRegistry:
    """A registry of its own holding the runs' metrics (``source`` is called at each collection when callable)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunCollector(source if callable(source) else lambda: source))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus' text format."""
    return generate_latest(registry)


def _handler(username: str | None, password: str | None) -> Callable[..., Callable[[], None]]:
    if username is None:
        return default_handler

    def with_credentials(
        url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes
    ) -> Callable[[], None]:
        return basic_auth_handler(url, method, timeout, headers, data, username, password or "")

    return with_credentials


class MetricsPush:
    """Pushes a finished run's metrics to a Pushgateway, grouped by integration and target; a push that fails
    is a warning and never fails the run, and the gateway's URL (it may hold credentials) is never shown.

    Example::

        push = MetricsPush.from_environment(os.environ, store)
        if push: run.subscribe(push)
    """

    def __init__(self, url: str, store: RunStore) -> None:
        register_secret_parts(url)
        parts = urlsplit(url if "://" in url else f"http://{url}")
        self._username, self._password = parts.username, parts.password
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        self._gateway = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.store = store
        self.pushed: RunFigures | None = None
        """What was pushed, once the run is done (None when the push failed or has not happened)."""

    @classmethod
    def from_environment(cls, env: Mapping[str, str], store: RunStore) -> MetricsPush | None:
        """A pusher when ``BONZO_BULK_PUSHGATEWAY_URL`` is set, else None."""
        url = env.get(PUSHGATEWAY_ENV, "").strip()
        return cls(url, store) if url else None

    @classmethod
    def for_run(cls, run: RunContext, env: Mapping[str, str] | None = None) -> tuple[MetricsPush, ...]:
        """What a run subscribes to push its metrics: a pusher when the variable is set (in the environment or a
        ``.env`` file), else nothing."""
        values = environment(run.plan.loaded.base_dir) if env is None else env
        push = cls.from_environment(values, run.store)
        return (push,) if push is not None else ()

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunDone):
            self.push(event.result)

    def push(self, result: RunResult) -> bool:
        """Push ``result``'s metrics (replacing the group's previous ones); whether it worked."""
        try:
            figures = RunFigures.of(result, self.store)
            push_to_gateway(
                self._gateway,
                job=PUSH_JOB,
                registry=registry_of([figures]),
                grouping_key={"integration": figures.integration, "target": figures.target},
                timeout=PUSH_TIMEOUT,
                handler=_handler(self._username, self._password),
            )
        except Exception as exc:  # a push is best effort: the verdict stands whatever the gateway says
            reason = redact(str(exc)).replace(self._gateway, "***")
            log.warning(
                "metrics of run %s were not pushed to the Pushgateway (%s): %s: %s; the run's verdict stands",
                result.run_id,
                PUSHGATEWAY_ENV,
                type(exc).__name__,
                reason,
            )
            return False
        self.pushed = figures
        log.info("metrics of run %s pushed to the Pushgateway (%s)", result.run_id, PUSHGATEWAY_ENV)
        return True
