"""What tracking a run's problems costs: reading its signatures (``sightings``) and the one locked transaction
that opens or updates them (``ProblemTracker.track``), for runs of N records with sporadic faults, on SQLite.

Each run has a wrong owner on 5 % of the records, a mangled first name on 2 %, dropped deliveries on 1 % (the
builder's faults), so it shows a handful of problems. The builder keeps every record's outcome in memory (the
engine keeps only the failing ones past 2,000 records), so ``sightings`` reads more here than in a real run;
``--runs`` runs are tracked one after the other into one store, as a monitor would. Prints the median and
worst time per run of each step.

    uv run python benchmarks/bench_problems.py [--records 1000 10000] [--runs 20]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "unit")]

from builders import DROPPED, MANGLED, WRONG_OWNER, RunSpec, build_run  # noqa: E402

from bonzo_bulk.config.monitor import ProblemSettings  # noqa: E402
from bonzo_bulk.problems.signature import sightings  # noqa: E402
from bonzo_bulk.problems.track import ProblemTracker  # noqa: E402


def _faults(records: int, seed: int) -> dict[int, str]:
    rng = random.Random(seed)
    faults: dict[int, str] = {}
    for index in range(1, records + 1):
        roll = rng.random()
        if roll < 0.05:
            faults[index] = WRONG_OWNER
        elif roll < 0.07:
            faults[index] = MANGLED
        elif roll < 0.08:
            faults[index] = DROPPED
    return faults


def measure(records: int, runs: int) -> tuple[list[float], list[float], int]:
    """(seconds per sightings(), seconds per track(), problems stored) over ``runs`` runs of ``records``."""
    read: list[float] = []
    tracked: list[float] = []
    count = 0
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "runs.sqlite3"
        tracker = ProblemTracker(store, ProblemSettings())
        for number in range(runs):
            result = build_run(
                RunSpec(records=records, invalid=0, faults=_faults(records, number), run_id=f"bench_{number:04d}")
            )
            started = time.perf_counter()
            sightings(result)
            read.append(time.perf_counter() - started)
            started = time.perf_counter()
            found = tracker.track(result)
            tracked.append(time.perf_counter() - started)
            assert found is not None, tracker.error
            count = len(found.problems)
    return read, tracked, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print(f"{'records':>8} {'runs':>5} {'problems':>8} {'sightings med/max ms':>22} {'track med/max ms':>18}")
    for records in args.records:
        read, tracked, count = measure(records, args.runs)
        print(
            f"{records:>8} {args.runs:>5} {count:>8} "
            f"{1000 * statistics.median(read):>10.1f} / {1000 * max(read):<9.1f}"
            f"{1000 * statistics.median(tracked):>8.1f} / {1000 * max(tracked):.1f}"
        )


if __name__ == "__main__":
    main()
