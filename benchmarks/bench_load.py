"""Load and stress figures of ``bonzo-bulk load`` / ``stress`` against the sandbox, each a real CLI run.

1. Arrival-rate accuracy: achieved vs target at 50, 200 and 1,000 leads/s for 10 s each (a served
   sandbox in its own process), dropped arrivals, and the Locust CPU per lead, which says where one
   core stops and more ``--processes`` are needed.
2. The knee: ``bonzo-bulk stress`` against sandboxes of capacity 50, 100 and 200 leads/s (steps of
   x1.1 from 0.6 of the capacity); the reported knee against the true capacity (goal: within 15 %).
3. Distributed: ``bonzo-bulk load --master --expect-workers 2`` with two ``bonzo-bulk load-worker``
   processes on loopback: the achieved rate is the sum of the workers' shares and the accounting closes
   (sent = created + lost + errors).
4. Sender efficiency: CPU per lead of our Locust senders (scheduled arrivals, journal, drop accounting)
   beside a bare Locust run (FastHttpUser, constant_throughput) posting the same payloads to the same
   hook at the same rate, in the same invocation.

Bounded: at most 10,000 leads per run, each run killed after 300 s; all traffic to 127.0.0.1; every
process it starts is stopped before it exits. About 8 minutes on two idle cores.

Run: ``uv run python benchmarks/bench_load.py [--rates 50 200 1000] [--skip-knee] [--skip-distributed]
[--skip-efficiency]``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

import bonzo_bulk

RUN_TIMEOUT_S = 300.0
RATE_SECONDS = 10
USERS = [
    {"name": "LO One", "email": "lo.one@lender.test", "user_id": 101, "team_id": 11},
    {"name": "LO Two", "email": "lo.two@lender.test", "user_id": 102, "team_id": 12},
    {"name": "LO Three", "email": "lo.three@lender.test", "user_id": 103, "team_id": 13},
]
OUR_LOCUSTFILE = str(Path(bonzo_bulk.__file__).with_name("load") / "locustfile.py")
"""The locustfile of the bonzo-bulk this runs, by its full path: other checkouts' Locust processes on the same
machine have the same relative path in their command line and must not count."""
BARE_LOCUSTFILE = "bench_bare_locustfile.py"
BARE = """
import base64, json, os
from locust import FastHttpUser, constant_throughput, task

BODIES = [base64.b64decode(b).decode() for b in json.load(open(os.environ["BENCH_BODIES"]))]
HOOK = os.environ["BENCH_HOOK"]
PER_USER = float(os.environ["BENCH_PER_USER_RATE"])


class Bare(FastHttpUser):
    host = "http://127.0.0.1"
    wait_time = constant_throughput(PER_USER)
    n = 0

    @task
    def post(self):
        Bare.n += 1
        self.client.request("POST", HOOK, name="webhook", data=BODIES[Bare.n % len(BODIES)],
                            headers={"Content-Type": "application/json"})
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bonzo_bulk", *args]


