"""``bonzo-bulk serve`` used as a person uses it, in real Chromium (Playwright): the index names each integration's
verdict and a click opens the run; the live page's funnel moves while a run in another process is in flight, without
a reload; a change is refused without the token and works after logging in with it.

With ``BONZO_BULK_SCREENSHOTS`` set to a folder (``docs/images`` for the docs), each page is also saved there."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from builders import DROPPED, FAULTY, RunSpec, begin_run_of, build_run

from bonzo_bulk.models import RunResult
from bonzo_bulk.sandbox import SandboxServer
from bonzo_bulk.serve.server import ServeServer
from bonzo_bulk.store import RunStore

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

TOKEN = "browser-token-0123456789abcdef"
NOW = datetime.now(UTC)


def _runs() -> list[RunResult]:
    hourly = [
        build_run(
            RunSpec(records=12, run_id=f"r-mb-{i}", started_at=NOW - timedelta(hours=i), processing_ms=900 + 90 * i)
        )
        for i in range(6, 0, -1)
    ]
    zillow = [
        build_run(RunSpec(records=12, integration="zillow", run_id="r-zl-1", started_at=NOW - timedelta(hours=3))),
        build_run(
            RunSpec(
                records=30,
                faults={**FAULTY, 25: DROPPED, 26: DROPPED},
                integration="zillow",
                run_id="r-zl-2",
                started_at=NOW - timedelta(hours=2),
            )
        ),
    ]
    old = [
        build_run(RunSpec(records=8, integration="hubspot", run_id=f"r-hs-{i}", started_at=NOW - timedelta(days=i)))
        for i in (9, 8, 7)
    ]
    return [*hourly, *zillow, *old]


@pytest.fixture(scope="module")
def store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve-browser") / "runs.sqlite3"
    with RunStore(path) as store:
        for result in _runs():
            begin_run_of(store, result)
            store.finish_run(result)
    return path


@pytest.fixture(scope="module")
def server(store_file: Path) -> Iterator[ServeServer]:
    with ServeServer(str(store_file)) as running:
        yield running


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    yield context.new_page()
    context.close()


def _shoot(page: Page, name: str) -> None:
    folder = os.environ.get("BONZO_BULK_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=False)


def test_the_index_lists_each_integration_with_its_verdict_and_a_click_opens_the_run(
    page: Page, server: ServeServer
) -> None:
    page.goto(server.url + "/")
    rows = page.locator("#groups tbody tr")
    verdicts = {row.get_attribute("data-integration"): row.locator(".badge.verdict").inner_text() for row in rows.all()}
    assert verdicts == {"monitorbase": "PASSED", "zillow": "FAILED", "hubspot": "PASSED"}
    stale = page.locator('#groups tr[data-integration="hubspot"] .badge.stale')
    assert stale.count() == 1  # daily runs, none for a week
    assert page.locator('#groups tr[data-integration="monitorbase"] .badge.stale').count() == 0
    _shoot(page, "serve-index.png")

    page.click('#groups tr[data-integration="zillow"] a.run-link')
    page.wait_for_url(server.url + "/runs/r-zl-2")
    assert page.inner_text("#run-verdict") == "FAILED"
    assert page.locator("#failing-table tbody tr").count() > 0
    page.wait_for_function("document.querySelector('#dashboard').contentDocument.querySelector('.plot .main-svg')")
    assert "r-zl-2" in page.frame_locator("#dashboard").locator("body").inner_text()
    _shoot(page, "serve-run.png")


def _config(tmp_path: Path, sandbox: SandboxServer, make_config: Any) -> Path:
    make_config(
        tmp_path,
        sandbox.url,
        test_records=45,
        webhook_settings={"rate_limit": 12.0, "concurrent_requests": 2},
    )
    return tmp_path / "config.yaml"


def test_the_live_funnel_moves_while_a_run_in_another_process_is_in_flight(
    page: Page, server: ServeServer, store_file: Path, sandbox: SandboxServer, make_config: Any, tmp_path: Path
) -> None:
    config = _config(tmp_path, sandbox, make_config)
    page.goto(server.url + "/live")
    page.wait_for_function("document.querySelector('#connection').textContent === 'live'")
    page.evaluate(
        """() => {
        window.__sameDocument = true;
        window.__sent = [];
        new MutationObserver(() => {
            const cell = document.querySelector('.run [data-count="sent"]');
            if (cell) window.__sent.push(Number(cell.textContent));
        }).observe(document.getElementById('runs'), {childList: true, subtree: true});
    }"""
    )
    command = [sys.executable, "-m", "bonzo_bulk", "run", "--config", str(config), "--store-url", str(store_file)]
    env = {**os.environ, "COLUMNS": "200"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env) as run:
        try:
            page.wait_for_function("window.__sent.some((n) => n > 0 && n < 45)", timeout=60_000)
            _shoot(page, "serve-live.png")
            page.wait_for_selector(".run a.run-page", timeout=90_000)
        finally:
            output, _ = run.communicate(timeout=120)
    assert run.returncode == 0, output.decode(errors="replace")[-2000:]
    assert page.evaluate("window.__sameDocument") is True  # no reload: the events redrew the page
    sent = page.evaluate("window.__sent")
    assert len(set(sent)) >= 3 and sent[-1] >= 45
    assert page.locator(".run .run-state").first.inner_text() in ("PASSED", "FAILED")
    assert (
        page.locator('.run [data-count="judged"]').first.inner_text()
        == page.locator('.run [data-count="planned"]').first.inner_text()
    )
    page.click(".run a.run-page")
    page.wait_for_url(f"{server.url}/runs/*")
    assert page.inner_text("#run-verdict") in ("PASSED", "FAILED")


def test_a_change_is_refused_without_the_token_and_works_after_logging_in(page: Page, store_file: Path) -> None:
    with ServeServer(str(store_file), token=TOKEN) as guarded:
        page.goto(guarded.url + "/runs/r-mb-1")
        page.wait_for_url(guarded.url + "/login?next=/runs/r-mb-1")  # reading needs the token too
        refused = page.request.post(guarded.url + "/api/runs/r-mb-1/baseline")
        assert refused.status == 401
        page.fill("#token", "not-the-token-at-all")
        page.click("#login")
        assert "not this server's token" in page.inner_text("#login-error")
        page.fill("#token", TOKEN)
        page.click("#login")
        page.wait_for_url(guarded.url + "/runs/r-mb-1")
        forged = page.request.post(guarded.url + "/runs/r-mb-1/baseline", form={"csrf_token": "forged"})
        assert forged.status == 403  # the session alone is not enough: the page's CSRF field is
        assert page.locator("#baseline-badge").count() == 0
        page.click("#make-baseline")
        page.wait_for_url(guarded.url + "/runs/r-mb-1")
        assert page.inner_text("#baseline-badge") == "BASELINE"
    with RunStore(store_file) as store:
        assert store.baseline_run_id("monitorbase") == "r-mb-1"
