"""Serve the sandbox in a child process of its own, so it never shares the engine's GIL.

A run that needs a local sandbox starts one here: ``python -m bonzo_bulk.sandbox.process`` reads
its options as one JSON line on stdin, serves on a free 127.0.0.1 port, answers ``ready <url>``
and serves until its stdin closes. The starter holds that pipe: closing it (on exit, an error or
Ctrl-C) stops the child, and so does the starter dying, since the pipe then closes by itself.

Example::

    with SandboxProcess(SandboxOptions(db_path="sandbox.sqlite3")) as sandbox:
        sandbox.url  # http://127.0.0.1:PORT
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from bonzo_bulk.errors import SandboxError
from bonzo_bulk.sandbox.state import SandboxOptions

START_TIMEOUT = 60.0
"""Seconds for the child to import, bind and start (imports take about a second on an idle machine)."""
STOP_TIMEOUT = 15.0


def options_to_json(options: SandboxOptions) -> dict[str, Any]:
    """The options as JSON-ready data, for the child to rebuild with :func:`options_from_json`."""
    data = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
    data["db_path"] = None if options.db_path is None else str(Path(options.db_path).resolve())
    data["processing"] = options.processing.model_dump(mode="json")
    data["listing"] = options.listing.model_dump(mode="json")
    data["clock"] = options.clock.model_dump(mode="json")
    return data


def options_from_json(data: dict[str, Any]) -> SandboxOptions:
    """Options rebuilt from :func:`options_to_json`."""
    from bonzo_bulk.config.sandbox_clock import SandboxClock
    from bonzo_bulk.config.schema import ProcessingDelayModel, SandboxListing

    db_path = Path(data["db_path"]) if data["db_path"] is not None else None
    processing = ProcessingDelayModel.model_validate(data["processing"])
    listing = SandboxListing.model_validate(data["listing"])
    clock = SandboxClock.model_validate(data.get("clock", {}))
    return SandboxOptions(**{**data, "db_path": db_path, "processing": processing, "listing": listing, "clock": clock})


class SandboxProcess:
    """A sandbox served by a child process: ``with SandboxProcess(options) as s: s.url``; stopped and reaped here."""

    def __init__(self, options: SandboxOptions | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.options = options or SandboxOptions()
        self.host = host
        self.port = port
        self._process: subprocess.Popen[str] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        if self._url is None:
            raise SandboxError("the sandbox process is not running; call start() or use it as a context manager")
        return self._url

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def start(self) -> SandboxProcess:
        """Start the child, hand it the options and wait until it serves (SandboxError if it cannot)."""
        if self._process is not None:
            return self
        spec = {"options": options_to_json(self.options), "host": self.host, "port": self.port}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bonzo_bulk.sandbox.process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            start_new_session=True,  # Ctrl-C reaches the run, which then stops the sandbox itself
        )
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        try:
            self._process.stdin.write(json.dumps(spec) + "\n")
            self._process.stdin.flush()
        except OSError as exc:
            self.stop()
            raise SandboxError(f"the sandbox process exited before it started: {exc}") from exc
        answer = _first_line(self._process.stdout, START_TIMEOUT)
        if answer is None or not answer.startswith("ready "):
            self.stop()
            reason = answer[len("error ") :] if answer and answer.startswith("error ") else "see the log above"
            raise SandboxError(f"the sandbox process did not start on {self.host}:{self.port}: {reason}")
        self._url = answer[len("ready ") :].strip()
        return self

    def stop(self) -> None:
        """Close the child's stdin (it stops serving), wait for it and reap it; safe to call twice."""
        process, self._process, self._url = self._process, None, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _first_line(stream: Any, timeout: float) -> str | None:
    """The first line the child prints, or None when it prints nothing within ``timeout`` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: lines.put(stream.readline()), name="bonzo-sandbox-ready", daemon=True)
    reader.start()
    try:
        return lines.get(timeout=timeout) or None
    except queue.Empty:
        return None


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> int:
    """The child: read the options, serve, answer ``ready <url>`` and serve until stdin closes."""
    from bonzo_bulk.sandbox.server import SandboxServer

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        spec = json.loads(sys.stdin.readline())
        server = SandboxServer(options_from_json(spec["options"]), host=spec["host"], port=spec["port"]).start()
    except (SandboxError, ValueError, KeyError, TypeError) as exc:
        print(f"error {exc}", flush=True)
        return 1
    with server:
        print(f"ready {server.url}", flush=True)
        sys.stdin.read()
    return 0


if __name__ == "__main__":
    sys.exit(main())
