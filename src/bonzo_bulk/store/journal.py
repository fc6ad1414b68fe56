"""A run's writes the run store could not take, kept in a local file until it can: no delivery is lost.

When the store fails mid-run (SQLite: a full disk, a lock held past the busy timeout, a damaged page;
PostgreSQL: the connection lost), :class:`~bonzo_bulk.store.RunStore` appends what it was asked to write to
``<reports dir>/journal/<run id>.jsonl`` — one JSON line per batch (planned records, deliveries, outcomes, the
run's progress, a note, the final result), redacted like every other output — and the run goes on. The lines
are replayed into the store, in order, by the next write that succeeds, at the end of the run, and by
``cleanup --run`` and ``report --run`` when a run ended with its journal unreplayed; a replayed journal is
removed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, TypeAdapter

from bonzo_bulk.models import DeliveryResult, PlannedRecord, RecordOutcome, RunResult
from bonzo_bulk.secrets import redact
from bonzo_bulk.store.progress import RunProgress

log = logging.getLogger("bonzo_bulk.store")

JOURNAL_FOLDER = "journal"
Op = Literal["records", "deliveries", "outcomes", "progress", "note", "finish"]
_BYTES = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")
_ITEMS: dict[str, TypeAdapter[Any]] = {
    "records": TypeAdapter(list[PlannedRecord], config=_BYTES),
    "deliveries": TypeAdapter(list[DeliveryResult], config=_BYTES),
    "outcomes": TypeAdapter(list[RecordOutcome], config=_BYTES),
    "progress": TypeAdapter(list[RunProgress], config=_BYTES),
    "note": TypeAdapter(list[str]),
    "finish": TypeAdapter(list[RunResult], config=_BYTES),
}


def journal_path(reports_dir: str | Path, run_id: str) -> Path:
    """Where run ``run_id``'s journal is kept: ``<reports dir>/journal/<run id>.jsonl``."""
    return Path(reports_dir) / JOURNAL_FOLDER / f"{run_id}.jsonl"


@dataclass(frozen=True, slots=True)
class Entry:
    """One batch the store could not take: what it was (``op``), of which run and phase, and its items."""

    op: Op
    run_id: str
    phase: str | None
    items: Sequence[Any]


class Journal:
    """One run's journal file: entries appended as JSON lines, read back in order, removed once replayed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def pending(self) -> bool:
        """Whether the file holds entries not replayed yet."""
        try:
            return self.path.stat().st_size > 0
        except OSError:
            return False

    def append(self, entry: Entry) -> None:
        """Add one entry (a line), with every registered secret masked."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(_line(entry))

    def entries(self) -> Iterator[tuple[int, Entry]]:
        """Every entry in the order appended, with the offset of the line after it, one line read at a time (a
        line cut short by a crash is skipped, and said)."""
        if not self.pending:
            return
        with self.path.open("rb") as handle:
            number = 0
            while raw := handle.readline():
                number += 1
                try:
                    data = json.loads(raw)
                    items = _ITEMS[data["op"]].validate_json(data["items"])
                except (ValueError, KeyError) as exc:
                    log.warning(
                        "journal %s line %d cannot be read (%s): skipped", self.path, number, type(exc).__name__
                    )
                    continue
                yield handle.tell(), Entry(data["op"], data["run_id"], data["phase"], items)

    def drop_before(self, offset: int) -> None:
        """Remove the entries before byte ``offset`` (those replayed); the file goes when nothing is left."""
        if offset <= 0:
            return
        with self.path.open("rb") as handle:
            handle.seek(offset)
            rest = handle.read()
        if not rest:
            self.path.unlink(missing_ok=True)
            return
        temporary = self.path.with_suffix(".tmp")
        temporary.write_bytes(rest)
        temporary.replace(self.path)


def _line(entry: Entry) -> str:
    items = _ITEMS[entry.op].dump_json(list(entry.items)).decode("utf-8")
    text = json.dumps({"op": entry.op, "run_id": entry.run_id, "phase": entry.phase, "items": items})
    return redact(text) + "\n"
