"""What every request of a ``serve`` process shares: where the store is, who may do what, rendered dashboards.

The store is opened per request (a SQLite connection belongs to the thread that opened it, and several servers
may share one PostgreSQL store); a finished run's dashboard is rendered once and kept (it only changes when the
integration's baseline does).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from bonzo_bulk.errors import StoreError
from bonzo_bulk.report.dashboard import dashboard_html, plotly_asset_name
from bonzo_bulk.report.metrics import RunFigures
from bonzo_bulk.report.stored import stored_run
from bonzo_bulk.serve.access import Access
from bonzo_bulk.store import RunStore, StoreLocation

DASHBOARDS_KEPT = 16
FIGURES_KEPT = 256
ASSET_PREFIX = "/assets"


@dataclass
class ServeState:
    """The store's location, the access rules and a small cache of rendered run dashboards."""

    location: StoreLocation
    access: Access
    _dashboards: OrderedDict[tuple[str, str | None], str] = field(default_factory=OrderedDict)
    _figures: OrderedDict[str, RunFigures] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def store(self) -> RunStore:
        """A connection to the store, for one request."""
        return RunStore(self.location)

    @property
    def plotly_src(self) -> str:
        """Where pages load plotly.js from (served once per process, versioned)."""
        return f"{ASSET_PREFIX}/{plotly_asset_name()}"

    def dashboard(self, run_id: str) -> str:
        """A finished run's dashboard page from the store: the same figures as the file dashboard."""
        with self.store() as store:
            summary = store.summary(run_id)
            if summary is None or summary.finished_at is None:
                raise StoreError(f"run {run_id} in {store.label} has not finished: it has no dashboard yet")
            key = (run_id, store.baseline_run_id(summary.integration))
            with self._lock:
                cached = self._dashboards.get(key)
            if cached is not None:
                return cached
            stored = stored_run(store, run_id)
        page = dashboard_html(
            stored.result,
            history=stored.history,
            baseline=stored.baseline,
            regressions=stored.regressions,
            verdict=stored.verdict,
            plotly_src=self.plotly_src,
            distributions=stored.distributions,
        )
        return self._keep(key, page)

    def _keep(self, key: tuple[str, str | None], page: str) -> str:
        with self._lock:
            self._dashboards[key] = page
            while len(self._dashboards) > DASHBOARDS_KEPT:
                self._dashboards.popitem(last=False)
        return page

    def latest_figures(self) -> list[RunFigures]:
        """The metrics of each integration x target's latest finished run (each run's read once, then kept)."""
        with self.store() as store:
            figures = []
            for run_id in store.latest_finished():
                with self._lock:
                    known = self._figures.get(run_id)
                if known is None:
                    known = RunFigures.of(store.load_run(run_id, keep=0), store)
                    with self._lock:
                        self._figures[run_id] = known
                        while len(self._figures) > FIGURES_KEPT:
                            self._figures.popitem(last=False)
                figures.append(known)
            return figures
