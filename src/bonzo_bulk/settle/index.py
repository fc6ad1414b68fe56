"""What settling knows of a run: each sent record (a :class:`SettleTarget`) and each prospect seen, in a
private temporary SQLite file (:class:`SettleIndex`) rather than in Python objects."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from bonzo_bulk.models import PlannedRecord, Prospect


@dataclass(frozen=True, slots=True)
class SettleTarget:
    """What the poller knows of one sent record: enough to match prospects to it and to wait for it."""

    name: str
    email: str
    user_id: int
    """The expected owner (polled first while the record is outstanding)."""
    expects: bool
    """Whether a prospect must appear (see :func:`bonzo_bulk.judge.verify.expects_prospect`)."""

    @classmethod
    def of(cls, record: PlannedRecord, expects: bool) -> SettleTarget:
        return cls(record.name, record.email.lower(), record.expected_user.user_id, expects)


PENDING_BATCH = 500
"""Targets added one by one that are written to the index together."""

Sighting: TypeAlias = tuple[int, str | None, int, str, int, float, float | None, bytes | None]
"""A prospect listed: id, record, stray (0/1), users (comma list), first poll, first seen, poll gap, JSON."""
Known: TypeAlias = tuple[str | None, tuple[int, ...], int]
"""A prospect seen before: its record, the users whose lists held it, the poll that first saw it."""
Seen: TypeAlias = tuple[int, tuple[int, ...], float, float | None, bytes]
"""One of a record's prospects: id, users, first seen, poll gap, JSON."""


