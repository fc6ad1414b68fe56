"""Reports are best effort after the verdict: a report that cannot be written is its own error, not the run's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bonzo_bulk.config import LoadedConfig, writable_folder
from bonzo_bulk.errors import BonzoBulkError, ReportError
from bonzo_bulk.models import RunResult
from bonzo_bulk.run import Published, publish
from bonzo_bulk.secrets import redact
from bonzo_bulk.verdict import RunVerdict


@dataclass(frozen=True)
class Outcome:
    """A finished run's verdict, its reports when they could be written, else why not."""

    verdict: RunVerdict
    published: Published | None
    report_error: ReportError | None

    @property
    def exit_code(self) -> int:
        """The verdict's exit code; a passing run whose reports failed exits with the report error's code."""
        if self.verdict.exit_code or self.report_error is None:
            return self.verdict.exit_code
        return self.report_error.exit_code


def publish_best_effort(
    result: RunResult, loaded: LoadedConfig, *, fail_on_regression: bool = False, self_contained: bool = False
) -> Outcome:
    """Write the run's reports, or say why not (naming the folder) without touching the verdict.

    A folder that cannot be written is bad input (exit 2: fix ``--reports-dir``); any other failure
    to write (a full disk, say) is exit 1.
    """
    try:
        published = publish(result, loaded, fail_on_regression=fail_on_regression, self_contained=self_contained)
    except (BonzoBulkError, OSError) as exc:
        folder = Path(loaded.config.reports_dir)
        writable = writable_folder(folder)
        fix = "pick a writable folder with --reports-dir" if not writable else "check the folder and the disk"
        error = ReportError(
            f"the reports of run {result.run_id} were not written to {folder}: {redact(str(exc))}; {fix}, then "
            f"`bonzo-bulk report --run {result.run_id}` renders them again (the verdict above stands)",
            path=str(folder),
            from_flag=not writable,
        )
        enforce = fail_on_regression or loaded.config.regression.fail_on_regression
        return Outcome(RunVerdict(result.passed, 0, enforce), None, error)
    return Outcome(published.verdict, published, None)
