"""Tools benchmark: CLI start-up, generator records/s (plan + write JSONL) and cleanup records/s against the sandbox.

Run: ``uv run python benchmarks/bench_tools.py [--only startup|generator|cleanup] [--sizes 10000 100000]
[--cleanup 2000] [--real 500] [--startup-runs 15] [--before-src OTHER_CHECKOUT/src]``.
Start-up is the user's installed ``bonzo-bulk --help`` (and ``bonzo-bulk run --help``) as subprocesses, interleaved
with what any typer + rich CLI pays (the interpreter, typer's rich help renderer), median and best wall and CPU
time, then what ``-X importtime`` says the time goes to. Cleanup is measured end to end (list On-Behalf-Of, filter,
DELETE, verifying GET) with ``--real`` non-test prospects mixed in that must all survive. Loopback only; bounded
in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bonzo_bulk._http import run_async
from bonzo_bulk.bonzo import BonzoClient
from bonzo_bulk.cleanup.clean import clean
from bonzo_bulk.cleanup.select import selector_for_pattern
from bonzo_bulk.config.loader import load_config
from bonzo_bulk.config.schema import ApiSettings, TestDataSettings
from bonzo_bulk.plan.files import write_plan
from bonzo_bulk.plan.planner import plan_run
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer

USER_IDS = [81000 + i for i in range(3)]
USERS = [
    {"name": f"Bench LO {i}", "email": f"lo{i}@bench.test", "user_id": user_id, "team_id": 900}
    for i, user_id in enumerate(USER_IDS)
]
RUN = "r20250101-000000-beef"


BIN = Path(sys.executable).parent
STARTUP = (
    ("python -c pass (the interpreter)", [str(BIN / "python"), "-c", "pass"]),
    ("import typer.rich_utils (typer + rich help)", [str(BIN / "python"), "-c", "import typer.rich_utils"]),
    ("import bonzo_bulk.cli", [str(BIN / "python"), "-c", "import bonzo_bulk.cli"]),
    ("bonzo-bulk --help", [str(BIN / "bonzo-bulk"), "--help"]),
    ("bonzo-bulk run --help", [str(BIN / "bonzo-bulk"), "run", "--help"]),
)


def bench_startup(runs: int, before_src: Path | None) -> None:
    """Median and best wall / CPU seconds of each :data:`STARTUP` command, run in turn so they share the load;
    with ``before_src`` (another checkout's ``src``) the user's commands also run from it, for a before/after."""
    # As a user's machine runs it: bytecode cached (a shell with PYTHONDONTWRITEBYTECODE=1 recompiles every module).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    commands = [(label, command, env) for label, command in STARTUP]
    if before_src is not None:
        before = {**env, "PYTHONPATH": str(before_src)}
        commands += [(f"{label} (before)", command, before) for label, command in STARTUP if "bonzo" in label]
    walls: dict[str, list[float]] = {label: [] for label, _, _ in commands}
    cpus: dict[str, list[float]] = {label: [] for label, _, _ in commands}
    for _, command, environment in commands:
        subprocess.run(command, env=environment, capture_output=True, check=True)  # writes the bytecode cache
    for _ in range(runs):
        for label, command, environment in commands:
            before_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(command, env=environment, capture_output=True, check=True)
            walls[label].append(time.perf_counter() - started)
            after_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus[label].append(
                after_usage.ru_utime - before_usage.ru_utime + after_usage.ru_stime - before_usage.ru_stime
            )
    print(f"start-up, {runs} runs each, load average {os.getloadavg()[0]:.1f}:")
    for label, _, _ in commands:
        wall, cpu = walls[label], cpus[label]
        print(
            f"  {label:<53} wall median {statistics.median(wall):.3f} s, best {min(wall):.3f} s; "
            f"cpu median {statistics.median(cpu):.3f} s, best {min(cpu):.3f} s"
        )
    print(f"  --help imports by package, best of 5 (self time): {_import_times(env)}")


def _import_times(env: dict[str, str]) -> str:
    """Where ``bonzo-bulk --help``'s imports go: each module's best self time over 5 runs, summed per package."""
    best: dict[str, int] = {}
    for _ in range(5):
        profile = subprocess.run(
            [str(BIN / "python"), "-X", "importtime", "-m", "bonzo_bulk", "--help"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        for line in profile.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
            if match:
                best[match.group(2)] = min(best.get(match.group(2), 1 << 62), int(match.group(1)))
    packages: dict[str, int] = {}
    for module, microseconds in best.items():
        packages[module.split(".")[0]] = packages.get(module.split(".")[0], 0) + microseconds
    ranked = sorted(packages.items(), key=lambda item: -item[1])
    return (
        ", ".join(f"{name} {us / 1000:.0f} ms" for name, us in ranked[:10])
        + f"; all {sum(packages.values()) / 1000:.0f} ms"
    )


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
                client.create_prospect(body(n, n < test_count), on_behalf_of=USER_IDS[n % 3])
                for n in range(test_count + real_count)
            )
        )
        created_s = time.perf_counter() - started
        before = client.requests_made
        started = time.perf_counter()
        report = await clean(
            client,
            selector_for_pattern("TestRecord_MonitorBase_*", TestDataSettings()),
            user_ids=USER_IDS,
            dry_run=False,
        )
        seconds = time.perf_counter() - started
    assert len(report.deleted) == test_count, "every test prospect must go"
    assert not report.failed, "no deletion may fail"
    assert len(report.kept) == real_count, "every lookalike must stay"
    return {"seconds": seconds, "requests": client.requests_made - before, "create_s": created_s}


def main() -> None:
    """Print CLI start-up, generator and cleanup figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--cleanup", type=int, default=2000)
    parser.add_argument("--real", type=int, default=500)
    parser.add_argument("--startup-runs", type=int, default=15)
    parser.add_argument("--only", choices=("startup", "generator", "cleanup"), help="one of the three benchmarks")
    parser.add_argument("--before-src", type=Path, help="another checkout's src/: its start-up measured alongside")
    args = parser.parse_args()
    if args.only in (None, "startup"):
        bench_startup(args.startup_runs, args.before_src)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for size in args.sizes if args.only in (None, "generator") else ():
            plan_s, write_s = bench_generator(size, workdir)
            print(
                f"generator {size:>7,} records: plan {plan_s:6.2f} s ({size / plan_s:8,.0f} rec/s), "
                f"write JSONL {write_s:5.2f} s ({size / write_s:9,.0f} rec/s), "
                f"total {size / (plan_s + write_s):8,.0f} rec/s"
            )
        if args.only not in (None, "cleanup"):
            return
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
