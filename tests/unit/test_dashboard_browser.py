"""The dashboard used as a person uses it: Playwright drives Chromium to filter the failing records and
follow the links (table of contents, the JSON summary). One page load serves the module: each load parses
plotly.js and draws every plot, the slow part."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from builders import FAULTY, build_run, many_owners_run

from bonzo_bulk.models import CheckResult
from bonzo_bulk.report import render_dashboard, write_json_summary

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


FAULTY_RUN = build_run(faults=FAULTY, control=6, run_id="r20250304-100000-ab12")
FAILED: list[CheckResult] = [c for p in FAULTY_RUN.phases for c in p.checks() if not c.passed]


@pytest.fixture(scope="module")
def summary_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_json_summary(FAULTY_RUN, tmp_path_factory.mktemp("reports") / "integration_health_reports")


@pytest.fixture(scope="module")
def dashboard(browser: Browser, summary_json: Path) -> Iterator[Page]:
    """The faulty run's dashboard, written beside its JSON summary and opened once in Chromium."""
    path = render_dashboard(
        FAULTY_RUN, summary_json=summary_json, out=summary_json.with_name(f"monitorbase_{FAULTY_RUN.run_id}.html")
    )
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(path.resolve().as_uri())  # ``load``: the inline script (plots, filter handlers) has run
    yield page
    context.close()


def _visible_records(page: Page) -> list[str]:
    return page.locator("#failure-table tbody tr:visible td:nth-child(2)").all_inner_texts()


def test_failure_filter_narrows_by_text_and_stage_and_counts_what_it_shows(dashboard: Page) -> None:
    everything = _visible_records(dashboard)
    assert len(everything) == len(FAILED) > 5

    wrong_owner = next(c.record_name for c in FAILED if c.stage.value == "assignment")
    dashboard.fill("#failure-filter", wrong_owner.lower())
    shown = _visible_records(dashboard)
    assert set(shown) == {wrong_owner}
    assert len(shown) == sum(1 for c in FAILED if c.record_name == wrong_owner)
    assert dashboard.inner_text("#failure-shown") == str(len(shown))

    dashboard.fill("#failure-filter", "")
    dashboard.select_option("#failure-stage", "mapping")
    stages = dashboard.locator("#failure-table tbody tr:visible td:nth-child(3)").all_inner_texts()
    assert set(stages) == {"mapping"}
    assert len(stages) == sum(1 for c in FAILED if c.stage.value == "mapping")

    dashboard.fill("#failure-filter", "no record is called this")
    assert _visible_records(dashboard) == []
    assert dashboard.inner_text("#failure-shown") == "0"

    dashboard.select_option("#failure-stage", "")
    dashboard.fill("#failure-filter", "")
    assert _visible_records(dashboard) == everything


def test_table_of_contents_links_jump_to_their_sections(dashboard: Page) -> None:
    hrefs = dashboard.locator("nav.toc a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert "#failures" in hrefs and "#trends" in hrefs
    for href in hrefs:
        assert dashboard.locator(href).count() == 1, f"{href} points nowhere"
    dashboard.click("nav.toc a[href='#failures']")
    assert dashboard.evaluate("location.hash") == "#failures"
    assert dashboard.evaluate("window.scrollY") > 0
    top = dashboard.evaluate("document.querySelector('#failures').getBoundingClientRect().top")
    assert 0 <= top < dashboard.evaluate("window.innerHeight"), "the section is not in view"


def test_json_summary_link_opens_this_runs_summary(dashboard: Page, summary_json: Path) -> None:
    link = dashboard.locator("#summary-link")
    assert link.get_attribute("href") == summary_json.name
    link.click()
    dashboard.wait_for_url(summary_json.resolve().as_uri())
    document = json.loads(dashboard.locator("body").inner_text())
    assert document["run_id"] == FAULTY_RUN.run_id
    assert len(document["failures"]) == len(FAILED)


def test_a_loan_officer_is_found_among_thousands(browser: Browser, tmp_path: Path) -> None:
    """Past the matrix limit the officers' table has a search: typing an email or user id shows just that row."""
    path = render_dashboard(many_owners_run(3_000, misrouted=12), out=tmp_path / "many.html")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(path.resolve().as_uri())
        rows = "#per-user-primary tbody tr:visible"
        assert page.locator(rows).count() == 3_000
        page.fill("input[data-filter='per-user-primary']", "102042")
        assert page.locator(rows + " td:first-child").all_inner_texts() == ["lo02042@lender.test"]
        page.fill("input[data-filter='per-user-primary']", "")
        assert page.locator(rows).count() == 3_000
        assert page.locator("#misroutes-owner-primary tbody tr").count() == 12
    finally:
        context.close()
