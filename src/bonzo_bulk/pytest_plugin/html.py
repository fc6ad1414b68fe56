"""The "Integration health" section the pytest plugin adds to a pytest-html report: the target, the
verdicts, per-user assignment, per-field mapping, timings and the failing checks, all redacted."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bonzo_bulk.judge.diagnosis import hook_diagnosis
from bonzo_bulk.judge.tally import verdict_text
from bonzo_bulk.models import PhaseResult, RunResult, Stage, percent
from bonzo_bulk.plan.files import PlanFiles
from bonzo_bulk.problems.track import RunProblems
from bonzo_bulk.report.publish import Published
from bonzo_bulk.report.rows import DEFAULT_LIMIT, failure_rows, failures_html, sporadic, systemic_html
from bonzo_bulk.secrets import redact, redact_cut
from bonzo_bulk.target.banner import target_banner

PHASE_TITLES = {"primary": "Primary hook (lo_email routing)", "control": "Control hook (explicit user_id)"}


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return html.escape(redact_cut(text, 80))


def _td(value: Any) -> str:
    if value in ("pass", "FAIL"):
        return f'<td class="bonzo-{"pass" if value == "pass" else "fail"}">{value}</td>'
    return f"<td>{_cell(value)}</td>"


def _html_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_td(v) for v in row) + "</tr>" for row in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f'<table class="bonzo-table">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


_CSS = """<style>
.bonzo-health{border:1px solid #ccc;border-radius:6px;padding:10px 14px;margin:10px 0;background:#fafafa}
.bonzo-health h2{margin:0 0 6px}.bonzo-health h3{margin:14px 0 4px}
.bonzo-target{display:inline-block;font-weight:bold;font-size:1.1em;padding:3px 10px;border-radius:4px}
.bonzo-target.sandbox{background:#fff3cd;border:1px solid #e0a800}
.bonzo-target.live{background:#f8d7da;border:1px solid #c82333}
.bonzo-pass{color:#1e7e34;font-weight:bold}.bonzo-fail{color:#c82333;font-weight:bold}
.bonzo-grid{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.bonzo-table{border-collapse:collapse;font-size:12px;margin:4px 0}
.bonzo-table th,.bonzo-table td{border:1px solid #ddd;padding:2px 8px;text-align:left}
.bonzo-table th{background:#eee}.bonzo-table caption{caption-side:bottom;font-size:11px;text-align:left}
.bonzo-extra{font-size:12px;margin:4px 0}
.bonzo-health .systemic{color:#c82333}.bonzo-health .systemic .fix{color:#333}
</style>"""


def _verdict_rows(phase: PhaseResult) -> list[tuple[str, str, str, str]]:
    rows = []
    for verdict in phase.metrics.thresholds:
        measured, wanted = verdict_text(verdict)
        rows.append((verdict.name, measured, wanted, "pass" if verdict.passed else "FAIL"))
    return rows


def _phase_html(phase: PhaseResult) -> str:
    m = phase.metrics
    verdict = '<span class="bonzo-pass">PASSED</span>' if phase.passed else '<span class="bonzo-fail">FAILED</span>'
    head = (
        f"<h3>{html.escape(PHASE_TITLES[phase.kind])} — {verdict}</h3>"
        f"<p>delivery success {m.delivered}/{m.valid} ({percent(m.delivery_rate)}) · sent {m.sent} vs created "
        f"{m.created} ({percent(m.creation_rate)} of delivered) · assignment accuracy "
        f"{percent(m.assignment_accuracy)} · mapping accuracy {percent(m.mapping_accuracy)} · "
        f"settled in {phase.settle_seconds:g} s</p>"
    )
    tables = [
        _html_table(
            ("threshold", "measured", "wanted", ""), _verdict_rows(phase), "threshold verdicts (from the config)"
        ),
        _html_table(
            ("user", "user_id", "expected", "found", "correct", "accuracy"),
            [(u.email, u.user_id, u.expected, u.found, u.correct, percent(u.accuracy)) for u in m.per_user],
            "assignment accuracy per user",
        ),
        _html_table(
            ("", "p50", "p90", "p95", "p99", "max"),
            [
                (name, *(f"{getattr(s, k) / 1000:.2f} s" for k in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")))
                for name, s in (("processing", m.processing_time), ("webhook response", m.delivery_latency))
            ],
            "processing time (sent -> created: the upper end of each record's interval) and response time",
        ),
        _html_table(
            ("stage", "failed checks"),
            [(stage.value, m.failures_by_stage.get(stage.value, 0)) for stage in Stage],
            "failures by stage; delivery errors: "
            + (", ".join(f"{k} {v}" for k, v in m.error_categories.items()) or "none"),
        ),
        _html_table(("field", "accuracy"), [(f, percent(a)) for f, a in m.field_accuracy.items()], "mapping per field"),
    ]
    return head + f'<div class="bonzo-grid">{"".join(tables)}</div>'


def _failures_section(result: RunResult, problems: RunProblems | None = None) -> str:
    """The run's systemic failures and failing checks, from the rows every output reads, each naming its problem
    (new or known) when the run's problems were tracked."""
    rows, left_off = failure_rows(result, limit=DEFAULT_LIMIT, problems=problems)
    found = sporadic(rows)
    if not rows:
        return ""
    listed = (
        ""
        if not found
        else (
            f"<details open><summary>failing checks ({len(found) + left_off})</summary>"
            f"{failures_html(rows, left_off)}</details>"
        )
    )
    return "<h3>Failures</h3>" + systemic_html(rows) + listed


def health_html(
    *, result: RunResult | None, plan_files: PlanFiles | None, published: Published | None, report_dir: Path
) -> str:
    """The "Integration health" section of the pytest-html report (no secret: everything is redacted)."""
    if result is None:
        if plan_files is None:
            return ""
        files = plan_files
        link = os.path.relpath(files.payloads, report_dir)
        return (
            f'{_CSS}<div class="bonzo-health"><h2>Integration health</h2><p><span class="bonzo-target sandbox">'
            f"DRY RUN — nothing was sent</span></p><p>{files.records} payloads planned and checked: "
            f'<a href="{html.escape(link)}">{html.escape(files.payloads.name)}</a></p></div>'
        )
    target = "live" if result.target == "live" else "sandbox"
    verdict = '<span class="bonzo-pass">PASSED</span>' if result.passed else '<span class="bonzo-fail">FAILED</span>'
    links = ""
    if published is not None:
        dashboard = os.path.relpath(published.dashboard, report_dir)
        summary = os.path.relpath(published.summary_json, report_dir)
        links = (
            f' · <a href="{html.escape(dashboard)}">health dashboard</a> · '
            f'<a href="{html.escape(summary)}">JSON summary</a>'
        )
        for regression in published.regressions:
            links += f'<br><span class="bonzo-fail">regression:</span> {html.escape(redact(regression.message))}'
    found = hook_diagnosis(result)
    diagnosis = found.text if found is not None else ""
    return (
        f'{_CSS}<div class="bonzo-health"><h2>Integration health</h2>'
        f'<p><span class="bonzo-target {target}">{html.escape(target_banner(result.target))}</span></p>'
        f"<p>run <code>{html.escape(result.run_id)}</code> · {html.escape(result.test_name)} · "
        f"integration {html.escape(result.integration)} · {verdict}{links}</p>"
        + (f"<p><strong>{html.escape(diagnosis)}</strong></p>" if diagnosis else "")
        + "".join(_phase_html(phase) for phase in result.phases)
        + _failures_section(result, published.problems if published is not None else None)
        + "".join(f"<p><small>{html.escape(redact(note))}</small></p>" for note in result.notes)
        + "</div>"
    )
