"""Reports are best effort after the verdict: a report that cannot be written is its own error, not the run's."""

from __future__ import annotations

from pathlib import Path

from bonzo_bulk.config import LoadedConfig, writable_folder
from bonzo_bulk.errors import BonzoBulkError, ReportError
from bonzo_bulk.models import RunResult
from bonzo_bulk.run import Published, publish
from bonzo_bulk.secrets import redact


def publish_best_effort(result: RunResult, loaded: LoadedConfig) -> tuple[Published | None, ReportError | None]:
    """Write the run's reports, or say why not (naming the folder) without touching the verdict.

    A folder that cannot be written is bad input (exit 2: fix ``--reports-dir``); any other failure
    to write (a full disk, say) is exit 1.
    """
    try:
        return publish(result, loaded), None
    except (BonzoBulkError, OSError) as exc:
        folder = Path(loaded.config.reports_dir)
        writable = writable_folder(folder)
        fix = "pick a writable folder with --reports-dir" if not writable else "check the folder and the disk"
        return None, ReportError(
            f"the reports of run {result.run_id} were not written to {folder}: {redact(str(exc))}; {fix}, then "
            f"`bonzo-bulk report --run {result.run_id}` renders them again (the verdict above stands)",
            path=str(folder),
            from_flag=not writable,
        )
