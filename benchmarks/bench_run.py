"""Benchmark the user's own command, `bonzo-bulk run`, as a subprocess under `/usr/bin/time -v`.

Runs `bonzo-bulk run --config tests/configs/monitorbase_test_config.yaml --test-records N` (control
phase on: N primary + N control records; publishing on: every stage the user pays for) in two modes:

- standalone: a `bonzo-bulk sandbox --config ...` started here in its own process (under its own
  `/usr/bin/time -v`), the run pointed at it with the config key `sandbox.url` (docs/sandbox.md). The
  engine then has no child, so `/usr/bin/time -v` of the run is the ENGINE's peak RSS alone;
- default: the command as a user types it, the run starting its own sandbox (a child process of the
  engine). `/usr/bin/time -v` then reports the larger of the two, so the engine's own high-water mark
  (`VmHWM`) is read from /proc while it runs.

Per run it prints: wall time and seconds per 1,000 records (of N); the engine's peak RSS and its ratio to
the smallest N of the same mode; the store-finish time ("Run store: run finished in X s") and the
publishing time ("Published in X s": baseline, JSON summary, dashboard, retention) that the run logs, their
sum and its share of wall time; processing p50 / p95 per phase (sent to Bonzo's `created_at`, from the
run's JSON summary); the sandbox process's CPU time. A second line gives the engine's CPU time (user + sys of
the engine process alone) per judged record, and beside it the anchor measured just before the run: a bare
Locust FastHttpUser's CPU per request POSTing JSON of the run's mean body size to a raw asyncio sink on
loopback at the config's webhook concurrency (``bench_delivery.py``'s sink and Locust child), their ratio, the
API requests per record and the load average. Import times of `bonzo-bulk --help` and of the pytest
plugin come first unless `--no-imports`.

    uv run python benchmarks/bench_run.py [--records 1000 10000 100000] [--modes standalone default]
                                          [--users 10000] [--timeout 1800] [--anchor-requests 20000]
                                          [--no-imports | --imports-only]

With `--users N` the config's three test users are replaced by N (one team per 50), to measure what grows
with users: the engine's peak RSS and the dashboard's size (the last column, MB of HTML the run wrote).

Every server listens on 127.0.0.1 on a free port and is stopped here; every run is bounded by --timeout
(interrupted with SIGINT, then killed). Work happens in a temporary folder (reports, databases, configs),
removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bonzo_bulk.report.summary import HEALTH_DIR

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "tests" / "configs" / "monitorbase_test_config.yaml"
BIN = Path(sys.executable).parent
CLI = str(BIN / "bonzo-bulk")
TIME = "/usr/bin/time"
MODES = ("standalone", "default")
START_SECONDS = 60.0
"""Seconds the standalone sandbox may take to announce itself."""
STOP_SECONDS = 30.0
"""Seconds a process may take to stop after SIGINT before it is killed."""


@dataclass
class Figures:
    """What one run of the user's command cost."""

    mode: str
    records: int
    exit_code: int | None
    wall_s: float
    engine_rss_mb: float
    store_finish_s: float | None
    published_s: float | None
    processing: dict[str, tuple[float, float]] = field(default_factory=dict)
    """phase -> (p50 s, p95 s)."""
    sandbox_cpu_s: float | None = None
    sandbox_rss_mb: float | None = None
    dashboard_mb: float | None = None
    engine_cpu_s: float | None = None
    """User + sys CPU seconds of the engine process alone."""
    judged: int = 0
    """Records judged (every phase's, invalid ones included): what the CPU is divided by."""
    api_requests: int | None = None
    """Requests to Bonzo's API in the whole run ("N API requests in all")."""
    anchor_ms: float | None = None
    """CPU ms per request of a bare Locust FastHttpUser, measured just before this run."""
    load: tuple[float, float] = (math.nan, math.nan)
    """1-minute load average when the run started and when it ended."""

    @property
    def cpu_ms_per_record(self) -> float | None:
        if self.engine_cpu_s is None or not self.judged:
            return None
        return 1000 * self.engine_cpu_s / self.judged

    @property
    def anchor_ratio(self) -> float | None:
        per_record = self.cpu_ms_per_record
        return per_record / self.anchor_ms if per_record is not None and self.anchor_ms else None

    @property
    def publishing_s(self) -> float | None:
        """Store finish plus publishing: what the run spends after judging."""
        if self.store_finish_s is None or self.published_s is None:
            return None
        return self.store_finish_s + self.published_s


