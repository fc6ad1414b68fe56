"""The library's public surface is small, sorted and importable."""

from __future__ import annotations

import bonzo_bulk


def test_all_is_sorted_and_every_name_exists() -> None:
    assert bonzo_bulk.__all__ == sorted(bonzo_bulk.__all__)
    for name in bonzo_bulk.__all__:
        assert hasattr(bonzo_bulk, name), name


def test_errors_share_one_root() -> None:
    for name in bonzo_bulk.__all__:
        value = getattr(bonzo_bulk, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, bonzo_bulk.BonzoBulkError)
