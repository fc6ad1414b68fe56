"""Sender throughput against a minimal sink: our deliver() beside a bare aiohttp loop, Locust and wrk.

The sink is a raw asyncio HTTP/1.1 server (keep-alive, answers every POST ``200 {}``) in a separate
process on 127.0.0.1, a free port. At each concurrency, N JSON POSTs of ~1 KB are sent by:

1. ``bonzo_bulk.deliver.sender.deliver`` with full per-record bookkeeping (results, timings, callback), uvloop;
2. a bare aiohttp loop: one session, N requests gathered under a semaphore, uvloop;
3. Locust's ``FastHttpUser`` (as a library, in a child process), N requests;
4. ``wrk`` with a Lua POST script, for a fixed duration.

Goal: ours >= 0.9x bare and >= 1.4x Locust FastHttpUser. On a machine with two or more CPUs the
sink is pinned to one CPU and every client to another, so the clients are compared on equal terms.
Everything it starts is stopped before it exits; every loop is bounded in count and time.

Run: ``uv run python benchmarks/bench_delivery.py [--n 20000] [--concurrency 16 64] [--repeat 3]``
(about two minutes at the defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

SINK_PATH = "/sink"
SINK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
SINK_MAX_SECONDS = 900.0
CHILD_TIMEOUT_SECONDS = 300.0
BODY_BYTES = 1024
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class _SinkProtocol(asyncio.Protocol):
    """Parse pipelined HTTP/1.1 requests just enough to answer each with ``200 {}``."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transport is not a subclass

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        answers = 0
        while True:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end < 0:
                break
            match = _CONTENT_LENGTH.search(buffer, 0, head_end + 2)
            total = head_end + 4 + (int(match.group(1)) if match else 0)
            if len(buffer) < total:
                break
            del buffer[:total]
            answers += 1
        if answers and self._transport is not None:
            self._transport.write(SINK_RESPONSE * answers)


async def _serve_sink(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_SinkProtocol, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), SINK_MAX_SECONDS)
    server.close()


@contextlib.contextmanager
def running_sink(cpu: int | None) -> Iterator[str]:
    """Start the sink process, yield its URL, and always stop it."""
    args = [sys.executable, __file__, "--serve-sink"] + (["--cpu", str(cpu)] if cpu is not None else [])
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"the sink did not start (said {line!r})")
        yield f"http://127.0.0.1:{line}{SINK_PATH}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# aiohttp and bonzo_bulk are imported inside the functions that use them: the Locust child must let
# gevent patch the standard library before anything imports ssl.


def make_bodies(n: int, size: int = BODY_BYTES) -> list[bytes]:
    """N distinct JSON bodies of about ``size`` bytes each (at least about 100)."""
    filler = "x" * max(0, size - 100)
    return [
        json.dumps(
            {"first_name": f"TestRecord_Bench_{i:06d}", "email": f"b{i}@bonzobuddy.test", "notes": filler}
        ).encode()
        for i in range(n)
    ]


@dataclass(frozen=True)
class Measurement:
    """One client's run: how many requests, how many were 2xx, and how long they took."""

    client: str
    concurrency: int
    requests: int
    ok: int
    seconds: float
    cpu_seconds: float | None = None
    """CPU time of the client process over the run (less sensitive than wall time to a busy host)."""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_request(self) -> float | None:
        return self.cpu_seconds / self.requests * 1e6 if self.cpu_seconds is not None and self.requests else None


def _records(bodies: Sequence[bytes]) -> list[Any]:
    from bonzo_bulk.models import PlannedRecord, User

    user = User(name="Bench", email="bench@bonzobuddy.test", user_id=1, team_id=1)
    return [
        PlannedRecord(
            run_id="bench",
            phase="primary",
            index=i,
            name=f"TestRecord_Bench_{i:06d}",
            record_id=f"bench_{i:06d}",
            first_name=f"TestRecord_Bench_{i:06d}",
            last_name="Bench",
            email=f"b{i}@bonzobuddy.test",
            phone="+15555550100",
            expected_user=user,
            payload={},
            body=body,
            content_type="application/json",
            expected={},
        )
        for i, body in enumerate(bodies)
    ]


