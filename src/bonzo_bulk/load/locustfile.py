"""The Locust side of a load run: runs only in Locust's own processes (``python -m locust -f <this file>``).

Never import this module from bonzo-bulk itself: Locust monkey-patches the process for gevent, which
must not share a process with the asyncio engine. bonzo-bulk starts it through
:mod:`bonzo_bulk.load.child`.

How the open model is built from Locust's parts:

* the **master** (always one, even for ``--processes 1``) reads the plan bonzo-bulk wrote (each
  lead's body and intended send offset), deals the arrivals round robin to its workers with
  ``send_message``, and fixes the start time ``t0`` a moment ahead so every worker starts together;
* each **worker** runs a pool of ``FastHttpUser``s; a user takes the next arrival, sleeps until its
  intended time and POSTs it; an arrival that no user could take within ``drop_after`` of its time
  is dropped, counted like k6's ``dropped_iterations``, never sent late;
* the **shape** (:class:`ArrivalShape`) keeps the pool at ``max_in_flight`` users per worker until
  every arrival is journaled (or, at worst, the last one has had time to answer), or until
  bonzo-bulk asks it to stop (a stop file: arrivals not yet sent are journaled as cancelled);
* workers stream a journal row per arrival (intended, sent, answered, status) back to the master,
  which appends it to the journal file bonzo-bulk tails.
"""

from __future__ import annotations

import base64
import collections
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, LoadTestShape, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

PLAN_ENV = "BONZO_LOAD_PLAN"
JOURNAL_ENV = "BONZO_LOAD_JOURNAL"
STOP_ENV = "BONZO_LOAD_STOP"
HOOK_ENV = "BONZO_LOAD_HOOK"
START_LEAD_S = 2.0
SPAWN_PER_S = 4
"""The whole user pool is spawned within a quarter of a second, well before ``t0``."""
CHUNK = 2000
FLUSH_EVERY_S = 0.2
IDLE_S = 0.2


class _Worker:
    """A worker's share of the plan and its journal buffer."""

    def __init__(self) -> None:
        self.arrivals: collections.deque[tuple[int, float, str, str]] = collections.deque()
        self.t0: float | None = None
        self.hook = ""
        self.drop_after = 1.0
        self.stopped = False
        self.rows: list[list[Any]] = []

    def claim(self) -> tuple[int, float, str, str] | None:
        if self.t0 is None or self.stopped or not self.arrivals:
            return None
        return self.arrivals.popleft()


class _Master:
    """The master's view: the plan's header, the run's clock and the journal file."""

    def __init__(self) -> None:
        self.header: dict[str, Any] = {}
        self.t0: float | None = None
        self.stop_at: float | None = None
        self.journal: Any = None
        self.journaled = 0


WORKER = _Worker()
MASTER = _Master()


def _category(status: int, error: BaseException | None) -> str | None:
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return "redirect"
    if status == 429:
        return "http_429"
    if 400 <= status < 500:
        return "http_4xx"
    if status >= 500:
        return "http_5xx"
    if isinstance(error, ConnectionResetError | BrokenPipeError):
        return "reset"
    if isinstance(error, socket.timeout | TimeoutError | gevent.Timeout):
        return "timeout"
    return "connect"


class LeadSender(FastHttpUser):
    """One open slot: takes the next arrival, waits for its intended time, POSTs it once (no retries)."""

    host = "http://127.0.0.1"
    wait_time = constant(0)
    network_timeout = 10.0
    connection_timeout = 10.0
    concurrency = 1

    @task
    def arrive(self) -> None:
        arrival = WORKER.claim()
        if arrival is None:
            gevent.sleep(IDLE_S)
            return
        seq, offset, content_type, body = arrival
        assert WORKER.t0 is not None
        intended = WORKER.t0 + offset
        wait = intended - time.time()
        if wait > 0:
            gevent.sleep(wait)
        if WORKER.stopped:
            WORKER.rows.append([seq, intended, None, None, None, "cancelled"])
            return
        if time.time() - intended > WORKER.drop_after:
            WORKER.rows.append([seq, intended, None, None, None, "dropped"])
            return
        sent = time.time()
        response = self.client.request(
            "POST",
            WORKER.hook,
            name="webhook",
            data=body,
            headers={"Content-Type": content_type},
            allow_redirects=False,  # a lead is never re-sent where a Location points: a 3xx is a failure
        )
        answered = time.time()
        status = int(response.status_code or 0)
        error = getattr(response, "error", None)
        WORKER.rows.append([seq, intended, sent, answered, status or None, _category(status, error)])


