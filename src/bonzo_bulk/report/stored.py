"""Stored runs for the front doors: open a store, pick a run, render its dashboard, list history, mark baselines.

What ``bonzo-bulk report | history | baseline | export`` do; the typer wiring is in ``cli/report.py``.

Bad input raises :class:`ConfigError` (exit 2) naming the flag, the value and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from bonzo_bulk.config.schema import RegressionSettings
from bonzo_bulk.errors import ConfigError, StoreError
from bonzo_bulk.judge.verdict import RunVerdict
from bonzo_bulk.models import LOAD_KINDS, PhaseKind, RunKind, RunResult
from bonzo_bulk.problems.track import recorded
from bonzo_bulk.report.dashboard import Distribution, distributions_of, render_dashboard
from bonzo_bulk.report.regression import Regression, compare
from bonzo_bulk.report.retention import LOAD_DIR
from bonzo_bulk.report.summary import HEALTH_DIR
from bonzo_bulk.store import RunStore, RunSummary, StoreLocation


def open_existing(store_at: str | Path) -> RunStore:
    """Open a run store that must already exist (reading commands never create an empty SQLite file)."""
    location = StoreLocation.parse(store_at, key="--store-url")
    if not location.exists:
        raise ConfigError(
            f"--store-url {location.label!r}: no run store there; run `bonzo-bulk run` first or pass an existing "
            "store with --store-url PATH_OR_URL or --reports-dir DIR (the folder of its runs.sqlite3), or "
            "BONZO_BULK_STORE_URL",
            key="--store-url",
        )
    try:
        return RunStore(location)
    except StoreError as exc:
        if exc.exit_code == ConfigError.exit_code:
            raise
        raise ConfigError(f"--store-url {location.label!r}: {exc}", key="--store-url") from exc


def _unknown_run(store: RunStore, flag: str, run_id: str) -> ConfigError:
    recent = [s.run_id for s in store.list_runs(limit=10)]
    listing = ", ".join(recent) if recent else "none (the store is empty)"
    return ConfigError(
        f"{flag} {run_id!r}: no such run in {store.label}; recent runs: {listing}. `bonzo-bulk history` lists them all",
        key=flag,
    )


def resolve_run(store: RunStore, run_id: str | None, *, flag: str = "--run") -> str:
    """The given run id if the store knows it, else the latest run's id; ConfigError otherwise."""
    if run_id is None:
        latest = store.latest_run_id()
        if latest is None:
            raise ConfigError(f"--store-url {store.label!r}: the run store holds no runs yet", key="--store-url")
        return latest
    if not store.has_run(run_id):
        raise _unknown_run(store, flag, run_id)
    return run_id


def _tolerances(store: RunStore, run_id: str) -> RegressionSettings:
    """The run's own regression tolerances (from its config snapshot), else the defaults."""
    section = store.config_snapshot(run_id).get("regression")
    try:
        return RegressionSettings.model_validate(section) if isinstance(section, dict) else RegressionSettings()
    except ValidationError:
        return RegressionSettings()


def check_last(last: int) -> None:
    """``--last`` names how many runs to show: at least one."""
    if last < 1:
        raise ConfigError(
            f"--last {last}: must be at least 1 (how many recent runs to show), e.g. --last 20", key="--last"
        )


@dataclass(frozen=True)
class StoredRun:
    """What a stored run's dashboard shows: the run, its integration's history, baseline and regressions, the
    verdict and every record's figures (the same the file dashboard was drawn from)."""

    result: RunResult
    history: list[RunSummary]
    baseline: RunResult | None
    regressions: list[Regression]
    verdict: RunVerdict
    distributions: dict[PhaseKind, Distribution]


