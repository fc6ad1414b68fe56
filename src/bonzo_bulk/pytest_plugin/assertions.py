"""What the integration tests assert with: :class:`BulkChecks` judges a phase's checks and threshold verdicts
by name and fails with :class:`IntegrationCheckFailed`, a table of the failing records, not a traceback."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from bonzo_bulk.models import CheckResult, Diagnosis, PhaseResult, Stage, ThresholdVerdict
    from bonzo_bulk.report.rows import ProblemOf

EXTRAS = pytest.StashKey[list[str]]()
"""Per test: the HTML the assertions noted, attached to the pytest-html row by the reporter."""


class IntegrationCheckFailed(AssertionError):
    """A test's checks failed: carries the failing records, shown as a table instead of a traceback."""

    def __init__(
        self,
        headline: str,
        failures: Sequence[CheckResult],
        verdicts: Sequence[ThresholdVerdict],
        diagnoses: Sequence[Diagnosis] = (),
        problem_of: ProblemOf | None = None,
    ) -> None:
        self.headline = headline
        self.problem_of = problem_of
        """Names each failure's problem, new or known (when the run's problems were tracked)."""
        self.diagnoses = tuple(diagnoses)
        self.failures = tuple(failures)
        self.verdicts = tuple(verdicts)
        super().__init__(self.render())

    def render(self) -> str:
        """The headline, the verdicts, then the failure rows: systemic ones with their fix, the records after."""
        from bonzo_bulk.report.rows import failures_text, phase_rows, verdict_line

        lines = [self.headline, *(verdict_line(v) for v in self.verdicts)]
        rows, left_off = phase_rows("", self.failures, self.diagnoses, limit=FAILURES_SHOWN, problem_of=self.problem_of)
        if self.failures:
            records = len({c.record_name for c in self.failures})
            lines.append(f"{records} record(s) failed {len(self.failures)} check(s):")
        if rows:
            lines.append(failures_text(rows, left_off))
        return "\n".join(lines)


FAILURES_SHOWN = 25
"""Failing checks listed in one test's failure message (the rest: the JSON summary and the dashboard)."""


class BulkChecks:
    """Assert a phase's checks and threshold verdicts by name; failures list the records as a table."""

    def __init__(self, item: pytest.Item) -> None:
        self.item = item

    def expect(
        self,
        phase: PhaseResult,
        title: str,
        *,
        stage: Stage | None = None,
        checks: Iterable[str] = (),
        prefix: str | None = None,
        verdict: str | Sequence[str] = (),
    ) -> list[CheckResult]:
        """Judge the phase's checks of a stage / by name / by prefix (see :meth:`expect_all`)."""
        names = set(checks)
        selected = [
            c
            for c in phase.checks()
            if (stage is None or c.stage is stage)
            and (not names or c.check in names)
            and (prefix is None or c.check.startswith(prefix))
        ]
        if not selected:
            verdicts = self._verdicts(phase, verdict)
            upstream = [c for c in phase.failures() if c.check in ("delivered", "created")]
            self._note(phase, f"{title} [{phase.kind}]", [], upstream, verdicts)
            raise IntegrationCheckFailed(
                f"{title} [{phase.kind}]: no record reached this check",
                upstream,
                verdicts,
                problem_of=self._problem_of(phase),
            )
        self.expect_all(title, selected, phase=phase, verdict=verdict)
        return selected

    def expect_all(
        self,
        title: str,
        results: Sequence[CheckResult],
        *,
        phase: PhaseResult | None = None,
        verdict: str | Sequence[str] = (),
    ) -> None:
        """Fail when a named verdict of ``phase`` failed and ``results`` hold failures (failures within
        the configured tolerance pass, noted in the report); with no verdict, on any failure. Nothing to
        judge is a failure too."""
        verdicts = self._verdicts(phase, verdict) if phase is not None else []
        failures = [c for c in results if not c.passed]
        label = f"{title} [{phase.kind}]" if phase is not None else title
        self._note(phase, label, results, failures, verdicts)
        if not results:
            raise IntegrationCheckFailed(f"{label}: nothing to check", [], verdicts)
        failed_verdicts = [v for v in verdicts if not v.passed]
        if failures and (failed_verdicts or not verdicts):
            records = {c.record_name for c in results}
            bad = {c.record_name for c in failures}
            failing = {c.check for c in failures}
            diagnoses = [d for d in phase.diagnoses if d.check in failing] if phase is not None else []
            raise IntegrationCheckFailed(
                f"{label}: {len(records) - len(bad)}/{len(records)} records passed",
                failures,
                verdicts,
                diagnoses,
                self._problem_of(phase),
            )

    def expect_verdicts(self, phase: PhaseResult, title: str, *names: str, stage: Stage | None = None) -> None:
        """Fail when any named threshold verdict failed; list the failing checks of ``stage``."""
        verdicts = self._verdicts(phase, names)
        failures = phase.failures(stage=stage) if stage is not None else []
        label = f"{title} [{phase.kind}]"
        self._note(phase, label, [], failures, verdicts)
        if any(not v.passed for v in verdicts):
            raise IntegrationCheckFailed(
                f"{label}: threshold not met", failures, verdicts, problem_of=self._problem_of(phase)
            )

    def _problem_of(self, phase: PhaseResult | None) -> ProblemOf | None:
        """How this session's run names a failure's problem (new or known), when its problems were tracked."""
        import functools

        from bonzo_bulk.pytest_plugin.session import STATE

        current = self.item.config.stash.get(STATE, None)
        problems = current.problems if current is not None else None
        if problems is None or phase is None:
            return None
        return functools.partial(problems.label, phase.kind)

    @staticmethod
    def _verdicts(phase: PhaseResult, names: str | Sequence[str]) -> list[ThresholdVerdict]:
        wanted = [names] if isinstance(names, str) else list(names)
        by_name = {v.name: v for v in phase.metrics.thresholds}
        missing = [n for n in wanted if n not in by_name]
        if missing:
            raise IntegrationCheckFailed(
                f"no verdict named {', '.join(missing)} in the {phase.kind} phase (have: {', '.join(by_name)})", [], []
            )
        return [by_name[n] for n in wanted]

    def _note(
        self,
        phase: PhaseResult | None,
        label: str,
        selected: Sequence[CheckResult],
        failures: Sequence[CheckResult],
        verdicts: Sequence[ThresholdVerdict],
    ) -> None:
        """Keep what was judged for the test's pytest-html row, and each verdict as a JUnit property."""
        from bonzo_bulk.report.rows import failures_html, phase_rows, verdict_line

        lines = [html.escape(verdict_line(v)) for v in verdicts]
        if selected:
            lines.append(f"{len(selected) - len(failures)}/{len(selected)} checks passed")
        if failures and all(v.passed for v in verdicts) and verdicts:
            lines.append(f"{len(failures)} failing check(s) within the configured tolerance")
        body = "<br>".join(lines) + (
            failures_html(*phase_rows(phase.kind if phase else "", failures, problem_of=self._problem_of(phase)))
            if failures
            else ""
        )
        self.item.stash.setdefault(EXTRAS, []).append(
            f'<div class="bonzo-extra"><strong>{html.escape(label)}</strong><br>{body}</div>'
        )
        for verdict in verdicts:
            assert phase is not None
            self.item.user_properties.append((f"bonzo_{phase.kind}_{verdict.name}", round(verdict.actual, 4)))