class CpuSampler:
    """CPU seconds of every process whose command line holds ``marker`` (sampled from /proc every 0.2 s)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                with contextlib.suppress(OSError, ValueError, IndexError):
                    if self.marker not in (entry / "cmdline").read_bytes().decode(errors="replace"):
                        continue
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    self.cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / self._tick

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(self.cpu.values())


@contextlib.contextmanager
def served_sandbox(folder: Path, config: Path) -> Iterator[tuple[str, str]]:
    """``bonzo-bulk sandbox`` in its own process: (base URL, monitorbase hook URL)."""
    port = _free_port()
    process = subprocess.Popen(
        _cli("sandbox", "--port", str(port), "--db", str(folder / "sandbox.sqlite3"), "--users", str(config)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    hook = ""
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        for line in process.stdout:
            found = re.search(r"hook URL \(monitorbase[^)]*\): (\S+)", line)
            if found:
                hook = found.group(1)
            if "Press Ctrl-C" in line or time.monotonic() > deadline:
                break
        if not hook:
            raise RuntimeError("the sandbox did not start")
        yield f"http://127.0.0.1:{port}", hook
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def write_config(folder: Path, *, sandbox: dict[str, Any]) -> Path:
    path = folder / "config.yaml"
    data = {
        "test_name": "bench load",
        "integration_type": "monitorbase",
        "test_records": 9,
        "control": False,
        "processing_delay": 10,
        "test_users": USERS,
        "polling": {"interval": 0.5, "deadline": 30.0, "max_interval": 1.0},
        "reports_dir": str(folder / "reports"),
        "sandbox": sandbox,
    }
    path.write_text(yaml.safe_dump(data))
    return path


def write_scenario(folder: Path, name: str, data: dict[str, Any]) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, **data}))
    return path


def run_cli(args: Sequence[str], *, marker: str = OUR_LOCUSTFILE) -> tuple[int, dict[str, Any] | None, float, float]:
    """A CLI run: (exit code, its --json summary, wall seconds, CPU seconds of its Locust processes)."""
    started = time.perf_counter()
    with CpuSampler(marker) as cpu:
        try:
            done = subprocess.run(list(args), capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return -1, None, time.perf_counter() - started, cpu.seconds
    wall = time.perf_counter() - started
    try:
        summary = json.loads(done.stdout)
    except json.JSONDecodeError:
        print(f"    (no JSON; stderr ends: {done.stderr.strip().splitlines()[-1:]})")
        summary = None
    return done.returncode, summary, wall, cpu.seconds


def load_run(served: Path, folder: Path, rate: int, seconds: int) -> tuple[int, dict[str, Any] | None, float, float]:
    """One ``bonzo-bulk load --json`` at ``rate`` for ``seconds`` (processes and users: the defaults, auto)."""
    scenario = write_scenario(
        folder,
        f"rate{rate}x{seconds}",
        {"stages": [{"rate": rate, "duration": f"{seconds}s"}], "verify_interval": "2s"},
    )
    return run_cli(_cli("load", "--config", str(served), "--scenario", str(scenario), "--json"))


def accuracy(folder: Path, rates: Sequence[int]) -> None:
    """Achieved vs target per rate, with the Locust processes' CPU (start-up included)."""
    from bonzo_bulk.load.budget import auto_processes

    print(f"\n1. Arrival-rate accuracy ({RATE_SECONDS} s at each rate; served sandbox in its own process)")
    config = write_config(folder, sandbox={})
    with served_sandbox(folder, config) as (url, _hook):
        served = write_config(folder, sandbox={"url": url})
        for rate in rates:
            processes = auto_processes(rate)
            code, summary, wall, cpu = load_run(served, folder, rate, RATE_SECONDS)
            if summary is None:
                print(f"  {rate:>5} leads/s: failed (exit {code})")
                continue
            stage = summary["stages"][0]
            acc = summary["accounting"]
            error = (stage["achieved_rate"] - rate) / rate
            print(
                f"  {rate:>5} leads/s, {processes} process(es): achieved {stage['achieved_rate']:8.1f}/s "
                f"({error:+.1%}, goal ±5 %)  sent {acc['sent']}  dropped {acc['dropped_arrivals']}  "
                f"hook p95 {stage['hook_p95_ms']:.0f} ms  e2e p95 {stage['e2e_lag_p95_s']} s  lost {acc['lost']}  "
                f"Locust CPU {cpu:.1f} s  [{wall:.0f} s wall]"
            )


def _stress(config: Path, capacity: int) -> tuple[int, dict[str, Any] | None, float]:
    """``bonzo-bulk stress --json`` in steps of x1.1 of 5 s from 0.6 to 1.6 times ``capacity``."""
    start, top = str(round(capacity * 0.6)), str(round(capacity * 1.6))
    args = ["--start-rate", start, "--step-factor", "1.1", "--max-rate", top, "--step-duration", "5s", "--json"]
    code, summary, wall, _ = run_cli(_cli("stress", "--config", str(config), *args))
    return code, summary, wall


