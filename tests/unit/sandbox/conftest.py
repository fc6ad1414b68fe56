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


@pytest.fixture(params=["lenient", "strict"])
async def sbx_mode(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Sandbox]:
    """The seeded in-process sandbox in each strictness; strict maps monitorbase's custom_1 and alert_id."""
    strict = request.param == "strict"
    mapped = {"monitorbase": ["custom_1", "alert_id"]} if strict else {}
    async with start_sandbox(tmp_path, strict=strict, mapped_custom_fields=mapped) as sandbox:
        yield sandbox
