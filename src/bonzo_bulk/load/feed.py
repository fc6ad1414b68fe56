"""The plan Locust deals, streamed: a header, then each arrival a window ahead of its time, never the whole plan.

A run of a hundred thousand leads once wrote a 139 MB plan file before its first send. Now the records are made
as the schedule needs them (:meth:`~bonzo_bulk.plan.planner.PhasePlan.iter_records`), told to the run a batch at
a time (so the run store has each before Locust can send it, as for a bulk run) and appended to ``plan.jsonl``
:data:`LOOKAHEAD_S` seconds of schedule ahead; the Locust master tails the file and deals what is new. A run
stopped early (Ctrl-C, a broken stress step, the cap) never makes, stores or writes the rest.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from bonzo_bulk.errors import BonzoBulkError
from bonzo_bulk.models import PlannedRecord

LOOKAHEAD_S = 30.0
"""Seconds of schedule written ahead of now: the master deals new rows twice a second, so no arrival waits."""
BATCH = 500
"""Records made, stored and written together."""


class PlanFeed:
    """Writes ``plan.jsonl`` as the run goes and keeps each written record until its journal row comes back."""

    def __init__(
        self,
        path: Path,
        records: Iterator[PlannedRecord],
        offsets: Sequence[float],
        *,
        header: dict[str, float | int],
        on_planned: Callable[[Sequence[PlannedRecord]], None],
    ) -> None:
        self.path, self.offsets, self.on_planned = path, offsets, on_planned
        self._records = records
        self._header = {"count": len(offsets), "duration": max(offsets, default=0.0), **header}
        self._out: IO[str] | None = None
        self.names: list[str] = []
        """Each written record's name, by its arrival's sequence number."""
        self._pending: dict[int, PlannedRecord] = {}

    @property
    def written(self) -> int:
        return len(self.names)

    @property
    def done(self) -> bool:
        """Every arrival of the schedule is written."""
        return self.written >= len(self.offsets)

    def open(self, first_window: float = LOOKAHEAD_S) -> None:
        """Write the header and the first ``first_window`` seconds of arrivals (before Locust starts)."""
        try:
            self._out = self.path.open("w", encoding="utf-8")
            self._out.write(json.dumps(self._header) + "\n")
        except OSError as exc:
            raise BonzoBulkError(f"cannot write the load plan to {self.path}: {exc.strerror}") from exc
        self.fill(first_window)

    def fill(self, until_offset: float) -> int:
        """Make, tell and write the arrivals due up to ``until_offset`` seconds into the schedule; how many."""
        added = 0
        while not self.done and self.offsets[self.written] <= until_offset:
            end = min(len(self.offsets), self.written + BATCH)
            while end > self.written + 1 and self.offsets[end - 1] > until_offset:
                end -= 1
            batch = [next(self._records) for _ in range(end - self.written)]
            self.on_planned(batch)  # stored before Locust can read (and send) a byte of it
            self._write(batch)
            added += len(batch)
        return added

    def _write(self, batch: Sequence[PlannedRecord]) -> None:
        assert self._out is not None, "open() the feed first"
        lines = []
        for record in batch:
            seq = len(self.names)
            body = base64.b64encode(record.body).decode("ascii")
            lines.append(json.dumps([seq, self.offsets[seq], record.content_type, body]) + "\n")
            self.names.append(record.name)
            self._pending[seq] = record
        try:
            self._out.write("".join(lines))
            self._out.flush()
        except OSError as exc:
            raise BonzoBulkError(f"cannot write the load plan to {self.path}: {exc.strerror}") from exc

    def take(self, seq: int) -> PlannedRecord:
        """The record of arrival ``seq``, once: its journal row came back."""
        return self._pending.pop(seq)

    def close(self, *, remove: bool = True) -> None:
        """Close the file and (by default) remove it: every record written is in the run store."""
        if self._out is not None:
            self._out.close()
            self._out = None
        if remove:
            self.path.unlink(missing_ok=True)
