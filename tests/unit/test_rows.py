"""The failure-row model: built once from a run, and every renderer (terminal, text, HTML, dashboard,
pytest-html, CI) shows the same records and values from it, redacted, escaped and capped the same way."""

from __future__ import annotations

import dataclasses
import html
import io
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from builders import FAULTY, build_run, with_checks
from rich.console import Console

from bonzo_bulk.models import CheckResult, RunResult, Stage
from bonzo_bulk.pytest_plugin.html import health_html
from bonzo_bulk.report import render_dashboard
from bonzo_bulk.report.ci import error_annotations, step_summary
from bonzo_bulk.report.rows import (
    SHORT_LIMIT,
    FailureRow,
    by_check,
    by_fix,
    failing_records,
    failure_rows,
    failures_html,
    failures_text,
    phase_rows,
    short,
    sporadic,
    systemic,
    systemic_html,
)
from bonzo_bulk.report.terminal import failures_table, systemic_text
from bonzo_bulk.secrets import register_secret

CANARY = "canary-Rows-Sekret-5d1e0b7a"
HOSTILE = '"><script>alert(1)</script>'


@pytest.fixture(scope="module")
def mixed() -> RunResult:
    """FAULTY's sporadic failures, a custom field no record kept (systemic), a secret and hostile HTML."""
    register_secret(CANARY)
    result = build_run(faults=FAULTY, control=6, run_id="run_rows")
    primary = result.primary
    assert primary is not None
    created = [c.record_name for c in primary.checks() if c.check == "created" and c.passed]
    extra = [
        CheckResult(name, "custom_fields.custom_1", Stage.MAPPING, False, "Loan-42", None, "mismatch")
        for name in created
    ]
    extra += [
        CheckResult(
            "TestRecord_MonitorBase_018",
            "field:phone",
            Stage.MAPPING,
            False,
            HOSTILE,
            f"token {CANARY}",
            f"the hook echoed {CANARY}",
        ),
        # The secret straddles the cut: cutting before redacting would leave its first half.
        CheckResult("TestRecord_MonitorBase_019", "field:notes", Stage.MAPPING, False, "ok", "x" * 150 + CANARY),
    ]
    phase = with_checks(primary, extra)
    return dataclasses.replace(result, phases=(phase, *result.phases[1:]))


def _terminal(rows: Sequence[FailureRow], left_off: int = 0) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=400, color_system=None, highlight=False)
    for fix, mended in by_fix(rows):
        console.print(systemic_text(mended, fix))
    console.print(failures_table(rows, left_off))
    return buffer.getvalue()


def test_every_renderer_shows_the_same_records_and_values_redacted(mixed: RunResult, tmp_path: Path) -> None:
    rows, left_off = failure_rows(mixed, limit=None)
    assert left_off == 0
    [custom] = systemic(rows)
    assert (custom.check, custom.phase, custom.kind) == ("custom_fields.custom_1", "primary", "systemic")
    assert custom.fix and custom.cause and custom.failed == custom.judged == 26
    records = {row.record for row in sporadic(rows)}
    assert "TestRecord_MonitorBase_011" in records and "TestRecord_MonitorBase_018" in records
    assert all(row.check != custom.check for row in sporadic(rows)), "a systemic check is one row, not 26"
    phone = next(row for row in rows if row.check == "field:phone")
    assert phone.actual == "token ***" and phone.message == "the hook echoed ***"

    outputs = {
        "text": failures_text(rows),
        "terminal": _terminal(rows),
        "html": html.unescape(systemic_html(rows) + failures_html(rows)),
        "dashboard": html.unescape(render_dashboard(mixed, out=tmp_path / "d.html").read_text(encoding="utf-8")),
        "pytest-html": html.unescape(health_html(result=mixed, plan_files=None, published=None, report_dir=tmp_path)),
        "ci summary": step_summary(mixed, [], None),
        "ci annotations": "\n".join(error_annotations(mixed, limit=100)),
    }
    for name, text in outputs.items():
        assert CANARY not in text and "canary-Rows" not in text, f"{name} leaks the secret"
        for record in records:
            assert record in text, f"{name} lacks {record}"
        assert "token ***" in text, f"{name} lacks the redacted value"
        assert custom.cause in text.replace("%0A", "\n"), f"{name} lacks the systemic cause"
        assert custom.fix in text, f"{name} lacks the fix"
    owner = next(row for row in rows if row.record == "TestRecord_MonitorBase_011" and row.check == "owner.id")
    for name in ("text", "terminal", "html", "dashboard", "pytest-html"):
        assert owner.expected in outputs[name] and owner.actual in outputs[name], name
    assert f"{owner.check}: {owner.change}" in outputs["terminal"] and owner.check_text in outputs["ci summary"]


