"""A real Prometheus and a real Pushgateway (Debian's ``prometheus`` and ``prometheus-pushgateway``) on free loopback
ports: after a run, ``bonzo_bulk_run_passed{integration="monitorbase"}`` is queryable through Prometheus' HTTP API
both from scraping ``serve`` and from the Pushgateway the run pushed to (``BONZO_BULK_PUSHGATEWAY_URL``).

Skipped with the install hint when the binaries are missing; failing instead under ``CI=true`` (.ci/run installs them).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from browser import in_ci

from bonzo_bulk._http import run_async
from bonzo_bulk.library import execute
from bonzo_bulk.plan.planner import plan_run
from bonzo_bulk.sandbox import SandboxServer
from bonzo_bulk.serve.server import ServeServer

INSTALL_HINT = (
    "no prometheus / prometheus-pushgateway on PATH: install them with "
    "`apt-get install -y prometheus prometheus-pushgateway` (Debian/Ubuntu; CI's .ci/run does)"
)
WAIT_SECONDS = 60.0
QUERY = 'bonzo_bulk_run_passed{integration="monitorbase"}'
GRAFANA_DASHBOARD = Path(__file__).parents[3] / "examples" / "grafana" / "bonzo-bulk-dashboard.json"


def _binaries() -> tuple[str, str]:
    found = shutil.which("prometheus"), shutil.which("prometheus-pushgateway")
    if found[0] and found[1]:
        return found[0], found[1]
    if in_ci():
        pytest.fail(f"{INSTALL_HINT}. CI=true, so this test must run, not skip", pytrace=False)
    pytest.skip(INSTALL_HINT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own loopback URL
            return int(response.status), response.read()
    except OSError:
        return 0, b""


def _wait_until(what: str, check: Any, process: subprocess.Popen[bytes] | None = None) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if process is not None and process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise AssertionError(f"{what}: the process exited with {process.returncode}: {output[-2000:]}")
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {WAIT_SECONDS:g} s")


@contextmanager
def _running(command: list[str], ready_url: str) -> Iterator[None]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_until(f"{command[0]} ready", lambda: _get(ready_url)[0] == 200, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _prometheus_config(folder: Path, serve_at: str, gateway_at: str) -> Path:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "bonzo_bulk_serve", "static_configs": [{"targets": [serve_at]}]},
            {"job_name": "pushgateway", "honor_labels": True, "static_configs": [{"targets": [gateway_at]}]},
        ],
    }
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _query(prometheus_url: str, expression: str) -> dict[str, Any]:
    status, body = _get(f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': expression})}")
    return json.loads(body) if status == 200 else {"status": f"HTTP {status}", "body": body.decode(errors="replace")}


def _series(prometheus_url: str) -> dict[str, float]:
    answer = _query(prometheus_url, QUERY)
    if answer.get("status") != "success":
        return {}
    return {item["metric"]["job"]: float(item["value"][1]) for item in answer["data"]["result"]}


def _grafana_queries() -> dict[str, str]:
    """Each panel of examples/grafana's dashboard: its title and PromQL, the variables set to "All"."""
    dashboard = json.loads(GRAFANA_DASHBOARD.read_text(encoding="utf-8"))
    return {
        panel["title"]: target["expr"].replace("$integration", ".*").replace("$target", ".*")
        for panel in dashboard["panels"]
        for target in panel["targets"]
    }


def _both(series: dict[str, float]) -> dict[str, float] | None:
    """The series when Prometheus has it from both jobs: scraping serve, and the Pushgateway (honor_labels)."""
    return series if {"bonzo_bulk_serve", "bonzo_bulk"} <= set(series) else None


def test_prometheus_sees_the_run_by_scraping_serve_and_through_the_pushgateway(
    tmp_path: Path, sandbox: SandboxServer, make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    prometheus, pushgateway = _binaries()
    gateway_port, prometheus_port = _free_port(), _free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    gateway = [
        pushgateway,
        f"--web.listen-address=127.0.0.1:{gateway_port}",
        f"--persistence.file={tmp_path / 'pushgateway.data'}",
    ]
    with _running(gateway, f"{gateway_url}/-/ready"):
        monkeypatch.setenv("BONZO_BULK_PUSHGATEWAY_URL", gateway_url)
        loaded = make_config(tmp_path, sandbox.url, test_records=9)
        result = run_async(execute(plan_run(loaded)))
        pushed = _get(f"{gateway_url}/metrics")[1].decode()
        assert (
            'bonzo_bulk_run_passed{instance="",integration="monitorbase",job="bonzo_bulk",target="sandbox"}' in pushed
        )
        store = Path(loaded.config.reports_dir) / "runs.sqlite3"
        with ServeServer(str(store)) as serve:
            serve_at = serve.url.removeprefix("http://")
            config = _prometheus_config(tmp_path, serve_at, f"127.0.0.1:{gateway_port}")
            prometheus_url = f"http://127.0.0.1:{prometheus_port}"
            command = [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ]
            with _running(command, f"{prometheus_url}/-/ready"):
                series = _wait_until("both series in Prometheus", lambda: _both(_series(prometheus_url)))
                panels = {title: _query(prometheus_url, expr) for title, expr in _grafana_queries().items()}
    assert series == {"bonzo_bulk_serve": float(result.passed), "bonzo_bulk": float(result.passed)}
    # The Grafana dashboard's queries are valid PromQL over these metrics, and each has data (failures by stage
    # only when a record failed).
    assert {title: answer["status"] for title, answer in panels.items()} == dict.fromkeys(panels, "success")
    empty = {title for title, answer in panels.items() if not answer["data"]["result"]}
    assert empty <= ({"Failed records by stage (last run)"} if result.passed else set())
