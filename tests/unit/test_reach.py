"""The last poll that could have seen a record: per user's list, per search term, and as deep as its page."""

from __future__ import annotations

from bonzo_bulk.settle.reach import ListReach


def test_a_walk_that_stopped_short_of_the_page_proves_nothing_about_it() -> None:
    reach = ListReach()
    reach.finished((1, "run"), 10.0, 3, complete=True)
    reach.finished((1, "run"), 20.0, 1, complete=False)
    assert reach.not_there_since((1, "run"), 1) == 20.0
    assert reach.not_there_since((1, "run"), 3) == 10.0
    assert reach.not_there_since((1, "run"), 9) == 10.0  # the complete walk read every page


def test_another_user_or_another_search_proves_nothing() -> None:
    reach = ListReach()
    reach.finished((1, "run"), 10.0, 1, complete=True)
    assert reach.not_there_since((2, "run"), 1) is None
    assert reach.not_there_since((1, None), 1) is None


def test_a_later_deeper_walk_replaces_the_ones_it_covers() -> None:
    reach = ListReach()
    reach.finished((1, None), 10.0, 2, complete=False)
    reach.finished((1, None), 30.0, 5, complete=False)
    assert reach.not_there_since((1, None), 2) == 30.0
    assert reach.not_there_since((1, None), 6) is None