def measure_ours(url: str, records: Sequence[Any], concurrency: int) -> Measurement:
    """Our deliver(), results and a progress-style callback included, on uvloop."""
    from bonzo_bulk._http import run_async
    from bonzo_bulk.config.schema import WebhookSettings
    from bonzo_bulk.deliver.sender import deliver
    from bonzo_bulk.models import DeliveryResult, PlannedRecord

    settings = WebhookSettings(concurrent_requests=concurrency, timeout=30.0, retry_attempts=3, retry_delay=0.5)
    done = 0

    def progress(_: PlannedRecord, __: DeliveryResult) -> None:
        nonlocal done
        done += 1

    async def run() -> tuple[int, float, float]:
        cpu, started = time.process_time(), time.perf_counter()
        results = await deliver(records, url=url, settings=settings, on_result=progress)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        return sum(r.accepted for r in results), elapsed, cpu

    ok, seconds, cpu = run_async(run())
    assert done == len(records)
    return Measurement("ours", concurrency, len(records), ok, seconds, cpu)


def measure_bare(url: str, bodies: Sequence[bytes], concurrency: int) -> Measurement:
    """The plain aiohttp pattern: one session, every request gathered under a semaphore, on uvloop."""
    import aiohttp

    from bonzo_bulk._http import run_async

    async def run() -> tuple[int, float, float]:
        limit = asyncio.Semaphore(concurrency)
        headers = {"Content-Type": "application/json"}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

            async def one(body: bytes) -> int:
                async with limit, session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    return response.status

            cpu, started = time.process_time(), time.perf_counter()
            statuses = await asyncio.gather(*(one(body) for body in bodies))
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        return sum(200 <= s < 300 for s in statuses), elapsed, cpu

    ok, seconds, cpu = run_async(run())
    return Measurement("bare", concurrency, len(bodies), ok, seconds, cpu)


def _locust_child(url: str, n: int, concurrency: int, body_bytes: int = BODY_BYTES) -> None:
    """Runs in a child process (gevent patches it): N POSTs by ``concurrency`` FastHttpUsers; prints JSON."""
    import gevent
    from locust import FastHttpUser, constant, task
    from locust.env import Environment

    base, _, path = url.partition(SINK_PATH)
    body = make_bodies(1, body_bytes)[0].decode()

    class SinkUser(FastHttpUser):
        host = base
        wait_time = constant(0)

        @task
        def post(self) -> None:
            self.client.post(SINK_PATH + path, data=body, headers={"Content-Type": "application/json"})

    env = Environment(user_classes=[SinkUser])
    runner = env.create_local_runner()
    cpu, started = time.process_time(), time.perf_counter()
    runner.start(concurrency, spawn_rate=concurrency * 100)
    deadline = started + CHILD_TIMEOUT_SECONDS - 30
    while env.stats.total.num_requests < n and time.perf_counter() < deadline:
        gevent.sleep(0.005)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    total = env.stats.total
    requests, failures = total.num_requests, total.num_failures
    runner.quit()
    print(json.dumps({"requests": requests, "failures": failures, "seconds": elapsed, "cpu": cpu}), flush=True)


def measure_locust(url: str, n: int, concurrency: int, body_bytes: int = BODY_BYTES) -> Measurement | str:
    """Locust FastHttpUser (a dependency of bonzo-bulk) in a child process of this interpreter: N POSTs of
    ``body_bytes`` of JSON; its CPU time per request is the anchor ``bench_run.py`` compares the engine with."""
    args = [sys.executable, __file__, "--locust-child", "--body-bytes", str(body_bytes)]
    args += ["--url", url, "--n", str(n), "--concurrency", str(concurrency)]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        return "failed: Locust did not finish in time"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return f"failed: exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"
    found = json.loads(lines[-1])
    requests = int(found["requests"])
    ok = requests - int(found["failures"])
    return Measurement("locust", concurrency, requests, ok, float(found["seconds"]), float(found["cpu"]))


def measure_wrk(url: str, concurrency: int, seconds: int, body: bytes) -> Measurement | str:
    """wrk, one thread, ``concurrency`` connections, POSTing ``body`` for ``seconds``."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return "skipped: wrk not installed (apt-get install -y wrk)"
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(body.decode())}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        args = [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "-s", str(script), url]
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=False)
        except subprocess.TimeoutExpired:
            return "failed: wrk did not finish in time"
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", done.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    if done.returncode != 0 or total is None:
        return f"failed: exit {done.returncode}"
    elapsed = float(total.group(2)) / (1000.0 if total.group(3) == "ms" else 1.0)
    requests = int(total.group(1))
    return Measurement("wrk", concurrency, requests, requests - (int(errors.group(1)) if errors else 0), elapsed)


def _cpus() -> tuple[int | None, int | None]:
    """(sink CPU, client CPU) when the machine has two CPUs to give, else (None, None)."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)


