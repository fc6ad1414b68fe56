"""The plugin's reporter object (registered by ``pytest_configure``, unregistered by ``pytest_unconfigure``):
failure tables in test reports, the pytest-html extras and "Integration health" section, the run published
at the session's end, and the terminal summary with its regression lines."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pytest

from bonzo_bulk.errors import BonzoBulkError
from bonzo_bulk.pytest_plugin.assertions import EXTRAS, IntegrationCheckFailed
from bonzo_bulk.pytest_plugin.session import STATE, state
from bonzo_bulk.target.banner import target_banner

if TYPE_CHECKING:
    from rich.table import Table


class _Writer(Protocol):
    def line(self, s: str = "", **markup: bool) -> None: ...


@dataclass(frozen=True)
class _Crash:
    path: str
    lineno: int
    message: str


class _FailureRepr:
    """The report body of an :class:`IntegrationCheckFailed`: its table, sized to the terminal."""

    def __init__(self, error: IntegrationCheckFailed, path: str, lineno: int) -> None:
        self.error = error
        self.reprcrash = _Crash(path, lineno, error.headline)

    def toterminal(self, tw: _Writer) -> None:
        for line in self.error.render().splitlines():
            tw.line(line, red=line.startswith(self.error.headline) or line.endswith(" FAILED"))

    def __str__(self) -> str:
        return self.error.render()


def _text(table: Table, width: int = 120) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, highlight=False, soft_wrap=False).print(table)
    return buffer.getvalue()


class Reporter:
    """Everything the plugin writes; idle (and importing nothing more) in a session that made no run."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.other_failures = 0
        """Tests that failed for a reason other than the run's checks (never waived by known problems)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Show :class:`IntegrationCheckFailed` as its table, and attach the per-test html extras."""
        report: pytest.TestReport = yield
        error = call.excinfo.value if call.excinfo is not None else None
        if isinstance(error, IntegrationCheckFailed) and report.failed:
            path, lineno, _ = item.location
            report.longrepr = _FailureRepr(error, path, (lineno or 0) + 1)  # type: ignore[assignment]
        elif report.failed:
            self.other_failures += 1
        extras = item.stash.get(EXTRAS, [])
        if report.when == "call" and extras:
            report.extras = [  # type: ignore[attr-defined]
                *getattr(report, "extras", []),
                {
                    "name": "bonzo-bulk",
                    "format_type": "html",
                    "content": "".join(extras),
                    "mime_type": None,
                    "extension": None,
                },
            ]
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Publish the run (JSON summary + dashboard) once; copy the JSON beside ``--html`` / ``--junitxml``."""
        current = session.config.stash.get(STATE, None)
        if current is None or current.result is None or current.loaded is None or current.published is not None:
            return
        from bonzo_bulk.report.publish import publish
        from bonzo_bulk.secrets import redact

        try:
            # pytest-html's --self-contained-html asks for one file to share: the dashboard embeds plotly.js too.
            self_contained = bool(session.config.getoption("self_contained_html", default=False))
            current.published = publish(
                current.result,
                current.loaded,
                self_contained=self_contained,
                problems=current.problems,
                fail_on_new_problems_only=new_problems_only(session.config),
            )
        except BonzoBulkError as exc:
            current.notes.append(f"publishing the run failed: {redact(str(exc))}")
            return
        regressed = bool(current.published.regressions) and current.loaded.config.regression.fail_on_regression
        if regressed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            current.notes.append("the run regressed and regression.fail_on_regression is set: the session fails")
        pending = current.published.verdict.cleanup_pending
        if pending and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            current.notes.append(f"{pending} record(s) are pending cleanup (they may still appear): the session fails")
        known_only = current.published.verdict.known_only and not self.other_failures
        if known_only and session.exitstatus == pytest.ExitCode.TESTS_FAILED:
            session.exitstatus = pytest.ExitCode.OK
            current.notes.append(
                "every failure is a known problem and --fail-on-new-problems-only is set: the session passes"
            )
        for option in ("htmlpath", "xmlpath"):
            target = session.config.getoption(option, default=None)
            if target:
                beside = Path(os.path.expandvars(str(target))).expanduser().with_suffix(".health.json")
                beside.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(current.published.summary_json, beside)
                current.beside.append(beside)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """The run's verdict tables and where its reports went."""
        current = terminalreporter.config.stash.get(STATE, None)
        if current is None or (current.result is None and current.plan_files is None):
            return
        from bonzo_bulk.judge.diagnosis import hook_diagnosis
        from bonzo_bulk.judge.verdict import RunVerdict
        from bonzo_bulk.report.publish import unpublished_verdict
        from bonzo_bulk.report.regression import regression_line
        from bonzo_bulk.report.terminal import phase_table, problem_lines

        terminalreporter.write_sep("=", "bonzo-bulk integration health")
        width = max(80, min(shutil.get_terminal_size().columns, 160))
        if current.plan_files is not None and current.result is None:
            terminalreporter.write_line(
                f"dry run: {current.plan_files.records} payloads planned, nothing sent -> {current.plan_files.payloads}"
            )
        if current.result is not None:
            result = current.result
            if current.published is not None:
                verdict = current.published.verdict
            elif current.loaded is not None:
                new_only = new_problems_only(terminalreporter.config)
                verdict = unpublished_verdict(
                    result, current.loaded, problems=current.problems, fail_on_new_problems_only=new_only
                )
            else:
                verdict = RunVerdict(result.passed, unverified=result.unverified)
            label = verdict.label
            terminalreporter.write_line(f"run {result.run_id} · {target_banner(result.target)} · {label}")
            for phase in result.phases:
                terminalreporter.write(_text(phase_table(phase), width))
            hooks = hook_diagnosis(result)
            if hooks is not None:
                terminalreporter.write_line(hooks.text, red=hooks.is_fault, green=not hooks.is_fault)
        for line in problem_lines(current.problems):
            terminalreporter.write_line(line)
        if current.published is not None:
            for regression in current.published.regressions:
                terminalreporter.write_line(regression_line(regression, current.published.baseline_run_id), red=True)
            terminalreporter.write_line(f"JSON summary: {current.published.summary_json}")
            terminalreporter.write_line(f"Dashboard:    {current.published.dashboard}")
        for path in current.beside:
            terminalreporter.write_line(f"JSON summary beside the report: {path}")
        for note in current.notes:
            terminalreporter.write_line(note, red=True)

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str]) -> None:
        """Put the "Integration health" section above pytest-html's results table."""
        current = state(self.config)
        if current.result is None and current.plan_files is None:
            return
        from bonzo_bulk.pytest_plugin.html import health_html

        html_path = Path(os.path.expandvars(str(self.config.getoption("htmlpath")))).expanduser()
        section = health_html(
            result=current.result,
            plan_files=current.plan_files,
            published=current.published,
            report_dir=html_path.resolve().parent,
        )
        if section:
            postfix.append(section)


def new_problems_only(config: pytest.Config) -> bool:
    """``--fail-on-new-problems-only``, else the ini key ``bonzo_fail_on_new_problems_only``."""
    flag = config.getoption("bonzo_fail_on_new_problems_only", default=None)
    return bool(flag if flag is not None else config.getini("bonzo_fail_on_new_problems_only"))
