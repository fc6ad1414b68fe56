"""Fixtures for the sandbox's own tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sandbox_helpers import Sandbox, start_sandbox


@pytest.fixture
async def sbx(tmp_path: Path) -> AsyncIterator[Sandbox]:
    """A seeded in-process sandbox with default options (reject unknown lo_email, 50 ms processing)."""
    async with start_sandbox(tmp_path) as sandbox:
        yield sandbox
