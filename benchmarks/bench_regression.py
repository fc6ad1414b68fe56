"""Statistical regression detection on synthetic run history: detection delay of a +20 % p95 step, false alarms.

Each history is a stable p95 processing time of about 20 s (polled every second: a 5 % resolution) with
log-normal noise (CV 5 %), fed run by run to ``regression.detect_summary`` as ``publish`` does after each
run (passed runs become history). Prints, for the default settings:

* how many runs after a +20 % step the first regression is flagged (over many seeded histories);
* the share of runs flagged on stable history (false alarms), per run and per figure.

    uv run python benchmarks/bench_regression.py
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from bonzo_bulk.config.schema import RegressionSettings
from bonzo_bulk.report.history_regression import detect_summary
from bonzo_bulk.store import RunSummary

START = datetime(2026, 1, 1, tzinfo=UTC)


def summary(index: int, p95_ms: float, latency_ms: float) -> RunSummary:
    """A passed sandbox run of 21 records with the given p95 figures."""
    started = START + timedelta(minutes=15 * index)
    return RunSummary(
        run_id=f"run_{index:04d}",
        test_name="synthetic",
        integration="monitorbase",
        target="sandbox",
        started_at=started,
        finished_at=started + timedelta(seconds=20),
        passed=True,
        records=21,
        delivery_rate=1.0,
        creation_rate=1.0,
        assignment_accuracy=1.0,
        mapping_accuracy=1.0,
        p95_processing_ms=p95_ms,
        p95_latency_ms=latency_ms,
        api_requests_per_record=0.5,
        is_baseline=False,
    )


def history(seed: int, runs: int, step_at: int | None, step: float, cv: float) -> list[RunSummary]:
    rng = random.Random(seed)
    rows = []
    for i in range(runs):
        level = 1 + step if step_at is not None and i >= step_at else 1.0
        rows.append(summary(i, 20_000.0 * level * rng.lognormvariate(0, cv), 12.0 * rng.lognormvariate(0, cv)))
    return rows


def flagged(rows: list[RunSummary], index: int, settings: RegressionSettings) -> set[str]:
    found = detect_summary(rows[index], rows[:index], settings, poll_interval_ms=1000.0)
    return {r.metric for r in found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--histories", type=int, default=100, help="seeded histories per experiment")
    parser.add_argument("--cv", type=float, default=0.05, help="run-to-run noise (coefficient of variation)")
    args = parser.parse_args()
    settings = RegressionSettings()
    began = time.perf_counter()

    stable_before, after = 30, 10
    delays: list[int] = []
    missed = 0
    for seed in range(args.histories):
        rows = history(seed, stable_before + after, stable_before, 0.20, args.cv)
        delay = next(
            (k + 1 for k in range(after) if "p95_processing_ms" in flagged(rows, stable_before + k, settings)), None
        )
        if delay is None:
            missed += 1
        else:
            delays.append(delay)
    within5 = sum(1 for d in delays if d <= 5)
    print(f"+20 % p95 step after {stable_before} stable runs (noise CV {args.cv:.0%}), {args.histories} histories:")
    print(f"  flagged within 5 runs: {within5}/{args.histories} ({within5 / args.histories:.1%})")
    if delays:
        print(
            f"  runs until flagged: median {statistics.median(delays):g}, max {max(delays)}; "
            f"never within {after}: {missed}"
        )

    stable_runs = 60
    checked = alarms = figure_alarms = figures_checked = 0
    for seed in range(args.histories):
        rows = history(10_000 + seed, stable_runs, None, 0.0, args.cv)
        for index in range(settings.min_history, stable_runs):
            hits = flagged(rows, index, settings)
            checked += 1
            alarms += bool(hits)
            figure_alarms += len(hits)
            figures_checked += 7
    print(f"stable history ({stable_runs} runs each, {checked} runs checked):")
    print(f"  false alarms: {alarms} runs flagged ({alarms / checked:.2%} of runs)")
    print(f"  per figure: {figure_alarms}/{figures_checked} ({figure_alarms / figures_checked:.2%})")
    print(f"({time.perf_counter() - began:.1f} s)")


if __name__ == "__main__":
    main()