class SettleIndex:
    """What settling knows of a run, in a private temporary SQLite file rather than in Python objects.

    Two tables: ``target`` (each sent record: name, email, expected owner, whether a prospect must
    appear) and ``seen`` (each prospect listed: its record, the users whose lists held it, when it was
    first seen, and its JSON when it is the run's). A 100k run holds none of it in memory; SQLite
    deletes the file when the index is closed. The engine adds targets as records are delivered.
    """

    def __init__(self, targets: Iterable[SettleTarget] = ()) -> None:
        self._db = sqlite3.connect("")  # "" = a private on-disk temporary database
        self._db.executescript(
            """
            PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
            CREATE TABLE target (
                name TEXT PRIMARY KEY, email TEXT, user_id INTEGER NOT NULL, expects INTEGER NOT NULL,
                found INTEGER NOT NULL DEFAULT 0
            );
            CREATE INDEX target_email ON target (email) WHERE email != '';
            CREATE INDEX target_waiting ON target (expects, found, user_id);
            CREATE TABLE seen (
                id INTEGER PRIMARY KEY, record TEXT, stray INTEGER NOT NULL DEFAULT 0, users TEXT NOT NULL,
                first_poll INTEGER NOT NULL, first_seen REAL NOT NULL, poll_gap REAL, raw BLOB
            );
            CREATE INDEX seen_record ON seen (record) WHERE record IS NOT NULL;
            """
        )
        self._pending: list[tuple[str, str, int, int]] = []
        """Targets added one at a time, written together (one statement per batch, not per record)."""
        self.add_many(targets)

    def add_many(self, targets: Iterable[SettleTarget]) -> None:
        """Know more sent records (the engine adds each batch as it is delivered)."""
        self._pending.extend((t.name, t.email, t.user_id, int(t.expects)) for t in targets)
        self._ready()

    def add(self, target: SettleTarget) -> None:
        """Know one more sent record (written with the next batch, before anything reads the index)."""
        self._pending.append((target.name, target.email, target.user_id, int(target.expects)))
        if len(self._pending) >= PENDING_BATCH:
            self._ready()

    def _ready(self) -> sqlite3.Connection:
        """The index's database with every target added so far written."""
        if self._pending:
            pending, self._pending = self._pending, []
            self._db.executemany(
                "INSERT OR REPLACE INTO target (name, email, user_id, expects) VALUES (?, ?, ?, ?)", pending
            )
        return self._db

    def expected(self) -> int:
        """Records that must produce a prospect."""
        return int(self._ready().execute("SELECT COUNT(*) FROM target WHERE expects = 1").fetchone()[0])

    def waiting(self) -> tuple[int, list[int]]:
        """How many expected records are not seen yet, and the users they are meant for."""
        rows = (
            self._ready()
            .execute("SELECT user_id, COUNT(*) FROM target WHERE expects = 1 AND found = 0 GROUP BY user_id")
            .fetchall()
        )
        return sum(int(n) for _, n in rows), sorted(int(u) for u, _ in rows)

    def sent(self) -> int:
        """Records sent (every target)."""
        return int(self._db.execute("SELECT COUNT(*) FROM target").fetchone()[0])

    def sent_names(self, limit: int) -> list[str]:
        """The first ``limit`` names of the records sent, sorted."""
        return [str(n) for (n,) in self._db.execute("SELECT name FROM target ORDER BY name LIMIT ?", (limit,))]

    def found_count(self) -> int:
        return int(self._ready().execute("SELECT COUNT(*) FROM target WHERE found = 1").fetchone()[0])

    def by_email(self, emails: Sequence[str]) -> dict[str, str]:
        """Record names of the given (lower-case) emails, where a sent record has one."""
        return dict(self._lookup("SELECT email, name FROM target WHERE email IN ({})", emails))

    def names(self, names: Sequence[str]) -> set[str]:
        """Which of these are the names of sent records."""
        return {n for n, _ in self._lookup("SELECT name, name FROM target WHERE name IN ({})", names)}

    def _lookup(self, query: str, keys: Sequence[str]) -> list[tuple[str, str]]:
        unique = list(dict.fromkeys(k for k in keys if k))
        if not unique:
            return []
        marks = ", ".join("?" for _ in unique)
        return [(str(a), str(b)) for a, b in self._ready().execute(query.format(marks), unique)]

    def seen(self, ids: Sequence[int]) -> dict[int, Known]:
        """Of the given prospect ids, those seen before: their record, the users who listed them, their first poll."""
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        query = f"SELECT id, record, users, first_poll FROM seen WHERE id IN ({marks})"  # noqa: S608
        return {
            int(i): (record, tuple(int(u) for u in users.split(",") if u), int(first))
            for i, record, users, first in self._ready().execute(query, list(ids))
        }

    def write_seen(self, rows: Sequence[Sighting]) -> None:
        """Insert or refresh sightings: id, record, stray, users, first poll, first seen, poll gap, JSON."""
        self._ready().executemany(
            "INSERT INTO seen (id, record, stray, users, first_poll, first_seen, poll_gap, raw)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET record = excluded.record,"
            " stray = excluded.stray, users = excluded.users, raw = COALESCE(excluded.raw, seen.raw)",
            rows,
        )
        found = [(r[1],) for r in rows if r[1] is not None]
        self._ready().executemany("UPDATE target SET found = 1 WHERE name = ?", found)

    def observed(self, names: Iterable[str]) -> dict[str, list[Seen]]:
        """Each named record's prospects: id, users, first seen, poll gap, JSON (oldest id first)."""
        wanted = list(names)
        found: dict[str, list[Seen]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            query = (
                "SELECT record, id, users, first_seen, poll_gap, raw FROM seen"  # noqa: S608 - placeholders only
                f" WHERE record IN ({marks}) ORDER BY id"
            )
            for record, i, users, first_seen, gap, raw in self._ready().execute(query, chunk):
                found.setdefault(str(record), []).append(
                    (int(i), tuple(int(u) for u in users.split(",") if u), float(first_seen), gap, bytes(raw))
                )
        return found

    def all_observed_names(self) -> list[str]:
        return [str(r) for (r,) in self._ready().execute("SELECT DISTINCT record FROM seen WHERE record IS NOT NULL")]

    def strays(self) -> list[Prospect]:
        rows = self._ready().execute("SELECT raw FROM seen WHERE record IS NULL AND stray = 1 ORDER BY id")
        return [json.loads(raw) for (raw,) in rows]

    def close(self) -> None:
        self._db.close()
