"""The settle index: targets added one at a time are written in batches, and every read sees all of them."""

from __future__ import annotations

from bonzo_bulk.settle.index import PENDING_BATCH, SettleIndex, SettleTarget


def _target(n: int, *, expects: bool = True, user_id: int = 7) -> SettleTarget:
    return SettleTarget(f"TestRecord_{n:05d}", f"test.{n:05d}@bonzobuddy.test", user_id, expects)


def test_targets_added_one_by_one_are_seen_by_every_read_before_a_batch_fills() -> None:
    index = SettleIndex()
    try:
        for n in range(3):
            index.add(_target(n, expects=n != 1, user_id=7 + n))
        assert index.expected() == 2
        assert index.waiting() == (2, [7, 9])
        assert index.by_email(["test.00002@bonzobuddy.test"]) == {"test.00002@bonzobuddy.test": "TestRecord_00002"}
        index.add(_target(1, expects=True, user_id=8))  # a later add of the same record replaces it, as before
        assert index.names(["TestRecord_00001", "nobody"]) == {"TestRecord_00001"}
        assert index.waiting() == (3, [7, 8, 9])
        index.write_seen([(501, "TestRecord_00000", 0, "7", 1, 1.0, None, b'{"id": 501}')])
        assert index.found_count() == 1
        assert index.observed(["TestRecord_00000"])["TestRecord_00000"][0][0] == 501
    finally:
        index.close()


def test_a_full_batch_and_add_many_keep_the_order_of_adding() -> None:
    index = SettleIndex()
    try:
        for n in range(PENDING_BATCH + 2):
            index.add(_target(n))
        index.add_many([_target(0, expects=False), _target(PENDING_BATCH + 5)])
        assert index.expected() == PENDING_BATCH + 2  # record 0 no longer expected, one more added
    finally:
        index.close()
