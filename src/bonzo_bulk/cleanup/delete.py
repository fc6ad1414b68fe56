"""Deleting selected test prospects: one DELETE each, confirmed by a GET, refusals listed for removal by hand.

:mod:`bonzo_bulk.cleanup.clean` decides what may go; this module only carries it out and writes the list of
what the API would not delete (CSV and JSON).
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bonzo_bulk.bonzo import BonzoClient
from bonzo_bulk.errors import BonzoAPIError, CleanupError, MethodNotAllowed, NotFoundError

_PROBE_FIRST = 1
"""Deletions sent alone before the rest, so an API that refuses deletes is found with one request."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A prospect whose name matches the selection, and whether the safety filter lets it go."""

    prospect_id: int | str
    owner_user_id: int | str
    first_name: str
    last_name: str
    email: str
    run_id: str | None
    deletable: bool
    reason: str


@dataclass
class Deletions:
    """What deleting the selected candidates did."""

    deleted: list[Candidate] = field(default_factory=list)
    failed: list[tuple[Candidate, str]] = field(default_factory=list)
    manual: list[Candidate] = field(default_factory=list)
    refused: str | None = None


async def delete_candidates(
    client: BonzoClient, candidates: Sequence[Candidate], *, on_done: Callable[[int], None] | None = None
) -> Deletions:
    """Delete each deletable candidate and confirm with a GET (404 = gone); stop at the first refusal."""
    outcome = Deletions()
    queue = [c for c in candidates if c.deletable]

    async def attempt(candidate: Candidate) -> None:
        if outcome.refused is not None:
            outcome.manual.append(candidate)
            return
        try:
            await client.delete_prospect(candidate.prospect_id, on_behalf_of=candidate.owner_user_id)
        except MethodNotAllowed as exc:
            outcome.refused = outcome.refused or f"the API refuses DELETE /prospects/{{id}} (405): {exc}"
            outcome.manual.append(candidate)
            return
        except NotFoundError:
            if await _still_there(client, candidate):
                outcome.refused = outcome.refused or (
                    "the API answers 404 to DELETE /prospects/{id} for a prospect it still shows: it offers no delete"
                )
                outcome.manual.append(candidate)
            else:
                outcome.deleted.append(candidate)
            return
        if await _still_there(client, candidate):
            outcome.failed.append((candidate, "DELETE answered success but a GET still shows the prospect"))
        else:
            outcome.deleted.append(candidate)

    async def one(candidate: Candidate) -> None:
        try:
            await attempt(candidate)
        except BonzoAPIError as exc:
            outcome.failed.append((candidate, str(exc)))
        finally:
            if on_done is not None:
                on_done(1)

    for candidate in queue[:_PROBE_FIRST]:
        await one(candidate)
    await asyncio.gather(*(one(c) for c in queue[_PROBE_FIRST:]))
    return outcome


async def _still_there(client: BonzoClient, candidate: Candidate) -> bool:
    try:
        await client.get_prospect(candidate.prospect_id, on_behalf_of=candidate.owner_user_id)
    except NotFoundError:
        return False
    return True


def write_manual_list(candidates: Sequence[Candidate], directory: Path, *, reason: str) -> tuple[Path, Path]:
    """Write the prospects to remove by hand as ``manual_cleanup_<stamp>.csv`` and ``.json``."""
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    csv_path = directory / f"manual_cleanup_{stamp}.csv"
    json_path = directory / f"manual_cleanup_{stamp}.json"
    columns = ("prospect_id", "owner_user_id", "first_name", "last_name", "email", "run_id")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with csv_path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows([getattr(c, name) for name in columns] for c in candidates)
        document = {
            "reason": reason,
            "how": "delete these prospects by hand in Bonzo (each is owned by owner_user_id)",
            "prospects": [{name: getattr(c, name) for name in columns} for c in candidates],
        }
        json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise CleanupError(f"cannot write the manual cleanup list to {directory}: {exc.strerror}") from exc
    return csv_path, json_path
