"""The sandbox's SQLite state (one file, WAL): users, teams, hooks, prospects, pending intake, ground truth.

All SQL of the sandbox lives here. A :class:`Database` is used from one thread at a time (the app runs
every call on a single-thread executor), so it holds one connection and no locks.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from bonzo_bulk.errors import SandboxError
from bonzo_bulk.models import User
from bonzo_bulk.sandbox.listings import Listings
from bonzo_bulk.sandbox.rows import (
    HookRow,
    IntakeRow,
    NewIntake,
    NewProspect,
    StoredProspect,
    TruthEntry,
    UserRow,
    utc_stamp,
)

SUPERUSER_ID = 900_000_001
"""The sandbox superuser's Bonzo user id (and its own team's id); seeded users may not take it."""
SUPERUSER_EMAIL = "superuser@sandbox.bonzo.test"
_INSERT_PROSPECT = (
    "INSERT INTO prospects (user_id, team_id, search, doc, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS teams (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    email_lc TEXT NOT NULL UNIQUE,
    team_id INTEGER NOT NULL,
    external_id TEXT UNIQUE,
    token TEXT NOT NULL UNIQUE,
    is_superuser INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS hooks (
    hash TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL,
    routing TEXT,
    UNIQUE (type, source)
);
CREATE TABLE IF NOT EXISTS tags (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS prospects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    team_id INTEGER NOT NULL,
    search TEXT NOT NULL,
    doc TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS prospects_by_user_search ON prospects (user_id, id, search);
CREATE TABLE IF NOT EXISTS intake (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hook_type TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    record TEXT NOT NULL,
    email TEXT NOT NULL,
    fields TEXT NOT NULL,
    faults TEXT NOT NULL,
    accepted_at REAL NOT NULL,
    due_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS intake_by_due ON intake (due_at);
CREATE TABLE IF NOT EXISTS ground_truth (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fault TEXT NOT NULL,
    record TEXT,
    email TEXT,
    hook TEXT,
    detail TEXT NOT NULL,
    at TEXT NOT NULL,
    count INTEGER NOT NULL DEFAULT 1,
    dedupe TEXT UNIQUE
);
"""


def new_token() -> str:
    """A fresh sandbox bearer token (visibly not a real Bonzo token)."""
    return "sandbox_" + secrets.token_hex(24)


