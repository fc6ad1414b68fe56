"""The health dashboard and JSON summary: parsed back from the files, and rendered in headless Chromium."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from builders import DROPPED, FAULTY, MISSING, WRONG_OWNER, RunSpec, build_run, failed_checks, many_owners_run
from plotly.offline import get_plotlyjs

from bonzo_bulk.config.schema import RegressionSettings
from bonzo_bulk.models import RunResult
from bonzo_bulk.report import render_dashboard, write_json_summary
from bonzo_bulk.report.dashboard import MAX_FAILURE_ROWS, plotly_asset_name
from bonzo_bulk.report.plots import MATRIX_LIMIT, MISROUTES_SHOWN
from bonzo_bulk.report.regression import compare
from bonzo_bulk.report.summary import FAILURES_SHOWN
from bonzo_bulk.secrets import register_secret
from bonzo_bulk.store import RunSummary

CANARY = "canary-Sekret-7f3a9c2e1b"


class Page(HTMLParser):
    """What the tests read from a dashboard: plot JSON, plot divs, the failure table, the regression box."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.plots: dict[str, Any] = {}
        self.plot_divs: set[str] = set()
        self.failure_rows: list[list[str]] = []
        self.regression_class = ""
        self.regression_metrics: list[tuple[str, str]] = []
        self.external_scripts: list[str] = []
        self.omitted_text = ""
        self._json_id: str | None = None
        self._in_failures = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_omitted = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "script":
            if attr.get("src"):
                self.external_scripts.append(attr["src"] or "")
            if attr.get("type") == "application/json" and (attr.get("id") or "").startswith("plot-"):
                self._json_id = (attr.get("id") or "")[5:]
        elif tag == "div" and "plot" in (attr.get("class") or "").split():
            self.plot_divs.add((attr.get("id") or "")[4:])
        elif tag == "div" and attr.get("id") == "regressions":
            self.regression_class = attr.get("class") or ""
        elif tag == "li" and attr.get("data-metric"):
            self.regression_metrics.append((attr.get("data-phase") or "", attr["data-metric"] or ""))
        elif tag == "table" and attr.get("id") == "failure-table":
            self._in_failures = True
        elif tag == "tr" and self._in_failures:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif attr.get("id") == "failure-omitted":
            self._in_omitted = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._json_id = None
        elif tag == "table":
            self._in_failures = False
        elif tag == "td" and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row:
                self.failure_rows.append(self._row)
            self._row = None
        elif tag == "p":
            self._in_omitted = False

    def handle_data(self, data: str) -> None:
        if self._json_id is not None:
            self.plots[self._json_id] = json.loads(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._in_omitted:
            self.omitted_text += data


def _render(tmp_path: Path, result: RunResult, **kwargs: Any) -> tuple[str, Page]:
    path = render_dashboard(result, out=tmp_path / "dash.html", **kwargs)
    html = path.read_text(encoding="utf-8")
    return html, Page(html)


def _matrix(figure: dict[str, Any]) -> dict[tuple[str, str], int]:
    cells: dict[tuple[str, str], int] = {}
    for trace in figure["data"]:
        for row, values in zip(trace["y"], trace["z"], strict=True):
            for column, value in zip(trace["x"], values, strict=True):
                if value is not None:
                    cells[(row, column)] = cells.get((row, column), 0) + value
    return cells


@pytest.fixture
def faulty() -> RunResult:
    return build_run(faults=FAULTY, control=6, run_id="run_faulty")


def test_funnel_counts_come_from_the_metrics(tmp_path: Path, faulty: RunResult) -> None:
    _, page = _render(tmp_path, faulty)
    for phase in faulty.phases:
        [trace] = page.plots[f"funnel-{phase.kind}"]["data"]
        m = phase.metrics
        assert trace["x"] == [m.valid, m.delivered, m.created, m.assigned_correctly, m.mapped_correctly]
    assert page.plots["funnel-primary"]["data"][0]["x"] == [28, 27, 26, 24, 25]  # 30 generated, 2 invalid on purpose
    assert page.plot_divs >= set(page.plots)


def test_assignment_matrix_shows_who_got_which_record(tmp_path: Path, faulty: RunResult) -> None:
    _, page = _render(tmp_path, faulty)
    owners = _matrix(page.plots["owner-primary"])
    assert owners == {
        ("Alice Lender", "Alice Lender"): 9,
        ("Alice Lender", "(not created)"): 1,  # record 7
        ("Bob Broker", "Bob Broker"): 8,
        ("Bob Broker", "Carol Closer"): 1,  # record 11
        ("Carol Closer", "Carol Closer"): 9,
        ("Carol Closer", "(not delivered)"): 1,  # record 3
    }
    wrong = next(t for t in page.plots["owner-primary"]["data"] if t["name"] == "wrong")
    assert wrong["z"][1][wrong["x"].index("Carol Closer")] == 1
    teams = _matrix(page.plots["team-primary"])
    assert teams[("team 7", "team 99")] == 1  # record 14
    assert _matrix(page.plots["owner-control"]) == {(n, n): 2 for n in ("Alice Lender", "Bob Broker", "Carol Closer")}


def test_too_many_owners_for_a_matrix_become_a_table_of_misroutes(tmp_path: Path) -> None:
    """Past MATRIX_LIMIT owners a heatmap can be neither read nor carried (10,000 made a 2.4 GB page): the page
    lists the largest misroutes, most records first, and every officer in a table the least accurate first."""
    users = 5_000
    html, page = _render(tmp_path, many_owners_run(users, misrouted=70))
    assert "owner-primary" not in page.plots and "team-primary" not in page.plots
    table = re.search(r'<table class="misroutes" id="misroutes-owner-primary">(.*?)</table>', html, re.S)
    assert table is not None
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td class=\"num\">(\d+)</td></tr>", table.group(1))
    assert len(rows) == MISROUTES_SHOWN
    assert ("lo00000@lender.test", "lo00001@lender.test", "1") in rows
    assert "the 50 largest of 70 misroutes" in html
    assert "Too many teams for a matrix (more than 40): no record went to a wrong team." in html
    officers = re.search(r'<table class="per-user" id="per-user-primary">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert officers is not None
    listed = re.findall(r"<tr><td>(lo\d{5}@lender\.test)</td>", officers.group(1))
    assert (
        len(listed) == users and listed[0] == "lo00000@lender.test" and listed[-1] == f"lo{users - 1:05d}@lender.test"
    )
    assert f"{users} loan officers, the least accurate first" in html
    assert len(html) < 4_000_000


def test_a_few_owners_keep_their_matrix(tmp_path: Path) -> None:
    _, page = _render(tmp_path, many_owners_run(MATRIX_LIMIT, misrouted=5))
    assert "owner-primary" in page.plots
    assert _matrix(page.plots["owner-primary"])[("lo00000@lender.test", "lo00001@lender.test")] == 1


def test_failing_record_table_lists_every_failed_check(tmp_path: Path, faulty: RunResult) -> None:
    _, page = _render(tmp_path, faulty)
    assert [(row[0], row[1], row[3]) for row in page.failure_rows] == failed_checks(faulty)
    dropped = next(row for row in page.failure_rows if row[3] == "delivered")
    assert dropped[2:6] == ["delivery", "delivered", "2xx", "503"]
    assert page.omitted_text == ""


def test_field_stage_and_status_plots(tmp_path: Path, faulty: RunResult) -> None:
    _, page = _render(tmp_path, faulty)
    fields = page.plots["fields"]["data"][0]
    assert dict(zip(fields["x"], fields["y"], strict=True))["first_name"] == pytest.approx(100 * 25 / 26, abs=0.01)
    stages = page.plots["stages"]["data"][0]
    assert dict(zip(stages["x"], stages["y"], strict=True)) == {
        "delivery": 1,
        "processing": 2,
        "assignment": 3,
        "mapping": 1,
        "verification": 1,
    }
    status = page.plots["status"]["data"][0]
    # The valid records' answers, as the engine counts them (the 2 invalid ones are judged on their own).
    assert dict(zip(status["x"], status["y"], strict=True)) == {"200": 27, "503": 1}
    latency = page.plots["latency-primary"]
    assert sum(latency["data"][0]["y"][:-1]) == 30, "every delivery is in exactly one bin"
    marks = [a["text"] for a in latency["layout"]["annotations"]]
    assert [m.split()[0] for m in marks] == ["p50", "p95", "p99"]
    processing = page.plots["processing-primary"]
    assert processing["layout"]["xaxis"]["type"] == "log", "the slow record stretches the tail"
    assert sum(processing["data"][0]["y"][:-1]) == 26


def test_regression_flag_against_a_worse_run(tmp_path: Path) -> None:
    baseline = build_run(run_id="run_good", control=6)
    worse = build_run(
        RunSpec(run_id="run_bad", faults={3: DROPPED, 11: WRONG_OWNER}, control=6, processing_ms=2500, seed=3)
    )
    regressions = compare(worse, baseline, RegressionSettings())
    history = [RunSummary.from_result(baseline, is_baseline=True)]
    html, page = _render(tmp_path, worse, history=history, baseline=baseline, regressions=regressions)
    assert "warn" in page.regression_class.split(), "regressions not enforced: a warning"
    assert ("primary", "delivery_rate") in page.regression_metrics
    assert ("primary", "p95_processing_ms") in page.regression_metrics
    assert len(page.regression_metrics) == len(regressions)
    assert "against baseline" in html and "run_good" in html
    rates = page.plots["trend-rates"]
    marks = {t["name"]: t["x"] for t in rates["data"] if t["mode"] == "markers"}
    assert marks == {"baseline": [baseline.started_at.isoformat()], "this run": [worse.started_at.isoformat()]}

    _, clean = _render(tmp_path, baseline, history=history)
    assert clean.regression_class.split() == ["flags", "info"]
    assert "trend-rates" not in clean.plots, "one run is no trend"


def test_no_baseline_and_ok_states(tmp_path: Path) -> None:
    result = build_run(run_id="run_a")
    html, page = _render(tmp_path, result)
    assert "No baseline set" in html
    other = dataclasses.replace(result, run_id="run_b", started_at=result.started_at + timedelta(hours=1))
    html, page = _render(tmp_path, other, baseline=result, history=[RunSummary.from_result(result, is_baseline=True)])
    assert page.regression_class.split() == ["flags", "ok"]
    assert "No regressions against baseline" in html
    assert "SANDBOX RUN" in html


def test_live_runs_are_labelled_live(tmp_path: Path) -> None:
    html, _ = _render(tmp_path, build_run(target="live"))
    assert "LIVE RUN" in html
    assert "SANDBOX RUN" not in html


def test_self_contained_escaped_and_secret_free(tmp_path: Path) -> None:
    register_secret(CANARY)
    result = build_run(
        RunSpec(
            faults={3: DROPPED, 7: MISSING},
            error_text=f"Authorization: Bearer {CANARY} <script>alert(1)</script>",
            notes=(f"hook https://example.test/api/webhook/{CANARY}", "<b>bold?</b>"),
        )
    )
    html, page = _render(tmp_path, result, self_contained=True)
    assert not (tmp_path / "assets").exists()
    assert CANARY not in html
    assert "<script>alert(1)</script>" not in html
    assert "<b>bold?</b>" not in html and "&lt;b&gt;bold?&lt;/b&gt;" in html
    assert page.external_scripts == []
    assert "cdn." not in html.replace(get_plotlyjs(), "")
    assert html.count(get_plotlyjs()[:400]) == 1, "plotly.js is embedded once"
    summary = write_json_summary(result, tmp_path / "reports")
    assert CANARY not in summary.read_text(encoding="utf-8")


def test_json_summary_has_verdicts_first_and_latest_points_at_it(tmp_path: Path, faulty: RunResult) -> None:
    regressions = compare(faulty, build_run(run_id="base"), RegressionSettings())
    path = write_json_summary(faulty, tmp_path / "health", regressions=regressions, store=str(tmp_path / "runs.db"))
    assert path == tmp_path / "health" / "monitorbase_run_faulty.json"
    latest = tmp_path / "health" / "latest.json"
    assert latest.is_symlink() and latest.resolve() == path.resolve()
    document = json.loads(latest.read_text(encoding="utf-8"))
    keys = list(document)
    assert keys.index("verdicts") < keys.index("metrics") < keys.index("diagnoses") < keys.index("failures")
    assert document["passed"] is False and document["regressed"] is True
    assert len(document["failures"]) == document["failures_total"] == len(failed_checks(faulty))
    assert document["failures_not_shown"] == 0 and document["diagnoses"] == []
    assert document["metrics"]["primary"]["created"] == 26
    primary = document["phases"][0]
    assert primary["kind"] == "primary" and primary["records"] == len(faulty.phases[0].records)
    assert primary["failed_checks"] == len(faulty.phases[0].failures())
    assert "payload" not in json.dumps(document["phases"]), "records live in the store, not the summary"
    assert document["ledger"] == {
        "store": str(tmp_path / "runs.db"),
        "export": "bonzo-bulk export run_faulty --format jsonl",
    }
    second = write_json_summary(build_run(run_id="run_next"), tmp_path / "health")
    assert latest.resolve() == second.resolve() and path.is_file()


def test_json_summary_of_a_large_run_caps_failures_and_stays_small(tmp_path: Path) -> None:
    register_secret(CANARY)
    faults = dict.fromkeys(range(5, 10_000, 6), DROPPED)
    result = build_run(RunSpec(records=10_000, faults=faults, error_text=f"upstream {CANARY}", run_id="run_10k"))
    total = len(failed_checks(result))
    path = write_json_summary(result, tmp_path)
    text = path.read_text(encoding="utf-8")
    document = json.loads(text)
    assert total > FAILURES_SHOWN
    assert len(document["failures"]) == FAILURES_SHOWN
    assert document["failures_total"] == total
    assert document["failures_not_shown"] == total - FAILURES_SHOWN
    assert CANARY not in text and f"upstream {'***'}" in text, "secrets are masked in the one pass over the text"
    assert path.stat().st_size < 500_000, f"summary of 10k records is {path.stat().st_size} bytes"


def test_default_dashboards_share_one_plotly_file(tmp_path: Path, faulty: RunResult) -> None:
    first = render_dashboard(faulty, out=tmp_path / "one.html")
    asset = tmp_path / "assets" / plotly_asset_name()
    written = asset.stat().st_mtime_ns
    second = render_dashboard(build_run(run_id="run_two"), out=tmp_path / "two.html")
    assert asset.read_text(encoding="utf-8") == get_plotlyjs()
    assert asset.stat().st_mtime_ns == written, "the asset is written once per folder"
    assert sorted(p.name for p in (tmp_path / "assets").iterdir()) == [plotly_asset_name()]
    for page in (first, second):
        html = page.read_text(encoding="utf-8")
        assert Page(html).external_scripts == [f"assets/{plotly_asset_name()}"]
        assert get_plotlyjs()[:400] not in html
        assert page.stat().st_size < 500_000


def _big_run(records: int = 10_000) -> RunResult:
    faults = dict(zip(range(5, records, 6), [DROPPED, MISSING, WRONG_OWNER] * records, strict=False))
    return build_run(RunSpec(records=records, faults=faults, invalid=50, control=30, run_id="run_10k"))


def test_a_large_run_caps_the_table_and_aggregates_plots(tmp_path: Path) -> None:
    result = _big_run()
    started = time.perf_counter()
    html, page = _render(tmp_path, result)
    elapsed = time.perf_counter() - started
    total = len(failed_checks(result))
    assert total > MAX_FAILURE_ROWS
    assert len(page.failure_rows) == MAX_FAILURE_ROWS
    assert page.omitted_text.strip().startswith(f"{total - MAX_FAILURE_ROWS} more failed checks")
    assert all(len(trace["y"]) <= 41 for trace in page.plots["latency-primary"]["data"])
    without_plotly = len(html)
    assert get_plotlyjs()[:400] not in html
    assert without_plotly < 1_000_000, f"dashboard body is {without_plotly} bytes"
    print(
        f"\n10k-record dashboard: {len(html.encode()):,} bytes ({without_plotly:,} without plotly.js), {elapsed:.2f}s"
    )


def _chromium_dom(chromium: Path, page: Path, profile: Path) -> tuple[str, str, float]:
    """Load ``page`` in headless Chromium; return the DOM after scripts ran, the console log and wall time
    (printed, never asserted: the figure belongs to a benchmark, not a pass/fail)."""
    command = [
        str(chromium),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
        "--window-size=1400,2400",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr, elapsed


def _plot_divs(dom: str) -> Iterator[tuple[str, str]]:
    for match in re.finditer(r'<div class="plot[^"]*" id="fig-([^"]+)"', dom):
        end = dom.find('<script type="application/json"', match.end())
        yield match.group(1), dom[match.end() : end]


def test_chromium_renders_every_plot_without_script_errors(tmp_path: Path, faulty: RunResult, chromium: Path) -> None:
    baseline = build_run(run_id="run_base", control=6, started_at=faulty.started_at - timedelta(hours=1))
    history = [RunSummary.from_result(baseline, is_baseline=True), RunSummary.from_result(faulty)]
    regressions = compare(faulty, baseline, RegressionSettings())
    page = render_dashboard(
        faulty, history=history, baseline=baseline, regressions=regressions, out=tmp_path / "d.html"
    )
    dom, log, _ = _chromium_dom(chromium, page, tmp_path / "profile")
    console_lines = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert not [line for line in console_lines if "Uncaught" in line or "Error" in line], console_lines
    plots = dict(_plot_divs(dom))
    assert len(plots) == len(Page(page.read_text(encoding="utf-8")).plots) >= 14
    assert all('class="main-svg"' in body for body in plots.values()), [
        n for n, b in plots.items() if "main-svg" not in b
    ]
    assert f'data-plots-drawn="{len(plots)}"' in dom


def test_chromium_draws_a_10k_record_dashboard(tmp_path: Path, chromium: Path) -> None:
    page = render_dashboard(_big_run(), out=tmp_path / "big.html")
    dom, log, wall = _chromium_dom(chromium, page, tmp_path / "profile")
    assert "Uncaught" not in log
    rendered = re.search(r'data-rendered-ms="(\d+)"', dom)
    assert rendered is not None, "the plots never finished drawing"
    size = page.stat().st_size
    print(
        f"\n10k-record dashboard: {size:,} bytes; plots drawn {rendered.group(1)} ms after navigation; "
        f"chromium wall time {wall:.2f}s"
    )
