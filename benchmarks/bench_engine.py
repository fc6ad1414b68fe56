"""Benchmark a whole bulk run against the sandbox at N = 1,000 and 10,000 records.

Prints, per N: delivery records/s, API requests per verified record, time from the last record
becoming visible to the verdict, settle time, and the engine's peak RSS. The sandbox runs in a
separate process (on 127.0.0.1, a free port) so the RSS is the engine's own.

    uv run python benchmarks/bench_engine.py [--records 1000 10000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bonzo_bulk.config import load_config
from bonzo_bulk.run import run_bulk


def _serve(db: str, ready: Any, stop: Any) -> None:
    from bonzo_bulk.sandbox import SandboxOptions, SandboxServer
    from bonzo_bulk.settings import ProcessingDelayModel

    options = SandboxOptions(db_path=db, processing=ProcessingDelayModel(distribution="uniform", low=0.2, high=1.5))
    with SandboxServer(options) as server:
        ready.put(server.url)
        stop.wait(3600)


def _config(folder: Path, url: str, records: int, concurrency: int) -> Path:
    users = [
        {"name": f"LO {i}", "email": f"lo{i}@lender.test", "user_id": 1000 + i, "team_id": 100 + i % 2}
        for i in range(1, 4)
    ]
    data = {
        "test_name": f"benchmark {records}",
        "test_records": records,
        "control": False,
        "test_users": users,
        "webhook_settings": {"concurrent_requests": concurrency, "retry_delay": 0.2},
        "polling": {"interval": 1.0, "max_interval": 3.0},
        "processing_delay": 60,
        "sandbox": {"url": url},
        "reports_dir": str(folder / "reports"),
    }
    path = folder / f"bench_{records}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _parse(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    context = mp.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    server = context.Process(target=_serve, args=(str(folder / "sandbox.sqlite3"), ready, stop), daemon=True)
    server.start()
    try:
        url = ready.get(timeout=30)
        print(f"sandbox at {url} (separate process); engine on this process", flush=True)
        header = "      N  deliver rec/s  API req/rec  visible->verdict s  settle s  total s  peak RSS MB  verdict"
        print(header)
        for records in args.records:
            loaded = load_config(_config(folder, url, records, args.concurrency), environ={})
            started = time.perf_counter()
            result = run_bulk(loaded)
            total = time.perf_counter() - started
            phase = result.primary
            assert phase is not None
            sent = [d.sent_at.timestamp() for d in phase.deliveries]
            answered = [d.answered_at.timestamp() for d in phase.deliveries if d.answered_at]
            deliver_rate = len(phase.deliveries) / max(1e-9, max(answered) - min(sent))
            created = [_parse(str(p["created_at"])) for o in phase.observations for p in o.prospects]
            visible_to_verdict = result.finished_at.timestamp() - max(created) if created else float("nan")
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"{records:>7} {deliver_rate:>14,.0f} {phase.metrics.api_requests_per_record:>12.4f} "
                f"{visible_to_verdict:>19.2f} {phase.settle_seconds:>9.2f} {total:>8.2f} {rss_mb:>12.1f} "
                f"{'PASSED' if result.passed else 'FAILED':>8}",
                flush=True,
            )
    finally:
        stop.set()
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
