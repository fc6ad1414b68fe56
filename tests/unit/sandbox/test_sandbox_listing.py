"""Listing a user's prospects page by page: the kept id listings give what a fresh SQL query over the table gives,
through inserts, deletes, updates, a reset and writes by another connection."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Literal

import pytest

from bonzo_bulk.errors import SandboxError
from bonzo_bulk.sandbox.db import Database
from bonzo_bulk.sandbox.rows import NewProspect

USERS = (101, 102)
SEARCHES = (None, "run-a", "run-b", "007")


def _add(db: Database, rng: random.Random, count: int, start: int) -> None:
    prospects = []
    for n in range(start, start + count):
        run = rng.choice(("run-a", "run-b"))
        doc = {"first_name": f"TestRecord_{n:03d}", "email": f"t.{n:03d}+{run}@x.test"}
        prospects.append(NewProspect(rng.choice(USERS), 11, doc, f"testrecord_{n:03d}\nt.{n:03d}+{run}@x.test"))
    with db.transaction():
        db.insert_prospects(prospects)


def _fresh(
    path: Path, user_id: int, search: str | None, order: Literal["newest", "oldest"], limit: int, offset: int
) -> tuple[list[int], int]:
    """What a page is, straight from the table on a connection of its own."""
    where = "user_id = ?"
    params: list[int | str] = [user_id]
    if search:
        where += " AND instr(search, ?) > 0"
        params.append(search)
    direction = "DESC" if order == "newest" else "ASC"
    with sqlite3.connect(path) as conn:
        total = conn.execute(f"SELECT COUNT(*) FROM prospects WHERE {where}", params).fetchone()[0]  # noqa: S608
        ids = conn.execute(
            f"SELECT id FROM prospects WHERE {where} ORDER BY id {direction} LIMIT ? OFFSET ?",  # noqa: S608
            [*params, limit, offset],
        ).fetchall()
    conn.close()
    return [i for (i,) in ids], total


def _assert_pages_match(db: Database, rng: random.Random) -> None:
    for user_id in USERS:
        for search in SEARCHES:
            for order in ("newest", "oldest"):
                limit = rng.choice((1, 7, 25))
                for offset in (0, limit, 3 * limit, 1000):
                    page, total = db.list_prospects(user_id, search=search, order=order, limit=limit, offset=offset)
                    expected = _fresh(db.path, user_id, search, order, limit, offset)
                    assert ([p.id for p in page], total) == expected, (user_id, search, order, limit, offset)
                    assert all(p.user_id == user_id for p in page)


def test_pages_match_the_table_through_inserts_deletes_updates_and_a_reset(tmp_path: Path) -> None:
    rng = random.Random(11)
    db = Database(tmp_path / "sandbox.sqlite3")
    try:
        _add(db, rng, 60, 1)
        _assert_pages_match(db, rng)
        _add(db, rng, 40, 61)  # new prospects join the kept listings
        _assert_pages_match(db, rng)
        for prospect_id in rng.sample(range(1, 101), 30):  # deleted ones leave them
            assert db.delete_prospect(prospect_id)
        _assert_pages_match(db, rng)
        kept = db.list_prospects(101, search="run-a", order="newest", limit=100, offset=0)[0][0]
        db.replace_prospect(kept.id, kept.doc, "renamed\nno marker")  # its search text no longer holds run-a
        _assert_pages_match(db, rng)
        db.reset("prospects")
        _assert_pages_match(db, rng)
        _add(db, rng, 10, 200)
        _assert_pages_match(db, rng)
    finally:
        db.close()


def test_a_write_by_another_connection_is_seen(tmp_path: Path) -> None:
    rng = random.Random(5)
    db = Database(tmp_path / "sandbox.sqlite3")
    other = Database(tmp_path / "sandbox.sqlite3")
    try:
        _add(db, rng, 20, 1)
        _assert_pages_match(db, rng)
        _add(other, rng, 20, 21)
        first = db.list_prospects(101, search=None, order="newest", limit=100, offset=0)[0][0]
        other.delete_prospect(first.id)
        _assert_pages_match(db, rng)
    finally:
        other.close()
        db.close()


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_a_page_past_the_end_is_empty_with_the_total(tmp_path: Path, order: Literal["newest", "oldest"]) -> None:
    db = Database(tmp_path / "sandbox.sqlite3")
    try:
        _add(db, random.Random(1), 5, 1)
        total = len(db.list_prospects(101, search=None, order=order, limit=100, offset=0)[0])
        assert db.list_prospects(101, search=None, order=order, limit=10, offset=10) == ([], total)
    finally:
        db.close()


def test_inserted_ids_are_the_rows_ids_after_deletes_and_outside_a_transaction_refused(tmp_path: Path) -> None:
    db = Database(tmp_path / "ids.sqlite3")
    try:
        _add(db, random.Random(3), 5, 0)
        db.delete_prospect(5)  # the largest id gone: AUTOINCREMENT still never reuses it
        batch = [NewProspect(101, 11, {"first_name": f"New_{n}"}, f"new_{n}") for n in range(3)]
        with db.transaction():
            ids = db.insert_prospects(batch)
        assert ids == [6, 7, 8]
        assert [db.get_prospect(i).doc["first_name"] for i in ids] == ["New_0", "New_1", "New_2"]  # type: ignore[union-attr]
        with pytest.raises(SandboxError, match=r"inside Database\.transaction"):
            db.insert_prospects(batch)
        assert db.prospect_count() == 7
    finally:
        db.close()