class ArrivalShape(LoadTestShape):
    """Holds ``max_in_flight`` users per worker until the plan (or a stop) has run out, then ends the test."""

    def tick(self) -> tuple[int, float] | None:
        header = MASTER.header
        if not header:
            with open(os.environ[PLAN_ENV], encoding="utf-8") as handle:
                header = MASTER.header = json.loads(handle.readline())
        runner = self.runner
        workers = len(runner.clients) if isinstance(runner, MasterRunner) else 1
        users = int(header["max_in_flight"]) * max(1, workers)
        stop_file = os.environ.get(STOP_ENV)
        if MASTER.stop_at is None and stop_file and Path(stop_file).exists():
            MASTER.stop_at = time.time()
            if isinstance(runner, MasterRunner):
                runner.send_message("bonzo_stop", None)
        spawn_rate = users * SPAWN_PER_S
        if MASTER.t0 is None:
            return (users, spawn_rate)
        end = MASTER.t0 + header["duration"]
        if MASTER.stop_at is not None:
            end = min(end, MASTER.stop_at)
        now = time.time()
        if now > end and (MASTER.journaled >= header["count"] or now > end + header["drain"]):
            return None
        return (users, spawn_rate)


def _read_plan(path: str) -> tuple[dict[str, Any], list[list[Any]]]:
    with open(path, encoding="utf-8") as handle:
        header = json.loads(handle.readline())
        rows = [json.loads(line) for line in handle]
    return header, rows


def _deal(environment: Environment, **_: Any) -> None:
    """Master, at test start: send each worker its share of the arrivals, then the common start time."""
    runner = environment.runner
    if not isinstance(runner, MasterRunner):
        return
    header, rows = _read_plan(os.environ[PLAN_ENV])
    MASTER.header = header
    clients = sorted(runner.clients)
    hook = os.environ[HOOK_ENV]
    for index, client_id in enumerate(clients):
        share = rows[index :: len(clients)]
        for start in range(0, len(share), CHUNK):
            runner.send_message("bonzo_arrivals", {"rows": share[start : start + CHUNK]}, client_id=client_id)
    t0 = time.time() + START_LEAD_S
    MASTER.t0 = t0
    settings = {"t0": t0, "hook": hook, "drop_after": header["drop_after"], "timeout": header["timeout"]}
    for client_id in clients:
        runner.send_message("bonzo_go", settings, client_id=client_id)


def _on_arrivals(environment: Environment, msg: Any, **_: Any) -> None:
    for seq, offset, content_type, body in msg.data["rows"]:
        WORKER.arrivals.append((int(seq), float(offset), str(content_type), base64.b64decode(body).decode("utf-8")))


def _on_go(environment: Environment, msg: Any, **_: Any) -> None:
    data = msg.data
    WORKER.hook = str(data["hook"])
    WORKER.drop_after = float(data["drop_after"])
    LeadSender.network_timeout = LeadSender.connection_timeout = float(data["timeout"])
    WORKER.t0 = float(data["t0"])


def _on_stop(environment: Environment, msg: Any, **_: Any) -> None:
    WORKER.stopped = True
    while WORKER.arrivals:
        seq, offset, _type, _body = WORKER.arrivals.popleft()
        WORKER.rows.append([seq, (WORKER.t0 or 0.0) + offset, None, None, None, "cancelled"])


def _flush(runner: WorkerRunner) -> None:
    if WORKER.rows:
        rows, WORKER.rows = WORKER.rows, []
        runner.send_message("bonzo_journal", {"rows": rows})


def _flusher(runner: WorkerRunner) -> None:
    while True:
        gevent.sleep(FLUSH_EVERY_S)
        _flush(runner)


def _on_journal(environment: Environment, msg: Any, **_: Any) -> None:
    journal = MASTER.journal
    if journal is None:
        journal = MASTER.journal = open(os.environ[JOURNAL_ENV], "a", encoding="utf-8")  # noqa: SIM115
    rows = msg.data["rows"]
    journal.write("".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows))
    journal.flush()
    MASTER.journaled += len(rows)


def _on_init(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message("bonzo_journal", _on_journal)
        environment.events.test_start.add_listener(_deal)  # type: ignore[no-untyped-call]
    elif isinstance(runner, WorkerRunner):
        runner.register_message("bonzo_arrivals", _on_arrivals)
        runner.register_message("bonzo_go", _on_go)
        runner.register_message("bonzo_stop", _on_stop)
        gevent.spawn(_flusher, runner)
        environment.events.test_stop.add_listener(lambda **_: _flush(runner))  # type: ignore[no-untyped-call]


events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
