"""Retention of run reports: keep the newest runs' JSON summaries and dashboards, delete the older ones.

Each run writes ``<integration>_<run id>.json`` and ``.html`` (several MB) under
``<reports_dir>/integration_health_reports/``. :func:`prune` keeps the newest ``keep`` runs and, always,
every integration's baseline run and every unfinished run; it deletes the other runs' files and,
when asked, their rows in the run store. Trends and history read the store, so pruning files loses
only old dashboards. Example::

    report = prune(Path("reports/runs.sqlite3"), Path("reports/integration_health_reports"), keep=50)
    print(report.freed_bytes)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bonzo_bulk.errors import BonzoBulkError, ConfigError
from bonzo_bulk.store import RunStore, RunSummary, StoreLocation

DEFAULT_KEEP_RUNS = 50
_RUN_ID = r"r\d{8}-\d{6}-[0-9a-f]+"
_REPORT_FILE = re.compile(rf"^(?P<integration>[a-z][a-z0-9_]*)_(?P<run_id>{_RUN_ID})\.(?:json|html)$")


@dataclass(frozen=True, slots=True)
class PrunedRun:
    """One run whose reports were (or, in a dry run, would be) removed."""

    run_id: str
    integration: str
    files: tuple[Path, ...]
    file_bytes: int
    store_rows: bool


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What :func:`prune` removed (or would remove), what it kept and why some store rows stayed."""

    keep: int
    dry_run: bool
    kept: tuple[str, ...]
    protected: tuple[str, ...]
    pruned: tuple[PrunedRun, ...]
    store_bytes_freed: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def file_bytes(self) -> int:
        """Bytes of report files removed."""
        return sum(run.file_bytes for run in self.pruned)

    @property
    def freed_bytes(self) -> int:
        """Bytes freed on disk: report files plus the run store's shrinkage."""
        return self.file_bytes + self.store_bytes_freed


def configured_keep(store_path: Path) -> int:
    """``reports.keep_runs`` of the latest run's config (so a bare ``prune`` honours it), else the default."""
    if not store_path.is_file():
        return DEFAULT_KEEP_RUNS
    with RunStore(store_path) as store:
        latest = store.latest_run_id()
        section = store.config_snapshot(latest).get("reports") if latest else None
    keep = section.get("keep_runs") if isinstance(section, dict) else None
    return keep if isinstance(keep, int) and keep >= 1 else DEFAULT_KEEP_RUNS


def human_bytes(count: int) -> str:
    """``4.8 MB``-style sizes (decimal units, like ``du --si``).

    >>> human_bytes(4_812_345)
    '4.8 MB'
    """
    size = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


@dataclass
class _Run:
    run_id: str
    integration: str
    when: datetime
    files: list[Path] = field(default_factory=list)
    summary: RunSummary | None = None


def _report_files(health_dir: Path) -> Iterable[tuple[str, str, Path]]:
    if not health_dir.is_dir():
        return
    for path in health_dir.iterdir():
        match = _REPORT_FILE.match(path.name)
        if match and path.is_file():
            yield match["run_id"], match["integration"], path


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _runs(summaries: list[RunSummary], health_dir: Path) -> list[_Run]:
    """Every run known to the store or by its report files, newest first."""
    runs = {s.run_id: _Run(s.run_id, s.integration, _aware(s.started_at), summary=s) for s in summaries}
    for run_id, integration, path in _report_files(health_dir):
        run = runs.setdefault(run_id, _Run(run_id, integration, _mtime(path)))
        run.files.append(path)
        if run.summary is None:
            run.when = max(run.when, _mtime(path))
    return sorted(runs.values(), key=lambda r: (r.when, r.run_id), reverse=True)


def _store_size(path: Path | None) -> int:
    if path is None:
        return 0
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def _rows_blocker(store: RunStore, run: _Run) -> str | None:
    """Why a run's store rows must stay: a live run whose test prospects were never cleaned up."""
    if run.summary is None or run.summary.target != "live":
        return None
    left = [p for p in store.observed_prospects(run.run_id) if p.deleted_at is None]
    if not left:
        return None
    return (
        f"kept the store rows of live run {run.run_id}: {len(left)} of its prospects were never cleaned up; "
        f"`bonzo-bulk cleanup --run {run.run_id}` first"
    )


def prune(
    store_location: str | Path, health_dir: Path, *, keep: int, dry_run: bool = False, from_store: bool = False
) -> PruneReport:
    """Delete the report files (and with ``from_store`` the store rows) of all but the newest ``keep`` runs.

    Baseline runs and unfinished runs are always kept. Without a store file only report files are
    considered (ordered by their modification time).
    """
    if keep < 1:
        raise ConfigError(f"--keep {keep}: keep at least 1 run, e.g. --keep {DEFAULT_KEEP_RUNS}", key="--keep")
    location = StoreLocation.parse(store_location)
    store = RunStore(location) if location.path is None or location.path.is_file() else None
    try:
        summaries = store.list_runs(limit=2**62) if store is not None else []
        runs = _runs(summaries, health_dir)
        newest, older = runs[:keep], runs[keep:]
        protected = [r for r in older if r.summary and (r.summary.is_baseline or r.summary.finished_at is None)]
        doomed = [r for r in older if r not in protected]
        notes: list[str] = []
        row_ids: list[str] = []
        if from_store and store is not None:
            for run in doomed:
                blocker = _rows_blocker(store, run) if run.summary is not None else None
                if blocker:
                    notes.append(blocker)
                elif run.summary is not None:
                    row_ids.append(run.run_id)
        pruned = tuple(
            PrunedRun(
                run.run_id,
                run.integration,
                tuple(sorted(run.files)),
                sum(p.stat().st_size for p in run.files),
                run.run_id in row_ids,
            )
            for run in doomed
        )
        store_freed = 0
        if not dry_run:
            for run in doomed:
                for path in run.files:
                    try:
                        path.unlink(missing_ok=True)
                    except OSError as exc:
                        raise BonzoBulkError(f"cannot delete {path}: {exc}; check the reports folder") from exc
            if row_ids and store is not None:
                before = _store_size(store.path)
                store.delete_runs(row_ids)
                store_freed = max(0, before - _store_size(store.path))
    finally:
        if store is not None:
            store.close()
    return PruneReport(
        keep=keep,
        dry_run=dry_run,
        kept=tuple(r.run_id for r in newest),
        protected=tuple(r.run_id for r in protected),
        pruned=pruned,
        store_bytes_freed=store_freed,
        notes=tuple(notes),
    )
