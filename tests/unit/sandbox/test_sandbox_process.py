"""The sandbox a run starts in a child process of its own: it serves on loopback, keeps its options,
and is stopped and reaped by its starter, or stops by itself when the starter's pipe closes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bonzo_bulk.config.schema import ProcessingDelayModel, SandboxListing
from bonzo_bulk.errors import SandboxError
from bonzo_bulk.sandbox import SandboxOptions, SandboxProcess
from bonzo_bulk.sandbox.process import options_from_json, options_to_json


def _gone(pid: int, timeout: float = 20.0) -> bool:
    """Whether ``pid`` no longer exists (reaped, not a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_serves_in_another_process_with_its_options_and_is_reaped(tmp_path: Path) -> None:
    options = SandboxOptions(
        db_path=tmp_path / "child.sqlite3",
        processing=ProcessingDelayModel(distribution="fixed", seconds=0.01),
        rate_limit_per_minute=1000,
    )
    with SandboxProcess(options) as sandbox:
        pid = sandbox.pid
        assert pid is not None and pid != os.getpid()
        assert sandbox.url.startswith("http://127.0.0.1:")
        seeded = httpx.post(f"{sandbox.url}/__sandbox/seed", json={"users": [], "hooks": [{"type": "monitorbase"}]})
        assert seeded.status_code == 200
    assert _gone(pid), "the child was not stopped and reaped"
    assert (tmp_path / "child.sqlite3").is_file(), "the child used the database it was given"
    with pytest.raises(SandboxError, match="not running"):
        _ = sandbox.url


def test_options_cross_the_process_boundary_unchanged(tmp_path: Path) -> None:
    options = SandboxOptions(
        db_path=tmp_path / "x.sqlite3",
        processing=ProcessingDelayModel(distribution="lognormal", seconds=0.3, sigma=0.2),
        unknown_lo_email="fallback",
        fallback_user_id=7,
        faults={"seed": 3, "faults": [{"kind": "drop", "rate": 0.5}]},
        seed=9,
        listing=SandboxListing(style="meta_cursor", max_per_page=50, hints="asked", hostile="repeat"),
        strictness="strict",
        mapped_custom_fields={"monitorbase": ["custom_1", "custom_2"]},
    )
    assert options_from_json(options_to_json(options)) == options


def test_a_port_in_use_is_a_sandbox_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SandboxError, match=f"127.0.0.1:{port}"):
            SandboxProcess(port=port).start()


def test_the_child_stops_by_itself_when_its_starter_dies(tmp_path: Path) -> None:
    """A starter killed outright (no cleanup at all) closes the pipe, and the child exits on its own."""
    starter = (
        "import sys; from pathlib import Path;"
        "from bonzo_bulk.sandbox import SandboxOptions, SandboxProcess;"
        f"s = SandboxProcess(SandboxOptions(db_path=Path({str(tmp_path / 'orphan.sqlite3')!r}))).start();"
        "print(s.pid, flush=True); sys.stdin.read()"
    )
    with subprocess.Popen(
        [sys.executable, "-c", starter], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        parent.kill()
    assert _gone(child), "the orphaned sandbox kept running"
