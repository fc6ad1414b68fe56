"""What a cleanup may delete: a selector (a first-name glob, the test email domain, a run's identity) and the
safety filter every deletion must pass (:func:`judge`): the name matches **and** the test markers are there."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Literal

from bonzo_bulk.bonzo.view import ProspectView
from bonzo_bulk.cleanup.delete import Candidate
from bonzo_bulk.config.schema import TestDataSettings
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.models import Prospect
from bonzo_bulk.plan.records import RUN_ID_PATTERN
from bonzo_bulk.store import RunStore

Mode = Literal["run", "pattern", "all", "pending"]
"""What a cleanup selects (a selector is never ``pending``: that is a report of several runs' cleanups)."""
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
    running: frozenset[str] = frozenset()
    """Runs still in progress on the same store: their records are kept (``--include-running`` empties it)."""

    @property
    def search(self) -> str | None:
        """The server-side ``search`` that narrows the listing (everything is re-checked client-side)."""
        if self.run_id and self.run_marked:
            return self.run_id
        prefix = _GLOB_CHARS.split(self.pattern, maxsplit=1)[0]
        return prefix or None


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
    if run_id is not None and run_id in selector.running:
        return verdict(False, f"kept: run {run_id} is still in progress (--include-running deletes it too)")
    if BULK_TAG in _tags(prospect):
        return verdict(True, f"tag {BULK_TAG}" + (f", run {run_id}" if run_id else ""))
    if run_id is not None:
        return verdict(True, f"run {run_id}")
    return verdict(False, "kept: no run marker (custom_1, run tag or bonzo-bulk tag)")


def _tags(prospect: Prospect) -> set[str]:
    return set(ProspectView(prospect).tag_names)