def knee(folder: Path, capacities: Sequence[int]) -> None:
    print("\n2. Knee against sandboxes of known capacity (stress, steps x1.1 of 5 s from 0.6 x capacity;")
    print("   each sandbox served in its own process from a config with sandbox: {capacity: N})")
    for capacity in capacities:
        sub = folder / f"cap{capacity}"
        sub.mkdir()
        config = write_config(
            sub, sandbox={"capacity": capacity, "processing": {"distribution": "fixed", "seconds": 0.05}}
        )
        with served_sandbox(sub, config) as (url, _hook):
            code, summary, wall = _stress(write_config(sub, sandbox={"url": url}), capacity)
        if summary is None or summary.get("knee_rate") is None:
            why = "; ".join(r for s in (summary or {}).get("steps", []) for r in s["reasons"])
            print(f"  capacity {capacity:>4}: no knee (exit {code}) {why}")
            continue
        found = summary["knee_rate"]
        error = (found - capacity) / capacity
        steps = ", ".join(f"{s['rate']:g}{'✗' if s['broken'] else '✓'}" for s in summary["steps"])
        steps += "".join(f" ({'; '.join(s['reasons'])})" for s in summary["steps"] if s["broken"])
        verdict = "within" if abs(error) <= 0.15 else "OUTSIDE"
        print(
            f"  capacity {capacity:>4}: knee {found:g} leads/s ({error:+.1%}, {verdict} ±15 %)  steps {steps}"
            f"  [{wall:.0f} s]"
        )


def distributed(folder: Path) -> None:
    print("\n3. Distributed: master + 2 load-workers on loopback (100 leads/s for 10 s)")
    config = write_config(folder, sandbox={})
    with served_sandbox(folder, config) as (url, _hook):
        served = write_config(folder, sandbox={"url": url})
        scenario = write_scenario(folder, "dist", {"stages": [{"rate": 100, "duration": "10s"}], "max_in_flight": 30})
        port = _free_port()
        workers = [
            subprocess.Popen(
                _cli("load-worker", "--master-host", "127.0.0.1", "--master-port", str(port)),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for _ in range(2)
        ]
        try:
            args = _cli(
                "load",
                "--config",
                str(served),
                "--scenario",
                str(scenario),
                "--master",
                "--expect-workers",
                "2",
                "--master-port",
                str(port),
                "--json",
            )
            code, summary, wall, _ = run_cli(args)
        finally:
            for worker in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGTERM)
            for worker in workers:
                try:
                    worker.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
                    worker.wait()
    if summary is None:
        print(f"  failed (exit {code})")
        return
    stage, acc = summary["stages"][0], summary["accounting"]
    closes = acc["sent"] == acc["created"] + acc["lost"] + acc["errors"]
    print(
        f"  2 workers x 50 leads/s: achieved {stage['achieved_rate']:.1f}/s of 100; sent {acc['sent']} = created "
        f"{acc['created']} + lost {acc['lost']} + errors {acc['errors']}: {'closes' if closes else 'DOES NOT CLOSE'}  "
        f"[{wall:.0f} s]"
    )


