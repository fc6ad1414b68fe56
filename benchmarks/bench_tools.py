"""Tools benchmark: generator records/s (plan + write JSONL) and cleanup records/s against the sandbox.

Run: ``uv run python benchmarks/bench_tools.py [--sizes 10000 100000] [--cleanup 2000] [--real 500]``.
Cleanup is measured end to end (list On-Behalf-Of, filter, DELETE, verifying GET) with ``--real`` non-test
prospects mixed in that must all survive. Loopback only; bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bonzo_bulk._http import run_async
from bonzo_bulk.bonzo import BonzoClient
from bonzo_bulk.cleanup import clean, selector_for_pattern
from bonzo_bulk.config import load_config
from bonzo_bulk.generate import write_plan
from bonzo_bulk.plan import plan_run
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer
from bonzo_bulk.settings import ApiSettings, TestDataSettings

USERS = [
    {"name": f"Bench LO {i}", "email": f"lo{i}@bench.test", "user_id": 81000 + i, "team_id": 900} for i in range(3)
]
RUN = "r20250101-000000-beef"


def bench_generator(size: int, workdir: Path) -> tuple[float, float]:
    """Seconds to plan ``size`` records and to write them as JSON Lines."""
    config = workdir / f"gen_{size}.yaml"
    config.write_text(
        yaml.safe_dump({"test_records": size, "test_users": USERS, "control": False, "reports_dir": str(workdir)})
    )
    loaded = load_config(config, environ={})
    started = time.perf_counter()
    plan = plan_run(loaded)
    planned = time.perf_counter()
    write_plan(plan, workdir / f"out_{size}")
    return planned - started, time.perf_counter() - planned


async def bench_cleanup(url: str, test_count: int, real_count: int) -> dict[str, Any]:
    """Create ``test_count`` test prospects and ``real_count`` real ones, then time a full cleanup."""
    async with aiohttp.ClientSession() as session, session.post(f"{url}/__sandbox/seed", json={"users": USERS}) as r:
        token = str((await r.json())["superuser_token"])
    settings = ApiSettings(concurrent_requests=16, retry_delay=0.05)
    async with BonzoClient(base_url=url, api_key=token, settings=settings) as client:

        def body(n: int, test: bool) -> dict[str, Any]:
            if test:
                return {
                    "first_name": f"TestRecord_MonitorBase_{n:05d}",
                    "email": f"test.monitorbase.{n:05d}+{RUN}@bonzobuddy.test",
                    "tags": ["bonzo-bulk", RUN],
                    "custom_fields": {"custom_1": RUN},
                }
            return {"first_name": f"TestRecord_MonitorBase_{n:05d}", "email": f"real.person{n}@gmail.com"}

        started = time.perf_counter()
        await asyncio.gather(
            *(
                client.create_prospect(body(n, n < test_count), on_behalf_of=USERS[n % 3]["user_id"])
                for n in range(test_count + real_count)
            )
        )
        created_s = time.perf_counter() - started
        before = client.requests_made
        started = time.perf_counter()
        report = await clean(
            client,
            selector_for_pattern("TestRecord_MonitorBase_*", TestDataSettings()),
            user_ids=[u["user_id"] for u in USERS],
            dry_run=False,
        )
        seconds = time.perf_counter() - started
    assert len(report.deleted) == test_count, "every test prospect must go"
    assert not report.failed, "no deletion may fail"
    assert len(report.kept) == real_count, "every lookalike must stay"
    return {"seconds": seconds, "requests": client.requests_made - before, "create_s": created_s}


def main() -> None:
    """Print generator and cleanup throughput."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--cleanup", type=int, default=2000)
    parser.add_argument("--real", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for size in args.sizes:
            plan_s, write_s = bench_generator(size, workdir)
            print(
                f"generator {size:>7,} records: plan {plan_s:6.2f} s ({size / plan_s:8,.0f} rec/s), "
                f"write JSONL {write_s:5.2f} s ({size / write_s:9,.0f} rec/s), "
                f"total {size / (plan_s + write_s):8,.0f} rec/s"
            )
        with SandboxServer(SandboxOptions(db_path=workdir / "sandbox.sqlite3")) as sandbox:
            figures = run_async(bench_cleanup(sandbox.url, args.cleanup, args.real))
        rate = args.cleanup / figures["seconds"]
        print(
            f"cleanup   {args.cleanup:>7,} test prospects (+{args.real} lookalikes kept): {figures['seconds']:.2f} s, "
            f"{rate:,.0f} deleted+verified/s, {figures['requests']} API requests "
            f"(setup: created in {figures['create_s']:.2f} s)"
        )


if __name__ == "__main__":
    main()