def time_v(path: Path) -> dict[str, float]:
    """Peak RSS (MB) and CPU seconds from a `/usr/bin/time -v -o` file (empty when it is missing)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    found: dict[str, float] = {}
    for key, label in (
        ("rss_kb", r"Maximum resident set size \(kbytes\)"),
        ("user_s", r"User time \(seconds\)"),
        ("sys_s", r"System time \(seconds\)"),
    ):
        match = re.search(rf"{label}:\s+([\d.]+)", text)
        if match:
            found[key] = float(match.group(1))
    return found


def stop_group(process: subprocess.Popen[Any]) -> None:
    """SIGINT the process group (as Ctrl-C would), wait, then kill it; for a sandbox started here (output drained)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class ProcWatch(threading.Thread):
    """Samples, every 0.1 s, the engine's VmHWM (its own peak RSS) and the CPU time of its children (the
    sandbox a default run starts), until stopped; the engine is the child of `/usr/bin/time`."""

    def __init__(self, time_pid: int) -> None:
        super().__init__(name="bench-procwatch", daemon=True)
        self.time_pid = time_pid
        self.engine_hwm_kb = 0.0
        self.children_cpu_s: dict[int, float] = {}
        self.done = threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")

    def run(self) -> None:
        while not self.done.is_set():
            for engine in _children(self.time_pid):
                with contextlib.suppress(OSError):
                    hwm = re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{engine}/status").read_text())
                    if hwm:
                        self.engine_hwm_kb = max(self.engine_hwm_kb, float(hwm.group(1)))
                for child in _children(engine):
                    with contextlib.suppress(OSError, IndexError, ValueError):
                        stat = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
                        self.children_cpu_s[child] = (int(stat[11]) + int(stat[12])) / self.tick
            self.done.wait(0.1)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _summary(reports: Path) -> dict[str, Any]:
    """The run's JSON summary (the newest non-`latest` JSON in the reports folder), or {}."""
    folder = reports / HEALTH_DIR
    candidates = sorted(
        (p for p in folder.glob("*.json") if p.name != "latest.json" and not p.is_symlink()),
        key=lambda p: p.stat().st_mtime,
    )
    if not candidates:
        return {}
    loaded: dict[str, Any] = json.loads(candidates[-1].read_text(encoding="utf-8"))
    return loaded


