"""Remove test prospects, safely: find candidates On-Behalf-Of each user, filter, delete, verify by GET.

Every deletion must pass :func:`judge`: the prospect's first name matches the glob **and** it carries
the test markers (an email on the configured test domain, and a run marker: the run id in
``custom_1``, a tag or the email's ``+run`` part, or the ``bonzo-bulk`` tag). A real prospect that
merely resembles the pattern is never touched. Dry run by default; where the API refuses deletes
(the real Bonzo may offer none), the records to remove by hand are written as CSV and JSON.

Example::

    selector = selector_for_pattern("TestRecord_MonitorBase_*", config.test_data_settings)
    report = await clean(client, selector, user_ids=[65013, 27227], dry_run=True)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bonzo_bulk._http import make_session
from bonzo_bulk.bonzo import BonzoClient
from bonzo_bulk.cleanup.delete import Candidate, delete_candidates, write_manual_list
from bonzo_bulk.cleanup.expected import ExpectedRecords, expected_records
from bonzo_bulk.cleanup.report import CleanupReport, combined, merged
from bonzo_bulk.cleanup.select import Selector, judge, selector_for_all, selector_for_pattern, selector_for_run
from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.errors import BonzoAPIError, ConfigError, ListingIncomplete, UnknownRun
from bonzo_bulk.plan.planner import plan_run
from bonzo_bulk.plan.records import RunIdentity
from bonzo_bulk.plan.seeding import plan_seed
from bonzo_bulk.store import DeletedProspect, RunStore
from bonzo_bulk.target.endpoints import Endpoints, NullProgress, Progress, open_endpoints, store_location_for
from bonzo_bulk.target.sandbox_files import sandbox_dbs

log = logging.getLogger("bonzo_bulk.cleanup.clean")


async def find_candidates(
    client: BonzoClient,
    selector: Selector,
    user_ids: Iterable[int],
    *,
    on_page: Callable[[int], None] | None = None,
) -> tuple[int, list[Candidate], tuple[str, ...]]:
    """List each user's prospects On-Behalf-Of (narrowed by ``search``) and judge each: (scanned, selected,
    the users whose listing did not reach its end, with why)."""
    scanned = 0
    selected: dict[str, Candidate] = {}
    unlisted: list[str] = []
    for user_id in sorted(set(user_ids)):
        try:
            async for prospect in client.iter_prospects(on_behalf_of=user_id, search=selector.search):
                scanned += 1
                if on_page is not None:
                    on_page(1)
                candidate = judge(prospect, user_id, selector)
                if candidate is not None:
                    selected.setdefault(str(candidate.prospect_id), candidate)
        except ListingIncomplete as exc:
            log.warning("the listing of user %s did not reach its end: %s", user_id, exc)
            unlisted.append(f"user {user_id}: {exc}")
        except BonzoAPIError as exc:
            if exc.status == 422:
                log.warning("skipping user %s: the API does not know them On-Behalf-Of (%s)", user_id, exc)
                continue
            raise
    return scanned, list(selected.values()), tuple(unlisted)


async def clean(
    client: BonzoClient,
    selector: Selector,
    *,
    user_ids: Iterable[int],
    dry_run: bool = True,
    target: str = "sandbox",
    store: RunStore | None = None,
    manual_dir: Path | None = None,
    progress: Progress | None = None,
) -> CleanupReport:
    """Find, filter and (unless ``dry_run``) delete; mark deletions in the store; list refusals for by hand."""
    progress = progress or NullProgress()
    started = time.perf_counter()
    before = client.requests_made
    progress.stage("scan", None)
    scanned, candidates, unlisted = await find_candidates(
        client, selector, {*user_ids, *selector.owners}, on_page=lambda n: progress.advance("scan", n)
    )
    report = CleanupReport(
        mode=selector.mode,
        pattern=selector.pattern,
        run_id=selector.run_id,
        target=target,
        dry_run=dry_run,
        scanned=scanned,
        candidates=tuple(candidates),
        unlisted=unlisted,
    )
    if not dry_run and report.deletable:
        progress.stage("delete", len(report.deletable))
        outcome = await delete_candidates(client, candidates, on_done=lambda n: progress.advance("delete", n))
        files: tuple[Path, ...] = ()
        if outcome.manual:
            log.warning("%s; writing the %d prospects to remove by hand", outcome.refused, len(outcome.manual))
            files = write_manual_list(outcome.manual, manual_dir or Path("reports"), reason=outcome.refused or "")
        if store is not None:
            _mark_deleted(store, outcome.deleted)
        report = replace(
            report,
            deleted=tuple(outcome.deleted),
            failed=tuple(outcome.failed),
            manual=tuple(outcome.manual),
            manual_files=files,
            refused=outcome.refused,
        )
    return replace(report, api_requests=client.requests_made - before, seconds=round(time.perf_counter() - started, 3))


def _mark_deleted(store: RunStore, deleted: Sequence[Candidate]) -> None:
    """Record each deletion in its run (a later cleanup then knows the record is gone, not on its way)."""
    by_run: dict[str, list[DeletedProspect]] = {}
    for c in deleted:
        if c.run_id:
            owner = c.owner_user_id if isinstance(c.owner_user_id, int) else None
            by_run.setdefault(c.run_id, []).append(DeletedProspect(c.prospect_id, owner, c.email, c.first_name))
    for run_id, prospects in by_run.items():
        if store.has_run(run_id):
            store.mark_deleted(run_id, prospects)


async def _clean_at(
    loaded: LoadedConfig,
    selector: Selector,
    *,
    endpoints: Endpoints,
    session: aiohttp.ClientSession | None,
    store: RunStore,
    dry_run: bool,
    progress: Progress | None,
) -> CleanupReport:
    """Clean a selection at open endpoints (live, or a started sandbox) with the superuser key."""
    config = loaded.config
    async with BonzoClient(
        base_url=endpoints.api_base_url, api_key=endpoints.api_key, settings=config.api_settings, session=session
    ) as client:
        return await clean(
            client,
            selector,
            user_ids=[u.user_id for u in loaded.users],
            dry_run=dry_run,
            target=endpoints.target,
            store=store,
            manual_dir=Path(config.reports_dir) / "cleanup",
            progress=progress,
        )


async def cleanup_run(
    loaded: LoadedConfig,
    run_id: str,
    *,
    endpoints: Endpoints,
    session: aiohttp.ClientSession | None = None,
    store: RunStore | None = None,
    dry_run: bool = False,
    wait: float = 0.0,
    progress: Progress | None = None,
    own_run: bool = False,
) -> CleanupReport:
    """Delete what one run created (the engine's ``cleanup.after_run`` policy calls this after a run), scanning
    again for up to ``wait`` seconds while delivered records are missing; what is still missing is recorded as
    pending in the store. ``own_run``: the run is this process's, still open, every answer it got recorded (so
    none of its records counts as possibly sent, finished or not)."""
    own_store = store is None
    active_store = store if store is not None else RunStore(store_location_for(loaded))
    try:
        selector = selector_for_run(active_store, run_id, loaded.config.test_data_settings)
        return await _clean_until_accounted(
            loaded,
            selector,
            endpoints=endpoints,
            session=session,
            store=active_store,
            dry_run=dry_run,
            wait=wait,
            progress=progress,
            own_run=own_run,
        )
    finally:
        if own_store:
            active_store.close()


async def cleanup(
    loaded: LoadedConfig,
    *,
    run_id: str | None = None,
    pattern: str | None = None,
    all_test_data: bool = False,
    pending: bool = False,
    include_running: bool = False,
    dry_run: bool = True,
    wait: float = 0.0,
    progress: Progress | None = None,
    on_endpoints: Callable[[Endpoints], None] | None = None,
) -> CleanupReport:
    """The ``cleanup`` command's work: pick the selection, open the target (sandbox or live), clean.

    For a run, what it delivered is compared with what was found or deleted; records still missing
    may yet appear, so with ``wait`` seconds the scan is repeated until they are accounted for (a real cleanup
    records what is still missing as pending; ``pending`` cleans every run that has some). A pattern or
    all test data keeps the records of runs still in progress on the same store unless ``include_running``.
    """
    chosen = [
        name
        for name, given in (
            ("--run", run_id),
            ("--pattern", pattern),
            ("--all-test-data", all_test_data),
            ("--pending", pending),
        )
        if given
    ]
    if len(chosen) != 1:
        raise ConfigError(
            "say what to clean with exactly one of --run ID, --pattern GLOB, --all-test-data or --pending"
            + (f" (got {' and '.join(chosen)})" if chosen else "")
        )
    settings = loaded.config.test_data_settings
    with RunStore(store_location_for(loaded)) as store:
        if pending:
            return await _clean_pending(loaded, store, dry_run=dry_run, wait=wait, progress=progress,
                                        on_endpoints=on_endpoints)  # fmt: skip
        if run_id is not None:
            if run_id == "latest":
                run_id = store.latest_run_id() or ""
                if not run_id:
                    raise ConfigError(f"--run latest: the run store {store.label} holds no runs", key="--run")
            try:
                selector = selector_for_run(store, run_id, settings)
            except UnknownRun as exc:
                raise ConfigError(f"--run {run_id!r}: {exc}; nothing was deleted", key="--run") from exc
        elif pattern is not None:
            selector = selector_for_pattern(pattern, settings)
        else:
            selector = selector_for_all(settings)
        if selector.mode != "run" and not include_running:
            selector = replace(selector, running=frozenset(store.running_runs()))
        return await _clean_selection(
            loaded, store, selector, dry_run=dry_run, wait=wait, progress=progress, on_endpoints=on_endpoints
        )


async def _clean_pending(
    loaded: LoadedConfig,
    store: RunStore,
    *,
    dry_run: bool,
    wait: float,
    progress: Progress | None,
    on_endpoints: Callable[[Endpoints], None] | None,
) -> CleanupReport:
    """Clean every run whose cleanup left records pending, each at its own target (its own sandbox)."""
    reports: list[CleanupReport] = []
    for run_id in store.pending_cleanup_runs():
        selector = selector_for_run(store, run_id, loaded.config.test_data_settings)
        reports.append(
            await _clean_selection(
                loaded, store, selector, dry_run=dry_run, wait=wait, progress=progress,
                on_endpoints=None if reports else on_endpoints,
            )
        )  # fmt: skip
    if not reports:
        return CleanupReport(
            mode="pending", pattern="", run_id=None, target=loaded.target, dry_run=dry_run, scanned=0, candidates=()
        )
    return replace(
        combined(reports),
        mode="pending",
        run_id=None,
        missing=tuple(m for r in reports for m in r.missing),
        unanswered=sum(r.unanswered for r in reports),
        presumed_unsent=tuple(m for r in reports for m in r.presumed_unsent),
        deleted_earlier=sum(r.deleted_earlier for r in reports),
    )


async def _clean_selection(
    loaded: LoadedConfig,
    store: RunStore,
    selector: Selector,
    *,
    dry_run: bool,
    wait: float,
    progress: Progress | None,
    on_endpoints: Callable[[Endpoints], None] | None,
) -> CleanupReport:
    """Open the selection's target (each past run's sandbox, for a pattern or all test data) and clean there."""
    config = loaded.config
    run_id = selector.run_id
    identity = RunIdentity(run_id, datetime.now(UTC)) if run_id is not None else None
    plan = plan_run(loaded, phases=(), identity=identity)
    databases: list[Path | None] = [None]
    if selector.mode != "run" and loaded.target == "sandbox" and not (config.sandbox.url or config.sandbox.db):
        # A run in progress has its own sandbox serving that file: leave it to the run.
        databases = [*(d for d in sandbox_dbs(loaded) if d.stem not in selector.running)] or [None]
    reports: list[CleanupReport] = []
    for database in databases:
        async with (
            make_session(
                limit=config.api_settings.concurrent_requests + 2, timeout=config.api_settings.timeout
            ) as session,
            open_endpoints(
                loaded, session, run_id=plan.run_id, new_run=False, seed=plan_seed(plan), sandbox_db=database
            ) as endpoints,
        ):
            if on_endpoints is not None and not reports:
                on_endpoints(endpoints)
            reports.append(
                await _clean_until_accounted(
                    loaded, selector, endpoints=endpoints, session=session, store=store, dry_run=dry_run,
                    wait=wait, progress=progress,
                )
            )  # fmt: skip
    return reports[0] if len(reports) == 1 else combined(reports)


async def _clean_until_accounted(
    loaded: LoadedConfig,
    selector: Selector,
    *,
    endpoints: Endpoints,
    session: aiohttp.ClientSession | None,
    store: RunStore,
    dry_run: bool,
    wait: float,
    progress: Progress | None,
    own_run: bool = False,
) -> CleanupReport:
    """Clean once; for a run, scan again (up to ``wait`` seconds) while delivered records are unaccounted for."""

    async def scan() -> CleanupReport:
        return await _clean_at(
            loaded, selector, endpoints=endpoints, session=session, store=store, dry_run=dry_run, progress=progress
        )

    earlier = deleted_earlier(store, selector.run_id) if selector.run_id is not None else 0
    reports = [await scan()]
    if selector.run_id is None:
        return reports[0]
    expected = expected_records(store, selector.run_id, loaded, own_run=own_run)
    give_up = time.monotonic() + wait
    missing = unaccounted(store, selector.run_id, reports, expected)
    while missing and time.monotonic() < give_up:
        pause = min(max(loaded.config.polling.interval, 1.0), give_up - time.monotonic())
        log.warning("%d record(s) of run %s not found yet; next scan in %.1f s", len(missing), selector.run_id, pause)
        await asyncio.sleep(max(pause, 0.0))
        reports.append(await scan())
        missing = unaccounted(store, selector.run_id, reports, expected)
    if not dry_run:
        store.set_cleanup_pending(selector.run_id, len(missing))
    presumed = unaccounted(store, selector.run_id, reports, replace(expected, accepted=expected.presumed_unsent))
    return replace(
        merged(reports, missing),
        deleted_earlier=earlier,
        unanswered=sum(1 for name in missing if name in expected.unanswered),
        presumed_unsent=presumed,
    )


def deleted_earlier(store: RunStore, run_id: str) -> int:
    """How many of the run's prospects earlier cleanups deleted, as the store recorded them."""
    return sum(1 for p in store.observed_prospects(run_id) if p.deleted_at is not None)


def unaccounted(
    store: RunStore, run_id: str, reports: Sequence[CleanupReport], expected: ExpectedRecords
) -> tuple[str, ...]:
    """Records the run delivered (or, dying, may have sent) that no cleanup deleted and the latest scan did not
    find: they may still be on their way into Bonzo (or were removed by someone else), so nobody can vouch for them."""
    may_appear = expected.may_appear
    gone = [p for p in store.observed_prospects(run_id) if p.deleted_at is not None]
    emails = {str(p.email).lower() for p in gone if p.email}
    names = {str(p.first_name) for p in gone if p.first_name}
    for report in reports:
        emails.update(c.email for c in report.deleted)
        names.update(c.first_name for c in report.deleted)
    emails.update(c.email for c in reports[-1].deletable)
    names.update(c.first_name for c in reports[-1].deletable)
    return tuple(
        r.name
        for r in store.run_records(run_id)
        if r.name in may_appear and (r.email.lower() not in emails if r.email else r.first_name not in names)
    )
