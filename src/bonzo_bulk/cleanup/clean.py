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
import fnmatch
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import aiohttp

from bonzo_bulk._http import make_session
from bonzo_bulk.bonzo import BonzoClient
from bonzo_bulk.bonzo.view import ProspectView
from bonzo_bulk.cleanup.delete import Candidate, delete_candidates, write_manual_list
from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.config.schema import TestDataSettings
from bonzo_bulk.errors import BonzoAPIError, ConfigError
from bonzo_bulk.models import Prospect, to_jsonable
from bonzo_bulk.plan.planner import plan_run
from bonzo_bulk.plan.records import RUN_ID_PATTERN, RunIdentity
from bonzo_bulk.plan.seeding import plan_seed
from bonzo_bulk.store import RunStore
from bonzo_bulk.target.endpoints import Endpoints, NullProgress, Progress, open_endpoints, store_location_for
from bonzo_bulk.target.sandbox_files import sandbox_dbs

log = logging.getLogger("bonzo_bulk.cleanup.clean")

Mode = Literal["run", "pattern", "all"]
BULK_TAG = "bonzo-bulk"
"""The shape of :meth:`bonzo_bulk.plan.records.RunIdentity.new` ids (a marker only when it has this shape)."""
_GLOB_CHARS = re.compile(r"[*?\[]")
_RUN_ID_IN_TEXT = re.compile(r"\br\d{8}-\d{6}-[0-9a-f]{4,6}\b")


@dataclass(frozen=True, slots=True)
class Selector:
    """What may be deleted: a first-name glob, the test email domain, and (for a run) that run's identity."""

    mode: Mode
    pattern: str
    email_domain: str
    run_id: str | None = None
    run_emails: frozenset[str] = frozenset()
    run_prospect_ids: frozenset[str] = frozenset()
    owners: frozenset[int] = frozenset()
    """Users the run's records belonged to or landed with (scanned besides the config's users)."""
    run_marked: bool = False
    """Every record of the run carries its id in a searchable field (email or last name)."""

    @property
    def search(self) -> str | None:
        """The server-side ``search`` that narrows the listing (everything is re-checked client-side)."""
        if self.run_id and self.run_marked:
            return self.run_id
        prefix = _GLOB_CHARS.split(self.pattern, maxsplit=1)[0]
        return prefix or None


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

    @property
    def deletable(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if c.deletable)

    @property
    def kept(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if not c.deletable)

    @property
    def passed(self) -> bool:
        return not self.failed and not self.manual and not self.missing


def selector_for_pattern(pattern: str, settings: TestDataSettings) -> Selector:
    """Every test prospect whose first name matches ``pattern`` (a glob, e.g. ``TestRecord_MonitorBase_*``)."""
    if not pattern.strip():
        raise ConfigError(
            "--pattern is empty; give a first-name glob such as 'TestRecord_MonitorBase_*'", key="--pattern"
        )
    return Selector(mode="pattern", pattern=pattern, email_domain=settings.email_domain)


def selector_for_all(settings: TestDataSettings) -> Selector:
    """Every test prospect named like this config's records, from any run."""
    pattern = f"{settings.first_name_pattern}_{settings.last_name_pattern}_*"
    return Selector(mode="all", pattern=pattern, email_domain=settings.email_domain)


def selector_for_run(store: RunStore, run_id: str, settings: TestDataSettings) -> Selector:
    """Exactly what run ``run_id`` created: its records' emails and the prospect ids it observed."""
    records = store.run_records(run_id)
    observed = store.observed_prospects(run_id)
    marked = bool(records) and all(run_id in r.email.lower() or run_id in r.last_name.lower() for r in records)
    return Selector(
        run_marked=marked,
        mode="run",
        pattern=f"{settings.first_name_pattern}_{settings.last_name_pattern}_*",
        email_domain=settings.email_domain,
        run_id=run_id,
        run_emails=frozenset(r.email.lower() for r in records if r.email),
        run_prospect_ids=frozenset(str(p.prospect_id) for p in observed if p.deleted_at is None),
        owners=frozenset(
            {r.expected_user_id for r in records} | {p.owner_user_id for p in observed if p.owner_user_id is not None}
        ),
    )


