"""List test users' prospects On-Behalf-Of through the Bonzo API, each marked test record or not (``prospects``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bonzo_bulk.errors import ConfigError

if TYPE_CHECKING:
    from bonzo_bulk.bonzo import OnBehalfOf
    from bonzo_bulk.config.loader import LoadedConfig
    from bonzo_bulk.models import Target


@dataclass(frozen=True)
class ProspectListing:
    """The search used and one row per prospect found (id, acting user, names, email, source, test record, why)."""

    search: str | None
    rows: list[dict[str, Any]]


def _acting(user: str) -> OnBehalfOf:
    """``--user`` as an ``On-Behalf-Of`` value, or a :class:`ConfigError` (exit 2) before anything is sent."""
    from bonzo_bulk.bonzo import acting_user

    acting = acting_user(user)
    if acting is None:
        raise ConfigError(
            f"--user {user!r} is not a Bonzo user to act as: give a user id (a number, e.g. 65013), an email, "
            "or ex:<external id>",
            key="--user",
        )
    return acting


async def list_prospects(
    loaded: LoadedConfig,
    *,
    user: str | None,
    search: str | None,
    everything: bool,
    limit: int,
    on_target: Callable[[Target, str], None],
) -> ProspectListing:
    """Up to ``limit`` prospects per acting user (``user``, else every test user), narrowed by ``search``
    (default: this config's name prefix; ``everything``: no search), each judged as cleanup would judge it."""
    from bonzo_bulk._http import make_session
    from bonzo_bulk.bonzo import BonzoClient
    from bonzo_bulk.cleanup.select import judge, selector_for_all
    from bonzo_bulk.plan.planner import plan_run
    from bonzo_bulk.plan.seeding import plan_seed
    from bonzo_bulk.target.endpoints import open_endpoints

    config = loaded.config
    selector = selector_for_all(config.test_data_settings)
    term = None if everything else (search or selector.search)
    acting: list[OnBehalfOf] = [_acting(user)] if user else [u.user_id for u in loaded.users]
    found: list[dict[str, Any]] = []
    plan = plan_run(loaded, phases=())
    async with (
        make_session(limit=4, timeout=config.api_settings.timeout) as session,
        open_endpoints(loaded, session, run_id=plan.run_id, new_run=False, seed=plan_seed(plan)) as endpoints,
    ):
        on_target(endpoints.target, endpoints.where)
        async with BonzoClient(
                base_url=endpoints.api_base_url, api_key=endpoints.api_key, settings=config.api_settings,
                session=session,
            ) as client:  # fmt: skip
            for who in acting:
                count = 0
                async for p in client.iter_prospects(on_behalf_of=who, search=term):
                    verdict = judge(p, who, selector)
                    found.append(
                        {
                            "id": p.get("id"),
                            "acting_as": who,
                            "first_name": p.get("first_name"),
                            "last_name": p.get("last_name"),
                            "email": p.get("email"),
                            "source": p.get("source"),
                            "test_record": bool(verdict and verdict.deletable),
                            "why": verdict.reason if verdict else "not named like a test record",
                        }
                    )
                    count += 1
                    if count >= limit:
                        break
    return ProspectListing(term, found)
