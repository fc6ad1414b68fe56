"""Benchmark the user's own command, `bonzo-bulk run`, as a subprocess under `/usr/bin/time -v`.

Runs `bonzo-bulk run --config tests/configs/monitorbase_test_config.yaml --test-records N` (control
phase on, publishing on: every stage the user pays for) against

- the default in-process sandbox (the command as a user types it, no environment set), and
- a standalone `bonzo-bulk sandbox` in its own process, targeted as live through TEST_HOOK_URL,
  SUPERUSER_WEBHOOK_URL, SUPERUSER_API_KEY and BONZO_API_URL,

and prints per run: wall time; peak RSS (`/usr/bin/time -v`, the largest of the command and the
children it reaped, and the engine process's own high-water mark read from /proc); the share of wall
time after settling (verify, store finish, JSON summary, dashboard: from the run's JSON summary and
the dashboard's write time); the store-finish and publishing times the run logs and their share of
wall time; the run's processing p50 (sent to created, as the run measures it). It also prints the
import times of `bonzo-bulk --help` and of the pytest plugin.

    uv run python benchmarks/bench_run.py [--records 1000 10000] [--targets inprocess standalone]
                                          [--timeout 1800] [--imports-only]

Every server listens on 127.0.0.1 on a free port and is stopped here; every run is bounded by
--timeout. Work happens in a temporary folder (reports and databases), removed at the end.
"""

from __future__ import annotations

import argparse
import json
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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "tests" / "configs" / "monitorbase_test_config.yaml"
BIN = Path(sys.executable).parent
CLI = str(BIN / "bonzo-bulk")


@dataclass
class Figures:
    """What one run of the user's command cost."""

    target: str
    records: int
    exit_code: int
    wall_s: float
    time_rss_mb: float
    engine_hwm_mb: float
    post_settle_s: float
    published_s: float | None
    store_finish_s: float | None
    processing_p50_s: float | None
    control_p50_s: float | None


def _kb(text: str, label: str) -> float:
    match = re.search(rf"{label}:\s+(\d+)", text)
    return float(match.group(1)) if match else float("nan")


def _engine_hwm(time_pid: int, stop: threading.Event, seen: list[float]) -> None:
    """Sample the engine's VmHWM (its own peak RSS, without children) until it exits."""
    while not stop.is_set():
        try:
            children = Path(f"/proc/{time_pid}/task/{time_pid}/children").read_text().split()
            for pid in children:
                status = Path(f"/proc/{pid}/status").read_text()
                match = re.search(r"VmHWM:\s+(\d+)", status)
                if match:
                    seen.append(float(match.group(1)))
        except OSError:
            pass
        stop.wait(0.1)


def _summary(reports: Path) -> dict[str, object]:
    folder = reports / "integration_health_reports"
    candidates = sorted(
        (p for p in folder.glob("*.json") if p.name != "latest.json" and not p.is_symlink()),
        key=lambda p: p.stat().st_mtime,
    )
    if not candidates:
        return {}
    loaded: dict[str, object] = json.loads(candidates[-1].read_text(encoding="utf-8"))
    return loaded


def _p50(summary: dict[str, object], phase: str) -> float | None:
    metrics = summary.get("metrics")
    if not isinstance(metrics, dict) or phase not in metrics:
        return None
    return float(metrics[phase]["processing_time"]["p50_ms"]) / 1000


def run_once(target: str, records: int, work: Path, env: dict[str, str], timeout: float) -> Figures:
    """Run the user's command once and read what it cost."""
    reports = work / f"reports-{target}-{records}"
    shutil.rmtree(reports, ignore_errors=True)
    command = [
        "/usr/bin/time",
        "-v",
        CLI,
        "run",
        "--config",
        str(CONFIG),
        "--test-records",
        str(records),
        "--reports-dir",
        str(reports),
        "--log-level",
        "INFO",
    ]
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
    stop, seen = threading.Event(), [0.0]
    sampler = threading.Thread(target=_engine_hwm, args=(process.pid, stop, seen), daemon=True)
    sampler.start()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    if process.returncode not in (0, 1):
        print(stdout[-2000:], stderr[-4000:], sep="\n", file=sys.stderr)
    summary = _summary(reports)
    post_settle = float("nan")
    dashboards = list((reports / "integration_health_reports").glob("*.html"))
    if summary and dashboards:
        finished = datetime.fromisoformat(str(summary["finished_at"])).timestamp()
        post_settle = max(p.stat().st_mtime for p in dashboards) - finished
    published = re.search(r"Published in ([\d.]+) s", stderr)
    finished = re.search(r"Run store: run finished in ([\d.]+) s", stderr)
    return Figures(
        target=target,
        records=records,
        exit_code=process.returncode,
        wall_s=wall,
        time_rss_mb=_kb(stderr, r"Maximum resident set size \(kbytes\)") / 1024,
        engine_hwm_mb=max(seen) / 1024,
        post_settle_s=post_settle,
        published_s=float(published.group(1)) if published else None,
        store_finish_s=float(finished.group(1)) if finished else None,
        processing_p50_s=_p50(summary, "primary"),
        control_p50_s=_p50(summary, "control"),
    )


