"""Processing-time intervals against the sandbox's ground truth, per clock variant.

Run: ``uv run python benchmarks/bench_timing.py [--records 300]``. For each ``sandbox.clock`` variant, one run
of N records over three users (faults: 15 % duplicates, 15 % wrong team, 10 % dropped) against a sandbox on
loopback; every created record's true lag (``GET /__sandbox/created`` minus the moment the lead was sent) is
compared with the interval the run reported. Prints, per variant: records timed, the share of true lags
inside their interval, the median and largest interval width, the time sources, the same for first seen's
interval alone (what a Bonzo without a usable ``created_at`` would get), faults caught and false alarms.
Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from bonzo_bulk.config.loader import load_config
from bonzo_bulk.config.sandbox_clock import SandboxClock
from bonzo_bulk.config.schema import ProcessingDelayModel
from bonzo_bulk.judge.stamps import StampMapping
from bonzo_bulk.judge.timing import processing_time, sent_time
from bonzo_bulk.library import run_bulk
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer

VARIANTS: dict[str, dict[str, Any]] = {
    "utc, microseconds (default)": {},
    "naive America/Chicago": {"zone": "America/Chicago"},
    "naive America/Chicago, whole seconds": {"zone": "America/Chicago", "whole_seconds": True},
    "naive Asia/Kolkata, whole s, clock +37 s": {"zone": "Asia/Kolkata", "whole_seconds": True, "offset_seconds": 37},
    "offset America/New_York, clock -20 s": {"zone": "America/New_York", "naive": False, "offset_seconds": -20},
    "utc, whole seconds, clock +37 s": {"whole_seconds": True, "offset_seconds": 37},
}
FAULTS = [{"kind": "duplicate", "rate": 0.15}, {"kind": "wrong_team", "rate": 0.15}, {"kind": "drop", "rate": 0.1}]
USERS = [
    {"name": "LO One", "email": "lo.one@lender.test", "user_id": 101, "team_id": 11},
    {"name": "LO Two", "email": "lo.two@lender.test", "user_id": 102, "team_id": 11},
    {"name": "LO Three", "email": "lo.three@lender.test", "user_id": 103, "team_id": 12},
]


def measure(name: str, clock: dict[str, Any], records: int, folder: Path) -> str:
    options = SandboxOptions(
        processing=ProcessingDelayModel(distribution="uniform", low=0.05, high=0.9), clock=SandboxClock(**clock)
    )
    with SandboxServer(options) as sandbox:
        config = {
            "test_name": "timing bench",
            "integration_type": "monitorbase",
            "test_records": records,
            "control": False,
            "test_users": USERS,
            "polling": {"interval": 0.25, "deadline": 6.0, "max_interval": 1.0},
            "reports_dir": str(folder / "reports"),
            "sandbox": {"url": sandbox.url, "faults": {"seed": 3, "faults": FAULTS}},
            "cleanup": {"after_run": "keep"},
        }
        path = folder / f"{abs(hash(name))}.yaml"
        path.write_text(yaml.safe_dump(config))
        result = run_bulk(load_config(path, environ={}))
        created: dict[str, float] = {}
        for prospect in httpx.get(f"{sandbox.url}/__sandbox/created").json()["prospects"]:
            stamp = datetime.fromisoformat(prospect["created_at"].replace("Z", "+00:00")).timestamp()
            created.setdefault(prospect["email"], stamp)
        truth: dict[str, set[str]] = {}
        for entry in httpx.get(f"{sandbox.url}/__sandbox/ground-truth").json()["faults"]:
            truth.setdefault(entry["fault"], set()).add(entry["record"])
    phase = result.primary
    assert phase is not None
    failing = set(phase.failures_by_record())
    faulted = set().union(*truth.values()) if truth else set()
    inside, widths, sources = 0, [], set()
    seen_inside, seen_widths = 0, []
    for outcome in phase.outcomes:
        if outcome.processing is None or outcome.delivery is None:
            continue
        lag = created[outcome.record.email] - sent_time(outcome.delivery).timestamp()
        inside += outcome.processing.contains(lag, 2e-6)
        widths.append(outcome.processing.width)
        sources.add(outcome.processing.source)
        first_seen = processing_time(outcome.delivery, outcome.observation, StampMapping())
        assert first_seen is not None
        seen_inside += first_seen.contains(lag, 2e-6)
        seen_widths.append(first_seen.width)
    return (
        f"| {name} | {len(widths)} | {inside}/{len(widths)} ({inside / max(1, len(widths)):.0%}) | "
        f"{statistics.median(widths):.3f} | {max(widths):.3f} | {', '.join(sorted(sources))} | "
        f"{seen_inside}/{len(seen_widths)}, {statistics.median(seen_widths):.3f} | "
        f"{len(faulted & failing)}/{len(faulted)} | {len(failing - faulted)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300)
    args = parser.parse_args()
    columns = ("variant", "timed", "true lag inside", "median width s", "max width s", "source")
    fallback = "first seen only: inside, median width s"
    print("| " + " | ".join((*columns, fallback, "faults caught", "false alarms")) + " |")
    print("|" + " --- |" * 9)
    with tempfile.TemporaryDirectory() as folder:
        for name, clock in VARIANTS.items():
            print(measure(name, clock, args.records, Path(folder)), flush=True)


if __name__ == "__main__":
    main()
