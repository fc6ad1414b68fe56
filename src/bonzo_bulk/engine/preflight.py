"""Preflight: prove the run can be verified and cleaned before a single record is POSTed.

Three checks, none of which creates data:

1. the API key works — one authenticated ``GET /prospects?per_page=1`` (a 401 here means every
   record sent would be unverifiable and uncleanable; a redirect to another host means the answers
   would come from a host that never saw the key, so that is refused too);
2. every test user is reachable with ``On-Behalf-Of`` (the same cheap listing per user);
3. every hook URL answers — HEAD, GET and OPTIONS once each; any HTTP answer but 404 proves the
   host and path exist (a POST-only hook commonly answers 405), while 404 or a refused connection
   means a wrong hash or host.

Any failure raises :class:`~bonzo_bulk.errors.PreflightError` (exit 2) naming what failed and the fix.

Before those, :func:`check_store`: the run store must take the run (sound, room enough, writable), else
:class:`~bonzo_bulk.errors.StoreUnusable` (exit 2) — also for a run that is only delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from bonzo_bulk.bonzo import BonzoClient
from bonzo_bulk.deliver.probe import probe
from bonzo_bulk.errors import AuthError, BonzoAPIError, DeliveryError, PreflightError, RedirectRefused
from bonzo_bulk.models import User
from bonzo_bulk.plan.planner import RunPlan
from bonzo_bulk.secrets import redact, redact_url
from bonzo_bulk.store import RunStore
from bonzo_bulk.store.journal import journal_path


def check_store(store: RunStore, plan: RunPlan) -> None:
    """Refuse a store that cannot take ``plan`` (damaged, full, not writable; nothing sent), then have it journal
    what it cannot take mid-run under the reports folder (``journal/<run id>.jsonl``)."""
    store.check_before_sending(records=plan.size)
    store.keep_journal(journal_path(plan.loaded.config.reports_dir, plan.run_id))


@dataclass(frozen=True, slots=True)
class PreflightReport:
    """What the preflight checked, for the log and the run's notes."""

    users_checked: int
    hooks_checked: int
    api_requests: int

    def describe(self) -> str:
        return (
            f"preflight: API key and On-Behalf-Of for {self.users_checked} user(s) accepted "
            f"({self.api_requests} API requests), {self.hooks_checked} hook URL(s) answer"
        )


async def check_user(client: BonzoClient, user: User) -> str | None:
    """None when ``user`` can be listed On-Behalf-Of, else what went wrong and the fix."""
    try:
        await client.list_prospects(on_behalf_of=user.user_id, per_page=1)
    except RedirectRefused as exc:
        raise PreflightError(f"{redact(str(exc))}; nothing was sent") from exc
    except AuthError as exc:
        if exc.status == 401:
            raise PreflightError(
                "Bonzo's API refused the API key (401): check SUPERUSER_API_KEY "
                "(a valid, unexpired personal access token of a SuperUser); nothing was sent"
            ) from exc
        return (
            f"On-Behalf-Of {user.user_id} ({user.email}) was refused ({exc.status}): the token may not act for "
            "this user, or the user_id is wrong in test_users"
        )
    except BonzoAPIError as exc:
        return f"On-Behalf-Of {user.user_id} ({user.email}) failed: {redact(str(exc))}"
    return None


async def check_hook(
    name: str,
    url: str,
    session: aiohttp.ClientSession,
    timeout: float,  # noqa: ASYNC109 - a per-request limit for the probes
) -> str | None:
    """None when the hook URL answers something other than 404, else what went wrong and the fix."""
    try:
        found = await probe(url, attempts=1, timeout=timeout, session=session)
    except DeliveryError as exc:
        return f"{name} {redact_url(url)}: {redact(str(exc))}"
    if not found.reachable:
        return (
            f"{name} {found.url} does not answer ({found.error or 'no HTTP answer'}): "
            "check the host in the URL and the network"
        )
    statuses = {s for m in found.methods for s in m.statuses}
    if statuses and statuses <= {404}:
        return (
            f"{name} {found.url} answers 404 to every probe: check the hook hash (Settings → Integrations → Webhooks)"
        )
    return None


async def preflight(
    client: BonzoClient,
    session: aiohttp.ClientSession,
    *,
    users: Sequence[User],
    hooks: Sequence[tuple[str, str]],
    timeout: float,  # noqa: ASYNC109 - a per-request limit for the hook probes
    wait_limit: float,
) -> PreflightReport:
    """Run every check; raise :class:`PreflightError` listing all that failed.

    The API checks wait on 429s no longer than ``wait_limit`` seconds in all (``api_settings.max_wait``): a
    Retry-After past it fails the check at once, nothing sent, instead of waiting in silence.
    """
    before = client.requests_made
    problems: list[str] = []
    if users:
        with client.waits_within(wait_limit, f"the preflight's limit ({wait_limit:g} s, api_settings.max_wait)"):
            first = await check_user(client, users[0])
            rest = await asyncio.gather(*(check_user(client, u) for u in users[1:]))
        problems.extend(p for p in (first, *rest) if p)
    hook_problems = await asyncio.gather(*(check_hook(name, url, session, timeout) for name, url in hooks))
    problems.extend(p for p in hook_problems if p)
    if problems:
        raise PreflightError(
            "preflight failed, nothing was sent:\n  - " + "\n  - ".join(problems) + "\n  (the run stops before its "
            "first POST so that no test lead is created that it could not verify or clean up)"
        )
    return PreflightReport(len(users), len(hooks), client.requests_made - before)