class StandaloneSandbox:
    """`bonzo-bulk sandbox` in its own process on a free loopback port; its URLs and token read from its output."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.process: subprocess.Popen[str] | None = None
        self.env: dict[str, str] = {}

    def __enter__(self) -> StandaloneSandbox:
        db = self.work / "standalone-sandbox.sqlite3"
        self.process = subprocess.Popen(
            [CLI, "sandbox", "--host", "127.0.0.1", "--port", "0", "--config", str(CONFIG), "--db", str(db)],
            cwd=REPO,
            env={**os.environ, "COLUMNS": "400"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if line.startswith("Press Ctrl-C"):
                break
        text = "\n".join(lines)
        base = re.search(r"NOT Bonzo\) at (http://\S+)", text)
        hooks = dict(re.findall(r"hook URL \((\w+), source [^)]*\): (\S+)", text))
        token = re.search(r"superuser token \(works only on this sandbox\): (\S+)", text)
        if not (base and token and "monitorbase" in hooks and "general" in hooks):
            self.__exit__(None, None, None)
            raise RuntimeError(f"the standalone sandbox did not announce itself:\n{text}")
        self.env = {
            "TEST_HOOK_URL": hooks["monitorbase"],
            "SUPERUSER_WEBHOOK_URL": hooks["general"],
            "SUPERUSER_API_KEY": token.group(1),
            "BONZO_API_URL": base.group(1),
        }
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


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
        subprocess.run(command, cwd=REPO, env=env, capture_output=True, check=True)  # writes the bytecode cache
        for _ in range(repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(command, cwd=REPO, env=env, capture_output=True, check=True)
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
    ).stderr
    rows = []
    for line in profile.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if match and len(match.group(3)) <= 3:
            rows.append((int(match.group(2)), match.group(4)))
    top = ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in sorted(rows, reverse=True)[:8])
    print(f"plugin import, largest top-level modules (cumulative): {top}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument(
        "--targets", nargs="+", choices=("inprocess", "standalone"), default=["inprocess", "standalone"]
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one run may take before it is stopped")
    parser.add_argument("--imports-only", action="store_true", help="only the import-time figures")
    args = parser.parse_args()

    import_times()
    if args.imports_only:
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench-run-"))
    base_env = {k: v for k, v in os.environ.items() if k not in ("TEST_HOOK_URL", "SUPERUSER_API_KEY")}
    print(
        "target       records  exit  wall s  time-v RSS MB  engine RSS MB  after-settle %  store finish s"
        "  published s  publishing %  p50 s  control p50 s"
    )
    try:
        for records in args.records:
            for target in args.targets:
                if target == "standalone":
                    with StandaloneSandbox(work) as sandbox:
                        figures = run_once(target, records, work, {**base_env, **sandbox.env}, args.timeout)
                else:
                    figures = run_once(target, records, work, base_env, args.timeout)
                share = 100 * figures.post_settle_s / figures.wall_s
                published = f"{figures.published_s:.2f}" if figures.published_s is not None else "-"
                finish = f"{figures.store_finish_s:.2f}" if figures.store_finish_s is not None else "-"
                publishing = (
                    f"{100 * (figures.published_s + figures.store_finish_s) / figures.wall_s:.1f}"
                    if figures.published_s is not None and figures.store_finish_s is not None
                    else "-"
                )
                p50 = f"{figures.processing_p50_s:.2f}" if figures.processing_p50_s is not None else "-"
                control = f"{figures.control_p50_s:.2f}" if figures.control_p50_s is not None else "-"
                print(
                    f"{figures.target:<12} {figures.records:>7} {figures.exit_code:>5} {figures.wall_s:>7.1f} "
                    f"{figures.time_rss_mb:>14.0f} {figures.engine_hwm_mb:>14.0f} {share:>14.1f} "
                    f"{finish:>15} {published:>12} {publishing:>13} {p50:>6} {control:>14}",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
