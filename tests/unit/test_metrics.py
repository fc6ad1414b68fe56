"""The Prometheus metrics of a finished run (report/metrics.py): what they say, their real buckets, bounded labels,
and the Pushgateway push — grouped by integration and target, best effort, its URL never shown."""

from __future__ import annotations

import base64
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from builders import FAULTY, RunSpec, begin_run_of, build_run
from prometheus_client.parser import text_string_to_metric_families

from bonzo_bulk.models import RunResult
from bonzo_bulk.report.metrics import PROCESSING_BUCKETS, Histogram, MetricsPush, RunFigures, exposition, registry_of
from bonzo_bulk.store import RunStore

RESULT = build_run(RunSpec(records=24, faults=FAULTY, control=6, run_id="run_metrics"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore(tmp_path / "runs.sqlite3") as opened:
        begin_run_of(opened, RESULT)
        opened.finish_run(RESULT)
        yield opened


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_histogram_counts_each_value_into_the_first_bound_at_or_above_it() -> None:
    histogram = Histogram.of([0.1, 0.25, 0.26, 7.0, 5000.0])
    buckets = dict(histogram.buckets())
    assert buckets["0.25"] == 2  # "le": a value on the bound counts in it
    assert buckets["0.5"] == 3
    assert buckets["5"] == 3
    assert buckets["10"] == 4
    assert buckets[f"{PROCESSING_BUCKETS[-1]:g}"] == 4
    assert buckets["+Inf"] == 5
    assert histogram.total == pytest.approx(5007.61)


def test_run_metrics_say_the_verdict_records_by_outcome_and_each_records_processing_time(store: RunStore) -> None:
    figures = RunFigures.of(RESULT, store)
    samples = _samples(exposition(registry_of([figures])))
    run = (("integration", "monitorbase"), ("target", "sandbox"))
    primary = (*run[:1], ("phase", "primary"), run[1])
    assert samples[("bonzo_bulk_run_passed", run)] == float(RESULT.passed) == 0.0
    assert samples[("bonzo_bulk_run_duration_seconds", run)] == 42.0
    phase = RESULT.primary
    assert phase is not None
    failed = samples[("bonzo_bulk_records", tuple(sorted((*primary, ("outcome", "failed")))))]
    passed = samples[("bonzo_bulk_records", tuple(sorted((*primary, ("outcome", "passed")))))]
    assert failed == phase.failed_records >= 3
    assert passed + failed == phase.metrics.generated == 24
    timed = store.processing_seconds(RESULT.run_id, "primary")
    assert samples[("bonzo_bulk_processing_seconds_count", tuple(sorted(primary)))] == len(timed) > 0
    assert samples[("bonzo_bulk_processing_seconds_sum", tuple(sorted(primary)))] == pytest.approx(sum(timed.values()))
    buckets = [v for (name, labels), v in samples.items() if name.endswith("_bucket") and primary[1] in labels]
    assert len(buckets) == len(PROCESSING_BUCKETS) + 1
    assert buckets == sorted(buckets)
    assert samples[("bonzo_bulk_api_requests_per_record", tuple(sorted(primary)))] == pytest.approx(
        phase.metrics.api_requests_per_record
    )
    label_values = {value for _, labels in samples for _, value in labels}
    assert RESULT.run_id not in label_values
    assert not any(value.startswith("TestRecord") for value in label_values)


class _Gateway:
    """A loopback stand-in of a Pushgateway's push endpoint: records each request's method, path, auth and body."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[tuple[str, str, str | None, bytes]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                gateway.requests.append(("PUT", self.path, self.headers.get("Authorization"), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Gateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def test_push_replaces_the_group_of_the_runs_integration_and_target_with_basic_auth(store: RunStore) -> None:
    with _Gateway() as gateway:
        push = MetricsPush(f"http://ci:gatewaypass-9f1@127.0.0.1:{gateway.port}/", store)
        assert push.push(RESULT)
    [(method, path, auth, body)] = gateway.requests
    assert (method, path) == ("PUT", "/metrics/job/bonzo_bulk/integration/monitorbase/target/sandbox")
    assert auth == "Basic " + base64.b64encode(b"ci:gatewaypass-9f1").decode()
    assert b'bonzo_bulk_run_passed{integration="monitorbase",target="sandbox"} 0.0' in body
    assert push.pushed is not None and push.pushed.integration == "monitorbase"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("status", [None, 500])
def test_a_failed_push_is_a_warning_that_never_shows_the_url(
    store: RunStore, caplog: pytest.LogCaptureFixture, status: int | None
) -> None:
    caplog.set_level(logging.INFO, logger="bonzo_bulk")
    secret = "pushsekret-77ab"
    if status is None:
        url = f"http://ops:{secret}@127.0.0.1:{_closed_port()}/gw"
        assert not MetricsPush(url, store).push(RESULT)
    else:
        with _Gateway(status) as gateway:
            url = f"http://ops:{secret}@127.0.0.1:{gateway.port}/gw"
            assert not MetricsPush(url, store).push(RESULT)
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    text = warning.getMessage()
    assert "not pushed to the Pushgateway (BONZO_BULK_PUSHGATEWAY_URL)" in text and "verdict stands" in text
    assert secret not in caplog.text
    assert "127.0.0.1" not in caplog.text


def test_no_variable_no_push(store: RunStore) -> None:
    assert MetricsPush.from_environment({}, store) is None
    assert MetricsPush.from_environment({"BONZO_BULK_PUSHGATEWAY_URL": "  "}, store) is None


def test_the_push_is_a_run_done_subscriber(store: RunStore) -> None:
    from bonzo_bulk.engine.events import RunDone

    with _Gateway() as gateway:
        push = MetricsPush(f"http://127.0.0.1:{gateway.port}", store)
        push(RunDone(_other(RESULT)))
    assert [path for _, path, _, _ in gateway.requests] == ["/metrics/job/bonzo_bulk/integration/zillow/target/sandbox"]


def _other(result: RunResult) -> RunResult:
    import dataclasses

    return dataclasses.replace(result, integration="zillow")