def run_markers(prospect: Prospect) -> set[str]:
    """The run ids a prospect carries: ``custom_1``, run-id tags, the email's ``+run`` part (lower case)."""
    found: set[str] = set()
    marker = ProspectView(prospect).custom_field("custom_1")
    if marker:
        found.add(str(marker).strip().lower())
    found.update(t for t in _tags(prospect) if RUN_ID_PATTERN.match(t))
    local = str(prospect.get("email") or "").lower().partition("@")[0]
    if "+" in local:
        found.add(local.partition("+")[2])
    found.update(_RUN_ID_IN_TEXT.findall(str(prospect.get("last_name") or "").lower()))
    return {m for m in found if m}


def judge(prospect: Prospect, owner: int | str, selector: Selector) -> Candidate | None:
    """The safety filter: None when the prospect is not selected, else whether it may be deleted and why."""
    first_name = str(prospect.get("first_name") or "")
    # A run's records are known by their markers, not their name: a template typo in the first name
    # must not leave them behind. The other modes select by name first.
    if selector.mode != "run" and not fnmatch.fnmatchcase(first_name, selector.pattern):
        return None
    prospect_id = prospect.get("id")
    email = str(prospect.get("email") or "").strip().lower()
    if (
        selector.mode == "run"
        and email not in selector.run_emails
        and str(prospect_id) not in selector.run_prospect_ids
    ):
        return None
    markers = run_markers(prospect)
    if selector.run_id is not None and selector.run_id in _tags(prospect):
        markers.add(selector.run_id)
    run_id = (
        selector.run_id
        if selector.run_id in markers
        else next((m for m in sorted(markers) if RUN_ID_PATTERN.match(m)), None)
    )

    def verdict(deletable: bool, reason: str) -> Candidate:
        return Candidate(
            prospect_id=prospect_id if isinstance(prospect_id, int | str) else str(prospect_id),
            owner_user_id=owner,
            first_name=first_name,
            last_name=str(prospect.get("last_name") or ""),
            email=email,
            run_id=run_id,
            deletable=deletable,
            reason=reason,
        )

    if prospect_id is None:
        return verdict(False, "kept: the API gave no prospect id")
    if not email.endswith("@" + selector.email_domain.lower()):
        return verdict(False, f"kept: email is not on the test domain {selector.email_domain}")
    if selector.mode == "run":
        if selector.run_id not in markers:
            return verdict(False, f"kept: carries no marker of run {selector.run_id}")
        return verdict(True, f"run {selector.run_id}")
    if BULK_TAG in _tags(prospect):
        return verdict(True, f"tag {BULK_TAG}" + (f", run {run_id}" if run_id else ""))
    if run_id is not None:
        return verdict(True, f"run {run_id}")
    return verdict(False, "kept: no run marker (custom_1, run tag or bonzo-bulk tag)")


def _tags(prospect: Prospect) -> set[str]:
    return set(ProspectView(prospect).tag_names)


async def find_candidates(
    client: BonzoClient,
    selector: Selector,
    user_ids: Iterable[int],
    *,
    on_page: Callable[[int], None] | None = None,
) -> tuple[int, list[Candidate]]:
    """List each user's prospects On-Behalf-Of (narrowed by ``search``) and judge each: (scanned, selected)."""
    scanned = 0
    selected: dict[str, Candidate] = {}
    for user_id in sorted(set(user_ids)):
        try:
            async for prospect in client.iter_prospects(on_behalf_of=user_id, search=selector.search):
                scanned += 1
                if on_page is not None:
                    on_page(1)
                candidate = judge(prospect, user_id, selector)
                if candidate is not None:
                    selected.setdefault(str(candidate.prospect_id), candidate)
        except BonzoAPIError as exc:
            if exc.status == 422:
                log.warning("skipping user %s: the API does not know them On-Behalf-Of (%s)", user_id, exc)
                continue
            raise
    return scanned, list(selected.values())


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
    scanned, candidates = await find_candidates(
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
    by_run: dict[str, list[int | str]] = {}
    for candidate in deleted:
        if candidate.run_id:
            by_run.setdefault(candidate.run_id, []).append(candidate.prospect_id)
    for run_id, ids in by_run.items():
        if store.has_run(run_id):
            store.mark_deleted(run_id, ids)


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
    progress: Progress | None = None,
) -> CleanupReport:
    """Delete what one run created (the engine's ``cleanup.after_run`` policy calls this after a run)."""
    own_store = store is None
    active_store = store if store is not None else RunStore(store_location_for(loaded))
    try:
        selector = selector_for_run(active_store, run_id, loaded.config.test_data_settings)
        report = await _clean_at(
            loaded,
            selector,
            endpoints=endpoints,
            session=session,
            store=active_store,
            dry_run=dry_run,
            progress=progress,
        )
        return replace(report, missing=unaccounted(active_store, run_id, [report]))
    finally:
        if own_store:
            active_store.close()


