"""Fixtures for the run-store suite: every store test runs on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgcluster import INSTALL_HINT, PASSWORD, PgCluster, server_bin


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster for the session; skipped without server binaries, failed with CI=true."""
    bin_dir = server_bin()
    if bin_dir is None:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{INSTALL_HINT}; CI=true, so these tests must run (.ci/run installs the package)")
        pytest.skip(INSTALL_HINT)
    cluster = PgCluster(bin_dir).start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PGPASSWORD", PASSWORD)
        try:
            yield cluster
        finally:
            cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_at(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a fresh, empty run store lives: a SQLite file, or a new database on the test server."""
    if request.param == "sqlite":
        return tmp_path / "runs.sqlite3"
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster.new_database()