def test_html_escapes_every_cell(mixed: RunResult, tmp_path: Path) -> None:
    rows, _ = failure_rows(mixed, limit=None)
    pieces = {
        "rows": systemic_html(rows) + failures_html(rows),
        "dashboard": render_dashboard(mixed, out=tmp_path / "d.html").read_text(encoding="utf-8"),
        "pytest-html": health_html(result=mixed, plan_files=None, published=None, report_dir=tmp_path),
    }
    for name, page in pieces.items():
        assert "<script>alert(1)" not in page, name
        assert html.escape(HOSTILE) in page, name


def test_the_cap_keeps_systemic_rows_and_counts_the_rest_everywhere(mixed: RunResult) -> None:
    everything, _ = failure_rows(mixed, limit=None)
    rows, left_off = failure_rows(mixed, limit=3)
    assert len(sporadic(rows)) == 3 and systemic(rows) == systemic(everything)
    assert left_off == len(sporadic(everything)) - 3
    line = f"{left_off} more failed checks not listed here"
    assert failures_text(rows, left_off).splitlines()[-1].startswith(f"… {line}")
    assert line in _terminal(rows, left_off)
    page = failures_html(rows, left_off, element_id="failure")
    assert re.search(rf'<p class="[^"]*" id="failure-omitted">{line}', page)
    assert page.count("<tr data-stage=") == 3 and 'id="failure-table"' in page
    assert "more failed" not in failures_text(everything)


def test_phase_rows_take_any_failed_checks_with_their_diagnoses(mixed: RunResult) -> None:
    primary = mixed.primary
    assert primary is not None
    rows, left_off = phase_rows("primary", primary.failures(), primary.diagnoses, limit=2)
    assert [row.kind for row in rows] == ["systemic", "sporadic", "sporadic"]
    assert left_off == len(primary.sporadic_failures()) - 2
    text = failures_text(rows)
    assert text.startswith("Systemic: [primary] custom_fields.custom_1 failed on 26 of 26 records:")
    assert "phase" not in text.splitlines()[2], "one phase: no phase column"
    header = text.splitlines()[2].split()
    assert header == ["record", "stage", "check", "expected", "actual", "note"]


def test_text_adds_a_phase_column_only_across_phases() -> None:
    result = build_run(faults=FAULTY, control=3, run_id="run_two_phases")
    control = result.phases[1]
    broken = CheckResult(control.outcomes[0].name, "owner", Stage.ASSIGNMENT, False, 101, 102, "mismatch")
    two = dataclasses.replace(result, phases=(result.phases[0], with_checks(control, [broken], replace=True)))
    rows, _ = failure_rows(two, limit=None)
    lines = failures_text(rows).splitlines()
    assert lines[0].split() == ["phase", "record", "stage", "check", "expected", "actual", "note"]
    assert any(line.startswith("control ") for line in lines)


def test_by_check_and_records_group_the_same_rows(mixed: RunResult) -> None:
    rows, _ = failure_rows(mixed, limit=None)
    summaries = by_check(rows)
    assert summaries[0].kind == "systemic" and summaries[0].line().startswith(
        "systemic: primary custom_fields.custom_1 failed for 26/26 records ("
    )
    owner = next(s for s in summaries if s.check == "owner.id")
    assert owner.line() == (
        f"sporadic: primary owner.id failed for 1/{owner.judged} records "
        f"(e.g. TestRecord_MonitorBase_011: {owner.example.change})"
    )
    grouped = failing_records(rows)
    assert sum(len(r.rows) for r in grouped) == len(sporadic(rows))
    assert [r.record for r in grouped] == list(dict.fromkeys(row.record for row in sporadic(rows)))


def test_short_redacts_before_it_cuts_and_shows_what_bare_text_would_hide() -> None:
    register_secret(CANARY)
    assert short("x" * 150 + CANARY) == "x" * 150 + "***"
    cut = short("y" * 200)
    assert len(cut) == SHORT_LIMIT and cut.endswith("…")
    assert short("Smith ") == '"Smith "' and short("") == '""' and short("a\nb") == '"a\\nb"'
    assert short({"tags": ["x"]}) == '{"tags": ["x"]}' and short("Zoë") == "Zoë"


def test_ci_says_a_shared_fix_once_and_carries_no_html_tag(mixed: RunResult) -> None:
    primary = mixed.primary
    assert primary is not None
    wrong = tuple(
        CheckResult(c.record_name, check, Stage.ASSIGNMENT, False, 101, 102)
        for c in primary.checks()
        if c.check == "created" and c.passed
        for check in ("owner", "owner_email")
    )
    both = dataclasses.replace(mixed, phases=(with_checks(primary, wrong),))
    rows, _ = failure_rows(both, limit=None)
    assert [row.check for row in systemic(rows)] == ["custom_fields.custom_1", "owner", "owner_email"]
    annotations = error_annotations(both, limit=100)
    owner_team = [line for line in annotations if "title=systemic%3A owner%2C owner_email (primary)::" in line]
    assert len(owner_team) == 1 and owner_team[0].count("Fix: check test_users") == 1
    summary = step_summary(both, [], None)
    assert "<script>" not in summary and "&lt;script>alert(1)&lt;/script>" in summary
    assert summary.count("**Fix:** check test_users") == 1