def stored_run(store: RunStore, run_id: str, *, last: int = 20) -> StoredRun:
    """Read a finished run's dashboard inputs from the store, beside runs of its kind only (ConfigError naming
    ``--run`` when it never finished, or when it is a load or stress run: its report is the load dashboard)."""
    kind = store.run_kind(run_id)
    if kind in LOAD_KINDS:
        raise ConfigError(
            f"--run {run_id!r} is a {kind} run, not a bulk run: its report is the load dashboard "
            f"{load_report_path(store, run_id)} (`bonzo-bulk report --run {run_id}` renders it)",
            key="--run",
        )
    try:
        result = store.load_run(run_id)
    except StoreError as exc:
        raise ConfigError(f"--run {run_id!r}: {exc}", key="--run") from exc
    runs = store.list_runs(integration=result.integration, limit=1_000_000, kinds=(result.kind,))
    history = [s for s in runs if s.started_at <= result.started_at][:last]
    baseline_id = store.baseline_run_id(result.integration, result.kind)
    baseline = store.load_run(baseline_id, keep=0) if baseline_id and baseline_id != run_id else None
    tolerances = _tolerances(store, run_id)
    regressions = (
        compare(result, baseline, tolerances, concurrency=store.webhook_concurrency([run_id, baseline.run_id]))
        if baseline
        else []
    )
    verdict = RunVerdict(
        result.passed,
        len(regressions),
        tolerances.fail_on_regression,
        unverified=result.unverified,
        cleanup_pending=store.cleanup_pending(run_id),
    )
    return StoredRun(result, history, baseline, regressions, verdict, distributions_of(result, store))


def report(
    store_at: str | Path, *, run_id: str | None, last: int, out: Path | None, self_contained: bool = False
) -> Path:
    """Render the dashboard of one stored run with its integration's last ``last`` runs of its kind and baseline."""
    check_last(last)
    with open_existing(store_at) as store:
        stored = stored_run(store, resolve_run(store, run_id), last=last)
        problems = recorded(store, stored.result, datetime.now(UTC))
        beside = reports_folder(store)
    result = stored.result
    name = f"{result.integration}_{result.run_id}"
    summary = beside / HEALTH_DIR / f"{name}.json"
    target = out or beside / HEALTH_DIR / f"{name}.html"
    return render_dashboard(
        result,
        history=stored.history,
        baseline=stored.baseline,
        regressions=stored.regressions,
        verdict=stored.verdict,
        summary_json=summary if summary.is_file() else None,
        out=target,
        self_contained=self_contained,
        distributions=stored.distributions,
        problems=problems,
    )


def reports_folder(store: RunStore) -> Path:
    """Where a store's reports are: beside a SQLite store, else ``reports``."""
    return store.path.parent if store.path is not None else Path("reports")


def load_report_path(store: RunStore, run_id: str) -> Path:
    """Where a load or stress run's dashboard is written: ``<reports>/load/<run id>/dashboard.html``."""
    return reports_folder(store) / LOAD_DIR / run_id / "dashboard.html"


def run_kind(store_at: str | Path, run_id: str | None) -> tuple[str, RunKind]:
    """The run ``report`` means (the given one, else the latest) and the mode that made it."""
    with open_existing(store_at) as store:
        chosen = resolve_run(store, run_id)
        return chosen, store.run_kind(chosen)


def history(
    store_at: str | Path, *, integration: str | None, limit: int, kinds: tuple[RunKind, ...] | None = None
) -> list[RunSummary]:
    """The most recent runs (of some kinds only, if given), newest first."""
    if limit < 1:
        raise ConfigError(
            f"--limit {limit}: must be at least 1 (how many runs to list), e.g. --limit 20", key="--limit"
        )
    with open_existing(store_at) as store:
        return store.list_runs(integration=integration, limit=limit, kinds=kinds)


def set_baseline(store_at: str | Path, run_id: str) -> RunSummary:
    """Mark a finished run as its integration's baseline; returns its summary."""
    with open_existing(store_at) as store:
        resolve_run(store, run_id, flag="RUN_ID")
        try:
            store.set_baseline(run_id)
        except StoreError as exc:
            raise ConfigError(f"RUN_ID {run_id!r}: {exc}", key="RUN_ID") from exc
        return next(s for s in store.list_runs(limit=1_000_000) if s.run_id == run_id)


def baselines(store_at: str | Path, *, integration: str | None) -> list[RunSummary]:
    """The baseline run of one integration, or of every integration that has one."""
    with open_existing(store_at) as store:
        runs = store.list_runs(integration=integration, limit=1_000_000)
    return [s for s in runs if s.is_baseline]
