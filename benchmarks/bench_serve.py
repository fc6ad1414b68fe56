"""``bonzo-bulk serve`` benchmark: how long its pages take with a big store behind them.

Fills a SQLite store with ``--runs`` small finished runs spread over 5 integrations (an hour apart, what monitoring
leaves) and one run of ``--records`` records (streamed as the engine writes it, with failures), then serves it on a
loopback port and times each page as a client sees it over loopback (best and median of ``--repeat``; the first
request of a run page, its dashboard and /metrics is timed apart: it reads the store, later ones are cached).

Run: ``uv run python benchmarks/bench_serve.py [--runs 10000] [--records 100000] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "unit")]

from builders import DROPPED, MISSING, RunSpec, begin_run_of, build_run, fill_history  # noqa: E402

from bonzo_bulk.models import RunResult  # noqa: E402
from bonzo_bulk.serve.server import ServeServer  # noqa: E402
from bonzo_bulk.store import RunStore  # noqa: E402
from bonzo_bulk.store.ledger import BATCH  # noqa: E402

INTEGRATIONS = ("monitorbase", "zillow", "hubspot", "lendingtree", "unbounce")


def write_streamed(store_at: Path, result: RunResult) -> float:
    """Seconds to write ``result`` as the engine streams it (begin, records, batches, finish)."""
    started = time.perf_counter()
    with RunStore(store_at) as store:
        begin_run_of(store, result)
        for phase in result.phases:
            store.add_records(result.run_id, phase.records)
            deliveries = [o.delivery for o in phase.outcomes if o.delivery is not None]
            for start in range(0, len(deliveries), BATCH):
                store.add_deliveries(result.run_id, phase.kind, deliveries[start : start + BATCH])
            for start in range(0, len(phase.outcomes), BATCH):
                store.add_outcomes(result.run_id, phase.kind, phase.outcomes[start : start + BATCH])
        store.finish_run(result)
    return time.perf_counter() - started


def timed(client: httpx.Client, path: str, repeat: int) -> tuple[float, float, float, int]:
    """First, best and median seconds of GET ``path``; the size of the answer."""
    times, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
        size = len(response.content)
    return times[0], min(times[1:] or times), statistics.median(times[1:] or times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store_at = Path(folder) / "runs.sqlite3"
        started = time.perf_counter()
        fill_history(store_at, args.runs, INTEGRATIONS)
        print(
            f"filled {args.runs:,} runs over {len(INTEGRATIONS)} integrations in {time.perf_counter() - started:.1f} s"
        )
        faults = {i: DROPPED if i % 97 == 0 else MISSING for i in range(1, args.records, 53)}
        big = build_run(RunSpec(records=args.records, faults=faults, run_id="big_run", integration="monitorbase"))
        print(f"wrote the {args.records:,}-record run in {write_streamed(store_at, big):.1f} s")
        with ServeServer(str(store_at)) as server, httpx.Client(base_url=server.url, timeout=300) as client:
            print("| page | first | best | median | bytes |\n| --- | --- | --- | --- | --- |")
            for path in (
                "/",
                "/api/overview",
                "/runs/big_run",
                "/runs/big_run?page=20",
                "/runs/big_run/dashboard",
                "/api/runs/big_run/failures?page=3",
                "/metrics",
                "/api/live",
                "/healthz",
            ):
                first, best, median, size = timed(client, path, args.repeat)
                figures = " | ".join(f"{seconds * 1000:,.0f} ms" for seconds in (first, best, median))
                print(f"| `{path}` | {figures} | {size:,} |")


if __name__ == "__main__":
    main()
