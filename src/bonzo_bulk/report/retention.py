"""Retention: keep the newest runs whole, and give back the disk the older ones take.

What a run leaves under the reports folder: its JSON summary and dashboard
(``integration_health_reports/<integration>_<run id>.json|html``, several MB), a load run's folder
(``load/<run id>/``: dashboard, journal, Locust's log), the local sandbox's database of the run
(``sandboxes/<run id>.sqlite3``), and its rows in the run store, mostly per-record rows (about 11 kB a lead).

:func:`prune` keeps the newest ``keep`` runs and, always, every baseline run and every unfinished run still under
way (its process holds the run's in-progress lock: :meth:`~bonzo_bulk.store.RunStore.running_runs`). For each
other run it deletes the files, and trims the run's per-record rows from the store (its summary, figures,
diagnoses and prospects stay, so history, trends, baselines and cleanup still work); with ``from_store`` it
deletes the run's rows whole. A live run whose prospects may still be in Bonzo keeps its rows until
``cleanup --run`` removed them. Example::

    report = prune(Path("reports/runs.sqlite3"), Path("reports/integration_health_reports"), keep=50)
    print(report.freed_bytes)

:func:`disk_usage` says where the space goes (``prune --stats``).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from bonzo_bulk.errors import BonzoBulkError, ConfigError
from bonzo_bulk.report.summary import HEALTH_DIR
from bonzo_bulk.store import RunStore, RunSummary, StoreLocation
from bonzo_bulk.target.sandbox_files import SANDBOX_DIR

DEFAULT_KEEP_RUNS = 50
LOAD_DIR = "load"
_RUN_ID = r"r\d{8}-\d{6}-[0-9a-f]+"
_REPORT_FILE = re.compile(rf"^(?P<integration>[a-z][a-z0-9_]*)_(?P<run_id>{_RUN_ID})\.(?:json|html)$")
_RUN_FOLDER = re.compile(rf"^(?P<run_id>{_RUN_ID})$")
_SANDBOX_FILE = re.compile(rf"^(?P<run_id>{_RUN_ID})\.sqlite3(?:-wal|-shm)?$")


@dataclass(frozen=True, slots=True)
class PrunedRun:
    """One run whose files and store rows were (or, in a dry run, would be) removed."""

    run_id: str
    integration: str
    files: tuple[Path, ...]
    """Report files, the load folder's files and the sandbox database of the run."""
    file_bytes: int
    store_rows: bool
    """All of the run's rows are deleted from the store (``--from-store``)."""
    trimmed: bool = False
    """Only its per-record rows are deleted (its summary, figures and prospects stay)."""


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What :func:`prune` removed (or would remove), what it kept and why some store rows stayed."""

    keep: int
    dry_run: bool
    kept: tuple[str, ...]
    protected: tuple[str, ...]
    pruned: tuple[PrunedRun, ...]
    store_bytes_freed: int = 0
    """Measured after a prune; in a dry run, the estimate of what the store would give back."""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def file_bytes(self) -> int:
        """Bytes of files removed (reports, load folders, sandbox databases)."""
        return sum(run.file_bytes for run in self.pruned)

    @property
    def freed_bytes(self) -> int:
        """Bytes freed on disk (or, in a dry run, that would be): files plus the run store's shrinkage."""
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


@dataclass
class _Run:
    run_id: str
    integration: str
    when: datetime
    files: list[Path] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    summary: RunSummary | None = None


def _run_files(reports: Path) -> Iterable[tuple[str, str, Path]]:
    """(run id, integration or "", path) of every file or folder a run left under the reports folder."""
    places = (
        (reports / HEALTH_DIR, _REPORT_FILE),
        (reports / LOAD_DIR, _RUN_FOLDER),
        (reports / SANDBOX_DIR, _SANDBOX_FILE),
    )
    for folder, pattern in places:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            match = pattern.match(path.name)
            if match:
                yield match["run_id"], match.groupdict().get("integration") or "", path


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _runs(summaries: list[RunSummary], reports: Path) -> list[_Run]:
    """Every run known to the store or by the files it left, newest first."""
    runs = {s.run_id: _Run(s.run_id, s.integration, _aware(s.started_at), summary=s) for s in summaries}
    for run_id, integration, path in _run_files(reports):
        run = runs.setdefault(run_id, _Run(run_id, integration or "?", _mtime(path)))
        (run.folders if path.is_dir() else run.files).append(path)
        if run.summary is None:
            run.when = max(run.when, _mtime(path))
    return sorted(runs.values(), key=lambda r: (r.when, r.run_id), reverse=True)


def _store_size(path: Path | None) -> int:
    if path is None:
        return 0
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def _rows_blocker(store: RunStore, run: _Run) -> str | None:
    """Why a run's store rows must stay: a live run whose test prospects may still be in Bonzo."""
    summary = run.summary
    if summary is None or summary.target != "live":
        return None
    if summary.finished_at is None:
        return (
            f"kept the store rows of interrupted live run {run.run_id}: what it sent may still be in Bonzo; "
            f"`bonzo-bulk cleanup --run {run.run_id}` first"
        )
    left = [p for p in store.observed_prospects(run.run_id) if p.deleted_at is None]
    if not left:
        return None
    return (
        f"kept the store rows of live run {run.run_id}: {len(left)} of its prospects were never cleaned up; "
        f"`bonzo-bulk cleanup --run {run.run_id}` first"
    )


def _protected(run: _Run, running: set[str]) -> bool:
    """A baseline, or an unfinished run still under way (an interrupted one's process is gone)."""
    return run.summary is not None and (run.summary.is_baseline or run.run_id in running)


