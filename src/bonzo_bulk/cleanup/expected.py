"""Which of a run's records may still appear in Bonzo: those the webhook accepted, and, for a run that died before
it finished (SIGKILL, a crash, an interrupt), those with no answer recorded, which it may have sent.

A run stores each record before sending it and its answers in batches, so after a SIGKILL the store cannot tell a
record that was sent from one that never left. Both may still appear, so both are counted until a cleanup finds
them, or until the run's settle deadline and ``cleanup.straggler_wait`` have passed since the run's last sign of
life (its last progress write, else its start): the run itself would have called a record not seen by then "not
created", so one still unseen is taken as never sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bonzo_bulk.config.loader import LoadedConfig
from bonzo_bulk.settle.policy import SettlePolicy
from bonzo_bulk.store import RunStore


@dataclass(frozen=True, slots=True)
class ExpectedRecords:
    """A run's records that should become prospects, by what the store knows of their sending."""

    accepted: frozenset[str]
    """Answered and accepted by the webhook."""
    unanswered: frozenset[str] = frozenset()
    """No answer recorded, the run died before finishing: possibly sent."""
    presumed_unsent: frozenset[str] = frozenset()
    """No answer recorded, and the run stopped longer ago than its settle deadline and the straggler wait."""

    @property
    def may_appear(self) -> frozenset[str]:
        """Every record that may still appear in Bonzo until a cleanup finds it."""
        return self.accepted | self.unanswered


def expected_records(
    store: RunStore, run_id: str, loaded: LoadedConfig, *, own_run: bool = False, now: datetime | None = None
) -> ExpectedRecords:
    """What of run ``run_id`` may still appear: its accepted records, and, when it died unfinished, its unanswered
    records (until the horizon the module docstring states has passed). ``own_run``: the caller's own open run,
    alive (a store does not list the run it holds itself among the runs in progress)."""
    accepted = frozenset(store.accepted_records(run_id))
    summary = store.summary(run_id)
    if own_run or summary is None or summary.finished_at is not None or run_id in store.running_runs():
        return ExpectedRecords(accepted)
    unanswered = frozenset(store.unanswered_records(run_id)) - accepted
    if not unanswered:
        return ExpectedRecords(accepted)
    progress = store.progress_of(run_id)
    last_sign = progress.updated_at if progress is not None else summary.started_at
    config = loaded.config
    horizon = timedelta(seconds=SettlePolicy.of(config, run_id).deadline + config.cleanup.straggler_wait)
    if (now or datetime.now(UTC)) >= last_sign + horizon:
        return ExpectedRecords(accepted, presumed_unsent=unanswered)
    return ExpectedRecords(accepted, unanswered=unanswered)
