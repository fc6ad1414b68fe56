"""A throwaway PostgreSQL cluster on a free loopback port (initdb + pg_ctl), for the tests and the benchmark.

The cluster lives in a temporary folder, listens on 127.0.0.1 only, needs a password (scram) so a
wrong one is refused, and is removed on :meth:`PgCluster.stop`. Run as root (CI), the server runs
as the ``postgres`` user (or ``nobody``), because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install them (Debian/Ubuntu: "
    "apt-get install postgresql; macOS: brew install postgresql@16) to run the PostgreSQL store tests"
)
SUPERUSER = "bonzo"
PASSWORD = "throwaway-pw-4f1c9e"


def server_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: on PATH, else Debian's /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).parent] if on_path else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if all((folder / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


SHM = Path("/dev/shm")
SHM_NEEDED = 2 << 30
"""The cluster's folder goes to tmpfs when it has this much room: the session's databases are some 20,000 files,
and removing them from a disk-backed /tmp took 10 to 30 s of the suite; from tmpfs, a fraction of a second."""


def _scratch_dir() -> str | None:
    """/dev/shm when it is a writable tmpfs with room (Linux), else the default temporary folder."""
    try:
        room = shutil.disk_usage(SHM).free
    except OSError:
        return None
    return str(SHM) if room >= SHM_NEEDED and os.access(SHM, os.W_OK) else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """initdb + pg_ctl start on 127.0.0.1:<free port>; ``url(db)`` gives a password-less URL (PGPASSWORD holds it)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="bonzo-pg-", dir=_scratch_dir()))
        self.data = self.root / "data"
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = next(u for u in ("postgres", "nobody") if _has_user(u))
            os.chown(self.root, pwd.getpwnam(self._user).pw_uid, -1)

    def _run(self, *args: str) -> None:
        subprocess.run([str(self.bin_dir / args[0]), *args[1:]], check=True, capture_output=True, user=self._user)

    def start(self) -> PgCluster:
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD)
        if self._user:
            os.chown(pwfile, pwd.getpwnam(self._user).pw_uid, -1)
        self._run(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, "--pwfile", str(pwfile), "-A", "scram-sha-256",
            "-E", "UTF8", "--locale", "C", "--no-sync",
        )  # fmt: skip
        return self.start_server()

    def start_server(self) -> PgCluster:
        """Start the server of the cluster already made (again, after :meth:`stop_server`), on the same port."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
            " -c full_page_writes=off -c max_connections=60"
        )
        log = str(self.root / "log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "-t", "30", "start")
        return self

    def stop_server(self) -> None:
        """Stop the server as an outage would (every connection is cut), keeping the cluster for :meth:`start_server`
        (a fast shutdown: with synchronous_commit off, an immediate one may lose the last commits)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://{SUPERUSER}{secret}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; its URL (no password in it). FILE_COPY copies the template's files instead of
        writing them all to the WAL (PostgreSQL 15's default), about twice as fast for a throwaway cluster."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(password=PASSWORD), autocommit=True) as conn:
            strategy = " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""
            conn.execute(f"CREATE DATABASE {name}{strategy}")
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