@dataclass
class _Plan:
    """What happens to the store rows of the runs pruned: deleted whole, trimmed, or kept (and why)."""

    whole: list[str] = field(default_factory=list)
    trim: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _store_plan(store: RunStore | None, doomed: list[_Run], from_store: bool) -> _Plan:
    plan = _Plan()
    if store is None:
        return plan
    for run in doomed:
        if run.summary is None:
            continue
        blocker = _rows_blocker(store, run)
        if blocker:
            plan.notes.append(blocker)
        elif from_store:
            plan.whole.append(run.run_id)
        elif store.record_rows(run.run_id):
            plan.trim.append(run.run_id)
    return plan


def _remove(run: _Run) -> None:
    try:
        for path in run.files:
            path.unlink(missing_ok=True)
        for folder in run.folders:
            shutil.rmtree(folder, ignore_errors=False)
    except OSError as exc:
        raise BonzoBulkError(f"cannot delete the files of run {run.run_id}: {exc}; check the reports folder") from exc


def _apply(store: RunStore | None, plan: _Plan, doomed: list[_Run], dry_run: bool) -> int:
    """Delete what the plan says (or, in a dry run, estimate it); the store's bytes freed."""
    if store is None:
        return 0
    if dry_run:
        return store.estimated_bytes(plan.whole, whole=True) + store.estimated_bytes(plan.trim, whole=False)
    for run in doomed:
        _remove(run)
    before = _store_size(store.path)
    if plan.trim:
        store.trim_runs(plan.trim, f"per-record rows removed by retention on {date.today().isoformat()}")
    if plan.whole:
        store.delete_runs(plan.whole)
    return max(0, before - _store_size(store.path)) if store.path is not None else 0


def prune(
    store_location: str | Path, health_dir: Path, *, keep: int, dry_run: bool = False, from_store: bool = False
) -> PruneReport:
    """Delete the files of all but the newest ``keep`` runs and trim their per-record rows from the store (with
    ``from_store``, delete their rows whole); ``health_dir`` is the reports folder's
    ``integration_health_reports``, whose parent holds the load folders and sandbox databases.

    Baseline runs and runs under way are always kept; an interrupted run is pruned like any other. Without a
    store only files are considered (ordered by their modification time).
    """
    if keep < 1:
        raise ConfigError(f"--keep {keep}: keep at least 1 run, e.g. --keep {DEFAULT_KEEP_RUNS}", key="--keep")
    location = StoreLocation.parse(store_location)
    store = RunStore(location) if location.path is None or location.path.is_file() else None
    try:
        runs = _runs(store.list_runs(limit=2**62) if store is not None else [], health_dir.parent)
        newest, older = runs[:keep], runs[keep:]
        running = set(store.running_runs()) if store is not None else set()
        protected = [r for r in older if _protected(r, running)]
        doomed = [r for r in older if r not in protected]
        plan = _store_plan(store, doomed, from_store)
        pruned = tuple(
            PrunedRun(
                run.run_id,
                run.integration,
                tuple(sorted([*run.files, *(p for f in run.folders for p in f.rglob("*") if p.is_file())])),
                sum(_size(p) for p in (*run.files, *run.folders)),
                run.run_id in plan.whole,
                run.run_id in plan.trim,
            )
            for run in doomed
        )
        store_freed = _apply(store, plan, doomed, dry_run)
        if store is None and not dry_run:
            for run in doomed:
                _remove(run)
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
        notes=tuple(plan.notes),
    )


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """Where the reports folder's space goes (``prune --stats``)."""

    folder: Path
    places: tuple[tuple[str, int, int], ...]
    """(what, bytes, how many runs or files) for the run store, reports, load folders, sandboxes and the rest."""
    tables: tuple[tuple[str, int, int | None], ...]
    """The run store's tables: rows and bytes (None when the backend cannot say), largest first."""
    runs_by_kind: tuple[tuple[str, int], ...]
    unfinished: int

    @property
    def total(self) -> int:
        return sum(size for _, size, _ in self.places)


def disk_usage(store_location: str | Path, reports: Path) -> DiskUsage:
    """The reports folder measured: the run store (and its tables), each kind of run file, everything else."""
    location = StoreLocation.parse(store_location)
    counted: set[Path] = set()
    places: list[tuple[str, int, int]] = []
    if location.path is not None:
        store_files = [p for p in (location.path, Path(f"{location.path}-wal")) if p.exists()]
        counted.update(store_files)
        places.append((f"run store {location.label}", sum(p.stat().st_size for p in store_files), 1))
    for name, folder in (
        ("dashboards and JSON summaries", reports / HEALTH_DIR),
        ("load runs", reports / LOAD_DIR),
        ("sandbox databases", reports / SANDBOX_DIR),
    ):
        entries = list(folder.iterdir()) if folder.is_dir() else []
        counted.add(folder)
        places.append((f"{name} ({folder})", sum(_size(p) for p in entries), len(entries)))
    rest = [p for p in reports.iterdir() if p not in counted] if reports.is_dir() else []
    places.append(("everything else", sum(_size(p) for p in rest), len(rest)))
    tables: list[tuple[str, int, int | None]] = []
    kinds: dict[str, int] = {}
    unfinished = 0
    if location.path is None or location.path.is_file():
        with RunStore(location) as store:
            tables = store.space_usage()
            for summary in store.list_runs(limit=2**62):
                kinds[summary.kind] = kinds.get(summary.kind, 0) + 1
                unfinished += summary.finished_at is None
    return DiskUsage(reports, tuple(places), tuple(tables), tuple(sorted(kinds.items())), unfinished)