def _bare(folder: Path, hook: str, rate: int, seconds: int) -> tuple[float, int]:
    """A bare Locust run posting the bodies at ``rate`` for ``seconds``: (CPU seconds, requests)."""
    users = 20
    env = {
        **os.environ,
        "BENCH_BODIES": str(folder / "bodies.json"),
        "BENCH_HOOK": hook,
        "BENCH_PER_USER_RATE": str(rate / users),
    }
    args = [sys.executable, "-m", "locust", "-f", str(folder / BARE_LOCUSTFILE), "--headless", "--only-summary"]
    args += ["-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--loglevel", "ERROR"]
    with CpuSampler(BARE_LOCUSTFILE) as cpu:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    found = re.search(r"Aggregated\s+(\d+)\s", done.stdout + done.stderr)
    if found is None:
        print(f"    bare Locust {seconds} s: no summary (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    return cpu.seconds, int(found.group(1)) if found else 0


def efficiency(folder: Path, rate: int) -> None:
    """Marginal CPU per lead (a 15 s run minus a 5 s run, so start-up cancels) of ours and of bare Locust."""
    print(f"\n4. Sender efficiency at {rate} leads/s: CPU per lead of our Locust senders vs bare Locust")
    print("   (same payloads, hook and rate; marginal cost = CPU(15 s run) - CPU(5 s run) over the extra leads)")
    config = write_config(folder, sandbox={})
    with served_sandbox(folder, config) as (url, hook):
        served = write_config(folder, sandbox={"url": url})
        ours = []
        run_id = ""
        for seconds in (5, 15):
            _, summary, _, cpu = load_run(served, folder, rate, seconds)
            ours.append((cpu, summary["accounting"]["sent"] if summary else 0))
            run_id = summary["run_id"] if summary else run_id
        # the plan file lives only while a load runs; the same payloads are in the run store
        with contextlib.closing(sqlite3.connect(folder / "reports" / "runs.sqlite3")) as store:
            rows = store.execute("SELECT body FROM records WHERE run_id = ? ORDER BY seq", (run_id,)).fetchall()
        bodies = [base64.b64encode(bytes(body)).decode("ascii") for (body,) in rows]
        (folder / "bodies.json").write_text(json.dumps(bodies))
        (folder / BARE_LOCUSTFILE).write_text(BARE)
        bare = [_bare(folder, hook, rate, seconds) for seconds in (5, 15)]
    if min(ours[0][1], bare[0][1]) <= 0 or ours[1][1] <= ours[0][1] or bare[1][1] <= bare[0][1]:
        print(f"  no measurement: ours sent {ours}, bare sent {bare}")
        return
    ours_us = (ours[1][0] - ours[0][0]) / (ours[1][1] - ours[0][1]) * 1e6
    bare_us = (bare[1][0] - bare[0][0]) / (bare[1][1] - bare[0][1]) * 1e6
    print(
        f"  ours: {ours_us:,.0f} CPU us/lead ({ours[0][1]} and {ours[1][1]} leads)   bare Locust: {bare_us:,.0f} CPU "
        f"us/request ({bare[0][1]} and {bare[1][1]})   ours / bare = {ours_us / bare_us:.2f}   "
        f"one core ≈ {1e6 / ours_us:,.0f} leads/s of ours"
    )


# -- issue 21 goal 3: 1,000 leads/s on this machine with the tool's defaults ---------------------------------------

GOAL_RATE = 1000
GOAL_SECONDS = 20
SENDER_SECONDS = 10
INTAKE_LEADS = 15_000
INTAKE_CONCURRENCY = 128
EXIT_GRACE_S = 30.0


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f})"


def _lead_body(n: int) -> bytes:
    """A Monitorbase alert for one of :data:`USERS`, as the load's own records look (about 400 bytes)."""
    return json.dumps(
        {
            "first_name": f"TestRecord_Load_{n:06d}",
            "last_name": "MonitorBase",
            "email": f"test.load.{n:06d}@bonzobuddy.test",
            "cell_phone": f"555{n:07d}",
            "lo_email": USERS[n % len(USERS)]["email"],
            "address": "123 Test St",
            "city": "TestCity",
            "state": "CA",
            "zip": "12345",
            "type": "Inquiry",
            "alert_id": f"A{n}",
            "tags": ["bench"],
        }
    ).encode()


def _pending(url: str) -> int:
    with urllib.request.urlopen(f"{url}/__sandbox/pending", timeout=30) as response:  # noqa: S310 - loopback
        return int(json.loads(response.read())["pending"])


