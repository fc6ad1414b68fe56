"""How a run settles: the search term that narrows Bonzo's listing to the run, how long settling may take,
and how the listing is paged. Every mode that waits for Bonzo (a bulk run, a load run) settles by it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from bonzo_bulk.config.schema import BulkConfig, PollingSettings
from bonzo_bulk.models import User
from bonzo_bulk.settle.delivering import Delivering
from bonzo_bulk.settle.index import SettleIndex, SettleTarget
from bonzo_bulk.settle.poller import Poller, ProspectLister, SettleOutcome, settle


@dataclass(frozen=True)
class SettlePolicy:
    """A run's settling: its search term, its deadline, the poll intervals, the page size and order."""

    search: str
    """The run id where every email carries it (``unique_emails``; the last name carries it too, so a Bonzo whose
    search reads names alone still matches it), else the name prefix all test records share."""
    deadline: float
    """Seconds after the last delivery: ``polling.deadline``, else the processing delay plus ``polling.grace``."""
    polling: PollingSettings
    per_page: int
    order: str | None

    @classmethod
    def of(cls, config: BulkConfig, run_id: str) -> SettlePolicy:
        """The policy the config sets for the run ``run_id``."""
        data = config.test_data_settings
        return cls(
            search=run_id if data.unique_emails else f"{data.first_name_pattern}_{data.last_name_pattern}",
            deadline=config.polling.deadline or config.processing_delay + config.polling.grace,
            polling=config.polling,
            per_page=config.api_settings.max_prospects_per_request,
            order=config.api_settings.list_order,
        )

    def poller(self, client: ProspectLister, targets: Iterable[SettleTarget], *, users: Sequence[User]) -> Poller:
        """A poller listing the run's prospects (to watch a run while it sends)."""
        return Poller(client, targets, users=users, search=self.search, per_page=self.per_page, order=self.order)

    async def settle(
        self,
        client: ProspectLister,
        targets: SettleIndex | Iterable[SettleTarget],
        *,
        users: Sequence[User],
        on_poll: Callable[[int, int], None] | None = None,
        delivering: Delivering | None = None,
    ) -> SettleOutcome:
        """Poll until every expected record is visible and stable, or the deadline (see :func:`settle`; with
        ``delivering``, from the first delivery, the deadline counting from the last)."""
        return await settle(
            client,
            targets,
            users=users,
            search=self.search,
            polling=self.polling,
            deadline_seconds=self.deadline,
            per_page=self.per_page,
            order=self.order,
            on_poll=on_poll,
            delivering=delivering,
        )