async def cleanup(
    loaded: LoadedConfig,
    *,
    run_id: str | None = None,
    pattern: str | None = None,
    all_test_data: bool = False,
    dry_run: bool = True,
    wait: float = 0.0,
    progress: Progress | None = None,
    on_endpoints: Callable[[Endpoints], None] | None = None,
) -> CleanupReport:
    """The ``cleanup`` command's work: pick the selection, open the target (sandbox or live), clean.

    For a run, what it delivered is compared with what was found or deleted; records still missing
    may yet appear, so with ``wait`` seconds the scan is repeated until they are accounted for.
    """
    chosen = [
        name for name, given in (("--run", run_id), ("--pattern", pattern), ("--all-test-data", all_test_data)) if given
    ]
    if len(chosen) != 1:
        raise ConfigError(
            "say what to clean with exactly one of --run ID, --pattern GLOB or --all-test-data"
            + (f" (got {' and '.join(chosen)})" if chosen else "")
        )
    config = loaded.config
    settings = config.test_data_settings
    with RunStore(store_location_for(loaded)) as store:
        if run_id is not None:
            if run_id == "latest":
                run_id = store.latest_run_id() or ""
                if not run_id:
                    raise ConfigError(f"--run latest: the run store {store.label} holds no runs", key="--run")
            selector = selector_for_run(store, run_id, settings)
        elif pattern is not None:
            selector = selector_for_pattern(pattern, settings)
        else:
            selector = selector_for_all(settings)
        identity = RunIdentity(run_id, datetime.now(UTC)) if run_id is not None else None
        plan = plan_run(loaded, phases=(), identity=identity)
        databases: list[Path | None] = [None]
        if selector.mode != "run" and loaded.target == "sandbox" and not (config.sandbox.url or config.sandbox.db):
            databases = [*sandbox_dbs(loaded)] or [None]
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
        return reports[0] if len(reports) == 1 else _combined(reports)


async def _clean_until_accounted(
    loaded: LoadedConfig,
    selector: Selector,
    *,
    endpoints: Endpoints,
    session: aiohttp.ClientSession,
    store: RunStore,
    dry_run: bool,
    wait: float,
    progress: Progress | None,
) -> CleanupReport:
    """Clean once; for a run, scan again (up to ``wait`` seconds) while delivered records are unaccounted for."""

    async def scan() -> CleanupReport:
        return await _clean_at(
            loaded, selector, endpoints=endpoints, session=session, store=store, dry_run=dry_run, progress=progress
        )

    reports = [await scan()]
    if selector.run_id is None:
        return reports[0]
    give_up = time.monotonic() + wait
    missing = unaccounted(store, selector.run_id, reports)
    while missing and time.monotonic() < give_up:
        pause = min(max(loaded.config.polling.interval, 1.0), give_up - time.monotonic())
        log.warning("%d record(s) of run %s not found yet; next scan in %.1f s", len(missing), selector.run_id, pause)
        await asyncio.sleep(max(pause, 0.0))
        reports.append(await scan())
        missing = unaccounted(store, selector.run_id, reports)
    return _merged(reports, missing)


def _combined(reports: Sequence[CleanupReport]) -> CleanupReport:
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
    )


def unaccounted(store: RunStore, run_id: str, reports: Sequence[CleanupReport]) -> tuple[str, ...]:
    """Records the run delivered that no cleanup deleted and the latest scan did not find: they may
    still be on their way into Bonzo (or were removed by someone else), so nobody can vouch for them."""
    accepted = store.accepted_records(run_id)
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
        if r.name in accepted and (r.email.lower() not in emails if r.email else r.first_name not in names)
    )


def _merged(reports: Sequence[CleanupReport], missing: tuple[str, ...]) -> CleanupReport:
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
    }
    return document