async def _post_all(hook: str, count: int, concurrency: int) -> tuple[float, list[float], int]:
    """POST ``count`` leads over ``concurrency`` connections: (seconds, latencies in ms, answers not 200)."""
    import aiohttp

    bodies = [_lead_body(n) for n in range(count)]
    latencies: list[float] = []
    failures = 0
    todo = iter(bodies)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def one_connection() -> None:
            nonlocal failures
            for body in todo:
                started = time.perf_counter()
                async with session.post(hook, data=body, headers={"Content-Type": "application/json"}) as answer:
                    await answer.read()
                    failures += answer.status != 200
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(one_connection() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, failures


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def sandbox_intake(folder: Path) -> None:
    """The standalone sandbox's leads/s: accepted (answered 200) and created (the worker's prospects)."""
    print(f"\n5a. Sandbox: {INTAKE_LEADS:,} leads POSTed at concurrency {INTAKE_CONCURRENCY} (aiohttp, this process)")
    print(f"    to `bonzo-bulk sandbox` in its own process; {_load()}")
    config = write_config(folder, sandbox={})
    with CpuSampler(str(folder / "sandbox.sqlite3")) as cpu, served_sandbox(folder, config) as (url, hook):
        asyncio.run(_post_all(hook, 500, 32))  # warm-up: connections, caches
        while _pending(url):
            time.sleep(0.1)
        before = cpu.seconds
        started = time.perf_counter()
        seconds, latencies, failures = asyncio.run(_post_all(hook, INTAKE_LEADS, INTAKE_CONCURRENCY))
        while _pending(url) and time.perf_counter() - started < RUN_TIMEOUT_S:
            time.sleep(0.05)
        created_s = time.perf_counter() - started
        time.sleep(0.5)  # one more CPU sample
        used = cpu.seconds - before
    print(
        f"    accepted {INTAKE_LEADS / seconds:,.0f} leads/s (not 200: {failures}; answer p50 "
        f"{_ms(latencies, 0.5):.1f} ms, p99 {_ms(latencies, 0.99):.1f} ms); all created after {created_s:.1f} s = "
        f"{INTAKE_LEADS / created_s:,.0f} leads/s with the default processing delay (0.2-1.5 s) in it; "
        f"sandbox CPU {used * 1e6 / INTAKE_LEADS:,.0f} us/lead; {_load()}"
    )


@contextlib.contextmanager
def fast_sink() -> Iterator[str]:
    """``bench_delivery.py``'s sink (answers every POST ``200 {}``) in its own process: its URL."""
    script = Path(__file__).with_name("bench_delivery.py")
    process = subprocess.Popen([sys.executable, str(script), "--serve-sink"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError(f"the sink did not start (said {port!r})")
        yield f"http://127.0.0.1:{port}/sink"
    finally:
        process.terminate()
        process.wait(10)


async def _one_sender(folder: Path, url: str, rate: int) -> tuple[list[Any], float]:
    """Our Locust sender, one process (master + one worker), ``rate`` for SENDER_SECONDS: (journal rows, CPU s)."""
    from bonzo_bulk.load.child import Distribution, LocustChild, free_port
    from bonzo_bulk.load.scenario import SenderSettings, users_per_process

    defaults = SenderSettings()
    count = rate * SENDER_SECONDS
    body = base64.b64encode(_lead_body(0)).decode("ascii")
    header = {
        "count": count,
        "duration": (count - 1) / rate,
        "max_in_flight": users_per_process(defaults.max_in_flight, rate, 1),
        "drop_after": defaults.drop_after,
        "timeout": defaults.timeout,
        "drain": defaults.drop_after + defaults.timeout + 1.0,
    }
    lines = [json.dumps(header)] + [json.dumps([n, round(n / rate, 6), "application/json", body]) for n in range(count)]
    (folder / "plan.jsonl").write_text("\n".join(lines) + "\n")
    child = LocustChild(folder, hook_url=url, distribution=Distribution(processes=1, bind_port=free_port()))
    rows: list[Any] = []
    with CpuSampler(OUR_LOCUSTFILE) as cpu:
        await child.start()
        while child.running:
            await asyncio.sleep(0.5)
            rows += child.rows()
        await child.wait(EXIT_GRACE_S)
        rows += child.rows()
    return rows, cpu.seconds


def one_sender(folder: Path, rates: Sequence[int]) -> None:
    """One Locust sender process of ours against a sink that answers at once: arrivals sent on time per rate."""
    print(
        f"\n5b. One sender process (our locustfile, the scenario's default users) against a fast sink, "
        f"{SENDER_SECONDS} s"
    )
    print("    per rate; on time = sent within drop_after (1 s) of its intended time, never dropped")
    with fast_sink() as url:
        for rate in rates:
            sub = folder / f"sender{rate}"
            sub.mkdir()
            load = _load()
            rows, cpu = asyncio.run(_one_sender(sub, url, rate))
            sent = [r for r in rows if r.sent is not None]
            if not sent:
                print(f"  {rate:>5}/s: nothing sent")
                continue
            late = [(r.sent - r.intended) * 1000 for r in sent]
            span = max(r.sent for r in sent) - min(r.intended for r in rows)
            dropped = sum(r.dropped for r in rows)
            print(
                f"  {rate:>5}/s: on time {len(sent) / span:,.0f}/s ({len(sent):,} of {len(rows):,} sent, dropped "
                f"{dropped:,}), lateness p50 {_ms(late, 0.5):.1f} ms p99 {_ms(late, 0.99):.1f} ms; Locust CPU "
                f"{cpu * 1e6 / max(1, len(sent)):,.0f} us/lead (start-up included); {load}"
            )


def goal_stage(folder: Path, processes: int | None = None) -> None:
    """The user's command: ``bonzo-bulk load`` with a 20 s stage at 1,000/s against a standalone sandbox (with
    ``processes``, ``--processes`` too)."""
    from bonzo_bulk.load.budget import auto_processes

    chosen = (
        f"--processes {processes}" if processes else f"defaults (--processes auto: {auto_processes(GOAL_RATE)} here)"
    )
    print(f"\n5c. `bonzo-bulk load` 20 s at {GOAL_RATE:,}/s, {chosen}, against `bonzo-bulk sandbox`; {_load()}")
    config = write_config(folder, sandbox={})
    with CpuSampler(str(folder / "sandbox.sqlite3")) as sandbox_cpu, served_sandbox(folder, config) as (url, _hook):
        served = write_config(folder, sandbox={"url": url})
        scenario = write_scenario(folder, "goal", {"stages": [{"rate": GOAL_RATE, "duration": f"{GOAL_SECONDS}s"}]})
        args = _cli("load", "--config", str(served), "--scenario", str(scenario), "--json")
        args += ["--max-leads", str(GOAL_RATE * GOAL_SECONDS)] + (["--processes", str(processes)] if processes else [])
        code, summary, wall, locust_cpu = run_cli(args)
    if summary is None:
        print(f"    failed (exit {code})")
        return
    stage, acc = summary["stages"][0], summary["accounting"]
    error = (stage["achieved_rate"] - GOAL_RATE) / GOAL_RATE
    print(
        f"    exit {code}: achieved {stage['achieved_rate']:,.1f}/s ({error:+.1%}, goal within 5 %), dropped "
        f"{acc['dropped_arrivals']:,}, lost {acc['lost']:,}, created {acc['created']:,} of {acc['planned']:,}; "
        f"hook p50 {stage['hook_p50_ms']:.0f} ms p95 {stage['hook_p95_ms']:.0f} ms; "
        f"CPU: sandbox {sandbox_cpu.seconds:.1f} s, Locust {locust_cpu:.1f} s; {wall:.0f} s wall; {_load()}"
    )


GOAL_PARTS = ("intake", "sender", "stage")


def goal(
    folder: Path, sender_rates: Sequence[int], parts: Sequence[str] = GOAL_PARTS, processes: int | None = None
) -> None:
    """Issue 21 goal 3: the sandbox's leads/s, one sender's on-time arrivals/s, the 20 s stage at 1,000/s."""
    for name in parts:
        (folder / name).mkdir()
    if "intake" in parts:
        sandbox_intake(folder / "intake")
    if "sender" in parts:
        one_sender(folder / "sender", sender_rates)
    if "stage" in parts:
        goal_stage(folder / "stage", processes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[50, 200, 1000])
    parser.add_argument("--capacities", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--skip-knee", action="store_true")
    parser.add_argument("--skip-distributed", action="store_true")
    parser.add_argument("--skip-efficiency", action="store_true")
    parser.add_argument("--goal", action="store_true", help="only the 1,000 leads/s figures (5a-5c, about 3 min)")
    parser.add_argument("--sender-rates", type=int, nargs="+", default=[1000, 2000, 3000])
    parser.add_argument("--goal-parts", nargs="+", choices=GOAL_PARTS, default=list(GOAL_PARTS))
    parser.add_argument("--stage-processes", type=int, help="--processes for the 1,000/s stage (default: auto)")
    args = parser.parse_args(argv)
    print(f"bench_load: {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        folder = Path(tmp)
        if args.goal:
            goal(folder, args.sender_rates, args.goal_parts, args.stage_processes)
            return 0
        (folder / "accuracy").mkdir()
        if args.rates:
            accuracy(folder / "accuracy", args.rates)
        if not args.skip_knee:
            knee(folder, args.capacities)
        if not args.skip_distributed:
            (folder / "dist").mkdir()
            distributed(folder / "dist")
        if not args.skip_efficiency:
            (folder / "efficiency").mkdir()
            efficiency(folder / "efficiency", 200)
    return 0


if __name__ == "__main__":
    sys.exit(main())
