"""Sandbox benchmark: hook intake throughput/latency and GET /prospects page latency with 100k prospects.

Run: ``uv run python benchmarks/bench_sandbox.py [--requests 4000] [--concurrency 32] [--prospects 100000]``.
The sandbox runs in a child process (as ``bonzo-bulk sandbox`` would), so client and server do not share
a GIL. Loopback only; bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from bonzo_bulk.config.schema import ProcessingDelayModel
from bonzo_bulk.models import User
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer
from bonzo_bulk.sandbox.db import Database
from bonzo_bulk.sandbox.prospects import new_doc, search_text
from bonzo_bulk.sandbox.rows import utc_stamp

USERS = [User(f"Loan Officer {i}", f"lo{i}@bench.test", 70000 + i, 500 + i % 3) for i in range(10)]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def seed_prospects(db_path: Path, count: int) -> float:
    """Insert ``count`` prospects spread over the users straight into SQLite; returns seconds taken."""
    started = time.perf_counter()
    db = Database(db_path)
    db.seed_users(USERS, {u.team_id: None for u in USERS})
    stamp = utc_stamp()

    def rows() -> object:
        for n in range(count):
            user = USERS[n % len(USERS)]
            doc = new_doc(
                {
                    "first_name": f"Seeded_{n:06d}",
                    "last_name": "Bench",
                    "email": f"seeded.{n:06d}@bench.test",
                    "phone": f"+1555{n:07d}",
                    "source": "monitorbase",
                    "city": "TestCity",
                }
            )
            yield user.user_id, user.team_id, search_text(doc), json.dumps(doc, separators=(",", ":")), stamp

    db.bulk_insert_prospects(rows())  # type: ignore[arg-type]
    db.close()
    return time.perf_counter() - started


async def bench_intake(url: str, requests: int, concurrency: int) -> tuple[float, list[float], int]:
    """POST Monitorbase payloads at a fixed concurrency; returns (elapsed s, latencies ms, non-200 count)."""
    latencies: list[float] = []
    failures = 0
    counter = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal failures
            for n in counter:
                payload = {
                    "first_name": f"TestRecord_MonitorBase_{n:05d}",
                    "last_name": "MonitorBase",
                    "email": f"test.monitorbase.{n:05d}@bonzobuddy.test",
                    "cell_phone": f"555{n:07d}",
                    "lo_email": USERS[n % len(USERS)].email,
                    "address": "123 Test St",
                    "city": "TestCity",
                    "state": "CA",
                    "zip": "12345",
                    "type": "Inquiry",
                    "alert_id": f"A{n}",
                    "tags": ["bench"],
                }
                started = time.perf_counter()
                async with session.post(url, json=payload) as response:
                    await response.read()
                    if response.status != 200:
                        failures += 1
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, failures


async def bench_pages(base: str, token: str, rounds: int) -> dict[str, list[float]]:
    """Time GET /prospects pages (per_page=100, one user via On-Behalf-Of) for a few search shapes."""
    cases = {
        "page 1, no search": {"per_page": "100"},
        "page 50, no search": {"per_page": "100", "page": "50"},
        "search broad (all of a user's 10k)": {"per_page": "100", "search": "bench"},
        "search one email": {"per_page": "100", "search": "seeded.004321@bench.test"},
        "search no match": {"per_page": "100", "search": "nobody-here"},
    }
    results: dict[str, list[float]] = {}
    headers = {"Authorization": f"Bearer {token}", "On-Behalf-Of": str(USERS[1].user_id)}
    async with aiohttp.ClientSession(headers=headers) as session:
        for name, params in cases.items():
            timings = []
            for _ in range(rounds):
                started = time.perf_counter()
                async with session.get(f"{base}/api/v3/prospects", params=params) as response:
                    body = await response.read()
                    assert response.status == 200, body[:200]
                timings.append((time.perf_counter() - started) * 1000)
            results[name] = timings
    return results


def serve_child(db_path: str) -> None:
    """Child process: serve the sandbox on a free loopback port, print its URL, stop when stdin closes."""
    options = SandboxOptions(db_path=db_path, processing=ProcessingDelayModel(distribution="fixed", seconds=0.2))
    with SandboxServer(options) as server:
        print(server.url, flush=True)
        sys.stdin.read()


def admin(url: str, method: str, path: str, body: Any = None) -> Any:
    """Call a /__sandbox route of the child's sandbox."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback http URL printed by our child
        f"{url}/__sandbox/{path}", data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def main() -> None:
    """Run both benchmarks and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--prospects", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--serve", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_child(args.serve)
        return

    with tempfile.TemporaryDirectory(prefix="bonzo-bench-") as tmp:
        db_path = Path(tmp) / "bench.sqlite3"
        seconds = seed_prospects(db_path, args.prospects)
        print(f"seeded {args.prospects:,} prospects over {len(USERS)} users in {seconds:.1f} s")
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(db_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            url = child.stdout.readline().strip()
            users = [{"name": u.name, "email": u.email, "user_id": u.user_id, "team_id": u.team_id} for u in USERS]
            seeded = admin(url, "POST", "seed", {"users": users, "hooks": [{"type": "monitorbase"}]})
            hook_url = seeded["hooks"][0]["url"]

            pages = asyncio.run(bench_pages(url, seeded["superuser_token"], args.rounds))
            print(f"\nGET /api/v3/prospects, per_page=100, one user of {args.prospects // len(USERS):,} prospects:")
            for name, timings in pages.items():
                print(
                    f"  {name:38s} p50 {percentile(timings, 50):6.2f} ms   p99 {percentile(timings, 99):6.2f} ms"
                    f"   mean {statistics.fmean(timings):6.2f} ms"
                )

            asyncio.run(bench_intake(hook_url, min(500, args.requests), args.concurrency))  # warm-up
            elapsed, latencies, failures = asyncio.run(bench_intake(hook_url, args.requests, args.concurrency))
            print(f"\nhook intake: {args.requests:,} POSTs at concurrency {args.concurrency}")
            print(f"  {args.requests / elapsed:,.0f} accepted req/s   non-200: {failures}")
            print(f"  p50 {percentile(latencies, 50):.2f} ms   p99 {percentile(latencies, 99):.2f} ms")
            deadline = time.monotonic() + 60
            while admin(url, "GET", "pending")["pending"] and time.monotonic() < deadline:
                time.sleep(0.2)
            print(f"  worker drained the queue; prospects now {admin(url, 'GET', 'state')['prospects']:,}")
        finally:
            child.stdin.close()
            child.wait(timeout=30)


if __name__ == "__main__":
    main()
