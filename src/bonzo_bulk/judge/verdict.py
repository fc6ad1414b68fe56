"""The one verdict a run ends with, shared by the terminal's last line, the exit code and the dashboard's badge.

A run fails when a threshold failed, or when it regressed and regressions are enforced
(``--fail-on-regression`` or ``regression.fail_on_regression``). A regression that is not enforced is
a warning: the words never say PASSED next to a failing exit code, nor PASS next to a regression::

    >>> RunVerdict(thresholds_passed=True, regressions=1, fail_on_regression=True).label
    'FAILED (regression)'
    >>> RunVerdict(thresholds_passed=True, regressions=1, fail_on_regression=True).exit_code
    1
    >>> RunVerdict(thresholds_passed=True).label
    'PASSED'

With ``--fail-on-new-problems-only`` a failed threshold fails the run only when the run showed a new (or
reopened) problem; failures that are all known problems are a warning::

    >>> RunVerdict(thresholds_passed=False, new_problems=0, new_problems_only=True).exit_code
    0
    >>> RunVerdict(thresholds_passed=False, new_problems=1, new_problems_only=True).label
    'FAILED (1 new problem)'
    >>> RunVerdict(thresholds_passed=False, unverified=3).label
    'FAILED (3 records unverified: a listing never reached its end)'

A run whose automatic cleanup left records pending (delivered, not found before ``cleanup.straggler_wait`` ran
out) exits 1 whatever the thresholds say, until ``bonzo-bulk cleanup --pending`` accounts for them::

    >>> RunVerdict(thresholds_passed=True, cleanup_pending=2).exit_code
    1
    >>> RunVerdict(thresholds_passed=True, cleanup_pending=2).label
    'FAILED (2 records pending cleanup: run `bonzo-bulk cleanup --pending --yes`)'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

VerdictState = Literal["ok", "warn", "bad"]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@dataclass(frozen=True, slots=True)
class RunVerdict:
    """Thresholds, regressions against the baseline and whether regressions fail the run, as one verdict."""

    thresholds_passed: bool
    regressions: int = 0
    fail_on_regression: bool = False
    new_problems: int | None = None
    """New or reopened problems the run showed (None: problems were not tracked)."""
    new_problems_only: bool = False
    """``--fail-on-new-problems-only``: failed thresholds fail the run only with a new problem."""
    unverified: int = 0
    """Records that could not be checked (a listing never reached its end): named, never called not created."""
    unverified_reason: str = "a listing never reached its end"
    """Why they could not be checked (the run store or Bonzo's API failing before they were judged, say)."""
    cleanup_pending: int = 0
    """Records the automatic cleanup could not account for (may still appear in Bonzo): the run fails until
    ``bonzo-bulk cleanup --pending`` removes them."""

    @property
    def known_only(self) -> bool:
        """Thresholds failed, but on known problems only, and only new ones fail the run (never with records
        that could not be checked: an unverified record is no known problem)."""
        return not self.thresholds_passed and self.new_problems_only and self.new_problems == 0 and not self.unverified

    @property
    def failed(self) -> bool:
        """Whether the run failed: a threshold (a new problem, under --fail-on-new-problems-only), an enforced
        regression, or records its cleanup left pending."""
        thresholds_fail = not self.thresholds_passed and not self.known_only
        return thresholds_fail or (self.regressions > 0 and self.fail_on_regression) or self.cleanup_pending > 0

    @property
    def exit_code(self) -> int:
        """The documented exit code: 0 passed (regressions only warned), 1 failed (also: cleanup left records
        pending)."""
        return 1 if self.failed else 0

    @property
    def state(self) -> VerdictState:
        """``ok`` passed cleanly, ``warn`` passed with a regression that is not enforced, ``bad`` failed."""
        if self.failed:
            return "bad"
        return "warn" if self.regressions or self.known_only else "ok"

    @property
    def label(self) -> str:
        """The terminal's final word on the run, e.g. ``FAILED (regression)``."""
        if self.known_only and not self.failed:
            return "PASSED with known problems only (thresholds failed; --fail-on-new-problems-only)"
        if not self.thresholds_passed and self.new_problems_only and self.new_problems:
            return f"FAILED ({_plural(self.new_problems, 'new problem')})"
        if not self.thresholds_passed:
            unverified = (
                f" ({_plural(self.unverified, 'record')} unverified: {self.unverified_reason})"
                if self.unverified
                else ""
            )
            return (
                "FAILED"
                + unverified
                + (f" (and {_plural(self.regressions, 'regression')})" if self.regressions else "")
            )
        if self.cleanup_pending:
            pending = _plural(self.cleanup_pending, "record")
            return f"FAILED ({pending} pending cleanup: run `bonzo-bulk cleanup --pending --yes`)"
        if self.regressions and self.fail_on_regression:
            return "FAILED (regression)"
        if self.regressions:
            return (
                f"PASSED with {_plural(self.regressions, 'regression')} (a warning: --fail-on-regression or "
                "regression.fail_on_regression makes it fail)"
            )
        return "PASSED"

    @property
    def badge(self) -> str:
        """A short word for a badge: ``PASS``, ``FAIL``, ``FAIL (regression)``, ``REGRESSED`` or ``KNOWN``."""
        if self.known_only and not self.failed:
            return "KNOWN"
        if not self.thresholds_passed:
            return "FAIL (unverified)" if self.unverified else "FAIL"
        if self.cleanup_pending:
            return "FAIL (cleanup pending)"
        if self.regressions:
            return "FAIL (regression)" if self.fail_on_regression else "REGRESSED"
        return "PASS"