class Database:
    """The sandbox state in one SQLite file (WAL, no fsync per commit)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._conn.execute("PRAGMA cache_size=-32000")
            self._listings = Listings()
            self._conn.executescript(_SCHEMA)
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(hooks)")}
            if "routing" not in columns:  # a database file from before hooks had routing
                self._conn.execute("ALTER TABLE hooks ADD COLUMN routing TEXT")
            self._ensure_superuser()
        except (sqlite3.Error, OSError) as exc:
            raise SandboxError(f"sandbox database {self.path}: cannot open it ({exc}); check --db") from exc

    def close(self) -> None:
        """Checkpoint and close the connection."""
        with contextlib.suppress(sqlite3.Error):  # another process may hold the WAL; closing still works
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on error)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _ensure_superuser(self) -> None:
        """Create the superuser (and its token) once per database file."""
        with self.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO teams (id, name) VALUES (?, ?)", (SUPERUSER_ID, "Sandbox Enterprise"))
            conn.execute(
                "INSERT OR IGNORE INTO users (id, name, email, email_lc, team_id, external_id, token, is_superuser)"
                " VALUES (?, ?, ?, ?, ?, NULL, ?, 1)",
                (SUPERUSER_ID, "Sandbox Superuser", SUPERUSER_EMAIL, SUPERUSER_EMAIL, SUPERUSER_ID, new_token()),
            )

    # users, teams, hooks -------------------------------------------------------------------------

    def users(self) -> list[UserRow]:
        """Every user, the superuser included, by id."""
        rows = self._conn.execute(
            "SELECT id, name, email, team_id, external_id, token, is_superuser FROM users ORDER BY id"
        ).fetchall()
        return [UserRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in rows]

    def teams(self) -> dict[int, str]:
        """Team id -> name."""
        return dict(self._conn.execute("SELECT id, name FROM teams ORDER BY id").fetchall())

    def hooks(self) -> list[HookRow]:
        """Every hook, in creation order."""
        rows = self._conn.execute("SELECT hash, type, source, routing FROM hooks ORDER BY created_at, rowid").fetchall()
        return [HookRow(r[0], r[1], r[2], json.loads(r[3]) if r[3] else None) for r in rows]

    def seed_users(self, users: Sequence[User], team_names: dict[int, str | None]) -> None:
        """Insert or update users (by id) and their teams; a user's token survives re-seeding."""
        with self.transaction() as conn:
            for team_id, name in team_names.items():
                if name is None:
                    conn.execute("INSERT OR IGNORE INTO teams (id, name) VALUES (?, ?)", (team_id, f"Team {team_id}"))
                else:
                    conn.execute(
                        "INSERT INTO teams (id, name) VALUES (?, ?) "
                        "ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                        (team_id, name),
                    )
            for user in users:
                conn.execute(
                    "INSERT INTO users (id, name, email, email_lc, team_id, external_id, token) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
                    "email = excluded.email, email_lc = excluded.email_lc, team_id = excluded.team_id, "
                    "external_id = excluded.external_id",
                    (
                        user.user_id,
                        user.name,
                        user.email,
                        user.email.lower(),
                        user.team_id,
                        user.external_id,
                        new_token(),
                    ),
                )

    def ensure_hook(self, hook_type: str, source: str, routing: dict[str, Any] | None = None) -> HookRow:
        """The hook of this (type, source), created with a fresh 32-hex hash when missing; a routing given
        replaces the hook's routing (none given keeps it)."""
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT hash, type, source, routing FROM hooks WHERE type = ? AND source = ?", (hook_type, source)
            )
            found = row.fetchone()
            if found:
                kept = json.loads(found[3]) if found[3] else None
                if routing is not None and routing != kept:
                    conn.execute("UPDATE hooks SET routing = ? WHERE hash = ?", (json.dumps(routing), found[0]))
                    kept = routing
                return HookRow(found[0], found[1], found[2], kept)
            hook = HookRow(secrets.token_hex(16), hook_type, source, routing)
            conn.execute(
                "INSERT INTO hooks (hash, type, source, created_at, routing) VALUES (?, ?, ?, ?, ?)",
                (hook.hash, hook.type, hook.source, utc_stamp(), json.dumps(routing) if routing else None),
            )
            return hook

    # prospects -------------------------------------------------------------------------------------

    def tag_ids(self, names: Iterable[str]) -> dict[str, int]:
        """Ids of tag names, creating the missing ones (call inside a transaction)."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        self._conn.executemany("INSERT OR IGNORE INTO tags (name) VALUES (?)", [(n,) for n in wanted])
        marks = ",".join("?" * len(wanted))
        return dict(self._conn.execute(f"SELECT name, id FROM tags WHERE name IN ({marks})", wanted).fetchall())  # noqa: S608

    def insert_prospects(self, prospects: Sequence[NewProspect], *, now: float | None = None) -> list[int]:
        """Insert prospects (call inside a transaction); returns their ids in order."""
        if not prospects:
            return []
        if not self._conn.in_transaction:
            raise SandboxError("insert_prospects runs inside Database.transaction(): its ids are read from the last")
        stamp = utc_stamp(now)
        rows = [
            (p.user_id, p.team_id, p.search, json.dumps(p.doc, separators=(",", ":")), stamp, stamp) for p in prospects
        ]
        self._conn.executemany(_INSERT_PROSPECT, rows)
        # AUTOINCREMENT inside this (BEGIN IMMEDIATE) transaction: one writer, so the rows took consecutive ids.
        last = int(self._conn.execute("SELECT last_insert_rowid()").fetchone()[0])
        return list(range(last - len(prospects) + 1, last + 1))

    def bulk_insert_prospects(self, rows: Iterable[tuple[int, int, str, str, str]]) -> None:
        """Fast load of (user_id, team_id, search, doc_json, stamp) rows (benchmarks, fixtures)."""
        with self.transaction() as conn:
            conn.executemany(
                _INSERT_PROSPECT,
                ((u, t, s, d, st, st) for u, t, s, d, st in rows),
            )

    def get_prospect(self, prospect_id: int) -> StoredProspect | None:
        """One prospect by id, or None."""
        row = self._conn.execute(
            "SELECT id, user_id, team_id, doc, created_at, updated_at FROM prospects WHERE id = ?", (prospect_id,)
        ).fetchone()
        return None if row is None else StoredProspect(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5])

    def list_prospects(
        self,
        user_id: int,
        *,
        search: str | None,
        order: Literal["newest", "oldest"],
        limit: int,
        offset: int,
        after: int | None = None,
        fields: Literal["all", "names"] = "all",
    ) -> tuple[list[StoredProspect], int]:
        """One page of a user's prospects (optionally a lower-case substring search of ``fields``: names, email
        and phone, or the names alone) and the total count; ``after`` (a cursor) starts the page after that id
        in the listing's order, ``offset`` from there."""
        ids = self._listings.matching(self._conn, user_id, search or None, fields)
        total = len(ids)
        if after is not None:
            cut = bisect.bisect_left(ids, after) if order == "newest" else bisect.bisect_right(ids, after)
            ids = ids[:cut] if order == "newest" else ids[cut:]
        if order == "newest":
            end = max(0, len(ids) - offset)
            page = ids[max(0, end - limit) : end][::-1]
        else:
            page = ids[offset : offset + limit]
        if not page:
            return [], total
        marks = ",".join("?" * len(page))
        rows = self._conn.execute(
            f"SELECT id, user_id, team_id, doc, created_at, updated_at FROM prospects WHERE id IN ({marks})",  # noqa: S608
            list(page),
        ).fetchall()
        by_id = {r[0]: StoredProspect(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows}
        return [by_id[i] for i in page if i in by_id], total

    def created_stamps(self) -> list[tuple[int, str | None, str | None, str]]:
        """Every prospect's id, email, first name and true creation stamp (the clock variants' ground truth)."""
        rows = self._conn.execute(
            "SELECT id, json_extract(doc, '$.email'), json_extract(doc, '$.first_name'), created_at FROM prospects"
            " ORDER BY id"
        ).fetchall()
        return [(int(i), e, n, str(c)) for i, e, n, c in rows]

    def replace_prospect(self, prospect_id: int, doc: dict[str, Any], search: str) -> StoredProspect | None:
        """Overwrite a prospect's fields (PUT is a full replace); owner and team stay."""
        self._listings.clear()
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE prospects SET doc = ?, search = ?, updated_at = ? WHERE id = ?",
                (json.dumps(doc, separators=(",", ":")), search, utc_stamp(), prospect_id),
            )
        return self.get_prospect(prospect_id) if cur.rowcount else None

    def delete_prospect(self, prospect_id: int) -> bool:
        """Delete one prospect; False when it did not exist."""
        with self.transaction() as conn:
            cur = conn.execute("DELETE FROM prospects WHERE id = ?", (prospect_id,))
        self._listings.forget(prospect_id)
        return cur.rowcount > 0

    def prospect_count(self) -> int:
        """How many prospects exist (all users)."""
        return int(self._conn.execute("SELECT COUNT(*) FROM prospects").fetchone()[0])

    # intake ----------------------------------------------------------------------------------------

    def add_intake(self, rows: Sequence[NewIntake]) -> None:
        """Queue accepted leads (call inside a transaction: one for the whole batch)."""
        if rows:
            self._conn.executemany(
                "INSERT INTO intake (hook_type, user_id, record, email, fields, faults, accepted_at, due_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.hook_type,
                        r.user_id,
                        r.record,
                        r.email,
                        json.dumps(r.fields, separators=(",", ":")),
                        json.dumps(r.faults, separators=(",", ":")),
                        r.accepted_at,
                        r.due_at,
                    )
                    for r in rows
                ],
            )

    def due_intake(self, now: float, limit: int) -> list[IntakeRow]:
        """The queued leads whose processing time has come, earliest first."""
        rows = self._conn.execute(
            "SELECT id, hook_type, user_id, record, email, fields, faults, accepted_at, due_at FROM intake "
            "WHERE due_at <= ? ORDER BY due_at, id LIMIT ?",
            (now, limit),
        ).fetchall()
        return [
            IntakeRow(r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]), r[7], r[8], id=r[0]) for r in rows
        ]

    def remove_intake(self, ids: Sequence[int]) -> None:
        """Drop processed leads from the queue (call inside a transaction)."""
        self._conn.executemany("DELETE FROM intake WHERE id = ?", [(i,) for i in ids])

    def next_due(self) -> float | None:
        """When the earliest queued lead is due, or None when the queue is empty."""
        value = self._conn.execute("SELECT MIN(due_at) FROM intake").fetchone()[0]
        return None if value is None else float(value)

    def pending_count(self) -> int:
        """How many accepted leads wait for the worker."""
        return int(self._conn.execute("SELECT COUNT(*) FROM intake").fetchone()[0])

    # ground truth ----------------------------------------------------------------------------------

    def add_truth(self, entries: Sequence[TruthEntry]) -> None:
        """Record applied faults; an entry with a known ``dedupe`` key only bumps that entry's count."""
        for e in entries:
            self._conn.execute(
                "INSERT INTO ground_truth (fault, record, email, hook, detail, at, dedupe) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (dedupe) DO UPDATE SET count = count + 1",
                (e.fault, e.record, e.email, e.hook, json.dumps(e.detail), e.at, e.dedupe),
            )

    def truth(self) -> list[dict[str, Any]]:
        """Every applied fault, in the order first applied."""
        rows = self._conn.execute(
            "SELECT fault, record, email, hook, detail, at, count FROM ground_truth ORDER BY id"
        ).fetchall()
        return [
            {
                "fault": r[0],
                "record": r[1],
                "email": r[2],
                "hook": r[3],
                "detail": json.loads(r[4]),
                "at": r[5],
                "count": r[6],
            }
            for r in rows
        ]

    # reset -----------------------------------------------------------------------------------------

    def reset(self, scope: Literal["prospects", "all"]) -> None:
        """Delete prospects, pending intake and ground truth; ``all`` also users, teams, hooks and tags."""
        self._listings.clear()
        with self.transaction() as conn:
            conn.execute("DELETE FROM prospects")
            conn.execute("DELETE FROM intake")
            conn.execute("DELETE FROM ground_truth")
            if scope == "all":
                conn.execute("DELETE FROM users WHERE is_superuser = 0")
                conn.execute("DELETE FROM teams WHERE id != ?", (SUPERUSER_ID,))
                conn.execute("DELETE FROM hooks")
                conn.execute("DELETE FROM tags")