def _processing(summary: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """phase -> (p50, p95) processing seconds from the summary's metrics."""
    found = {}
    for phase, metrics in (summary.get("metrics") or {}).items():
        timing = metrics.get("processing_time") or {}
        if timing.get("p50_ms") is not None and timing.get("p95_ms") is not None:
            found[phase] = (float(timing["p50_ms"]) / 1000, float(timing["p95_ms"]) / 1000)
    return found


def with_users(config: Path, users: int, work: Path) -> Path:
    """A copy of ``config`` whose test users are ``users`` stand-ins on the reserved test domain."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["test_users"] = [
        {"name": f"LO{i:05d}", "email": f"lo{i:05d}@lender.test", "user_id": 100_000 + i, "team_id": 5_000 + i // 50}
        for i in range(users)
    ]
    copy = work / f"config-{users}-users.yaml"
    copy.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return copy


def _dashboard_mb(reports: Path) -> float | None:
    pages = list(reports.glob("**/*.html"))
    return sum(p.stat().st_size for p in pages) / 1e6 if pages else None


def run_once(mode: str, records: int, config: Path, work: Path, env: dict[str, str], timeout: float) -> Figures:
    """Run the user's command once under `/usr/bin/time -v` and read what it cost."""
    reports = work / f"reports-{mode}-{records}"
    shutil.rmtree(reports, ignore_errors=True)
    stats = work / f"time-{mode}-{records}.txt"
    command = [TIME, "-v", "-o", str(stats), CLI, "run", "--config", str(config), "--test-records", str(records)]
    command += ["--reports-dir", str(reports), "--log-level", "INFO"]
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**env, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    watch = ProcWatch(process.pid)
    watch.start()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"{mode} {records}: stopped after --timeout {timeout:g} s", file=sys.stderr)
        os.killpg(process.pid, signal.SIGINT)
        try:
            stdout, stderr = process.communicate(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    watch.done.set()
    watch.join()
    if process.returncode not in (0, 1):
        print(stdout[-2000:], stderr[-4000:], sep="\n", file=sys.stderr)
    measured = time_v(stats)
    # Standalone: the engine has no child, so time -v is the engine alone. Default: time -v is the larger
    # of the engine and its sandbox child, so the engine's own high-water mark is the figure.
    rss_kb = measured.get("rss_kb", math.nan) if mode == "standalone" else watch.engine_hwm_kb
    published = re.search(r"Published in ([\d.]+) s", stderr)
    requests = re.search(r"(\d+) API requests in all", stdout + stderr)
    summary = _summary(reports)
    judged = sum(int(m.get("generated", 0)) for m in (summary.get("metrics") or {}).values())
    finished = re.search(r"Run store: run finished in ([\d.]+) s", stderr)
    figures = Figures(
        mode=mode,
        records=records,
        exit_code=process.returncode,
        wall_s=wall,
        engine_rss_mb=rss_kb / 1024,
        store_finish_s=float(finished.group(1)) if finished else None,
        published_s=float(published.group(1)) if published else None,
        processing=_processing(summary),
        dashboard_mb=_dashboard_mb(reports),
        judged=judged or 2 * records,
        api_requests=int(requests.group(1)) if requests else None,
    )
    if mode == "default" and watch.children_cpu_s:
        figures.sandbox_cpu_s = sum(watch.children_cpu_s.values())
    if "user_s" in measured:
        # time -v counts the children it waited for: a default run's sandbox is taken off (sampled from /proc).
        children = sum(watch.children_cpu_s.values()) if mode == "default" else 0.0
        figures.engine_cpu_s = measured["user_s"] + measured.get("sys_s", 0.0) - children
    return figures


class StandaloneSandbox:
    """`bonzo-bulk sandbox --config CONFIG` on a free loopback port, under its own `/usr/bin/time -v`; a config
    that points a run at it (`sandbox.url`) is written beside its database."""

    def __init__(self, work: Path, tag: str, base: Path = CONFIG) -> None:
        self.base = base
        self.work = work
        self.tag = tag
        self.stats = work / f"time-sandbox-{tag}.txt"
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.config = work / f"config-{tag}.yaml"

    def __enter__(self) -> StandaloneSandbox:
        db = self.work / f"sandbox-{self.tag}.sqlite3"
        command = [TIME, "-v", "-o", str(self.stats), CLI, "sandbox", "--port", "0", "--config", str(self.base)]
        self.process = subprocess.Popen(
            [*command, "--db", str(db)],
            cwd=REPO,
            env={**os.environ, "COLUMNS": "400"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        announced = self._announcement(self.process)
        base = re.search(r"NOT Bonzo\) at (http://127\.0\.0\.1:\d+)", announced)
        if base is None:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the standalone sandbox did not announce itself:\n{announced}")
        self.url = base.group(1)
        data = yaml.safe_load(self.base.read_text(encoding="utf-8"))
        data["sandbox"] = {**(data.get("sandbox") or {}), "url": self.url}
        self.config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return self

    @staticmethod
    def _announcement(process: subprocess.Popen[str]) -> str:
        """What the sandbox prints up to "Press Ctrl-C" (bounded by START_SECONDS); then drains the rest."""
        assert process.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: _read_until(process, lines), daemon=True)
        reader.start()
        reader.join(START_SECONDS)
        threading.Thread(target=process.stdout.read, daemon=True).start()
        return "\n".join(lines)

    def cost(self) -> dict[str, float]:
        """The sandbox's CPU seconds and peak RSS (after it stopped)."""
        return time_v(self.stats)

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            stop_group(self.process)


def _read_until(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip())
        if line.startswith("Press Ctrl-C"):
            return


def measure(mode: str, records: int, work: Path, env: dict[str, str], timeout: float, config: Path = CONFIG) -> Figures:
    """One run in ``mode``: standalone starts (and stops) a fresh sandbox for it."""
    if mode == "default":
        return run_once(mode, records, config, work, env, timeout)
    with StandaloneSandbox(work, str(records), config) as sandbox:
        figures = run_once(mode, records, sandbox.config, work, env, timeout)
    cost = sandbox.cost()
    if cost:
        figures.sandbox_cpu_s = cost.get("user_s", 0.0) + cost.get("sys_s", 0.0)
        figures.sandbox_rss_mb = cost.get("rss_kb", math.nan) / 1024
    return figures


def import_times(repeats: int = 5) -> None:
    """Best-of-N wall and CPU (user + sys) time of `bonzo-bulk --help` and of importing the pytest plugin.

    CPU time is printed beside the wall time because it hardly moves when other work shares the machine.
    """
    python = str(BIN / "python")
    # As a user's machine runs it: bytecode cached (a shell with PYTHONDONTWRITEBYTECODE=1 recompiles every module).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for label, command in (
        ("python -c pass (interpreter start)", [python, "-c", "pass"]),
        ("bonzo-bulk --help", [CLI, "--help"]),
        ("import bonzo_bulk.pytest_plugin", [python, "-c", "import bonzo_bulk.pytest_plugin"]),
        ("import pytest (for comparison)", [python, "-c", "import pytest"]),
    ):
        best_wall = best_cpu = float("inf")
        subprocess.run(command, cwd=REPO, env=env, capture_output=True, check=True, timeout=60)  # warms the cache
        for _ in range(repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(command, cwd=REPO, env=env, capture_output=True, check=True, timeout=60)
            best_wall = min(best_wall, time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            best_cpu = min(best_cpu, cpu)
        print(f"{label:<38} wall {best_wall:6.3f} s   cpu {best_cpu:6.3f} s (best of {repeats})")
    profile = subprocess.run(
        [python, "-X", "importtime", "-c", "import bonzo_bulk.pytest_plugin"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stderr
    rows = []
    for line in profile.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if match and len(match.group(3)) <= 3:
            rows.append((int(match.group(2)), match.group(4)))
    top = ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in sorted(rows, reverse=True)[:8])
    print(f"plugin import, largest top-level modules (cumulative): {top}")


def locust_anchor(config: Path, requests: int) -> tuple[float | None, str]:
    """CPU ms per request of a bare Locust FastHttpUser POSTing JSON of the run's mean body size to a raw asyncio
    sink on loopback (``bench_delivery.py``'s sink and Locust child), at the config's webhook concurrency; with
    what it measured, printable."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_delivery import Measurement, measure_locust, running_sink

    concurrency, body_bytes = _run_shape(config)
    with running_sink(None) as url:
        found = measure_locust(url, requests, concurrency, body_bytes)
    if not isinstance(found, Measurement) or found.cpu_us_per_request is None:
        return None, f"Locust anchor: {found}"
    per_request = found.cpu_us_per_request / 1000
    return per_request, (
        f"Locust anchor: {found.requests:,} POSTs of {body_bytes} B by {concurrency} FastHttpUsers in "
        f"{found.seconds:.1f} s ({found.rps:,.0f}/s): {per_request:.3f} ms of CPU per request"
    )


def _run_shape(config: Path) -> tuple[int, int]:
    """The run's webhook concurrency and the mean size of its bodies (a few records of each phase, planned)."""
    from itertools import islice

    from bonzo_bulk import load_config
    from bonzo_bulk.plan.planner import plan_run

    plan = plan_run(load_config(config, environ={}))
    sizes = [len(record.body) for phase in plan.phases for record in islice(phase.iter_records(), 20)]
    return plan.loaded.config.webhook_settings.concurrent_requests, round(sum(sizes) / len(sizes))


def cpu_row(figures: Figures) -> str:
    """The run's CPU figures beside the anchor measured just before it."""
    per_request = None
    if figures.api_requests is not None and figures.judged:
        per_request = figures.api_requests / figures.judged
    return (
        f"{'':<10} engine CPU {_opt(figures.engine_cpu_s, '.1f')} s for {figures.judged:,} judged records: "
        f"{_opt(figures.cpu_ms_per_record, '.3f')} ms/record; Locust anchor {_opt(figures.anchor_ms, '.3f')} "
        f"ms/request; ratio {_opt(figures.anchor_ratio, '.2f')} (goal <= 2.5); API requests "
        f"{figures.api_requests if figures.api_requests is not None else '-'} ({_opt(per_request, '.4f')}/record, "
        f"goal <= 0.02); load average {figures.load[0]:.2f} -> {figures.load[1]:.2f}"
    )


HEADER = (
    f"{'mode':<10} {'records':>7} {'exit':>4} {'wall s':>7} {'s/1k':>6} {'engine RSS MB':>13} {'ratio':>5} "
    f"{'store s':>7} {'publish s':>9} {'both s':>6} {'share':>6} {'primary p50/p95 s':>17} "
    f"{'control p50/p95 s':>17} {'sandbox CPU s':>13} {'dashboard MB':>12}"
)


def _opt(value: float | None, spec: str) -> str:
    return "-" if value is None or math.isnan(value) else format(value, spec)


def row(figures: Figures, smallest_rss_mb: float) -> str:
    """One line of the table."""

    def phase(name: str) -> str:
        found = figures.processing.get(name)
        return f"{found[0]:.2f} / {found[1]:.2f}" if found else "-"

    publishing = figures.publishing_s
    share = None if publishing is None else publishing / figures.wall_s
    exit_code = "-" if figures.exit_code is None else str(figures.exit_code)
    return (
        f"{figures.mode:<10} {figures.records:>7} {exit_code:>4} {figures.wall_s:>7.1f} "
        f"{1000 * figures.wall_s / figures.records:>6.2f} {_opt(figures.engine_rss_mb, '.0f'):>13} "
        f"{_opt(figures.engine_rss_mb / smallest_rss_mb, '.2f'):>5} {_opt(figures.store_finish_s, '.2f'):>7} "
        f"{_opt(figures.published_s, '.2f'):>9} {_opt(publishing, '.2f'):>6} {_opt(share, '.1%'):>6} "
        f"{phase('primary'):>17} {phase('control'):>17} {_opt(figures.sandbox_cpu_s, '.1f'):>13} "
        f"{_opt(figures.dashboard_mb, '.1f'):>12}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, nargs="+", default=[1000, 10000], help="values of --test-records")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="sandbox: standalone, default")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one run may take before it is stopped")
    parser.add_argument("--users", type=int, default=0, help="test users instead of the config's three")
    parser.add_argument(
        "--anchor-requests", type=int, default=20_000, help="POSTs of the Locust anchor before each run (0: none)"
    )
    imports = parser.add_mutually_exclusive_group()
    imports.add_argument("--imports-only", action="store_true", help="only the import-time figures")
    imports.add_argument("--no-imports", action="store_true", help="skip the import-time figures")
    args = parser.parse_args()
    if any(n < 1 for n in args.records):
        parser.error(f"--records {args.records}: give counts of 1 or more")
    if args.users < 0:
        parser.error(f"--users {args.users}: give a count of 1 or more (or leave it out for the config's users)")

    if not args.no_imports:
        import_times()
    if args.imports_only:
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench-run-"))
    # As a user's install runs: bytecode cached (PYTHONDONTWRITEBYTECODE would make every run compile its modules).
    drop = ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    subprocess.run([CLI, "--help"], cwd=REPO, env=env, capture_output=True, check=False, timeout=60)
    config = with_users(CONFIG, args.users, work) if args.users else CONFIG
    print(
        "records = N (--test-records); each run sends N primary + N control. s/1k: wall s per 1,000 of N. "
        "ratio: engine RSS / engine RSS at the smallest N of the mode. store s + publish s = both s; share: of wall."
    )
    print(HEADER, flush=True)
    smallest: dict[str, float] = {}
    try:
        for records in sorted(args.records):
            for mode in args.modes:
                anchor, said = locust_anchor(config, args.anchor_requests) if args.anchor_requests else (None, "")
                started_load = os.getloadavg()[0]
                figures = measure(mode, records, work, env, args.timeout, config)
                figures.anchor_ms, figures.load = anchor, (started_load, os.getloadavg()[0])
                smallest.setdefault(mode, figures.engine_rss_mb)
                print(row(figures, smallest[mode]), flush=True)
                print(f"{'':<10} {said}" if said else "", cpu_row(figures), sep="\n" if said else "", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
