"""Load statistics and the knee from synthetic journals: latency from the intended send time, drops,
end-to-end lag, backlog, and a step judged broken only when its lag keeps growing."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

from bonzo_bulk.load.child import JournalRow
from bonzo_bulk.load.knee import Knee, StepVerdict, judge_step, sustained_rate
from bonzo_bulk.load.scenario import Breaking, LoadThresholds, Stage
from bonzo_bulk.load.schedule import Schedule, build_schedule
from bonzo_bulk.load.stats import Arrival, created_epoch, join, stage_figures, stage_verdicts, time_series
from bonzo_bulk.models import Observation

T0 = 1_800_000_000.0
Run = tuple[Schedule, list[str], list[JournalRow], dict[str, Observation]]
"""A synthetic load run: its schedule, record names, journal rows and what Bonzo showed of each record."""


def _observation(name: str, created: float) -> Observation:
    stamp = datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z")
    return Observation(name, ({"id": 1, "created_at": stamp},), (101,), datetime.fromtimestamp(created + 9, UTC), 1)


def _run(rate: float, seconds: float, *, lag: float = 0.5, lag_growth: float = 0.0, stall_at: int | None = None) -> Run:
    schedule = build_schedule([Stage(rate=rate, duration=seconds)])
    names = [f"R{i}" for i in range(len(schedule.offsets))]
    rows: list[JournalRow] = []
    observations: dict[str, Observation] = {}
    for seq, offset in enumerate(schedule.offsets):
        intended = T0 + offset
        sent = intended + (2.0 if stall_at is not None and seq >= stall_at else 0.0)
        rows.append(JournalRow(seq, intended, sent, sent + 0.01, 200, None))
        observations[names[seq]] = _observation(names[seq], sent + lag + lag_growth * offset)
    return schedule, names, rows, observations


def test_created_at_is_bonzos_clock_and_first_seen_the_fallback() -> None:
    assert created_epoch(_observation("R", T0)) == T0
    seen = Observation("R", ({"id": 1},), (101,), datetime.fromtimestamp(T0 + 3, UTC), 1)
    assert created_epoch(seen) == T0 + 3
    assert created_epoch(None) is None


def test_stage_figures_measure_rate_latency_and_lag() -> None:
    schedule, names, rows, observations = _run(10, 4)
    arrivals = join(rows, names, schedule.offsets, observations)
    figures = stage_figures(schedule.stages[0], arrivals)
    assert figures.planned == figures.sent == 40
    assert figures.achieved_rate == 10.0
    assert figures.dropped_arrivals == 0
    assert 9 <= (figures.hook_p95_ms or 0) <= 11
    assert figures.e2e_lag_p95_s == 0.5
    assert figures.lost == 0


def test_a_stalled_sender_shows_in_the_hook_latency() -> None:
    schedule, names, rows, observations = _run(10, 4, stall_at=20)
    figures = stage_figures(schedule.stages[0], join(rows, names, schedule.offsets, observations))
    assert (figures.hook_p95_ms or 0) > 2000  # answered 2 s after the intended send time
    assert figures.e2e_lag_p95_s == 0.5  # the lag counts from the real send


def test_dropped_arrivals_and_errors_are_counted_and_judged() -> None:
    schedule, names, rows, observations = _run(10, 2)
    rows[3] = JournalRow(3, rows[3].intended, None, None, None, "dropped")
    rows[4] = JournalRow(4, rows[4].intended, rows[4].sent, rows[4].answered, 503, "http_5xx")
    arrivals = join(rows, names, schedule.offsets, observations, lost=["R5"])
    figures = stage_figures(schedule.stages[0], arrivals)
    assert (figures.sent, figures.dropped_arrivals, figures.errors, figures.lost) == (19, 1, 1, 1)
    verdicts = {v.name: v for v in stage_verdicts(figures, LoadThresholds(error_rate=0.01, lost=0))}
    assert not verdicts["error_rate"].passed
    assert not verdicts["dropped_rate"].passed
    assert not verdicts["lost"].passed
    assert verdicts["misrouted"].passed


def test_series_backlog_grows_when_creation_falls_behind() -> None:
    schedule, names, rows, observations = _run(10, 5, lag_growth=1.0)
    series = time_series(schedule, join(rows, names, schedule.offsets, observations), T0)
    backlogs = [p.backlog for p in series[:5]]
    assert backlogs == sorted(backlogs) and backlogs[-1] > backlogs[0]
    assert [p.target_rate for p in series[:5]] == [10.0] * 5
    steady = time_series(*_series_args(_run(10, 5)))
    assert max(p.backlog for p in steady[:5]) <= 6


def _series_args(run: Run) -> tuple[Schedule, list[Arrival], float]:
    schedule, names, rows, observations = run
    return schedule, join(rows, names, schedule.offsets, observations), T0


def test_a_step_breaks_only_when_its_lag_keeps_growing() -> None:
    breaking = Breaking(lag_growth=0.05, min_lag_increase_s=0.25)

    def verdict(run: Run) -> StepVerdict:
        schedule, arrivals, t0 = _series_args(run)
        return judge_step(schedule.stages[0], arrivals, t0, breaking, patience_spent=True)

    flat_verdict = verdict(_run(20, 4))
    grow_verdict = verdict(_run(20, 4, lag_growth=0.2))
    assert not flat_verdict.broken, flat_verdict.reasons
    assert flat_verdict.visible == flat_verdict.accepted == 80
    assert grow_verdict.broken
    assert grow_verdict.lag_growth is not None and abs(grow_verdict.lag_growth - 0.2) < 0.01
    assert "backlog growing" in grow_verdict.reasons[0]


def test_leads_still_invisible_after_the_patience_break_a_step() -> None:
    schedule, names, rows, observations = _run(10, 2)
    del observations["R7"]
    arrivals = join(rows, names, schedule.offsets, observations)
    waiting = judge_step(schedule.stages[0], arrivals, T0, Breaking(), patience_spent=False)
    spent = judge_step(schedule.stages[0], arrivals, T0, Breaking(), patience_spent=True)
    assert not waiting.broken
    assert spent.broken and "not yet visible" in spent.reasons[0]


def test_knee_is_the_last_rate_sustained_before_the_first_break() -> None:
    breaking = Breaking()
    verdicts = []
    for index, (rate, growth) in enumerate([(10, 0.0), (20, 0.0), (40, 0.5), (80, 0.0)]):
        schedule, names, rows, observations = _run(rate, 2, lag_growth=growth)
        stage = schedule.stages[0]
        verdicts.append(
            judge_step(
                type(stage)(
                    index, *[getattr(stage, f) for f in ("start", "end", "rate", "end_rate", "first", "count")]
                ),
                join(rows, names, schedule.offsets, observations),
                T0,
                breaking,
                patience_spent=True,
            )
        )
    assert [v.broken for v in verdicts] == [False, False, True, False]
    assert sustained_rate(verdicts) == 20
    assert sustained_rate(verdicts[2:3]) is None
    knee = Knee.of(verdicts, 10)
    assert (knee.reached, knee.rate, knee.sustained_up_to) == (True, 20, 20)
    unbroken = Knee.of(verdicts[:2], 10)
    assert (unbroken.reached, unbroken.rate, unbroken.sustained_up_to) == (False, None, 20)
    assert unbroken.sentence() == "no knee up to 20 leads/s: every step run was sustained"
    first = Knee.of(verdicts[2:3], 40)
    assert first.below_first_step and first.sentence().startswith("knee below the first step (40 leads/s)")


def test_the_senders_own_closed_connections_never_break_a_step() -> None:
    """Issue 24, finding 7: three `HTTPConnectionClosed` early in a one-process run (the sender reusing a keep-alive
    connection the server had closed) broke the first step of a sandbox that handles 1,000 leads/s."""
    schedule, names, rows, observations = _run(20, 4)
    rows = [JournalRow(r.seq, r.intended, r.sent, r.sent, None, "closed") if r.seq in (1, 2, 3) else r for r in rows]
    for name in ("R1", "R2", "R3"):
        del observations[name]
    arrivals = join(rows, names, schedule.offsets, observations)
    figures = stage_figures(schedule.stages[0], arrivals)
    assert (figures.errors, figures.error_rate, figures.sender_errors) == (0, 0.0, 3)
    step = judge_step(schedule.stages[0], arrivals, T0, Breaking(), patience_spent=True)
    assert not step.broken, step.reasons
    assert step.sender_errors == 3
    refused = [
        JournalRow(r.seq, r.intended, r.sent, r.answered, 503, "http_5xx") if r.seq in (1, 2, 3) else r for r in rows
    ]
    broken = judge_step(
        schedule.stages[0], join(refused, names, schedule.offsets, observations), T0, Breaking(), patience_spent=True
    )
    assert broken.broken and "error rate" in broken.reasons[0]  # the same count of the system's own errors breaks it


def test_the_cli_process_never_imports_locust_or_gevent() -> None:
    code = (
        "import sys, bonzo_bulk.cli, bonzo_bulk.cli.load, bonzo_bulk.load.runner, bonzo_bulk.load.dashboard;"
        "bad = [m for m in ('locust', 'gevent') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
