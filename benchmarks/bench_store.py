"""Run-store benchmark: streamed writes of a 100k-record run, and `history` / `report --last 50` latency
with 1,000 runs stored, into SQLite and into PostgreSQL on loopback.

Run: ``uv run python benchmarks/bench_store.py [--records 100000] [--runs 1000] [--repeat 3] [--pg-url URL]``.
Without ``--pg-url`` a throwaway PostgreSQL cluster is started on a free loopback port (initdb + pg_ctl,
as the tests do) and removed afterwards. Writes go the way the engine writes them: the run, all its
records, deliveries and judged outcomes in batches of 500, then ``finish_run``.
``history`` and ``report`` are timed as the user runs them: the real CLI in a subprocess (wall time,
best and median of ``--repeat``), with the store named by ``BONZO_BULK_STORE_URL``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "unit")]

from builders import begin_run_of, build_run, fill_history  # noqa: E402
from pgcluster import PASSWORD, PgCluster, server_bin  # noqa: E402

from bonzo_bulk.models import RunResult  # noqa: E402
from bonzo_bulk.store import RunStore  # noqa: E402
from bonzo_bulk.store.ledger import BATCH as STORE_BATCH  # noqa: E402
from bonzo_bulk.store.transfer import copy_store  # noqa: E402


def write_streamed(store_at: str | Path, result: RunResult) -> float:
    """Seconds to write ``result`` as the engine streams it (begin, records, batches, finish)."""
    started = time.perf_counter()
    with RunStore(store_at) as store:
        begin_run_of(store, result, {"test_records": result.phases[0].metrics.generated})
        for phase in result.phases:
            store.add_records(result.run_id, phase.records)
            deliveries = [o.delivery for o in phase.outcomes if o.delivery is not None]
            for start in range(0, len(deliveries), STORE_BATCH):
                store.add_deliveries(result.run_id, phase.kind, deliveries[start : start + STORE_BATCH])
            for start in range(0, len(phase.outcomes), STORE_BATCH):
                store.add_outcomes(result.run_id, phase.kind, phase.outcomes[start : start + STORE_BATCH])
        store.finish_run(result)
    return time.perf_counter() - started


def cli_seconds(args: list[str], store_at: str | Path, repeat: int, workdir: Path) -> tuple[float, float]:
    """Best and median wall seconds of ``bonzo-bulk ARGS`` with the store in BONZO_BULK_STORE_URL."""
    env = {**os.environ, "BONZO_BULK_STORE_URL": str(store_at), "PGPASSWORD": PASSWORD, "COLUMNS": "200"}
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "bonzo_bulk", *args], env=env, cwd=workdir, check=True, capture_output=True
        )
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def in_process_seconds(store_at: str | Path, repeat: int, workdir: Path) -> tuple[float, float]:
    """Best seconds of what `history` and `report --last 50` do, in process (no interpreter start-up)."""
    from bonzo_bulk.report.stored import history, report

    history_times, report_times = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        history(store_at, integration=None, limit=20)
        history_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        report(store_at, run_id=None, last=50, out=workdir / "in_process.html")
        report_times.append(time.perf_counter() - started)
    return min(history_times), min(report_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg-url", help="an existing empty PostgreSQL database (password in PGPASSWORD)")
    args = parser.parse_args()

    cluster = None
    if args.pg_url:
        postgres_url = args.pg_url
    else:
        bin_dir = server_bin()
        if bin_dir is None:
            sys.exit("no PostgreSQL server binaries (initdb, pg_ctl); install Debian's postgresql or pass --pg-url")
        cluster = PgCluster(bin_dir).start()
        os.environ["PGPASSWORD"] = PASSWORD
        postgres_url = cluster.new_database()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
            workdir = Path(tmp)
            print(f"building a {args.records:,}-record run ...", flush=True)
            big = build_run(records=args.records, invalid=0, run_id="bench_big")
            rows = len(big.phases[0].records)
            phase = big.phases[0]
            # records, deliveries, outcomes, observations, checks, and a cleanup row per prospect
            table_rows = sum(
                3 + (o.delivery is not None) + len(o.checks) + (len(o.observation.prospects) if o.observation else 0)
                for o in phase.outcomes
            )
            stores: dict[str, str | Path] = {"sqlite": workdir / "runs.sqlite3", "postgresql": postgres_url}
            header = f"{'backend':<11} {'write run':>10} {'records/s':>10} {'rows/s':>8}"
            print(f"{header}  history (best/median)  report --last 50")
            for name, store_at in stores.items():
                seconds = write_streamed(store_at, big)
                if name == "sqlite":
                    fill_history(store_at, args.runs)
                else:  # the same 1,000 runs, moved over by `store copy` (the big run is already there: skipped)
                    copy_store(stores["sqlite"], store_at)
                hist = cli_seconds(["history", "--limit", "20"], store_at, args.repeat, workdir)
                page = workdir / f"report_{name}.html"
                rep = cli_seconds(["report", "--last", "50", "--out", str(page)], store_at, args.repeat, workdir)
                inner = in_process_seconds(store_at, args.repeat, workdir)
                print(
                    f"{name:<11} {seconds:>9.2f}s {rows / seconds:>10,.0f} {table_rows / seconds:>8,.0f}  "
                    f"{hist[0]:.2f}s / {hist[1]:.2f}s          {rep[0]:.2f}s / {rep[1]:.2f}s"
                    f"     in process: history {inner[0] * 1000:,.0f} ms, report {inner[1] * 1000:,.0f} ms",
                    flush=True,
                )
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import bonzo_bulk.cli"], check=True)
            print(
                f"(CLI start-up alone, for reference: {time.perf_counter() - started:.2f}s; {args.runs:,} runs stored)"
            )
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
