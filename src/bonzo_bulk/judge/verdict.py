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
    >>> RunVerdict(thresholds_passed=False, unverified=3).label
    'FAILED (3 records unverified: a listing never reached its end)'
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
    unverified: int = 0
    """Records that could not be checked (a listing never reached its end): named, never called not created."""

    @property
    def failed(self) -> bool:
        """Whether the run failed: a threshold, or an enforced regression."""
        return not self.thresholds_passed or (self.regressions > 0 and self.fail_on_regression)

    @property
    def exit_code(self) -> int:
        """The documented exit code: 0 passed (regressions only warned), 1 failed."""
        return 1 if self.failed else 0

    @property
    def state(self) -> VerdictState:
        """``ok`` passed cleanly, ``warn`` passed with a regression that is not enforced, ``bad`` failed."""
        if self.failed:
            return "bad"
        return "warn" if self.regressions else "ok"

    @property
    def label(self) -> str:
        """The terminal's final word on the run, e.g. ``FAILED (regression)``."""
        if not self.thresholds_passed:
            unverified = (
                f" ({_plural(self.unverified, 'record')} unverified: a listing never reached its end)"
                if self.unverified
                else ""
            )
            return (
                "FAILED"
                + unverified
                + (f" (and {_plural(self.regressions, 'regression')})" if self.regressions else "")
            )
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
        """A short word for a badge: ``PASS``, ``FAIL``, ``FAIL (regression)`` or ``REGRESSED``."""
        if not self.thresholds_passed:
            return "FAIL (unverified)" if self.unverified else "FAIL"
        if self.regressions:
            return "FAIL (regression)" if self.fail_on_regression else "REGRESSED"
        return "PASS"
