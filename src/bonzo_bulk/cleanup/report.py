"""What a cleanup found, deleted, could not delete and left for removal by hand, and how reports of several
scans or several sandbox databases add up into one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bonzo_bulk.cleanup.delete import Candidate
from bonzo_bulk.cleanup.select import Mode
from bonzo_bulk.models import to_jsonable


@dataclass(frozen=True, slots=True)
class CleanupReport:
    """What a cleanup found, deleted, could not delete, and left for removal by hand."""

    mode: Mode
    pattern: str
    run_id: str | None
    target: str
    dry_run: bool
    scanned: int
    candidates: tuple[Candidate, ...]
    deleted: tuple[Candidate, ...] = ()
    failed: tuple[tuple[Candidate, str], ...] = ()
    manual: tuple[Candidate, ...] = ()
    manual_files: tuple[Path, ...] = ()
    refused: str | None = None
    """Why the API refused deletes, when it did."""
    api_requests: int = 0
    seconds: float = 0.0
    missing: tuple[str, ...] = ()
    """Records the run delivered (accepted by the webhook) that were neither found nor deleted: they may
    still appear, so cleanup cannot vouch that nothing is left."""
    unanswered: int = 0
    """How many of ``missing`` have no answer recorded: the run died before recording it, so it may have sent them."""
    presumed_unsent: tuple[str, ...] = ()
    """Records with no answer recorded, not found although the run stopped longer ago than its settle deadline and
    the straggler wait: taken as never sent (no longer pending)."""
    deleted_earlier: int = 0
    """Prospects of the run that an earlier cleanup deleted (recorded in the run store)."""
    unlisted: tuple[str, ...] = ()
    """Users whose listing did not reach its end, each with why (a repeated page, a next page on another host,
    the listing timeout): what they hold past that point was not scanned, so cleanup cannot vouch for it."""

    @property
    def deletable(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if c.deletable)

    @property
    def kept(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if not c.deletable)

    @property
    def passed(self) -> bool:
        return not self.failed and not self.manual and not self.missing and not self.unlisted

    @property
    def nothing_left(self) -> bool:
        """Nothing to delete was found and nothing may still appear: the selection is clean."""
        return not self.deletable and self.passed

    @property
    def headline(self) -> str | None:
        """ "nothing left …" when the selection is clean, naming what earlier cleanups removed; else None."""
        if not self.nothing_left:
            return None
        if self.mode != "run":
            return "nothing left: no test record matches the selection"
        if self.deleted_earlier:
            return (
                f"nothing left of run {self.run_id}: an earlier cleanup deleted its {self.deleted_earlier} prospect(s)"
            )
        return f"nothing left of run {self.run_id}: none of its records is in Bonzo"


def combined(reports: Sequence[CleanupReport]) -> CleanupReport:
    """One report of cleanups of several sandbox databases (one per past run)."""
    first = reports[0]
    return replace(
        first,
        candidates=tuple(c for r in reports for c in r.candidates),
        deleted=tuple(c for r in reports for c in r.deleted),
        failed=tuple(f for r in reports for f in r.failed),
        manual=tuple(c for r in reports for c in r.manual),
        manual_files=tuple(f for r in reports for f in r.manual_files),
        refused=next((r.refused for r in reports if r.refused), None),
        scanned=sum(r.scanned for r in reports),
        api_requests=sum(r.api_requests for r in reports),
        seconds=round(sum(r.seconds for r in reports), 3),
        unlisted=tuple(u for r in reports for u in r.unlisted),
    )


def merged(reports: Sequence[CleanupReport], missing: tuple[str, ...]) -> CleanupReport:
    """One report of repeated scans: every deletion, the latest scan's view, the totals."""
    latest = reports[-1]
    deleted = tuple(c for r in reports for c in r.deleted)
    seen = {str(c.prospect_id) for c in latest.candidates}
    earlier = tuple(c for c in deleted if str(c.prospect_id) not in seen)
    return replace(
        latest,
        candidates=(*earlier, *latest.candidates),
        deleted=deleted,
        manual=tuple(c for r in reports for c in r.manual),
        manual_files=tuple(f for r in reports for f in r.manual_files),
        refused=next((r.refused for r in reports if r.refused), None),
        scanned=sum(r.scanned for r in reports),
        api_requests=sum(r.api_requests for r in reports),
        seconds=round(sum(r.seconds for r in reports), 3),
        missing=missing,
        unlisted=latest.unlisted,
    )


def report_document(report: CleanupReport) -> dict[str, Any]:
    """The report as JSON-ready data (for ``--json``)."""
    document = to_jsonable(report)
    assert isinstance(document, dict)
    document["failed"] = [{"prospect": to_jsonable(c), "error": e} for c, e in report.failed]
    document["counts"] = {
        "scanned": report.scanned,
        "selected": len(report.candidates),
        "deletable": len(report.deletable),
        "kept": len(report.kept),
        "deleted": len(report.deleted),
        "failed": len(report.failed),
        "manual": len(report.manual),
        "missing": len(report.missing),
        "unanswered": report.unanswered,
        "presumed_unsent": len(report.presumed_unsent),
        "deleted_earlier": report.deleted_earlier,
    }
    document["nothing_left"] = report.nothing_left
    return document