def _show(result: Measurement | str, label: str, runs: Sequence[Measurement] = ()) -> str:
    if isinstance(result, str):
        return f"  {label:<26} {result}"
    bad = f"  ({result.requests - result.ok} not 2xx)" if result.ok != result.requests else ""
    line = f"  {label:<26} {result.rps:>9,.0f} req/s  {result.requests:>7,} requests in {result.seconds:5.2f} s"
    cpu = result.cpu_us_per_request
    line += f"  {cpu:5.1f} CPU us/req{bad}" if cpu is not None else f"{'':>18}{bad}"
    if len(runs) > 1:
        line += "   runs: " + ", ".join(f"{m.rps:,.0f}" for m in runs)
    return line


def _best(runs: Sequence[Measurement | str]) -> tuple[Measurement | str, list[Measurement]]:
    """The fastest run (the least disturbed by other load on the machine) and every measured run."""
    measured = [m for m in runs if isinstance(m, Measurement)]
    if not measured:
        return (runs[-1] if runs else "skipped"), []
    return max(measured, key=lambda m: m.rps), measured


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=20_000, help="requests per client run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs of ours, bare and Locust (best shown)")
    parser.add_argument("--wrk-seconds", type=int, default=5)
    parser.add_argument("--skip-locust", action="store_true")
    parser.add_argument("--skip-wrk", action="store_true")
    parser.add_argument("--serve-sink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--locust-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--body-bytes", type=int, default=BODY_BYTES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve_sink:
        from bonzo_bulk._http import run_async

        run_async(_serve_sink(args.cpu))
        return 0
    if args.locust_child:
        _locust_child(args.url, args.n, args.concurrency[0], args.body_bytes)
        return 0

    n = max(1, min(args.n, 200_000))
    repeat = max(1, min(args.repeat, 10))
    sink_cpu, client_cpu = _cpus()
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    bodies = make_bodies(n)
    records = _records(bodies)
    print(f"bench_delivery: N={n:,} POSTs of {len(bodies[0])} B JSON to a loopback sink in its own process", end="")
    print(f" (sink on CPU {sink_cpu}, clients on CPU {client_cpu})" if client_cpu is not None else "")
    print(f"best of {repeat} interleaved runs each for ours, bare and Locust; wrk runs once")
    failed = False
    with running_sink(sink_cpu) as url:
        measure_bare(url, bodies[: min(n, 2000)], 8)  # warm the interpreter and the sink
        for concurrency in args.concurrency:
            ours_runs: list[Measurement | str] = []
            bare_runs: list[Measurement | str] = []
            locust_runs: list[Measurement | str] = []
            for _ in range(repeat):
                bare_runs.append(measure_bare(url, bodies, concurrency))
                ours_runs.append(measure_ours(url, records, concurrency))
                if not args.skip_locust:
                    locust_runs.append(measure_locust(url, n, concurrency))
            ours, ours_all = _best(ours_runs)
            bare, bare_all = _best(bare_runs)
            locust, locust_all = _best(locust_runs)
            wrk = "skipped" if args.skip_wrk else measure_wrk(url, concurrency, args.wrk_seconds, bodies[0])
            print(f"\nconcurrency {concurrency}")
            print(_show(ours, "ours: deliver() + uvloop", ours_all))
            print(_show(bare, "bare aiohttp + uvloop", bare_all))
            print(_show(locust, "Locust FastHttpUser", locust_all))
            print(_show(wrk, f"wrk -t1 ({args.wrk_seconds} s)"))
            assert isinstance(ours, Measurement)
            assert isinstance(bare, Measurement)
            vs_bare = ours.rps / bare.rps
            line = f"  ours/bare = {vs_bare:.2f} (goal >= 0.90)"
            failed |= vs_bare < 0.9 or ours.ok != ours.requests
            if isinstance(locust, Measurement):
                vs_locust = ours.rps / locust.rps
                line += f"   ours/locust = {vs_locust:.2f} (goal >= 1.40)"
                failed |= vs_locust < 1.4
            cpu_ours = ours.cpu_us_per_request
            if cpu_ours and bare.cpu_us_per_request and isinstance(locust, Measurement) and locust.cpu_us_per_request:
                line += (
                    f"\n  by CPU per request: bare/ours = {bare.cpu_us_per_request / cpu_ours:.2f}, "
                    f"locust/ours = {locust.cpu_us_per_request / cpu_ours:.2f}"
                )
            print(line)
    print("\nverdict:", "below goal" if failed else "goals met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
